#include "reaper.hpp"

#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace srinit {

Reaped reap_all(pid_t workload) {
    Reaped r;
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            if (pid == workload) {
                r.workload_exited = true;
                r.workload_status = status;
            }
            continue;
        }
        if (pid < 0 && errno == EINTR) continue;
        r.children_left = !(pid < 0 && errno == ECHILD);
        return r;
    }
}

// A small fd owner: srinit has no heap and no exceptions, but still closes what it opens.
struct Fd {
    int fd;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) close(fd);
    }
};

// Builds "/proc/PID/task" or "/proc/PID/task/TID/children" without stdio, which would pull
// printf's whole machinery into a binary that is meant to stay a few KiB.
static char* put(char* p, const char* s) {
    while (*s) *p++ = *s++;
    return p;
}
static char* put(char* p, long v) {
    char digits[24];
    int n = 0;
    do digits[n++] = static_cast<char>('0' + v % 10); while ((v /= 10) > 0);
    while (n) *p++ = digits[--n];
    return p;
}

// Walks the process tree below pid through /proc/PID/task/TID/children (every thread can
// be a parent) and signals it bottom-up, so a parent dying first cannot hide its children.
// Uses getdents64 and stack buffers rather than opendir, which would allocate.
static void signal_tree(pid_t pid, int sig, int depth) {
    if (depth > 64) return;
    char path[64];
    *put(put(put(path, "/proc/"), pid), "/task") = '\0';
    Fd dir(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd < 0) return;
    char dents[1024];
    for (;;) {
        long n = syscall(SYS_getdents64, dir.fd, dents, sizeof dents);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            auto* d = reinterpret_cast<dirent*>(dents + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
            long tid = 0;
            for (const char* c = d->d_name; *c; ++c) tid = tid * 10 + (*c - '0');
            *put(put(put(put(put(path, "/proc/"), pid), "/task/"), tid), "/children") = '\0';
            Fd children(open(path, O_RDONLY | O_CLOEXEC));
            if (children.fd < 0) continue;
            char list[512];
            long child = 0;
            bool in_number = false;
            for (ssize_t got; (got = read(children.fd, list, sizeof list)) > 0;) {
                for (ssize_t i = 0; i < got; ++i) {
                    if (list[i] >= '0' && list[i] <= '9') {
                        child = child * 10 + (list[i] - '0');
                        in_number = true;
                    } else if (in_number) {
                        signal_tree(static_cast<pid_t>(child), sig, depth + 1);
                        child = 0;
                        in_number = false;
                    }
                }
            }
            if (in_number) signal_tree(static_cast<pid_t>(child), sig, depth + 1);
        }
    }
    if (depth > 0) kill(pid, sig);
}

void signal_everyone(int sig) {
    // As PID 1, kill(-1) reaches every process in the namespace but ourselves, atomically
    // with respect to processes that fork meanwhile. Outside a namespace kill(-1) would hit
    // the whole host, so a subreaper walks its own descendants instead.
    if (getpid() == 1) {
        kill(-1, sig);
        return;
    }
    signal_tree(getpid(), sig, 0);
}

}  // namespace srinit
