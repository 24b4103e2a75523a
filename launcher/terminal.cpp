#include "launcher/terminal.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <string>

#include "launcher/error.hpp"

namespace srl {

std::optional<winsize> terminal_size(int fd) {
    winsize ws{};
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || (ws.ws_row == 0 && ws.ws_col == 0)) return std::nullopt;
    return ws;
}

RawTerminal::RawTerminal(int fd) : fd_(fd) {
    if (!isatty(fd) || tcgetattr(fd, &saved_) < 0) return;
    termios raw = saved_;
    // Output post-processing goes too: the container's own pty already turned "\n" into
    // "\r\n", and a second pass would make it "\r\r\n".
    cfmakeraw(&raw);
    if (tcsetattr(fd, TCSANOW, &raw) == 0) active_ = true;
}

RawTerminal::~RawTerminal() {
    if (active_) tcsetattr(fd_, TCSADRAIN, &saved_);
}

Fd make_container_console(const std::optional<winsize>& size) {
    // The container's own devpts (mounted newinstance with its ptmx), not the host's.
    Fd master(check(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), "open the container's /dev/ptmx"));
    int unlock = 0;
    check(ioctl(master.get(), TIOCSPTLCK, &unlock), "unlock the pty");
    // TIOCGPTPEER opens the slave through the master, never by a path someone could swap.
    Fd slave(check(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), "open the pty's slave"));
    if (size) check(ioctl(slave.get(), TIOCSWINSZ, &*size), "set the terminal size");
    std::string slave_path = "/proc/self/fd/" + std::to_string(slave.get());
    check(mount(slave_path.c_str(), "/dev/console", nullptr, MS_BIND, nullptr), "bind the pty to /dev/console");
    // A session of our own whose controlling terminal is the pty: srinit, which we become,
    // hands its foreground to the workload.
    check(setsid(), "setsid");
    check(ioctl(slave.get(), TIOCSCTTY, 0), "make the pty the controlling terminal");
    for (int fd : {0, 1, 2}) check(dup2(slave.get(), fd), "attach the pty to stdio");
    return master;
}

size_t DetachKeys::scan(const char* buf, size_t len, bool& detached, std::string& out) {
    constexpr char kCtrlP = 0x10, kCtrlQ = 0x11;
    out.clear();
    detached = false;
    for (size_t i = 0; i < len; ++i) {
        char c = buf[i];
        if (pending_ctrl_p_) {
            pending_ctrl_p_ = false;
            if (c == kCtrlQ) {
                detached = true;
                return out.size();
            }
            out += kCtrlP;
        }
        if (c == kCtrlP) {
            pending_ctrl_p_ = true;
            continue;
        }
        out += c;
    }
    return out.size();
}

}  // namespace srl
