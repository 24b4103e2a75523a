// Checks of `run`'s values that are neither units (units.hpp), id maps (idmap.hpp), ports
// (port_proxy.hpp) nor mount destinations (rootfs.hpp): container names, hostnames, paths
// inside the container, user and group ids. Each throws a one-line Error that names the flag
// and what is wrong, echoing the value shortened (error.hpp's shown()); `run` calls them
// before anything of the container exists.
#pragma once

#include <cstdint>
#include <string>

namespace srl {

constexpr size_t kMaxNameLength = 128;

// --name: as docker, [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most kMaxNameLength characters.
void check_container_name(const std::string& name);

// --hostname: an RFC 1123 host name (labels of letters, digits and '-', 1 to 63 characters,
// neither starting nor ending with '-', joined by '.'), at most 64 characters in all (the
// kernel's HOST_NAME_MAX).
void check_hostname(const std::string& name);

// A path inside the container given by `flag` (-v, --tmpfs, --device, -w): absolute and
// without ".." components (refused rather than resolved: "/lib/../../x" is an error, not
// "/x"); returned lexically normalised ("//a/./b/" -> "/a/b").
std::string container_path(const std::string& path, const char* flag);

// A user or group id as the kernel takes it: 0 to 4294967294 ((uid_t)-1 means "unchanged"
// to setresuid and chown, so it can be nobody's id). `what` is "uid" or "gid", `from` where it
// came from (the -u value, or the image's passwd entry).
uint32_t checked_id(uint64_t id, const char* what, const std::string& from);

}  // namespace srl
