// cgroup v2: one tree; controllers must be enabled in cgroup.subtree_control of every
// ancestor below the one that has them. Device access is a BPF program in v2
// (cgroup_v2_devices.cpp).
#include <sstream>

#include "launcher/cgroup.hpp"
#include "launcher/cgroup_v2_devices.hpp"
#include "launcher/error.hpp"
#include "launcher/units.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

std::string dev(const DeviceLimit& d) { return std::to_string(d.major) + ":" + std::to_string(d.minor); }

class CgroupV2 final : public Cgroup {
public:
    CgroupV2(const fs::path& mount, const fs::path& parent, const std::string& id, const Resources& res,
             const RecordCgroups& record)
        : dir_(mount / parent.relative_path() / "srlaunch" / id) {
        if (record) record({dir_});
        fs::path parent_dir = mount / parent.relative_path();
        std::string wanted = controllers(cgroupfs::read(parent_dir / "cgroup.controllers"));
        if (!wanted.empty()) {
            // v2 lets a cgroup with processes enable controllers only at the root ("no
            // internal processes"): `parent` is the root or a cgroup without processes
            // (cgroup_v2_parent), and where it is not the kernel says so (EBUSY).
            enable(parent_dir, wanted);
        }
        std::error_code ec;
        fs::create_directory(dir_.parent_path(), ec);
        if (!wanted.empty()) enable(dir_.parent_path(), wanted);
        cgroupfs::make_dir(dir_);
        try {
            apply(res);
            // Before any process joins: the container never runs without it. Removing the
            // directory detaches and frees it.
            apply_device_rules(dir_, res.device_rules);
        } catch (...) {
            cgroupfs::remove_dir(dir_);
            throw;
        }
    }
    ~CgroupV2() override { cgroupfs::remove_dir(dir_); }

    void attach(pid_t pid) override { cgroupfs::write(dir_ / "cgroup.procs", std::to_string(pid)); }
    bool oom_killed() const override { return cgroupfs::keyed(dir_ / "memory.events", "oom_kill") > 0; }
    CgroupStats stats() const override { return read_cgroup_stats({dir_}); }
    std::vector<fs::path> paths() const override { return {dir_}; }

private:
    // Every controller the host offers that we use, so stats work whatever the limits.
    static std::string controllers(const std::string& available) {
        std::string out;
        std::istringstream in(available);
        for (std::string c; in >> c;)
            if (c == "cpu" || c == "memory" || c == "io" || c == "pids" || c == "cpuset")
                out += (out.empty() ? "+" : " +") + c;
        return out;
    }
    static void enable(const fs::path& dir, const std::string& wanted) {
        // Skip the write when they are on already: it is refused in a busy cgroup even then.
        std::string current = " " + cgroupfs::read(dir / "cgroup.subtree_control");
        bool all_on = true;
        std::istringstream in(wanted);
        for (std::string c; in >> c;) all_on = all_on && current.find(" " + c.substr(1)) != std::string::npos;
        if (!all_on) cgroupfs::write(dir / "cgroup.subtree_control", wanted);
    }

    void apply(const Resources& r) {
        if (r.memory) cgroupfs::write(dir_ / "memory.max", std::to_string(*r.memory));
        apply_swap(r);
        if (r.cpu_shares) cgroupfs::write(dir_ / "cpu.weight", std::to_string(shares_to_weight(*r.cpu_shares)));
        if (r.cpu_quota_us)
            cgroupfs::write(dir_ / "cpu.max", std::to_string(*r.cpu_quota_us) + " " + std::to_string(r.cpu_period_us));
        if (!r.cpuset_cpus.empty()) cgroupfs::write(dir_ / "cpuset.cpus", r.cpuset_cpus);
        if (!r.cpuset_mems.empty()) cgroupfs::write(dir_ / "cpuset.mems", r.cpuset_mems);
        if (r.pids_limit) cgroupfs::write(dir_ / "pids.max", *r.pids_limit < 0 ? "max" : std::to_string(*r.pids_limit));
        if (r.blkio_weight)
            cgroupfs::write(dir_ / "io.weight", "default " + std::to_string(1 + (*r.blkio_weight - 10) * 9999 / 990));
        // One io.max line per device, all four limits in it.
        std::vector<std::pair<std::string, std::string>> lines;
        auto add = [&](const std::vector<DeviceLimit>& limits, const char* key) {
            for (const auto& d : limits) {
                auto it = std::find_if(lines.begin(), lines.end(), [&](auto& l) { return l.first == dev(d); });
                if (it == lines.end()) it = lines.insert(lines.end(), {dev(d), dev(d)});
                it->second += std::string(" ") + key + "=" + std::to_string(d.value);
            }
        };
        add(r.read_bps, "rbps");
        add(r.write_bps, "wbps");
        add(r.read_iops, "riops");
        add(r.write_iops, "wiops");
        for (const auto& [d, line] : lines) cgroupfs::write(dir_ / "io.max", line);
    }

    // v2's memory.swap.max counts swap alone, docker's memory+swap limit both: swap.max is
    // their difference (as runc converts it), so -m alone allows as much swap as memory, as on
    // v1. The kernel has the file only where it accounts swap (not with swapaccount=0 or
    // cgroup.memory=noswap): look in the shared srlaunch/ dir, a non-root cgroup like ours.
    void apply_swap(const Resources& r) {
        auto total = memory_and_swap(r);
        if (!total) return;
        if (*total >= 0 && *total < r.memory.value_or(0)) throw Error("--memory-swap must be at least --memory");
        if (!fs::exists(dir_.parent_path() / "memory.swap.max")) {
            if (r.memory_swap) throw Error("--memory-swap: this kernel does not account swap (no memory.swap.max)");
            return;
        }
        int64_t swap = *total < 0 ? -1 : *total - r.memory.value_or(0);
        cgroupfs::write(dir_ / "memory.swap.max", swap < 0 ? "max" : std::to_string(swap));
    }

    fs::path dir_;
};

}  // namespace

std::unique_ptr<Cgroup> create_cgroup_v2(const fs::path& mount, const fs::path& parent, const std::string& id,
                                         const Resources& res, const RecordCgroups& record) {
    return std::make_unique<CgroupV2>(mount, parent, id, res, record);
}

}  // namespace srl
