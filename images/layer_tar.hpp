// Reproducible layer tarballs: a directory tree as a tar+gzip whose bytes depend only on the
// tree's content. Entries sorted by name, numeric owners, hard links kept, only
// security.capability and user.* xattrs, mtimes as on disk (clamped to an epoch when one is
// given), no atime/ctime, and a gzip header without name or time. Used by `save` (a whole
// rootfs) and `build` (one step's overlayfs upper directory, whose whiteouts become OCI ones).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace srl {

struct TarDigests {
    std::string digest;  // "sha256:..." of what was written (the gzip stream)
    std::uint64_t size = 0;
    std::string diff_id;  // "sha256:..." of the uncompressed tar
    std::uint64_t content_bytes = 0;  // regular file bytes in the tree (each hard-linked file once)
    std::uint64_t entries = 0;        // tar entries written
};

struct TreeTarOptions {
    // The tree is an overlayfs upper directory read as a layer diff: a 0/0 character device is
    // a whiteout (written as ".wh.NAME"), a directory with trusted.overlay.opaque=y hides what
    // lower layers have in it (a ".wh..wh..opq" entry). Entries overlayfs writes only as
    // metadata (redirect_dir, metacopy) cannot be a diff: they are an error.
    bool overlay_diff = false;
    // No mtime later than this (SOURCE_DATE_EPOCH); nullopt keeps them as on disk.
    std::optional<std::int64_t> epoch;
};

// The tree at root_fd (the root directory itself is not an entry) as tar+gzip to out_fd.
TarDigests write_tree_tar_gz(int root_fd, int out_fd, const TreeTarOptions& options);

// SOURCE_DATE_EPOCH (reproducible-builds.org) from the environment, if set. Throws if it is
// not a non-negative number of seconds.
std::optional<std::int64_t> source_date_epoch();

}  // namespace srl
