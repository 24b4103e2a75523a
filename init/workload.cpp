#include "workload.hpp"

#include <cerrno>
#include <csignal>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "out.hpp"
#include "privileges.hpp"
#include "signals.hpp"

extern char** environ;

namespace srinit {

// Every fd other than 0, 1, 2 and the preserved range 3 .. 3+keep-1 is closed, so nothing
// the launcher (or whoever started us) held open leaks into the workload.
static void close_inherited_fds(int keep) {
    unsigned first = 3u + static_cast<unsigned>(keep);
    if (syscall(SYS_close_range, first, ~0u, 0) == 0) return;
    // close_range arrived in Linux 5.9; before that, close one by one up to the fd limit.
    rlimit lim{};
    rlim_t max = getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : 1024;
    if (max > 1u << 20) max = 1u << 20;
    for (rlim_t fd = first; fd < max; ++fd) close(static_cast<int>(fd));
}

// A signal ignored across exec stays ignored in the new program, and a blocked one stays
// blocked: reset both, for all 64 signals (musl's sigaction and sigfillset would skip 32..34,
// see signals.hpp), so the workload does not inherit srinit's (or its parent's) choices.
static void reset_signals() {
    ksig::reset_dispositions();
    ksig::set_mask(SIG_SETMASK, ksig::kNone);
}

[[noreturn]] void exec_workload(const Config& cfg, bool take_terminal) {
    setpgid(0, 0);
    // tcsetpgrp from a background group raises SIGTTOU; it is still blocked here, so the
    // call simply succeeds and the shell we run gets job control on its terminal.
    if (take_terminal) tcsetpgrp(STDIN_FILENO, getpid());
    close_inherited_fds(cfg.preserve_fds);
    if (const char* what = drop_privileges(cfg)) {
        say_errno(errno, what);
        _exit(kExitInitFailed);
    }
    if (cfg.cwd && chdir(cfg.cwd) < 0) {
        say_errno(errno, "cannot change to working directory ", cfg.cwd);
        _exit(kExitInitFailed);
    }
    // execvp searches the PATH of the environment the program will get, as docker does.
    if (cfg.env_set) environ = const_cast<char**>(cfg.envp);
    reset_signals();
    execvp(cfg.argv[0], const_cast<char* const*>(cfg.argv));
    int err = errno;
    if (err == ENOENT) {
        say(cfg.argv[0], ": command not found");
        _exit(kExitNotFound);
    }
    say_errno(err, "cannot execute ", cfg.argv[0]);
    _exit(kExitCannotExec);
}

pid_t start_workload(const Config& cfg, bool take_terminal) {
    pid_t pid = fork();
    if (pid == 0) exec_workload(cfg, take_terminal);
    // Both sides set the group, so it exists before either of us signals it.
    if (pid > 0) setpgid(pid, pid);
    return pid;
}

}  // namespace srinit
