// The socket between the launcher and a child it is setting up (a container's PID 1, or an
// `exec` process): fds passed as SCM_RIGHTS, and the child's error, if any, as plain bytes.
#pragma once

#include "launcher/fd.hpp"

namespace srl {

// fd < 0: the "go" byte alone.
void send_fd(int sock, int fd);
// The fd sent, or an invalid Fd when a message came without one.
Fd receive_fd(int sock);
// Waits until the child execs: its end of the socket is close-on-exec, so EOF means it ran;
// bytes are its error, thrown as Error. An fd sent before (a pty's master) is returned.
Fd wait_for_exec(int sock);

}  // namespace srl
