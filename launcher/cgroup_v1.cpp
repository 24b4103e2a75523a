// cgroup v1: one hierarchy per controller (or set of co-mounted controllers), each with its
// own files. Also what srlaunch uses on hybrid hosts.
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "launcher/cgroup.hpp"
#include "launcher/devices.hpp"
#include "launcher/error.hpp"
#include "launcher/units.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kControllers = {"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "devices", "freezer"};

// controller -> directory of the container's cgroup in that controller's hierarchy
std::map<std::string, fs::path> container_dirs(const std::string& id) {
    std::map<std::string, fs::path> mounts;  // controller -> mount point
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream tail(line.substr(dash + 3)), head(line.substr(0, dash));
        std::string type, source, opts, f, mountpoint;
        tail >> type >> source >> opts;
        if (type != "cgroup") continue;
        for (int i = 0; i < 5 && head >> f; ++i) mountpoint = f;  // the 5th field
        std::istringstream o(opts);
        for (std::string opt; std::getline(o, opt, ',');)
            if (kControllers.count(opt)) mounts[opt] = mountpoint;
    }
    std::map<std::string, fs::path> dirs;
    std::ifstream self("/proc/self/cgroup");
    for (std::string line; std::getline(self, line);) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        std::istringstream ctrls(line.substr(a + 1, b - a - 1));
        fs::path own = fs::path(line.substr(b + 1)).relative_path();
        for (std::string c; std::getline(ctrls, c, ',');)
            if (mounts.count(c)) dirs[c] = mounts[c] / own / "srlaunch" / id;
    }
    for (const char* needed : {"memory", "cpu", "cpuacct", "pids", "devices"})
        if (!dirs.count(needed)) throw Error(std::string("cgroup v1 controller \"") + needed + "\" is not mounted");
    return dirs;
}

std::string dev(const DeviceLimit& d) { return std::to_string(d.major) + ":" + std::to_string(d.minor); }

class CgroupV1 final : public Cgroup {
public:
    CgroupV1(const std::string& id, const Resources& res, const RecordCgroups& record)
        : by_controller_(container_dirs(id)) {
        for (const auto& [ctrl, dir] : by_controller_)
            if (std::find(dirs_.begin(), dirs_.end(), dir) == dirs_.end()) dirs_.push_back(dir);
        if (record) record(dirs_);
        try {
            for (const auto& dir : dirs_) {
                if (by_controller_.count("cpuset") && dir == by_controller_.at("cpuset"))
                    prepare_cpuset(dir.parent_path());
                cgroupfs::make_dir(dir);
                created_.push_back(dir);
            }
            apply(res);
        } catch (...) {
            remove();
            throw;
        }
    }
    ~CgroupV1() override { remove(); }

    void attach(pid_t pid) override {
        for (const auto& dir : dirs_) cgroupfs::write(dir / "cgroup.procs", std::to_string(pid));
    }
    bool oom_killed() const override { return cgroupfs::keyed(at("memory") / "memory.oom_control", "oom_kill") > 0; }
    CgroupStats stats() const override { return read_cgroup_stats(dirs_); }
    std::vector<fs::path> paths() const override { return dirs_; }

private:
    const fs::path& at(const std::string& ctrl) const {
        auto it = by_controller_.find(ctrl);
        if (it == by_controller_.end()) throw Error("cgroup v1 controller \"" + ctrl + "\" is not mounted");
        return it->second;
    }

    // A new v1 cpuset accepts no task until cpus and mems are set: inherit them down from
    // the nearest ancestor, for the shared srlaunch dir as for the container's.
    static void inherit_cpuset(const fs::path& dir) {
        for (const char* file : {"cpuset.cpus", "cpuset.mems"})
            if (cgroupfs::read(dir / file).find_first_not_of(" \n") == std::string::npos)
                cgroupfs::write(dir / file, cgroupfs::read(dir.parent_path() / file));
    }
    static void prepare_cpuset(const fs::path& srlaunch_dir) {
        std::error_code ec;
        if (fs::create_directory(srlaunch_dir, ec) || fs::exists(srlaunch_dir)) inherit_cpuset(srlaunch_dir);
    }

    void apply(const Resources& r) {
        fs::path mem = at("memory"), cpu = at("cpu");
        if (r.memory) cgroupfs::write(mem / "memory.limit_in_bytes", std::to_string(*r.memory));
        bool has_memsw = fs::exists(mem / "memory.memsw.limit_in_bytes");
        if (r.memory_swap && !has_memsw)
            throw Error("--memory-swap: this kernel does not account swap (no memory.memsw.limit_in_bytes)");
        // v1's memsw counts memory and swap together, as docker's --memory-swap does.
        if (auto memsw = memory_and_swap(r); memsw && has_memsw)
            cgroupfs::write(mem / "memory.memsw.limit_in_bytes", std::to_string(*memsw));
        if (r.cpu_shares) cgroupfs::write(cpu / "cpu.shares", std::to_string(*r.cpu_shares));
        if (r.cpu_quota_us) {
            cgroupfs::write(cpu / "cpu.cfs_period_us", std::to_string(r.cpu_period_us));
            cgroupfs::write(cpu / "cpu.cfs_quota_us", std::to_string(*r.cpu_quota_us));
        }
        if (by_controller_.count("cpuset")) {
            fs::path cs = at("cpuset");
            auto set = [&](const char* file, const std::string& value, const char* flag) {
                if (value.empty()) return cgroupfs::write(cs / file, cgroupfs::read(cs.parent_path() / file));
                try {
                    cgroupfs::write(cs / file, value);
                } catch (const Error&) {
                    std::string allowed = cgroupfs::read(cs.parent_path() / file);
                    allowed.erase(allowed.find_last_not_of('\n') + 1);
                    throw Error(std::string(flag) + " " + value + " is not within the allowed set " + allowed);
                }
            };
            set("cpuset.cpus", r.cpuset_cpus, "--cpuset-cpus");
            set("cpuset.mems", r.cpuset_mems, "--cpuset-mems");
        } else if (!r.cpuset_cpus.empty() || !r.cpuset_mems.empty()) {
            throw Error("--cpuset-cpus/--cpuset-mems: the cpuset controller is not mounted");
        }
        if (r.pids_limit) cgroupfs::write(at("pids") / "pids.max", *r.pids_limit < 0 ? "max" : std::to_string(*r.pids_limit));
        if (r.blkio_weight) {
            if (!by_controller_.count("blkio") || !fs::exists(at("blkio") / "blkio.weight"))
                throw Error("--blkio-weight: this kernel has no blkio.weight (v1 proportional I/O needs CFQ/BFQ)");
            cgroupfs::write(at("blkio") / "blkio.weight", std::to_string(*r.blkio_weight));
        }
        const std::pair<const std::vector<DeviceLimit>*, const char*> throttles[] = {
            {&r.read_bps, "blkio.throttle.read_bps_device"},
            {&r.write_bps, "blkio.throttle.write_bps_device"},
            {&r.read_iops, "blkio.throttle.read_iops_device"},
            {&r.write_iops, "blkio.throttle.write_iops_device"}};
        for (const auto& [limits, file] : throttles)
            for (const auto& d : *limits) cgroupfs::write(at("blkio") / file, dev(d) + " " + std::to_string(d.value));

        // Devices, in order (launcher/devices.cpp): normally deny everything, then docker's
        // list and the --device nodes; "a" alone with --privileged.
        for (DeviceRule rule : r.device_rules) {
            fs::path file = at("devices") / (rule.allow ? "devices.allow" : "devices.deny");
            if (rule.type != 'a' || resets_all(rule)) {
                cgroupfs::write(file, device_rule_text(rule));
                continue;
            }
            // The kernel reads any "a" line as everything: a narrower one is two rules.
            for (char type : {'c', 'b'}) {
                rule.type = type;
                cgroupfs::write(file, device_rule_text(rule));
            }
        }
    }

    void remove() noexcept {
        for (auto it = created_.rbegin(); it != created_.rend(); ++it) cgroupfs::remove_dir(*it);
        created_.clear();
    }

    std::map<std::string, fs::path> by_controller_;
    std::vector<fs::path> dirs_;     // distinct hierarchies' dirs
    std::vector<fs::path> created_;  // what to remove
};

}  // namespace

std::unique_ptr<Cgroup> create_cgroup_v1(const std::string& id, const Resources& res, const RecordCgroups& record) {
    return std::make_unique<CgroupV1>(id, res, record);
}

}  // namespace srl
