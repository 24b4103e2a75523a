// Images as files: `save` writes an OCI image layout as one tar (or a flattened rootfs
// tarball), `load` reads such a layout or a `docker save` archive back into the store.
//
// The store keeps flattened trees, so a saved image has exactly one layer: the rootfs as a
// tar+gzip. Saving is reproducible (sorted entries, numeric owners, mtimes from disk or clamped
// to SOURCE_DATE_EPOCH, no atime/ctime, a gzip header without name or time), so the same image
// saved twice gives the same bytes and the same manifest digest.
#pragma once

#include <filesystem>
#include <string>

#include "images/store.hpp"

namespace srl {

enum class SaveFormat { oci, rootfs };

// Writes `img` to `out` (through out + ".tmp", renamed at the end; on error nothing is left).
void save_image(const Image& img, const std::filesystem::path& out, SaveFormat format);

// Reads an OCI layout archive or a docker-save archive, verifying every digest, and stores it
// atomically. The name comes from the archive (ref.name / io.containerd.image.name, RepoTags),
// else from `name` (NAME[:TAG]), else it is an error. On any error nothing is stored.
Image load_image(ImageStore& store, const std::filesystem::path& file, const std::string& name);

// The rootfs tree at root_fd as a reproducible tar, compressed with gzip (fixed header), to
// `out_fd`. Returns {sha256 of the gzip stream, its size, sha256 of the tar (the diff_id)}.
struct TarDigests {
    std::string digest;  // "sha256:..." of what was written
    std::uint64_t size = 0;
    std::string diff_id;  // "sha256:..." of the uncompressed tar
};
TarDigests write_rootfs_tar_gz(int root_fd, int out_fd);

}  // namespace srl
