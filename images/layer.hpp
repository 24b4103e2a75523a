// Applying one OCI image layer (image-spec layer.md) over the layers beneath it, in one tree.
//
// A layer is a tar of changes: its entries replace whatever is at their paths, a directory over
// a directory merges, "DIR/.wh.NAME" deletes NAME, and "DIR/.wh..wh..opq" empties DIR of what the
// lower layers put there. Whiteouts only ever hide lower content; what this layer writes stays,
// whatever the order of its entries. Everything goes through SafeWriter, so nothing a layer says,
// and no symlink an earlier layer planted, can lead a write or a deletion outside the root.
#pragma once

#include <archive.h>

#include "images/extract.hpp"

namespace srl {

// Applies one OCI image layer on top of the tree at root_fd. `src` is a libarchive reader the
// caller has already opened (format tar, decompression done by the caller, so src yields plain
// tar entries). Reads every entry of src to its end. Throws srl::Error, leaving the tree partly
// changed: the caller discards it.
UnpackStats apply_layer(archive* src, int root_fd);

}  // namespace srl
