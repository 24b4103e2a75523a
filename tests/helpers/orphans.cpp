// Makes orphans for srinit's reaping tests and benchmarks.
//   orphans spawn N     N orphans (double fork), each exiting at once
//   orphans burst N     N orphans that wait on one pipe and all exit when it closes
//   orphans zombies MS  waits up to MS ms for this PID namespace to hold no zombie, then
//                       prints "zombies=COUNT" (the count at the end)
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

namespace {

// Forks a grandchild that runs body() and is orphaned at once: the middle process exits
// and is reaped here, so the grandchild's parent becomes the nearest subreaper or PID 1.
template <class F>
bool orphan(F body) {
    pid_t mid = fork();
    if (mid < 0) return false;
    if (mid == 0) {
        if (fork() == 0) {
            body();
            _exit(0);
        }
        _exit(0);
    }
    waitpid(mid, nullptr, 0);
    return true;
}

int count_zombies() {
    int zombies = 0;
    DIR* d = opendir("/proc");
    if (!d) return -1;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
        std::string line;
        if (!std::getline(f, line)) continue;
        auto paren = line.rfind(')');
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z')
            ++zombies;
    }
    closedir(d);
    return zombies;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: orphans spawn|burst N | orphans zombies MS\n");
        return 2;
    }
    std::string mode = argv[1];
    long n = std::strtol(argv[2], nullptr, 10);
    if (mode == "spawn") {
        for (long i = 0; i < n; ++i)
            if (!orphan([] {})) return perror("fork"), 1;
        return 0;
    }
    if (mode == "burst") {
        int gate[2];
        if (pipe(gate) < 0) return perror("pipe"), 1;
        for (long i = 0; i < n; ++i) {
            bool ok = orphan([&] {
                close(gate[1]);
                char c;
                while (read(gate[0], &c, 1) > 0) {
                }
            });
            if (!ok) return perror("fork"), 1;
        }
        close(gate[1]);  // every orphan sees EOF and exits together
        return 0;
    }
    if (mode == "zombies") {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(n);
        int z;
        while ((z = count_zombies()) != 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        std::printf("zombies=%d\n", z);
        return 0;
    }
    std::fprintf(stderr, "orphans: unknown mode %s\n", mode.c_str());
    return 2;
}
