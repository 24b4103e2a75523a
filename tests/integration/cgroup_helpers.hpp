// Helpers of the resource-limit tests: reading cgroups and /proc from the host's side, a
// loop device, timed dd runs inside a container.
#pragma once

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/proc.hpp"

namespace cgtest {

using namespace test;
namespace fs = std::filesystem;
using Store = AlpineStore;

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The number after `key=` in a line like "rc=0 t0=12.34 cpu_ns=5", or -1 when absent.
inline double field(const std::string& text, const std::string& key) {
    std::string::size_type at = 0;
    while ((at = text.find(key + "=", at)) != std::string::npos) {
        if (at == 0 || text[at - 1] == ' ' || text[at - 1] == '\n') {
            try {
                return std::stod(text.substr(at + key.size() + 1));
            } catch (...) {
                return -1;
            }
        }
        at += key.size();
    }
    return -1;
}

// ---- cgroups as the host sees them --------------------------------------------------------

// "0-2,5" -> {0, 1, 2, 5}
inline std::set<int> parse_cpu_list(const std::string& text) {
    std::set<int> cpus;
    std::istringstream in(trim(text));
    for (std::string part; std::getline(in, part, ',');) {
        if (part.empty()) continue;
        auto dash = part.find('-');
        int lo = std::stoi(part.substr(0, dash));
        int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
        for (int c = lo; c <= hi; ++c) cpus.insert(c);
    }
    return cpus;
}

// This process's cgroup directory in the hierarchy holding `controller` ("" for the cgroup2
// one), e.g. /sys/fs/cgroup/memory/process_api/abc. srlaunch, started by the test, is in the
// same cgroups, so its containers live at <this>/srlaunch/<id>. "" when not mounted.
inline std::string own_cgroup_dir(const std::string& controller) {
    std::istringstream lines(read_file("/proc/self/cgroup"));
    for (std::string line; std::getline(lines, line);) {
        auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
        if (c1 == std::string::npos || c2 == std::string::npos) continue;
        std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
        std::set<std::string> names;
        std::istringstream in(ctrls);
        for (std::string n; std::getline(in, n, ',');) names.insert(n);
        if (controller.empty() ? !ctrls.empty() : !names.count(controller)) continue;
        std::vector<std::string> mounts;
        if (controller.empty()) {
            mounts = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
        } else {
            mounts = {"/sys/fs/cgroup/" + controller, "/sys/fs/cgroup/" + ctrls};
        }
        for (const auto& m : mounts)
            if (fs::exists(m + "/cgroup.procs")) return m + (path == "/" ? "" : path);
    }
    return "";
}

// The CPUs the launcher may use: its cpuset cgroup's (v1), else the effective set of its
// cgroup2 cgroup, else this process's affinity.
inline std::set<int> launcher_cpus() {
    std::string v1 = own_cgroup_dir("cpuset"), v2 = own_cgroup_dir("");
    if (!v1.empty()) return parse_cpu_list(read_file(v1 + "/cpuset.cpus"));
    if (!v2.empty() && fs::exists(v2 + "/cpuset.cpus.effective"))
        return parse_cpu_list(read_file(v2 + "/cpuset.cpus.effective"));
    cpu_set_t set;
    CPU_ZERO(&set);
    std::set<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cpus.insert(c);
    return cpus;
}

// Every child of a directory named "srlaunch" anywhere under /sys/fs/cgroup: a container's
// cgroup (of any store on this host).
inline void find_container_cgroups(const fs::path& dir, int depth, std::vector<std::string>& out) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
        if (it->path().filename() == "srlaunch") {
            std::error_code ec2;
            for (fs::directory_iterator c(it->path(), ec2), cend; !ec2 && c != cend; c.increment(ec2))
                if (c->is_directory(ec2)) out.push_back(c->path().string());
        } else if (depth < 12) {
            find_container_cgroups(it->path(), depth + 1, out);
        }
    }
}

// The cgroup directories, in any hierarchy, of these containers (by their 64-hex ids).
// Other stores' containers may run on this host meanwhile: only these ids are looked at.
inline std::set<std::string> cgroups_of(const std::set<std::string>& ids) {
    std::vector<std::string> all;
    find_container_cgroups("/sys/fs/cgroup", 0, all);
    std::set<std::string> mine;
    for (const auto& path : all)
        if (ids.count(fs::path(path).filename().string())) mine.insert(path);
    return mine;
}

// Called at the end of every test: no cgroup of any container the store has had is left
// (after a grace period: the last one may be between its exit and its rmdir).
inline void check_no_cgroups_left(Store& s) {
    auto ids = s.container_ids();
    // Every caller ran containers: none seen means the watch saw nothing, and so would this.
    CHECK(!ids.empty());
    auto left = cgroups_of(ids);
    for (auto deadline = Clock::now() + 10s; !left.empty() && Clock::now() < deadline; left = cgroups_of(ids))
        std::this_thread::sleep_for(100ms);
    std::string list;
    for (const auto& p : left) list += "  " + p + "\n";
    INFO(ids.size() << " containers in the store's lifetime; their cgroups left behind:\n" << list);
    CHECK(left.empty());
}

// Whether this host has cgroup v2 alone (srlaunch then uses it; on a hybrid host it keeps to v1).
inline bool pure_cgroup_v2() { return fs::exists("/sys/fs/cgroup/cgroup.controllers"); }

// Where srlaunch, started by this process, puts its containers' srlaunch/ directory in the
// hierarchy of `controller` ("" for cgroup2): its own cgroup in v1; in v2 that cgroup's parent
// (the root stays the root), since a non-root v2 cgroup holding processes cannot hand
// controllers down. As launcher/cgroup.cpp's cgroup_v2_parent.
inline std::string launcher_cgroup_parent(const std::string& controller) {
    std::string own = own_cgroup_dir(controller);
    if (!controller.empty() || own.empty() || own == "/sys/fs/cgroup") return own;
    return fs::path(own).parent_path();
}

// The container's cgroup in the hierarchy of `controller`: <launcher_cgroup_parent>/srlaunch/<id>,
// found by the id's first 12 hex digits (the default hostname). "" when absent.
inline std::string container_cgroup(const std::string& controller, const std::string& id_prefix) {
    std::string parent = launcher_cgroup_parent(controller);
    if (parent.empty() || id_prefix.empty()) return "";
    std::error_code ec;
    for (fs::directory_iterator it(parent + "/srlaunch", ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().string().rfind(id_prefix, 0) == 0) return it->path();
    return "";
}

// A container's CPU time, read from the host: its cgroup's usage (v2 cpu.stat usage_usec,
// v1 cpuacct.usage) and the utime+stime of its processes (clock ticks). Read from outside so
// that two containers are sampled at the same instants, however little CPU the one with the
// smaller share leaves its own shell for measuring (under emulation, seconds).
struct CpuSample {
    double cgroup_ns = -1, ticks = -1;
};
inline CpuSample cpu_sample(const std::string& id) {
    const bool v2 = pure_cgroup_v2();
    std::string dir = container_cgroup(v2 ? "" : "cpuacct", id);
    if (dir.empty()) return {};
    CpuSample s;
    if (v2) {
        std::istringstream in(read_file(dir + "/cpu.stat"));
        std::string key;
        double value;
        while (in >> key >> value)
            if (key == "usage_usec") s.cgroup_ns = value * 1000;
    } else {
        s.cgroup_ns = std::stod(read_file(dir + "/cpuacct.usage"));
    }
    s.ticks = 0;
    std::istringstream procs(read_file(dir + "/cgroup.procs"));
    for (pid_t pid; procs >> pid;) {
        std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        auto paren = stat.rfind(')');
        if (paren == std::string::npos) continue;
        std::istringstream fields(stat.substr(paren + 2));
        std::string f;
        // Fields 3.. after the command; utime and stime are fields 14 and 15.
        for (int i = 3; i <= 15 && fields >> f; ++i)
            if (i >= 14) s.ticks += std::stod(f);
    }
    return s;
}

// ---- processes ----------------------------------------------------------------------------

inline pid_t parent_of(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream in(stat.substr(paren + 2));
    char state;
    pid_t ppid = -1;
    in >> state >> ppid;
    return ppid;
}

inline std::string pid_ns(pid_t pid) {
    std::error_code ec;
    auto link = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/pid", ec);
    return ec ? "" : link.string();
}

inline std::vector<pid_t> all_pids() {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename();
        if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) pids.push_back(std::stoi(name));
    }
    return pids;
}

// The container's PID 1 (srinit) as the host sees it: srlaunch's child in another PID
// namespace. -1 if none appears within the timeout.
inline pid_t container_init(pid_t srlaunch, std::chrono::milliseconds timeout = 60s) {
    std::string ours = pid_ns(getpid());
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        for (pid_t p : all_pids()) {
            if (parent_of(p) != srlaunch) continue;
            std::string ns = pid_ns(p);
            if (!ns.empty() && ns != ours) return p;
        }
        std::this_thread::sleep_for(20ms);
    }
    return -1;
}

// How many host processes are in the PID namespace `ns` ("pid:[4026532...]").
inline int processes_in(const std::string& ns) {
    int n = 0;
    for (pid_t p : all_pids())
        if (pid_ns(p) == ns) ++n;
    return n;
}

// ---- a file-backed loop device, detached whatever happens ---------------------------------

class LoopDevice {
public:
    LoopDevice(const std::string& file, off_t size) {
        require_program("losetup");
        int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(ftruncate(fd, size) == 0);
        close(fd);
        auto r = run({"losetup", "--find", "--show", file});
        INFO(r.err);
        REQUIRE(r.status == 0);
        dev_ = trim(r.out);
        REQUIRE(dev_.rfind("/dev/loop", 0) == 0);
    }
    ~LoopDevice() {
        // LOOP_CLR_FD directly: no process to spawn (and no REQUIRE) in a destructor.
        int fd = open(dev_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        for (int i = 0; i < 50 && ioctl(fd, LOOP_CLR_FD, 0) != 0 && errno == EBUSY; ++i)
            std::this_thread::sleep_for(100ms);
        close(fd);
    }
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;
    const std::string& path() const { return dev_; }

private:
    std::string dev_;
};

// ---- scripts run inside the containers ----------------------------------------------------

// A container that prints its id (the default hostname) and spins: all the CPU it is let have.
inline const std::string kSpinScript = "hostname; while :; do :; done";

// Runs dd with the given operands and prints its status and the wall time around it.
inline std::string timed_dd(const std::string& operands) {
    return "read t0 x < /proc/uptime\ndd " + operands +
           "\nrc=$?\nread t1 x < /proc/uptime\necho \"rc=$rc t0=$t0 t1=$t1\"\n";
}


}  // namespace cgtest
