// Every name created in a directory while a DirWatch lives (inotify), including those removed
// again: the ids of every container a store had, even a --rm one that is gone, or the name
// claims and id ranges a run made. With those a test checks what it made itself, and nothing
// of other srlaunch stores whose containers run on this host at the same time.
#pragma once

#include <sys/inotify.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>

namespace test {

class DirWatch {
public:
    // Creates `dir` if needed: inotify watches only what exists.
    explicit DirWatch(const std::string& dir) : dir_(dir) {
        std::filesystem::create_directories(dir);
        fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        REQUIRE(fd_ >= 0);
        REQUIRE(inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO) >= 0);
    }
    ~DirWatch() {
        if (fd_ >= 0) close(fd_);
    }
    DirWatch(const DirWatch&) = delete;
    DirWatch& operator=(const DirWatch&) = delete;

    // Everything created since construction.
    const std::set<std::string>& created() {
        alignas(inotify_event) char buf[64 * 1024];
        for (ssize_t n; (n = read(fd_, buf, sizeof buf)) > 0;) {
            for (char* p = buf; p < buf + n;) {
                auto* e = reinterpret_cast<inotify_event*>(p);
                // A full queue drops events: then the set would be incomplete, so fail.
                REQUIRE((e->mask & IN_Q_OVERFLOW) == 0);
                if (e->len > 0) seen_.insert(e->name);
                p += sizeof(inotify_event) + e->len;
            }
        }
        return seen_;
    }
    // What was created since the last call of this.
    std::set<std::string> new_entries() {
        std::set<std::string> fresh;
        for (const auto& n : created())
            if (!reported_.count(n)) fresh.insert(n);
        reported_.insert(fresh.begin(), fresh.end());
        return fresh;
    }
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    int fd_ = -1;
    std::set<std::string> seen_, reported_;
};

}  // namespace test
