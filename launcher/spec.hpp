// ContainerSpec: everything a container is, as one plain struct shaped like the OCI runtime
// config. `run` fills it from flags; a later OCI CLI fills it from config.json. Nothing but
// cli.cpp reads flags; everything after reads this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher/idmap.hpp"

namespace srl {

struct Mount {
    enum class Kind { Bind, Tmpfs };
    Kind kind = Kind::Bind;
    std::string source;       // host path for Bind
    std::string destination;  // absolute path inside the container
    bool read_only = false;
};

// --net: none (own namespace, lo only), host, bridge (veth on a host bridge, launcher/network.hpp),
// container:ID|NAME (another container's namespace).
enum class NetMode { None, Host, Bridge, Container };

// -p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp], parsed and served by launcher/port_proxy.hpp.
struct PortMapping {
    enum class Proto { Tcp, Udp };
    std::string host_ip = "127.0.0.1";  // a dotted quad, validated
    uint16_t host_port = 0, container_port = 0;
    Proto proto = Proto::Tcp;
    bool operator==(const PortMapping&) const = default;
};

// A device node given to the container (--device), and a block device limit.
struct Device {
    std::string host_path, container_path;
    char type = 'c';            // 'c' or 'b'
    uint32_t major = 0, minor = 0;
    uint32_t mode = 0;          // permission bits of the host node
    std::string access = "rwm"; // devices cgroup access
};
struct DeviceLimit {
    std::string path;
    uint32_t major = 0, minor = 0;
    uint64_t value = 0;         // bytes/s or ops/s
};
// One devices-cgroup rule, as OCI's linux.resources.devices[]: applied in order, the last
// match decides; an 'a' rule with both numbers wild resets everything (deny-all or
// allow-all). v1 writes them to devices.deny/allow, v2 compiles them to a BPF program.
struct DeviceRule {
    bool allow = true;
    char type = 'a';            // 'a' (all), 'c' or 'b'
    int64_t major = -1, minor = -1;  // -1: any ('*')
    std::string access = "rwm";
};

// cgroup limits, in docker's units already converted (bytes, shares, quota).
struct Resources {
    std::optional<int64_t> memory;        // bytes
    std::optional<int64_t> memory_swap;   // bytes of memory+swap; -1 unlimited
    std::optional<uint64_t> cpu_shares;   // v1 shares (2..262144)
    std::optional<int64_t> cpu_quota_us;  // per cpu_period_us
    int64_t cpu_period_us = 100'000;
    std::string cpuset_cpus, cpuset_mems;
    std::optional<int64_t> pids_limit;    // -1 unlimited
    std::optional<uint16_t> blkio_weight;
    std::vector<DeviceLimit> read_bps, write_bps, read_iops, write_iops;
    // Device access; empty: none written (the parent's rules apply). Not a limit: any()
    // ignores it.
    std::vector<DeviceRule> device_rules;
    bool any() const {
        return memory || memory_swap || cpu_shares || cpu_quota_us || !cpuset_cpus.empty() ||
               !cpuset_mems.empty() || pids_limit || blkio_weight || !read_bps.empty() ||
               !write_bps.empty() || !read_iops.empty() || !write_iops.empty();
    }
};

struct ContainerSpec {
    struct Process {
        std::vector<std::string> args;
        std::vector<std::string> env;  // KEY=VALUE, final
        std::string cwd = "/";
        uint32_t uid = 0, gid = 0;
        std::vector<uint32_t> additional_gids;
        bool terminal = false;         // -t: the caller's terminal (a pty of its own: issue 7)
        bool open_stdin = false;       // -i: stdin stays attached; otherwise /dev/null, as docker
        uint64_t capabilities = 0;     // bit N = capability N (bounding, permitted, effective)
        bool no_new_privileges = false;
    } process;

    std::string id;                    // 64 hex chars
    std::string name;
    std::string image;                 // NAME:TAG, or empty with --rootfs
    std::filesystem::path image_rootfs;  // lower layer (or the --rootfs directory itself)
    // More read-only layers stacked over image_rootfs, top-most first: the layers a `build` has
    // made so far (overlayfs-form diff directories), under the step's own writable layer.
    std::vector<std::filesystem::path> extra_lowers;
    // The writable layer will be read as a layer diff (`build`): overlayfs must not write
    // metadata-only entries (redirect_dir, metacopy), so both are turned off for this mount.
    bool diff_upper = false;
    bool rootfs_is_plain_dir = false;    // --rootfs: used directly, no overlay
    bool read_only_root = false;
    std::string hostname;
    std::vector<Mount> mounts;

    // Namespaces beyond the always-new pid, uts, ipc, mnt, cgroup.
    NetMode net = NetMode::None;
    std::string net_container;         // --net container:ID|NAME
    std::vector<PortMapping> ports;    // -p (bridge only)
    bool user_namespace = false;       // set when there are mappings
    std::vector<IdMapping> uid_mappings, gid_mappings;
    // --userns auto: the mappings' host side is a range that launch() takes from the pool
    // once the container's directory records it (until then they start at host id 0).
    bool userns_auto = false;
    bool time_namespace = false;
    int64_t boot_offset_s = 0;         // CLOCK_BOOTTIME/MONOTONIC offset in the time namespace

    bool remove_on_exit = false;       // --rm
    int stop_timeout_s = 10;
    std::vector<std::string> masked_paths, readonly_paths;
    Resources resources;
    std::vector<Device> devices;

    // Security (issue 6).
    bool privileged = false;           // --privileged: all capabilities, no seccomp, no masked paths, all devices
    std::string seccomp_bpf;           // the filter srinit installs (raw struct sock_filter[]); empty: unconfined
    bool rootless = false;             // started by a user other than root: user namespace via newuidmap
};

// Docker's default masked and read-only /proc and /sys paths, for `run` and `build` alike.
const std::vector<std::string>& default_masked_paths();
const std::vector<std::string>& default_readonly_paths();

// The spec as JSON (OCI-config-like), kept in the container's dir for inspection.
nlohmann::json spec_to_json(const ContainerSpec& spec);
// What later commands (`exec`, `rm`) read back of it: id, process (args, env, cwd, user,
// capabilities, no_new_privileges), rootless, user namespace and its maps. Throws Error.
ContainerSpec spec_from_json(const nlohmann::json& j);

}  // namespace srl
