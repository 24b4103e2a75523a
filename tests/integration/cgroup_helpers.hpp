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

inline bool has_processes(const fs::path& dir) {
    std::error_code ec;
    if (!trim(read_file(dir / "cgroup.procs")).empty()) return true;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec) && has_processes(it->path())) return true;
    return false;
}

// Every child of a directory named "srlaunch" anywhere under /sys/fs/cgroup: a container's
// cgroup. `busy` when a process is in it.
inline void find_container_cgroups(const fs::path& dir, int depth, std::vector<std::pair<std::string, bool>>& out) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
        if (it->path().filename() == "srlaunch") {
            std::error_code ec2;
            for (fs::directory_iterator c(it->path(), ec2), cend; !ec2 && c != cend; c.increment(ec2))
                if (c->is_directory(ec2)) out.emplace_back(c->path().string(), has_processes(c->path()));
        } else if (depth < 12) {
            find_container_cgroups(it->path(), depth + 1, out);
        }
    }
}

inline bool other_srlaunch_running() {
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename();
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        if (trim(read_file(it->path() / "comm")) == "srlaunch") return true;
    }
    return false;
}

inline std::set<std::string> container_cgroups_now() {
    std::vector<std::pair<std::string, bool>> found;
    find_container_cgroups("/sys/fs/cgroup", 0, found);
    // Under `ctest -j` other tests' containers may be running: their cgroups hold processes.
    // When no other srlaunch runs, any container cgroup at all is a leftover.
    bool others = !found.empty() && other_srlaunch_running();
    std::set<std::string> left;
    for (auto& [path, busy] : found)
        if (!busy || !others) left.insert(path);
    return left;
}

// Container cgroups left behind: present now and still present after a grace period (a
// parallel test's container may be between mkdir and attach, or between exit and rmdir).
inline std::set<std::string> leftover_cgroups() {
    auto left = container_cgroups_now();
    auto deadline = Clock::now() + 3s;
    while (!left.empty() && Clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        auto now = container_cgroups_now();
        std::set<std::string> still;
        std::set_intersection(left.begin(), left.end(), now.begin(), now.end(), std::inserter(still, still.end()));
        left = still;
    }
    return left;
}

// Called at the end of every test: no directory under any <hierarchy>/.../srlaunch/ remains.
inline void check_no_cgroups_left() {
    auto left = leftover_cgroups();
    std::string list;
    for (const auto& p : left) list += "  " + p + "\n";
    INFO("container cgroups left behind:\n" << list);
    CHECK(left.empty());
}

// The container's cgroup in the hierarchy of `controller`: <own>/srlaunch/<id>, found by the
// id's first 12 hex digits (the default hostname). "" when absent.
inline std::string container_cgroup(const std::string& controller, const std::string& id_prefix) {
    std::string parent = own_cgroup_dir(controller);
    if (parent.empty() || id_prefix.empty()) return "";
    std::error_code ec;
    for (fs::directory_iterator it(parent + "/srlaunch", ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().string().rfind(id_prefix, 0) == 0) return it->path();
    return "";
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
inline pid_t container_init(pid_t srlaunch, std::chrono::milliseconds timeout = 10s) {
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

// Sets $ns to the container cgroup's CPU time in ns, without forking (cgroup v1's
// cpuacct.usage; cgroup v2's cpu.stat usage_usec). The container sees its own cgroup as the
// root of /sys/fs/cgroup/<hierarchy> through its cgroup namespace.
inline const std::string kCpuNs = R"sh(
cpu_ns() {
  if [ -e /sys/fs/cgroup/cpu.stat ]; then
    while read k v; do [ "$k" = usage_usec ] && ns=$((v * 1000)); done < /sys/fs/cgroup/cpu.stat
  else
    set -- /sys/fs/cgroup/*/cpuacct.usage; read ns < "$1"
  fi
}
)sh";

// Waits for /sync/go (at most ~20 s), then spins for 5 s. Prints the cgroup's CPU time and
// the busy loop's own utime+stime (clock ticks) over the 3 s from 1 s after its start: the
// other container reaches /sync/go a little earlier or later, but within the second, so
// both windows are wholly contended.
inline const std::string kShareScript = kCpuNs + R"sh(
: > /sync/ready-$NAME
n=0
while [ ! -e /sync/go ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n + 1)); done
while :; do :; done &
p=$!
ticks() { read -r stat < /proc/$p/stat; set -- $stat; t=$((${14} + ${15})); }
sleep 1
cpu_ns; u0=$ns; ticks; t0=$t
sleep 3
cpu_ns; u1=$ns; ticks; t1=$t
sleep 1
kill $p
echo "cpu_ns=$((u1 - u0)) loop_ticks=$((t1 - t0))"
)sh";

// A busy loop for 3 s; prints wall time (from /proc/uptime) and the cgroup's CPU time.
inline const std::string kQuotaScript = kCpuNs + R"sh(
while :; do :; done &
p=$!
sleep 0.3
read t0 x < /proc/uptime; cpu_ns; u0=$ns
sleep 3
read t1 x < /proc/uptime; cpu_ns; u1=$ns
kill $p
echo "t0=$t0 t1=$t1 cpu_ns=$((u1 - u0))"
)sh";

// Runs dd with the given operands and prints its status and the wall time around it.
inline std::string timed_dd(const std::string& operands) {
    return "read t0 x < /proc/uptime\ndd " + operands +
           "\nrc=$?\nread t1 x < /proc/uptime\necho \"rc=$rc t0=$t0 t1=$t1\"\n";
}


}  // namespace cgtest
