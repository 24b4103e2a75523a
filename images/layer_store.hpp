// The layer store: image layers kept one by one, for images that are more than a flattened tree
// (built, or loaded from an OCI archive). `<store>/layers/<hex of the blob's sha256>/` holds
//   layer.tar.gz  the layer as `save` writes it (reproducible, see layer_tar.hpp)
//   layer.json    {digest, diff_id, size, content_size}
//   diff/         for layers made by `build`: the layer as a directory in overlayfs's form
//                 (whiteouts are 0/0 character devices, opaque directories carry
//                 trusted.overlay.opaque=y), used as a read-only lower directory by later steps
//
// A layer is made in a private .tmp-* directory and renamed into place when complete, so a
// layer directory is always whole; two processes making the same layer simply keep the first.
// Layers are content addressed and immutable, and shared by every image that uses them.
// Nothing removes them yet: `rmi` removes an image, not its layers, so that the build cache
// survives it (remove <store>/layers and <store>/cache/build by hand to reclaim the space).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "images/extract.hpp"
#include "images/layer_tar.hpp"
#include "images/store.hpp"

namespace srl {

struct StoredLayer {
    std::string digest, diff_id;  // sha256 of layer.tar.gz, of the uncompressed tar
    std::uint64_t size = 0;          // bytes of layer.tar.gz
    std::uint64_t content_bytes = 0;  // regular file bytes in the layer
    std::filesystem::path dir;

    std::filesystem::path blob() const { return dir / "layer.tar.gz"; }
    std::filesystem::path diff() const { return dir / "diff"; }  // exists for built layers only
    LayerRecord record() const { return {digest, size, diff_id, content_bytes}; }
};

class LayerStore {
public:
    explicit LayerStore(std::filesystem::path root);  // <store>/layers, created on demand

    std::optional<StoredLayer> find(const std::string& digest) const;
    StoredLayer get(const std::string& digest) const;  // throws when it is missing

    // A layer being made: a private directory in the store, removed unless committed.
    class Pending {
    public:
        std::filesystem::path diff() const { return dir_.path() / "diff"; }  // empty, 0755
        std::filesystem::path work() const { return dir_.path() / "work"; }  // empty, for overlayfs
        std::filesystem::path blob() const { return dir_.path() / "layer.tar.gz"; }

    private:
        friend class LayerStore;
        explicit Pending(const std::filesystem::path& root);
        OwnedDir dir_;
    };
    Pending begin();

    // Pending's diff/, an overlayfs upper directory, as a layer: mtimes clamped to `epoch` on disk
    // (so the tree that later steps see is the one in the tar), the tar.gz written with OCI
    // whiteouts, and the whole renamed into place. nullopt (and nothing kept) when the diff is
    // empty.
    std::optional<StoredLayer> commit_diff(Pending&& pending, std::int64_t epoch);

    // A whole tree (a flattened image's rootfs) as one layer, without a diff/ copy.
    StoredLayer add_tree(int root_fd, const std::optional<std::int64_t>& epoch);

    // Pending's blob(), written and verified by the caller (`load`), as a layer.
    StoredLayer add_blob(Pending&& pending, const TarDigests& digests);

    const std::filesystem::path& root() const { return root_; }

private:
    StoredLayer place(Pending&& pending, const TarDigests& d);
    std::filesystem::path root_;
};

// The layer that is `img`'s flattened rootfs (for an image that has no layers of its own in the
// store: pulled or imported), made once and remembered beside the image (which a new import or
// pull replaces as a whole, so the note cannot outlive the tree it describes).
StoredLayer image_rootfs_layer(LayerStore& layers, const Image& img, const std::optional<std::int64_t>& epoch);

// The build cache: <store>/cache/build/<key>.json maps a step's key (a sha256 of everything its
// result depends on, see launcher/build.cpp) to its layer's digest, or to null for a step that
// changed no file. Entries are written to a temporary file and renamed, so a reader sees a whole
// entry or none; one that cannot be written only costs the next build time.
class BuildCache {
public:
    explicit BuildCache(std::filesystem::path dir) : dir_(std::move(dir)) {}
    // nullopt: a miss; a null inner value: the step changed no file.
    std::optional<std::optional<std::string>> lookup(const std::string& key) const;
    void store(const std::string& key, const std::optional<std::string>& layer) const;

private:
    std::filesystem::path dir_;
};

// The tree at src_fd recreated at dst_fd (an empty directory on the same file system): its
// directories made anew with the same mode, owner, times and xattrs, everything else hard-linked.
// Safe for images because nothing ever writes an image's file in place: apply_layer() and the
// store replace files by unlinking them first, and containers see images through overlayfs.
void link_tree(int src_fd, int dst_fd, const std::string& shown);

// Applies a stored layer's blob to the tree at root_fd (OCI whiteouts, through SafeWriter).
UnpackStats apply_stored_layer(const StoredLayer& layer, int root_fd);

}  // namespace srl
