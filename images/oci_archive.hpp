// Images as files: `save` writes an OCI image layout as one tar (or a flattened rootfs
// tarball), `load` reads such a layout or a `docker save` archive back into the store.
//
// An image with its layers in the layer store (built, or loaded from an OCI archive with gzip
// layers) is saved as those layers with its stored manifest and config, so its digest is kept.
// Any other image is a flattened tree, saved as one layer: the rootfs as a tar+gzip. Saving is
// reproducible (layer_tar.hpp), so the same image saved twice gives the same bytes and the same
// manifest digest.
#pragma once

#include <filesystem>
#include <string>

#include "images/layer_tar.hpp"
#include "images/store.hpp"

namespace srl {

enum class SaveFormat { oci, rootfs };

class LayerStore;

// Writes `img` to `out`, through an unnamed file in out's directory that becomes `out` only once
// complete: on error, or when killed, nothing is left (oci_save.cpp, TempOutput).
// `layers` holds the layers of images that have their own.
void save_image(const Image& img, const std::filesystem::path& out, SaveFormat format, const LayerStore& layers);

// Reads an OCI layout archive or a docker-save archive, verifying every digest, and stores it
// atomically. The name comes from the archive (ref.name / io.containerd.image.name, RepoTags),
// else from `name` (NAME[:TAG]), else it is an error. On any error nothing is stored. An OCI
// archive whose layers are all tar+gzip also leaves its layers in `layers` and its manifest and
// config beside the image, so that saving it again gives the same archive.
Image load_image(ImageStore& store, const std::filesystem::path& file, const std::string& name, LayerStore& layers);

// The rootfs tree at root_fd as a reproducible tar, compressed with gzip (fixed header), to
// `out_fd`, mtimes clamped to SOURCE_DATE_EPOCH when it is set.
TarDigests write_rootfs_tar_gz(int root_fd, int out_fd);

}  // namespace srl
