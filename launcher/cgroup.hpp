// A container's cgroups: created at <the launcher's own cgroup>/srlaunch/<id> in every v1
// hierarchy used, at <its parent>/srlaunch/<id> in cgroup v2 (see cgroup_v2_parent), limits
// applied before the container runs, removed when it is gone.
// One interface, two implementations: CgroupV1 (cgroup_v1.cpp) for v1 and hybrid hosts,
// CgroupV2 (cgroup_v2.cpp) for pure cgroup v2 hosts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace srl {

struct CgroupStats {
    uint64_t memory_current = 0, memory_peak = 0, memory_limit = 0;  // limit 0: none
    uint64_t cpu_usage_ns = 0;
    uint64_t io_read_bytes = 0, io_write_bytes = 0, io_read_ops = 0, io_write_ops = 0;
    uint64_t pids_current = 0;
};

class Cgroup {
public:
    virtual ~Cgroup() = default;  // implementations remove their directories
    // Moves a process (the container's first, before it execs anything) into the cgroups.
    virtual void attach(pid_t pid) = 0;
    // Whether the kernel's OOM killer killed a process of this cgroup.
    virtual bool oom_killed() const = 0;
    virtual CgroupStats stats() const = 0;
    virtual std::vector<std::filesystem::path> paths() const = 0;
};

// The counters of a container's cgroup directories, whichever version holds them: what the
// supervisor reads through its Cgroup and `srlaunch stats` reads from the recorded paths.
CgroupStats read_cgroup_stats(const std::vector<std::filesystem::path>& dirs);

// The memory+swap limit in bytes as docker resolves it, on v1 and v2 alike: --memory-swap when
// given (-1: unlimited swap), else twice --memory (as much swap as memory); nullopt without
// --memory. `run` keeps --memory within INT64_MAX / 2, so the double fits.
std::optional<int64_t> memory_and_swap(const Resources& res);

enum class CgroupLayout { V1, V2, Hybrid };
CgroupLayout detect_cgroup_layout(const std::filesystem::path& mount = "/sys/fs/cgroup");

// Told the container's cgroup directories before any of them is made, so the caller can
// record them (state.json): a start killed halfway leaves nothing that `rm` cannot find.
using RecordCgroups = std::function<void(const std::vector<std::filesystem::path>&)>;

// Creates the container's cgroups for this host's layout and applies the limits and the
// device rules (res.device_rules). On any error nothing is left behind.
std::unique_ptr<Cgroup> create_cgroup(const std::string& id, const Resources& res, const RecordCgroups& record = {});

// Where a launcher in the cgroup v2 cgroup `own` (as in /proc/self/cgroup) puts its containers'
// srlaunch/ directory: the root when it runs there, else the parent of its own cgroup.
std::filesystem::path cgroup_v2_parent(const std::filesystem::path& own);

// The implementations; v2 with the filesystem root and the cgroup to create srlaunch/<id> under
// given, so it can be tested against a plain directory tree shaped like cgroupfs.
std::unique_ptr<Cgroup> create_cgroup_v1(const std::string& id, const Resources& res,
                                         const RecordCgroups& record = {});
std::unique_ptr<Cgroup> create_cgroup_v2(const std::filesystem::path& mount,
                                         const std::filesystem::path& parent, const std::string& id,
                                         const Resources& res, const RecordCgroups& record = {});

// Shared file helpers for both implementations.
namespace cgroupfs {
void write(const std::filesystem::path& file, const std::string& value);
std::string read(const std::filesystem::path& file);  // "" when missing
uint64_t read_u64(const std::filesystem::path& file);  // 0 when missing or "max"
// The value of `key` in a flat-keyed file ("oom_kill 3" lines), 0 when absent.
uint64_t keyed(const std::filesystem::path& file, const std::string& key);
// mkdir -p, then the leaf; the leaf must be new (a container id is never reused).
void make_dir(const std::filesystem::path& dir);
// rmdir the container dir (retrying while the kernel still counts exiting tasks), then the
// shared srlaunch parent if nothing else is left in it.
void remove_dir(const std::filesystem::path& dir) noexcept;
}  // namespace cgroupfs

}  // namespace srl
