// The file system side of `srlaunch build`: the overlay of a build's layers, COPY and ADD from
// the build context into it, WORKDIR's directories, and the clean-up of what a RUN container's
// mount points left in its writable layer.
//
// COPY, ADD and WORKDIR do not need a container: they write through a detached overlay mount
// (fsmount, never attached anywhere, reached only through its fd) whose upper directory becomes
// the step's layer, so overlayfs itself records replaced and deleted paths as whiteouts exactly
// as it does for RUN. Paths in the image resolve as the container would see them
// (openat2 RESOLVE_IN_ROOT: absolute symlinks and ".." stay inside the image); paths in the
// context resolve inside the context, so neither "../x" nor a symlink can reach the host.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "launcher/fd.hpp"

namespace srl::build {

// overlayfs over `lowers` (top-most first), writable into upper/work when they are given,
// read-only otherwise (then at least two lowers, as overlayfs wants; with one, the caller
// uses that directory itself). redirect_dir and metacopy off: the upper dir is read as a diff.
Fd mount_layers(const std::vector<std::filesystem::path>& lowers, const std::filesystem::path& upper = {},
                const std::filesystem::path& work = {});

struct Owner {
    uint32_t uid = 0, gid = 0;
};

// The directory at `path` (absolute, in the image at root_fd), as an O_PATH fd. With `create`,
// missing directories are made (0755, owned by `owner`), like mkdir -p.
Fd open_dir_in_image(int root_fd, const std::string& path, bool create, Owner owner = {});

// A COPY or ADD source in the build context.
struct Source {
    std::string written;  // as in the Dockerfile, for messages
    std::string rel;      // relative to the context root ("" for the root itself)
    Fd fd;                // O_PATH, resolved inside the context
    bool is_dir = false;
    std::string name;     // the last component (what a file is called in a destination directory)
};

// Resolves the sources of one COPY/ADD (globs expanded, sorted). Throws for a path outside the
// context ("../x"), a missing source, or a glob that matches nothing. `what` is "COPY"/"ADD".
std::vector<Source> resolve_sources(int context_fd, const std::filesystem::path& context,
                                    const std::vector<std::string>& written, const std::string& what);

// sha256 over what a copy of the sources would hold: names, types, permission bits, sizes,
// file contents, link targets (not owners or times, which the copy does not keep), for the
// build cache.
std::string hash_sources(const std::vector<Source>& sources);

struct CopyOptions {
    std::string dest;  // absolute in the image; a trailing '/' means "into this directory"
    Owner owner;       // every copied entry's owner (COPY: root unless --chown)
    std::optional<mode_t> chmod;  // --chmod
    bool extract_archives = false;  // ADD: a source that is a tar (plain, gzip, bzip2, xz, zstd) is unpacked
};

// Copies the sources into the image at root_fd as COPY/ADD do: a directory's contents go into
// dest, a file goes to dest (or into it when dest ends with '/' or is a directory).
void copy_sources(int root_fd, const std::vector<Source>& sources, const CopyOptions& opts);

// Removes from a RUN container's upper directory the empty files and directories that srlaunch
// created as mount points (/proc, /sys, /dev, /etc/hostname, /etc/hosts, /etc/resolv.conf,
// none of which a RUN step can write through its mounts), and /etc itself when it was copied up
// only for them. `lowers` (top-most first) say what the layers below have.
void remove_mount_stubs(const std::filesystem::path& upper, const std::vector<std::filesystem::path>& lowers);

}  // namespace srl::build
