// Fds a careless caller of srlaunch holds open, for the tests that no caller fd reaches a
// container (the CVE-2024-21626 class).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "proc.hpp"

namespace test {

// What a careless caller of srlaunch holds open without O_CLOEXEC: a directory of the host
// (through /proc/1/fd/N a way out of the container), a file, both ends of a pipe and a
// socket. Closed with the object.
struct CallerFds {
    explicit CallerFds(const std::string& dir) {
        fds.push_back(open(dir.c_str(), O_RDONLY | O_DIRECTORY));
        fds.push_back(open((dir + "/caller-file").c_str(), O_RDWR | O_CREAT, 0600));
        int p[2], sv[2];
        REQUIRE(pipe(p) == 0);
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        fds.insert(fds.end(), {p[0], p[1], sv[0], sv[1]});
        for (int fd : fds) REQUIRE(fd >= 3);
        opts.leak_fds = fds;
    }
    ~CallerFds() {
        for (int fd : fds) close(fd);
    }
    // A shell line that prints "leak:WHO:N" for each of our numbers open in process WHO
    // (1: srinit, $$: the shell) and tries the escape through the directory.
    std::string probe() const {
        std::string s = "for w in 1 $$; do for n in";
        for (int fd : fds) s += " " + std::to_string(fd);
        s += "; do [ -e /proc/$w/fd/$n ] && echo leak:$w:$n; done; done; echo x > /proc/1/fd/" +
             std::to_string(fds[0]) + "/ESCAPED 2>/dev/null; ls /proc/1/fd | tr '\\n' ' '; true";
        return s;
    }
    std::vector<int> fds;
    SpawnOptions opts;
};

}  // namespace test
