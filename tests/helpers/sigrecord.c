// Signal helpers for srinit's tests, for all 64 signals. Raw system calls throughout: glibc
// refuses signals 32 and 33 (its own) in sigaction and sigaddset, and musl 32..34.
//
//   sigrecord record [FILE]   blocks all 64 signals, prints "ready" (and creates FILE, if
//                             named), then prints "got N" for every signal it takes; exits 0
//                             once it took signal 64, 2 after 20 s without any signal
//   sigrecord idle            prints "ready" and sleeps with default dispositions, so any
//                             signal whose default action is fatal kills it (without a core
//                             dump); exits 2 after 20 s
//   sigrecord parent [-i LIST] [-b LIST] -- CMD [ARG...]
//                             runs CMD as its child with the signals of LIST (comma-separated
//                             numbers) ignored (-i) and blocked (-b), as an inherited state;
//                             prints "child=PID", then "exited N" or "killed N" when it ends
//                             (or SIGKILLs it and prints "timeout" after 20 s); exits 0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// The kernel's sigset (bit N-1 is signal N) and struct sigaction on x86-64.
typedef uint64_t kmask;
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    kmask mask;
};

static void say(const char* fmt, int n) {
    char line[64];
    int len = snprintf(line, sizeof line, fmt, n);
    // One write per line: several processes may share this stdout.
    if (write(STDOUT_FILENO, line, (size_t)len) < 0) _exit(3);
}

static kmask parse_list(const char* s) {
    kmask m = 0;
    while (*s) {
        char* end;
        long n = strtol(s, &end, 10);
        if (end == s || n < 1 || n > 64) {
            fprintf(stderr, "sigrecord: bad signal list: %s\n", s);
            exit(64);
        }
        m |= (kmask)1 << (n - 1);
        s = *end == ',' ? end + 1 : end;
    }
    return m;
}

static int record(const char* ready_file) {
    kmask all = ~(kmask)0;
    if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, sizeof all) < 0) return 3;
    say("ready\n", 0);
    if (ready_file) {
        int fd = open(ready_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return 3;
        close(fd);
    }
    for (;;) {
        struct timespec limit = {20, 0};
        siginfo_t info;
        int sig = (int)syscall(SYS_rt_sigtimedwait, &all, &info, &limit, sizeof all);
        if (sig < 0 && errno == EINTR) continue;
        if (sig < 0) return 2;
        say("got %d\n", sig);
        if (sig == 64) return 0;
    }
}

static int idle(void) {
    // A core dump of each death would be slow, and litter the working directory.
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0);
    say("ready\n", 0);
    struct timespec left = {20, 0};
    while (nanosleep(&left, &left) < 0 && errno == EINTR) {
    }
    return 2;
}

static int parent(int argc, char** argv) {
    kmask ignore = 0, block = 0;
    int i = 0;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc) return 64;
        if (strcmp(argv[i], "-i") == 0) ignore = parse_list(argv[i + 1]);
        else if (strcmp(argv[i], "-b") == 0) block = parse_list(argv[i + 1]);
        else return 64;
    }
    if (i + 1 >= argc) return 64;
    char** cmd = argv + i + 1;
    pid_t pid = fork();
    if (pid < 0) return 3;
    if (pid == 0) {
        struct ksigaction ign = {0};
        ign.handler = SIG_IGN;
        for (int sig = 1; sig <= 64; ++sig) {
            if (!(ignore & ((kmask)1 << (sig - 1)))) continue;
            if (syscall(SYS_rt_sigaction, sig, &ign, NULL, sizeof(kmask)) < 0) {
                perror("sigrecord: rt_sigaction");
                _exit(3);
            }
        }
        if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &block, NULL, sizeof block) < 0) _exit(3);
        execvp(cmd[0], cmd);
        perror(cmd[0]);
        _exit(127);
    }
    say("child=%d\n", pid);
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int waited = 0;; ++waited) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status)) say("exited %d\n", WEXITSTATUS(status));
            else say("killed %d\n", WTERMSIG(status));
            return 0;
        }
        if (waited >= 2000) {  // 20 s of ticks
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            say("timeout\n", 0);
            return 0;
        }
        nanosleep(&tick, NULL);
    }
}

int main(int argc, char** argv) {
    if (argc >= 2 && strcmp(argv[1], "record") == 0) return record(argc >= 3 ? argv[2] : NULL);
    if (argc == 2 && strcmp(argv[1], "idle") == 0) return idle();
    if (argc >= 2 && strcmp(argv[1], "parent") == 0) return parent(argc - 2, argv + 2);
    fprintf(stderr, "usage: sigrecord record [FILE] | idle | parent [-i LIST] [-b LIST] -- CMD...\n");
    return 64;
}
