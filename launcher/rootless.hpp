// Rootless mode: `srlaunch run` started by a normal user (spec.rootless, geteuid() != 0).
//
// What differs from a run as root, and where each piece lives:
//   - ID maps: the caller becomes the container's root and the caller's /etc/subuid and
//     /etc/subgid ranges become its ids 1..N, written by the setuid helpers newuidmap and
//     newgidmap (Debian's `uidmap`), since the kernel lets an unprivileged process write only
//     a map of its own id. Without ranges (or helpers) the container gets that single id.
//   - The root filesystem: the overlay is mounted by the container's first process inside its
//     new user and mount namespaces (unprivileged overlayfs, kernel >= 5.11, `userxattr`), not
//     by the launcher on the host side, which has no CAP_SYS_ADMIN there; no idmapped layer is
//     needed, as the image files belong to the caller, who is the container's root.
//   - cgroups: none without resource flags; with them, only in a cgroup v2 subtree delegated
//     to the caller, and otherwise a one-line error before anything is created.
//   - The store lives under $XDG_DATA_HOME/srlaunch (StorePaths::resolve), created 0700; what
//     a container wrote as its other users is removed from inside its user namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/cgroup.hpp"
#include "launcher/fd.hpp"
#include "launcher/idmap.hpp"
#include "launcher/spec.hpp"

namespace srl {

// One line of /etc/subuid or /etc/subgid that belongs to the user: START:COUNT.
struct SubordinateRange {
    uint32_t start = 0, count = 0;
    bool operator==(const SubordinateRange&) const = default;
};

// The user's ranges in a subuid/subgid file (shadow's format, NAME_OR_ID:START:COUNT per line;
// lines naming the user by name or by number both count, in file order).
std::vector<SubordinateRange> parse_subordinate_ids(const std::string& text, const std::string& user, uint32_t id);

// The default rootless map: `own` -> 0, then each range in turn -> 1, 2, ... (at most the
// kernel's 340 lines).
std::vector<IdMapping> rootless_id_map(uint32_t own, const std::vector<SubordinateRange>& ranges);

// --uidmap/--gidmap given by a normal user are honoured only inside what newuidmap would
// accept, the user's own id (count 1) and the subordinate ranges, and with container id 0
// the user's own id (the image's files are the user's). Throws naming the flag.
void check_rootless_id_map(const std::vector<IdMapping>& maps, uint32_t own,
                           const std::vector<SubordinateRange>& ranges, const char* flag, const char* file);

// Fills spec.uid_mappings/gid_mappings (and user_namespace) for a rootless run from the
// caller's ids, /etc/subuid and /etc/subgid, or from --uidmap/--gidmap (already parsed;
// empty when not given). Prints the single-id notice when that is all there is.
void set_rootless_id_maps(ContainerSpec& spec, const std::vector<IdMapping>& uidmap_flags,
                          const std::vector<IdMapping>& gidmap_flags);

// Whether the container's gid map is the caller's own gid alone, which the kernel (and
// newgidmap) allow only with setgroups(2) denied in the namespace: srinit must not call it.
bool rootless_setgroups_denied(const ContainerSpec& spec);

// Parent side: writes the ID maps of `pid` (just cloned into its user namespace), directly
// for a map of the caller's own id, else through newuidmap/newgidmap.
void write_rootless_id_maps(pid_t pid, const ContainerSpec& spec);

// Child side, inside the new user and mount namespaces: the container's root as a detached
// mount, an overlay (lower the image, upper and work in container_dir) or a clone of the
// --rootfs directory.
Fd make_rootless_rootfs(const ContainerSpec& spec, const std::filesystem::path& container_dir);

// Child side, last before exec: a time namespace with CLOCK_MONOTONIC and CLOCK_BOOTTIME
// moved by `seconds`, which the exec enters (the launcher cannot unshare one on the host
// side without CAP_SYS_ADMIN there).
void enter_time_namespace_at_exec(int64_t seconds);

// cgroups. `Host` is what decides: the layout, the caller's own cgroup (v2) and who it is.
struct RootlessCgroupHost {
    CgroupLayout layout = CgroupLayout::V2;
    std::filesystem::path mount = "/sys/fs/cgroup";
    std::filesystem::path own;  // "0::" line of /proc/self/cgroup, e.g. /user.slice/.../app.slice/x.scope
    uid_t uid = 0;
    std::string user;           // for messages
    static RootlessCgroupHost current();
};
// The cgroup (relative to host.mount) under which the container's own cgroup is made, or
// nullopt when `res` sets no limit and the run needs none. Throws the one-line reason when
// limits were asked for and this host does not delegate a usable cgroup to the user.
std::optional<std::filesystem::path> rootless_cgroup_parent(const Resources& res, const RootlessCgroupHost& host);
// The container's cgroup for a rootless run: none (an object that does nothing) or one in
// the delegated v2 subtree.
std::unique_ptr<Cgroup> create_rootless_cgroup(const ContainerSpec& spec, const RecordCgroups& record = {});

// The store root, created 0700 with any missing parents (as the XDG spec asks of
// $XDG_DATA_HOME): images and containers of one user are no one else's business.
void make_private_store(const std::filesystem::path& root);

// Removes `dir` from inside the user namespace `userns`, where the caller is root over
// every id of the container: files the container made as its other users belong to
// subordinate ids on the host, which the caller cannot delete there. Falls back to a plain
// removal; never throws.
void remove_in_user_namespace(const Fd& userns, const std::filesystem::path& dir) noexcept;

// A new user namespace with the container's maps, for `rm` of a rootless container whose
// own namespace is gone: held by the returned fd.
Fd user_namespace_like(const ContainerSpec& spec);

}  // namespace srl
