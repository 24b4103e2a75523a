#include "proc.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace test {

namespace {

[[noreturn]] void child_fail(const char* what) {
    std::string msg = std::string("test spawn: ") + what + ": " + std::strerror(errno) + "\n";
    ::write(2, msg.data(), msg.size());
    _exit(125);
}

void set_cloexec(int fd) { fcntl(fd, F_SETFD, FD_CLOEXEC); }

}  // namespace

Child::Child(const std::vector<std::string>& argv, const SpawnOptions& opts) {
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
    for (const auto& e : opts.env) env_store.push_back(e);
    std::vector<char*> envp, args;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_store = argv;
    for (auto& a : argv_store) args.push_back(a.data());
    args.push_back(nullptr);

    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int master = -1;
    std::string slave_name;
    if (opts.pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        REQUIRE(master >= 0);
        REQUIRE(grantpt(master) == 0);
        REQUIRE(unlockpt(master) == 0);
        slave_name = ptsname(master);
    } else {
        REQUIRE(pipe2(in, O_CLOEXEC) == 0);
        REQUIRE(pipe2(out, O_CLOEXEC) == 0);
        REQUIRE(pipe2(err, O_CLOEXEC) == 0);
    }

    // clone() rather than unshare()+fork(): the child is PID 1 itself and its pid here is
    // the one the test signals.
    long flags = SIGCHLD | (opts.pid_namespace ? CLONE_NEWPID | CLONE_NEWNS : 0);
    pid_t pid = static_cast<pid_t>(syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (opts.pid_namespace) {
            if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
                child_fail("make / private");
            if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
                child_fail("mount /proc");
        }
        if (opts.pty) {
            if (setsid() < 0) child_fail("setsid");
            int slave = open(slave_name.c_str(), O_RDWR);  // first tty opened: our ctty
            if (slave < 0) child_fail("open pty");
            if (ioctl(slave, TIOCSCTTY, 0) < 0) child_fail("TIOCSCTTY");
            for (int fd = 0; fd < 3; ++fd) dup2(slave, fd);
            if (slave > 2) close(slave);
        } else {
            dup2(in[0], 0);
            dup2(out[1], 1);
            dup2(opts.merge_stderr ? out[1] : err[1], 2);
        }
        // Only the fds the test names are inherited, whatever ctest or Catch left open.
        syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
        for (int fd : opts.leak_fds) fcntl(fd, F_SETFD, 0);
        signal(SIGPIPE, SIG_DFL);
        execvpe(args[0], args.data(), envp.data());
        child_fail(args[0]);
    }
    pid_ = pid;
    if (opts.pty) {
        out_fd_ = master;
        in_fd_ = dup(master);
        set_cloexec(in_fd_);
    } else {
        close(in[0]);
        close(out[1]);
        close(err[1]);
        in_fd_ = in[1];
        out_fd_ = out[0];
        err_fd_ = err[0];
        if (!opts.stdin_data.empty()) write(opts.stdin_data);
        close(in_fd_);
        in_fd_ = -1;
    }
}

Child::~Child() {
    if (slave_fd_ >= 0) close(slave_fd_);
    if (!reaped_ && pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    for (int fd : {in_fd_, out_fd_, err_fd_})
        if (fd >= 0) close(fd);
}

void Child::resize(unsigned short rows, unsigned short cols) {
    winsize ws{rows, cols, 0, 0};
    REQUIRE(ioctl(out_fd_, TIOCSWINSZ, &ws) == 0);
}

std::string Child::tty_settings() {
    // Kept open from the first call on, so the settings can still be read after the child
    // (the terminal's last other user) has gone.
    if (slave_fd_ < 0) slave_fd_ = ioctl(out_fd_, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave_fd_ >= 0);
    termios t{};
    REQUIRE(tcgetattr(slave_fd_, &t) == 0);
    return std::string(reinterpret_cast<const char*>(&t), sizeof t);
}

void Child::write(const std::string& data) {
    REQUIRE(in_fd_ >= 0);
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(in_fd_, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        REQUIRE(n > 0);
        done += static_cast<std::size_t>(n);
    }
}

void Child::pump(int timeout_ms) {
    pollfd fds[2];
    int n = 0;
    if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
    if (n == 0) {
        if (timeout_ms > 0) usleep(static_cast<useconds_t>(timeout_ms) * 1000);
        return;
    }
    if (poll(fds, static_cast<nfds_t>(n), timeout_ms) <= 0) return;
    for (int i = 0; i < n; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[8192];
        ssize_t got = read(fds[i].fd, buf, sizeof buf);
        bool is_out = fds[i].fd == out_fd_;
        if (got > 0) {
            (is_out ? out_ : err_).append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || errno != EINTR) {  // EOF, or EIO from a pty with no slave
            close(fds[i].fd);
            (is_out ? out_fd_ : err_fd_) = -1;
        }
    }
}

bool Child::read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (out_.find(needle) == std::string::npos && err_.find(needle) == std::string::npos) {
        if (Clock::now() >= deadline || (out_fd_ < 0 && err_fd_ < 0)) return false;
        pump(20);
    }
    return true;
}

int Child::wait(std::chrono::milliseconds timeout) {
    REQUIRE(!reaped_);
    auto deadline = Clock::now() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        if (Clock::now() >= deadline) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
            reaped_ = true;
            FAIL("timed out waiting for " << pid_ << "; output so far:\n" << out_ << err_);
        }
        pump(20);
    }
    reaped_ = true;
    // Output still buffered (or held open by a leftover grandchild) gets a short grace.
    auto drain_until = Clock::now() + 500ms;
    while ((out_fd_ >= 0 || err_fd_ >= 0) && Clock::now() < drain_until) pump(20);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result run(const std::vector<std::string>& argv, const SpawnOptions& opts,
           std::chrono::milliseconds timeout) {
    Child c(argv, opts);
    int status = c.wait(timeout);
    return {status, c.out(), c.err()};
}

std::string srinit_path() { return SRINIT_PATH; }
std::string helper_path(const std::string& name) { return std::string(HELPER_DIR) + "/" + name; }

TempDir::TempDir() {
    char tmpl[] = "/tmp/srlaunch-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

static bool ci() {
    const char* v = std::getenv("CI");
    return v && std::string(v) == "true";
}

static void missing(const std::string& what) {
    if (ci()) FAIL("missing prerequisite under CI=true: " << what);
    std::fprintf(stderr, "SKIPPED: missing prerequisite: %s\n", what.c_str());
    std::exit(77);
}

void require_root() {
    if (geteuid() != 0) missing("root (namespaces and mounts)");
}

void require_program(const std::string& name) {
    if (run({"sh", "-c", "command -v " + name}).status != 0) missing("program " + name);
}

void require(bool present, const std::string& what) {
    if (!present) missing(what);
}

char process_state(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return '\0';
    auto paren = line.rfind(')');
    return paren == std::string::npos || paren + 2 >= line.size() ? '\0' : line[paren + 2];
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << content;
    }
    chmod(path.c_str(), mode);
}

}  // namespace test
