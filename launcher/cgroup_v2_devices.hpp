// cgroup v2 device access: v2 has no devices.allow; a BPF_PROG_TYPE_CGROUP_DEVICE program
// attached to the cgroup decides every open and mknod of a device node (1 allows, 0 is
// EPERM), as crun, runc and systemd do. Built here from the container's DeviceRules, loaded
// and attached with the raw bpf() system call (no libbpf).
//
// The program lives as long as it is attached: the fd from loading is closed once it is
// attached, and removing the cgroup detaches and frees it.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "launcher/fd.hpp"
#include "launcher/spec.hpp"

namespace srl {

// The instructions for `rules` (last match wins, as in OCI). nullopt when they allow every
// device, where no program is needed (--privileged, or no rules at all).
std::optional<std::vector<bpf_insn>> compile_device_program(const std::vector<DeviceRule>& rules);

// BPF_PROG_LOAD; on failure the error carries the verifier's log.
Fd load_device_program(const std::vector<bpf_insn>& insns);

// BPF_PROG_ATTACH to a cgroup2 directory, with BPF_F_ALLOW_MULTI: programs of ancestors
// (systemd's, say) keep applying, and every one of them must allow an access.
void attach_device_program(const Fd& cgroup_dir, const Fd& program);

// All three for a cgroup2 directory; nothing when no program is needed.
void apply_device_rules(const std::filesystem::path& cgroup_dir, const std::vector<DeviceRule>& rules);

// The ids of the device programs attached to a cgroup2 directory (BPF_PROG_QUERY).
std::vector<uint32_t> attached_device_programs(const std::filesystem::path& cgroup_dir);

}  // namespace srl
