#include "launcher/supervisor.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/terminal.hpp"

namespace srl {

namespace {

using Clock = std::chrono::steady_clock;

void write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;  // a closed terminal or full disk: the container goes on
        p += w;
        n -= static_cast<size_t>(w);
    }
}

// An attached client: its socket and the part of a frame read so far.
struct Client {
    Fd sock;
    std::string buf;
};

class Loop {
public:
    Loop(pid_t child, int stop_timeout_s, const sigset_t& signals, const SupervisorIo& io)
        : child_(child), stop_timeout_s_(stop_timeout_s), io_(io) {
        epoll_ = Fd(check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
        sigfd_ = Fd(check(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
        watch(sigfd_.get(), EPOLLIN);
        if (io_.pty_master >= 0) {
            fcntl(io_.pty_master, F_SETFL, fcntl(io_.pty_master, F_GETFL) | O_NONBLOCK);
            watch(io_.pty_master, EPOLLIN);
        }
        if (io_.input >= 0) watch(io_.input, EPOLLIN);
        if (io_.attach_listener >= 0) watch(io_.attach_listener, EPOLLIN);
        int status;
        if (waitpid(child_, &status, WNOHANG) == child_) status_ = status;  // ended already
    }

    int run() {
        for (;;) {
            if (status_ && console_done()) return *status_;
            epoll_event events[16];
            int n = epoll_wait(epoll_.get(), events, 16, timeout_ms());
            if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
            check_deadline();
            for (int i = 0; i < n; ++i) dispatch(events[i]);
            if (status_ && io_.pty_master >= 0) drain_console();
        }
    }

private:
    void watch(int fd, uint32_t ev) {
        epoll_event e{};
        e.events = ev;
        e.data.fd = fd;
        check(epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e), "epoll_ctl");
    }
    void unwatch(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

    int timeout_ms() const {
        if (!deadline_) return -1;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now()).count();
        return left < 0 ? 0 : static_cast<int>(left) + 1;
    }
    void check_deadline() {
        if (deadline_ && Clock::now() >= *deadline_) {
            kill(child_, SIGKILL);
            deadline_.reset();
        }
    }
    bool console_done() const { return io_.pty_master < 0 || console_closed_; }

    void dispatch(const epoll_event& e) {
        int fd = e.data.fd;
        if (fd == sigfd_.get()) return on_signals();
        if (fd == io_.pty_master) return on_console();
        if (fd == io_.input) return on_input();
        if (fd == io_.attach_listener) return on_attach();
        for (size_t i = 0; i < clients_.size(); ++i)
            if (clients_[i].sock.get() == fd) return on_client(i);
    }

    void on_signals() {
        signalfd_siginfo si;
        while (read(sigfd_.get(), &si, sizeof si) == sizeof si) {
            int sig = static_cast<int>(si.ssi_signo);
            if (sig == SIGCHLD) {
                int status;
                if (!status_ && waitpid(child_, &status, WNOHANG) == child_) status_ = status;
            } else if (sig == SIGWINCH) {
                if (auto size = terminal_size(io_.input >= 0 ? io_.input : STDOUT_FILENO); size && io_.pty_master >= 0)
                    ioctl(io_.pty_master, TIOCSWINSZ, &*size);
            } else if (!status_) {
                kill(child_, sig);
                if (!deadline_) deadline_ = Clock::now() + std::chrono::seconds(stop_timeout_s_);
            }
        }
    }

    // Output of the container's console: to the caller's terminal, the log, attach clients.
    bool pump_console() {
        char buf[16384];
        ssize_t n = read(io_.pty_master, buf, sizeof buf);
        if (n > 0) {
            if (io_.output >= 0) write_all(io_.output, buf, static_cast<size_t>(n));
            if (io_.log >= 0) write_all(io_.log, buf, static_cast<size_t>(n));
            for (size_t i = 0; i < clients_.size();) {
                // Never blocks the container for a slow client: one that cannot take the
                // output now is dropped, and may attach again.
                if (send(clients_[i].sock.get(), buf, static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL) != n)
                    drop_client(i);
                else
                    ++i;
            }
            return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
        // EIO: every slave fd is closed, the container has no console any more.
        unwatch(io_.pty_master);
        console_closed_ = true;
        return false;
    }
    void on_console() { pump_console(); }
    void drain_console() {
        while (!console_closed_ && pump_console()) {
        }
        console_closed_ = true;  // the container is gone; what it did not write is lost
    }

    void to_container(const char* p, size_t n) {
        int fd = io_.pty_master >= 0 ? io_.pty_master : io_.stdin_pipe;
        if (fd < 0 || status_) return;
        // Input is small and comes from people; a full pty buffer is waited out.
        while (n > 0) {
            ssize_t w = write(fd, p, n);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                usleep(1000);
                continue;
            }
            if (w <= 0) return;
            p += w;
            n -= static_cast<size_t>(w);
        }
    }

    void on_input() {
        char buf[4096];
        ssize_t n = read(io_.input, buf, sizeof buf);
        if (n > 0) return to_container(buf, static_cast<size_t>(n));
        if (n < 0 && errno == EINTR) return;
        unwatch(io_.input);  // end of input: the container keeps its terminal
    }

    void on_attach() {
        Fd c(accept4(io_.attach_listener, nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        watch(c.get(), EPOLLIN);
        clients_.push_back({std::move(c), {}});
    }

    void on_client(size_t i) {
        Client& c = clients_[i];
        char buf[4096];
        ssize_t n = recv(c.sock.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            return drop_client(i);
        }
        c.buf.append(buf, static_cast<size_t>(n));
        while (c.buf.size() >= 3) {
            size_t len = static_cast<unsigned char>(c.buf[1]) << 8 | static_cast<unsigned char>(c.buf[2]);
            if (c.buf.size() < 3 + len) break;
            auto type = static_cast<AttachFrame>(c.buf[0]);
            if (type == AttachFrame::Input) {
                to_container(c.buf.data() + 3, len);
            } else if (type == AttachFrame::Resize && len == sizeof(winsize) && io_.pty_master >= 0) {
                winsize ws;
                std::memcpy(&ws, c.buf.data() + 3, sizeof ws);
                ioctl(io_.pty_master, TIOCSWINSZ, &ws);
            }
            c.buf.erase(0, 3 + len);
        }
    }

    void drop_client(size_t i) {
        unwatch(clients_[i].sock.get());
        clients_.erase(clients_.begin() + static_cast<long>(i));
    }

    pid_t child_;
    int stop_timeout_s_;
    SupervisorIo io_;
    Fd epoll_, sigfd_;
    std::optional<int> status_;
    std::optional<Clock::time_point> deadline_;
    bool console_closed_ = false;
    std::vector<Client> clients_;
};

}  // namespace

int supervise(pid_t child, int stop_timeout_s, const sigset_t& signals, const SupervisorIo& io) {
    Loop loop(child, stop_timeout_s, signals, io);
    return loop.run();
}

}  // namespace srl
