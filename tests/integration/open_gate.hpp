// Stopping another process at a known point, without timing: the test holds a write lease
// (fcntl F_SETLEASE) on a file the process will open. Its open() then blocks until the lease is
// released (or /proc/sys/fs/lease-break-time passes, 45 s by default), and the kernel tells the
// lease holder with SIGIO the moment that open() starts. So "the save is in the middle of reading
// the image" or "the import has made its staging directory" becomes an event to wait for.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

namespace test {

class OpenGate {
public:
    // SIGIO stays blocked while the gate exists (its default action would end the test), so
    // that wait_for_open() can take it with sigtimedwait(); children spawned meanwhile inherit
    // that mask, which no srlaunch command minds.
    explicit OpenGate(const std::string& path) {
        sigemptyset(&io_);
        sigaddset(&io_, SIGIO);
        REQUIRE(::sigprocmask(SIG_BLOCK, &io_, &saved_) == 0);
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        INFO("open " << path << ": " << std::strerror(errno));
        REQUIRE(fd_ >= 0);
        // Needs the file's owner or CAP_LEASE, a local file system, and no other open fd of it.
        const int r = ::fcntl(fd_, F_SETLEASE, F_WRLCK);
        INFO("F_SETLEASE on " << path << ": " << std::strerror(errno));
        REQUIRE(r == 0);
    }
    ~OpenGate() {
        release();
        ::sigprocmask(SIG_SETMASK, &saved_, nullptr);
    }
    OpenGate(const OpenGate&) = delete;
    OpenGate& operator=(const OpenGate&) = delete;

    // True once some process is blocked opening the file.
    bool wait_for_open(std::chrono::seconds timeout) {
        const timespec ts{static_cast<time_t>(timeout.count()), 0};
        return ::sigtimedwait(&io_, nullptr, &ts) == SIGIO;
    }
    // Lets the opener go on.
    void release() {
        if (fd_ < 0) return;
        ::fcntl(fd_, F_SETLEASE, F_UNLCK);
        ::close(fd_);
        fd_ = -1;
        const timespec now{0, 0};
        while (::sigtimedwait(&io_, nullptr, &now) == SIGIO) {}
    }

private:
    sigset_t io_, saved_;
    int fd_ = -1;
};

}  // namespace test
