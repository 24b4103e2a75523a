// Capability sets by name, for --cap-add/--cap-drop (names through libcap, so a name the
// kernel headers know is accepted with or without CAP_, any case; unknown names are errors).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace srl {

// Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID,
// SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
uint64_t default_capabilities();
// Every capability this kernel has that srlaunch's bounding set holds (ALL, --privileged).
uint64_t all_capabilities();
// Applies docker's rules: drops first, then adds; "ALL" in either list.
uint64_t resolve_capabilities(const std::vector<std::string>& add, const std::vector<std::string>& drop);
int capability_number(const std::string& name);  // throws Error for unknown names

}  // namespace srl
