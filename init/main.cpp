// srinit: PID 1 of every srlaunch container, and a standalone init like tini.
//
// One process, one loop: every signal, all 64, is blocked and taken synchronously with
// rt_sigtimedwait, so there are no handlers, no races with reaping and no heap. SIGCHLD
// means "reap everything"; any other signal goes to the workload. When the workload ends,
// whatever it left behind gets SIGTERM, a grace period, then SIGKILL, and srinit exits with
// the workload's status only when nothing is left. A SIGTERM, SIGINT or SIGHUP during that
// grace period ends it at once: SIGKILL, reap, exit with the workload's status.
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <new>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.hpp"
#include "out.hpp"
#include "privileges.hpp"
#include "reaper.hpp"
#include "signals.hpp"
#include "workload.hpp"

#ifndef SRINIT_VERSION
#define SRINIT_VERSION "dev"
#endif

namespace srinit {
namespace {

constexpr const char* kUsage =
    "usage: srinit [options] [--] CMD [ARG...]\n"
    "       srinit --config-fd FD\n"
    "  -g               forward signals to the workload's whole process group\n"
    "  -t, --grace SECS time leftover processes get between SIGTERM and SIGKILL (default 10)\n"
    "  --preserve-fds N keep fds 3 .. 3+N-1 open for the workload\n"
    "  --config-fd FD   read the launcher's config stream from FD\n"
    "  -h, --help       this text\n"
    "  -V, --version    print the version\n";

// The config stream is read into static storage: it lives as long as srinit, and untouched
// pages cost no memory.
char g_stream[1 << 20];

int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return kExitInitFailed;
}

long now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1'000'000L;
}

bool read_stream(Config& cfg) {
    std::size_t len = 0;
    for (;;) {
        if (len == sizeof g_stream) {
            say("config stream too large");
            return false;
        }
        ssize_t n = read(cfg.config_fd, g_stream + len, sizeof g_stream - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            say_errno(errno, "cannot read the config stream");
            return false;
        }
        if (n == 0) break;
        len += static_cast<std::size_t>(n);
    }
    close(cfg.config_fd);
    const char* bad = nullptr;
    if (const char* err = parse_stream(g_stream, len, cfg, &bad)) {
        say("config stream: ", bad ? bad : "", bad ? ": " : "", err);
        return false;
    }
    return true;
}

// Signals that ask srinit to stop: while draining they cut the grace period short.
bool is_stop_request(int sig) { return sig == SIGTERM || sig == SIGINT || sig == SIGHUP; }

// The supervision loop. Returns srinit's exit status.
int supervise(pid_t workload, const Config& cfg) {
    bool done = false;       // the workload has been reaped
    int status = 0;
    long deadline = 0;       // while draining: when SIGTERM turns into SIGKILL
    bool killing = false;
    bool stop_requested = false;  // a stop signal was forwarded while the workload ran
    for (;;) {
        Reaped r = reap_all(workload);
        if (r.workload_exited) {
            done = true;
            status = r.workload_status;
        }
        if (done && !r.children_left) return exit_code(status);
        if (done && deadline == 0) {
            signal_everyone(SIGTERM);
            deadline = now_ms() + cfg.grace_ms;
            // The container was asked to stop and its workload has: its leftovers get no
            // grace of their own, or a `stop -t 1` would SIGKILL us mid-drain and lose the
            // workload's status.
            if (stop_requested) killing = true;
        }
        if (done && !killing && now_ms() >= deadline) {
            killing = true;
        }
        if (killing) signal_everyone(SIGKILL);  // again each round: forks can race kill(-1)

        // Every signal, 1..64, is blocked (see run()), so each one stays pending until taken
        // here: the kernel discards a signal as ignored only if it is not blocked, which
        // covers both an inherited SIG_IGN and its rule that a namespace's init does not get
        // signals it has no handler for (from inside the namespace).
        siginfo_t info{};
        int sig;
        if (!done) {
            sig = ksig::wait(ksig::kAll, &info, nullptr);
        } else {
            long wait = killing ? 100 : deadline - now_ms();
            if (wait < 0) wait = 0;
            timespec ts{wait / 1000, (wait % 1000) * 1'000'000L};
            sig = ksig::wait(ksig::kAll, &info, &ts);
        }
        if (sig <= 0 || sig == SIGCHLD) continue;
        if (done) {
            // Draining: the workload is gone, so there is no one to forward to. A stop request
            // (`srlaunch stop`, Ctrl-C, a hangup) ends the grace period now: SIGKILL whatever
            // is left, reap it, and exit with the workload's status, before whoever asked
            // loses patience and SIGKILLs us, which would lose that status. Anything else is
            // dropped.
            if (is_stop_request(sig)) killing = true;
            continue;
        }
        // Every other signal goes to the workload, 32..34 and the real-time ones included.
        // Stop signals (Ctrl-Z's SIGTSTP, SIGTTIN, SIGTTOU) are forwarded like the rest:
        // srinit never stops itself, the job does. (SIGKILL and SIGSTOP never get here: the
        // kernel lets no one block or wait for them.)
        if (is_stop_request(sig)) stop_requested = true;
        kill(cfg.group ? -workload : workload, sig);
    }
}

int run(int argc, char** argv) {
    // Static, since its argument tables are large and srinit's stack small; constructed in
    // zeroed storage so the tables cost bss, not 16 KiB of file.
    alignas(Config) static unsigned char storage[sizeof(Config)];
    Config& cfg = *new (storage) Config;
    const char* bad = nullptr;
    if (const char* err = parse_options(argc, argv, cfg, &bad)) {
        say(bad ? bad : "", bad ? ": " : "", err, " (see srinit --help)");
        return kExitInitFailed;
    }
    if (cfg.help) {
        write(STDOUT_FILENO, kUsage, __builtin_strlen(kUsage));
        return 0;
    }
    if (cfg.version) {
        write(STDOUT_FILENO, "srinit " SRINIT_VERSION "\n", sizeof("srinit " SRINIT_VERSION));
        return 0;
    }
    if (cfg.config_fd >= 0 && !read_stream(cfg)) return kExitInitFailed;
    // Run from a memfd by the launcher, our comm would be the fd's number; ps should say
    // what PID 1 is.
    prctl(PR_SET_NAME, "srinit");
    // On ourselves, before anything else happens: srinit and every process of the container
    // live under the filter, so a compromised PID 1 gains nothing the workload lacks.
    if (const char* what = install_seccomp(cfg)) {
        say_errno(errno, what);
        return kExitInitFailed;
    }

    if (cfg.exec) {
        // `srlaunch exec` set up the session and terminal already: take its foreground.
        exec_workload(cfg, isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp());
    }

    // Outside a PID namespace, orphans of the workload would go to the real init; as a
    // subreaper they come to us, so reaping and draining work standalone too.
    if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        say_errno(errno, "cannot become a subreaper");
        return kExitInitFailed;
    }
    // Block all 64 signals: supervise() takes them synchronously. musl's sigfillset would
    // leave 32..34 out (signals.hpp), and 34 is glibc's SIGRTMIN, so the raw call.
    ksig::set_mask(SIG_BLOCK, ksig::kAll);
    // With every signal blocked, dispositions no longer decide what happens to a signal sent
    // to us, except one: an inherited SIG_IGN on SIGCHLD tells the kernel to reap our children
    // itself and send no SIGCHLD, which would lose the workload's status and leave us waiting
    // forever. Reset all of them (after blocking, so a signal cannot kill us in between);
    // the workload resets them again, for `srlaunch exec` processes that skip this.
    ksig::reset_dispositions();

    // Hand the terminal to the workload only if we hold it: a background srinit must not
    // steal the foreground from the shell that started it.
    bool take_terminal = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    pid_t workload = start_workload(cfg, take_terminal);
    if (workload < 0) {
        say_errno(errno, "cannot fork");
        return kExitInitFailed;
    }
    int code = supervise(workload, cfg);
    if (take_terminal) tcsetpgrp(STDIN_FILENO, getpgrp());  // give it back (SIGTTOU blocked)
    return code;
}

}  // namespace
}  // namespace srinit

int main(int argc, char** argv) { return srinit::run(argc, argv); }
