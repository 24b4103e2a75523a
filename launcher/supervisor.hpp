// The supervising loop of a running container: the launcher's in the foreground, the
// monitor's with -d. One epoll loop over the signals (taken through a signalfd), the
// container's pty, the caller's terminal and attach clients.
#pragma once

#include <sys/types.h>
#include <signal.h>

namespace srl {

struct SupervisorIo {
    int pty_master = -1;       // -t: the container's console
    int input = -1;            // foreground -it: the caller's stdin, copied into the pty
    int output = -1;           // foreground -t: where the pty's output goes (stdout)
    int log = -1;              // -d -t: the pty's output is appended here too
    int attach_listener = -1;  // -d: `srlaunch attach` clients connect here
    int stdin_pipe = -1;       // -d -i without -t: the container's stdin, fed by attach clients
};

// Runs until the container's PID 1 (`child`) has exited and its console is drained; returns
// its wait status. Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it; if it has not ended
// stop_timeout_s after the first, SIGKILL ends it. SIGWINCH resizes the pty. `signals`
// must be blocked in the caller and hold all of those plus SIGCHLD.
int supervise(pid_t child, int stop_timeout_s, const sigset_t& signals, const SupervisorIo& io);

}  // namespace srl
