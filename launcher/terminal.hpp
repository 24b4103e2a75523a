// Terminals: the pty a `-t` container gets, the caller's terminal in raw mode while it is
// attached, and window sizes.
#pragma once

#include <sys/ioctl.h>
#include <termios.h>

#include <optional>
#include <string>

#include "launcher/fd.hpp"

namespace srl {

// The size of the terminal on fd, if it is one.
std::optional<winsize> terminal_size(int fd);

// Puts the terminal on fd into raw mode (every byte, Ctrl-C included, goes to the container,
// whose own pty turns it into a signal for its foreground job) and restores the saved
// settings when destroyed. Does nothing when fd is not a terminal.
class RawTerminal {
public:
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

private:
    int fd_;
    bool active_ = false;
    termios saved_{};
};

// Child side, after pivot_root: a pty from the container's own devpts instance, so the
// container sees its terminal as /dev/pts/0 and /dev/console (bind-mounted over the
// placeholder the root setup left). The slave becomes the controlling terminal and stdio;
// the master is returned, to be sent to the supervisor.
Fd make_container_console(const std::optional<winsize>& size);

// Attach protocol, client to supervisor, over a unix stream socket: frames of one type byte,
// a 2-byte big-endian length and the payload. The other way is the raw output.
enum class AttachFrame : unsigned char { Input = 'i', Resize = 'w' };

// The Ctrl-P Ctrl-Q detach sequence, found in a stream of input bytes across reads.
class DetachKeys {
public:
    // Scans `len` bytes; returns how many may be forwarded and sets `detached` when the
    // sequence completed. A lone Ctrl-P is held back until the next byte shows what it is.
    size_t scan(const char* buf, size_t len, bool& detached, std::string& out);

private:
    bool pending_ctrl_p_ = false;
};

}  // namespace srl
