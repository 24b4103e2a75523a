// `run`'s flags as parsed (cli.cpp declares them to CLI11) and their conversion into a
// ContainerSpec, every value checked on the way. A bad flag is a one-line Error before
// anything of the container exists: no image pulled, no directory, name, id range or cgroup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "images/store.hpp"
#include "launcher/image_commands.hpp"
#include "launcher/spec.hpp"

namespace srl {

struct ResourceFlags {
    std::string memory, memory_swap, cpus, cpuset_cpus, cpuset_mems;
    std::optional<uint64_t> cpu_shares;
    std::optional<int64_t> pids_limit;
    std::optional<uint16_t> blkio_weight;
    std::vector<std::string> read_bps, write_bps, read_iops, write_iops, devices;
};

struct RunFlags {
    ResourceFlags res;
    std::vector<std::string> cap_add, cap_drop, security_opts;
    std::string name, hostname, workdir, user, userns = "host", net = "none", rootfs, cidfile;
    std::string pull_policy = "missing";
    PullOptions pull;
    bool rm = false, detach = false, read_only = false, timens = false, interactive = false, tty = false, privileged = false;
    std::vector<std::string> env, env_files, volumes, tmpfs, uidmaps, gidmaps, publish;
    int stop_timeout = 10;
    int64_t boot_offset = 0;
};

// `rest`: what CLI11 left after the flags, IMAGE [CMD [ARG...]] (or CMD... with --rootfs).
ContainerSpec build_spec(const RunFlags& flags, std::vector<std::string> rest, const StorePaths& paths);

// The parts of build_spec that need no image or store, for the unit tests.
Mount parse_volume(const std::string& text);
Resources build_resources(const ResourceFlags& flags);

}  // namespace srl
