// Which devices a container may use: the devices-cgroup rules (docker's default list, the
// --device nodes, or everything with --privileged) and, for --privileged, the host's own
// device nodes to recreate in the container's /dev.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace srl {

// Deny everything, then allow what any container needs, as docker does: mknod of any node
// (using one is what counts), null, zero, full, random, urandom, tty, console, ptmx, the
// container's own ptys (136:*) and /dev/net/tun.
std::vector<DeviceRule> default_device_rules();

// The rules for a container: allow-all when privileged; otherwise the defaults and an allow
// rule for each --device node with its access.
std::vector<DeviceRule> device_rules(const std::vector<Device>& devices, bool privileged);

// Every character and block device under `dev` (subdirectories included, symlinks not), as
// Docker's --privileged gives them: the container's own pts, shm, mqueue and the host's
// console and ptmx are skipped, since the container gets its own.
std::vector<Device> host_devices(const std::filesystem::path& dev = "/dev");

// "c 1:3 rwm", "a *:* rwm": a rule as v1's devices.allow/devices.deny take it.
std::string device_rule_text(const DeviceRule& rule);

// "a *:* rwm": a rule about every access to every device, which replaces all before it
// (deny-all or allow-all).
bool resets_all(const DeviceRule& rule);

}  // namespace srl
