// Starting the workload: the one child whose exit status srinit reports.
#pragma once

#include <sys/types.h>

#include "config.hpp"

namespace srinit {

// Exit statuses srinit itself produces, matching `docker run`.
inline constexpr int kExitInitFailed = 125;   // srinit could not set the workload up
inline constexpr int kExitCannotExec = 126;   // the command exists but cannot be executed
inline constexpr int kExitNotFound = 127;     // the command does not exist

// Forks the workload into its own process group and execs it. When take_terminal is set the
// new group becomes the foreground group of the terminal on stdin. Expects every signal to be
// blocked in the caller; the child unblocks them and resets every disposition to default
// before exec, so the workload starts as a fresh process would. Returns the pid, or -1.
pid_t start_workload(const Config& cfg, bool take_terminal);

// What the forked child of start_workload does: its own process group (and the terminal's
// foreground with take_terminal), inherited fds closed, privileges dropped, cwd, exec.
// Used directly by `srlaunch exec` processes (cfg.exec), which have no srinit of their own.
[[noreturn]] void exec_workload(const Config& cfg, bool take_terminal);

}  // namespace srinit
