// `srlaunch attach`: the client end of a detached container's attach socket
// (launcher/supervisor.cpp is the other end; the frames are in launcher/terminal.hpp).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "launcher/error.hpp"
#include "launcher/lifecycle.hpp"
#include "launcher/lifecycle_commands.hpp"
#include "launcher/terminal.hpp"

namespace srl {

namespace {

bool send_frame(int sock, AttachFrame type, const void* data, size_t len) {
    while (len > 0) {
        size_t chunk = std::min<size_t>(len, 0xffff);
        char header[3] = {static_cast<char>(type), static_cast<char>(chunk >> 8), static_cast<char>(chunk & 0xff)};
        if (send(sock, header, 3, MSG_NOSIGNAL) != 3) return false;
        if (send(sock, data, chunk, MSG_NOSIGNAL) != static_cast<ssize_t>(chunk)) return false;
        data = static_cast<const char*>(data) + chunk;
        len -= chunk;
    }
    return true;
}

Fd connect_attach(const ContainerRef& c) {
    Fd dirfd(check(open(c.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open " + c.dir.string()));
    Fd sock(check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach.sock", dirfd.get());
    check(connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), "attach to " + c.id.substr(0, 12));
    return sock;
}

void write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}

}  // namespace

int attach_container(const ContainerRef& c) {
    ContainerState s = read_state(c.dir);
    if (s.status != ContainerState::Status::Running || !SupervisorLock::held_by_someone(c.dir))
        throw Error("container " + c.id.substr(0, 12) + " is not running");
    if (!s.detached)
        throw Error("container " + c.id.substr(0, 12) + " runs in the foreground of another srlaunch: nothing to attach to");
    Fd sock = connect_attach(c);

    sigset_t winch, old;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, &old);
    struct Restore {
        sigset_t mask;
        ~Restore() { sigprocmask(SIG_SETMASK, &mask, nullptr); }
    } restore{old};
    Fd sigfd(check(signalfd(-1, &winch, SFD_CLOEXEC), "signalfd"));

    // Without a tty the output is the log, followed from its end; the socket carries input.
    Fd log;
    if (!s.tty) {
        log = Fd(check(open(s.log_path.c_str(), O_RDONLY | O_CLOEXEC), "open the log"));
        check(lseek(log.get(), 0, SEEK_END), "seek the log");
    }
    bool detached = false;
    {
        std::optional<RawTerminal> raw;
        if (s.tty && isatty(STDIN_FILENO)) {
            raw.emplace(STDIN_FILENO);
            if (auto size = terminal_size(STDIN_FILENO)) send_frame(sock.get(), AttachFrame::Resize, &*size, sizeof *size);
        }
        DetachKeys keys;
        bool input_open = true;
        for (;;) {
            pollfd fds[3] = {{sock.get(), POLLIN, 0}, {input_open ? STDIN_FILENO : -1, POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
            int n = poll(fds, 3, s.tty ? -1 : 100);
            if (n < 0 && errno != EINTR) throw_errno("poll");
            char buf[16384];
            if (fds[0].revents) {
                ssize_t r = recv(sock.get(), buf, sizeof buf, 0);
                if (r <= 0) break;  // the container ended: its supervisor closed us
                if (s.tty) write_all(STDOUT_FILENO, buf, static_cast<size_t>(r));
            }
            if (log) {
                ssize_t r;
                while ((r = read(log.get(), buf, sizeof buf)) > 0) write_all(STDOUT_FILENO, buf, static_cast<size_t>(r));
            }
            if (fds[1].revents) {
                ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
                if (r <= 0) {
                    input_open = false;
                } else {
                    std::string forward;
                    keys.scan(buf, static_cast<size_t>(r), detached, forward);
                    if (!forward.empty()) send_frame(sock.get(), AttachFrame::Input, forward.data(), forward.size());
                    if (detached) break;
                }
            }
            if (fds[2].revents) {
                signalfd_siginfo si;
                (void)!read(sigfd.get(), &si, sizeof si);
                if (auto size = terminal_size(STDIN_FILENO)) send_frame(sock.get(), AttachFrame::Resize, &*size, sizeof *size);
            }
        }
    }
    if (detached) {
        std::fprintf(stderr, "\nsrlaunch: detached from %s (it goes on running; srlaunch attach %s)\n", c.id.substr(0, 12).c_str(),
                     c.id.substr(0, 12).c_str());
        return 0;
    }
    int code = wait_container(c);
    if (log) {
        char buf[16384];
        ssize_t r;
        while ((r = read(log.get(), buf, sizeof buf)) > 0) write_all(STDOUT_FILENO, buf, static_cast<size_t>(r));
    }
    return code < 0 ? 125 : code;
}

}  // namespace srl
