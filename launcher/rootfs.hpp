// The container's root filesystem: built on the host side as a detached mount (overlay over
// the image, or a bind of a --rootfs directory), then attached and filled in by the child
// inside its own mount namespace, and finally made the root with pivot_root.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "launcher/fd.hpp"
#include "launcher/spec.hpp"

namespace srl {

// Where a volume, tmpfs or device may go (`path` as validate.hpp's container_path returns it,
// absolute and normalised): not on "/", nor on or under /proc or /sys, which hold the
// kernel's own file systems (a bind over /proc would replace procfs, hiding the masked and
// read-only paths under a tree of the host's choosing). As runc, a file of /proc that
// LXCFS-style tools replace (/proc/meminfo, /proc/cpuinfo, ...) may be covered. /dev and
// below are allowed, as with docker (device access is the devices cgroup's to decide).
// Throws a one-line Error naming `flag`.
void check_mount_destination(const std::string& path, const char* flag);

// Host side. Returns an fd of a detached mount (fsmount/open_tree) holding the root.
// With a user namespace (userns_fd valid) the image layer is an idmapped mount, so files
// the image owns as 0 are owned by the container's root, and the writable layer is owned
// by the mapped root too.
Fd make_rootfs_mount(const ContainerSpec& spec, const std::filesystem::path& container_dir,
                     const Fd& userns_fd);

// Host paths the container's mounts need, opened (O_PATH) by the child while it still has
// the launcher's credentials: once it is the container's root, an unmapped id on the host,
// it may not be allowed to walk the store's directories or a volume's parents.
struct HostPaths {
    Fd mountpoint;                  // the container dir's empty "merged"
    Fd hostname, hosts, resolv_conf;  // what the container sees as /etc/<name>
    std::vector<Fd> mount_sources;  // for each spec.mounts entry (unused for tmpfs)
    static HostPaths open(const ContainerSpec& spec, const std::filesystem::path& container_dir);
};

// Child side, in the new namespaces: attaches `rootfs` on the mount point, mounts /proc,
// /sys, /sys/fs/cgroup, /dev (+pts, shm, mqueue), volumes, tmpfs, the identity files, masks
// and read-only paths; then pivots into it.
void enter_rootfs(const ContainerSpec& spec, Fd rootfs, const HostPaths& host);

}  // namespace srl
