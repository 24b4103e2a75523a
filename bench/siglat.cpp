// Signal latency of an init as PID 1: from kill(SIGTERM) on the init to the workload's
// handler running. Both sides read CLOCK_MONOTONIC, which a PID namespace shares.
//   siglat measure RUNS INIT [INIT-ARGS...]   runs INIT [INIT-ARGS...] siglat workload
//                                             in a new PID namespace RUNS times and prints
//                                             the median latency in microseconds
//   siglat workload                           (internal) the workload
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

long long now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

void on_term(int) {
    char line[32];
    int n = std::snprintf(line, sizeof line, "%lld\n", now_ns());
    write(1, line, static_cast<size_t>(n));
    _exit(0);
}

int workload() {
    signal(SIGTERM, on_term);
    write(1, "ready\n", 6);
    for (;;) pause();
}

// One run: returns the latency in ns, or -1.
long long measure_once(const std::vector<char*>& argv) {
    int out[2];
    if (pipe(out) < 0) return -1;
    pid_t pid = static_cast<pid_t>(
        syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
    if (pid < 0) return -1;
    if (pid == 0) {
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
        mount("proc", "/proc", "proc", 0, nullptr);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(out[1]);
    std::string got;
    char buf[256];
    auto read_line = [&]() -> std::string {
        for (;;) {
            auto nl = got.find('\n');
            if (nl != std::string::npos) {
                std::string line = got.substr(0, nl);
                got.erase(0, nl + 1);
                return line;
            }
            ssize_t n = read(out[0], buf, sizeof buf);
            if (n <= 0) return {};
            got.append(buf, static_cast<size_t>(n));
        }
    };
    long long result = -1;
    if (read_line() == "ready") {
        usleep(2000);  // let the init settle into its wait
        long long sent = now_ns();
        kill(pid, SIGTERM);
        std::string handled = read_line();
        if (!handled.empty()) result = std::atoll(handled.c_str()) - sent;
    }
    close(out[0]);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return result;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "workload") == 0) return workload();
    if (argc < 4 || std::strcmp(argv[1], "measure") != 0) {
        std::fprintf(stderr, "usage: siglat measure RUNS INIT [INIT-ARGS...]\n");
        return 2;
    }
    int runs = std::atoi(argv[2]);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = '\0';
    std::vector<char*> cmd(argv + 3, argv + argc);
    cmd.push_back(self);
    cmd.push_back(const_cast<char*>("workload"));
    cmd.push_back(nullptr);
    std::vector<long long> samples;
    for (int i = 0; i < runs; ++i) {
        long long ns = measure_once(cmd);
        if (ns < 0) {
            std::fprintf(stderr, "siglat: run %d failed\n", i);
            return 1;
        }
        samples.push_back(ns);
    }
    std::sort(samples.begin(), samples.end());
    std::printf("%.1f\n", samples[samples.size() / 2] / 1000.0);
    return 0;
}
