// The local image store: one directory per NAME:TAG holding the unpacked root filesystem and
// its metadata. Images appear and are replaced atomically (rename), so a reader sees either
// the complete old image or the complete new one, never a half-unpacked tree.
//
// Layout: <images_root>/<name, '/' kept as subdirectories>/@<tag>/{rootfs/, image.json}
// The '@' keeps tags apart from name components ("lab:os" and "lab/os:1" would otherwise share
// lab/os/); it cannot start a name component. Dot-entries in images_root are the store's own:
// .tmp-*, .rm-*, .old-* are trees being built or removed, each flocked by the process working
// on it (so one without a lock was left by a killed process), and .locks/ holds one lock file
// per reference being pulled.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "images/reference.hpp"
#include "launcher/fd.hpp"

namespace srl {

struct ImageConfig {
    std::vector<std::string> entrypoint, cmd, env;
    std::string workdir, user;
};

struct LayerRecord {  // compressed digest + size as pulled
    std::string digest;
    std::uint64_t size = 0;
    // Known for layers kept in the layer store (built or loaded images): the uncompressed tar's
    // digest and the layer's regular file bytes. "" and 0 otherwise.
    std::string diff_id;
    std::uint64_t content_bytes = 0;
};

struct Image {
    ImageRef ref;
    std::filesystem::path dir;     // holds rootfs/ and image.json
    std::filesystem::path rootfs;
    std::uint64_t size_bytes = 0;  // sum of regular file sizes
    std::int64_t created = 0;      // unix seconds
    ImageConfig config;
    // Where it came from: "docker.io/library/debian:bookworm", a mirror URL, or, for import,
    // the file or directory imported. "" in image.json written before pulls existed.
    std::string source;
    std::string digest;  // manifest digest "sha256:..." for registry pulls; "" for import
    std::vector<LayerRecord> layers;
};

// Images whose layers are kept in the layer store (built, or loaded from an OCI archive) also
// keep their OCI manifest and config, byte for byte, beside image.json: `save` writes them back
// unchanged (so the digest stays the same) and `history` reads the config's history.
constexpr const char* kOciManifestFile = "oci-manifest.json";
constexpr const char* kOciConfigFile = "oci-config.json";
// The file's content, or nullopt when the image has none.
std::optional<std::string> read_image_file(const Image& img, const char* name);

// A dot-directory owned by this process: made by mkdtemp and flocked until it is gone, so that
// sweep_stale_dirs() leaves it alone while this process lives. The image store uses them for
// images being built, removed or swapped out; the layer store for layers being made.
class OwnedDir {
public:
    OwnedDir() = default;
    OwnedDir(const std::filesystem::path& parent, const std::string& kind);  // <parent>/.<kind>-XXXXXX
    OwnedDir(OwnedDir&& o) noexcept = default;
    OwnedDir& operator=(OwnedDir&& o) noexcept;
    ~OwnedDir() { remove(); }

    const std::filesystem::path& path() const { return path_; }
    int fd() const { return lock_.get(); }  // O_DIRECTORY, the one holding the flock
    bool owned() const { return bool(lock_); }
    // Removes the tree now at path() (ours, or what a rename swapped in) and lets go.
    void remove() noexcept;
    // Lets go without removing anything: the directory was renamed into place.
    void release() noexcept;

private:
    Fd store_fd_;
    std::string name_;
    std::filesystem::path path_;
    Fd lock_;
};

// Removes the .tmp-*, .rm-* and .old-* directories in `dir` that nobody holds a lock on (left
// by killed processes). Best effort: what cannot be removed now is left for the next sweep.
void sweep_stale_dirs(const std::filesystem::path& dir);

// sweep_stale_dirs() of the image store at images_root and of the layer store beside it. Every
// command calls it once it knows where the store is (launcher/cli.cpp), so what a killed import,
// pull, load or build left is gone at the next command of any kind, `images` and `ps` included.
// Never throws: a store that cannot be swept now (missing, read-only) is swept by a later command.
void sweep_store(const std::filesystem::path& images_root) noexcept;

class ImageStore {
public:
    explicit ImageStore(std::filesystem::path images_root);  // created on demand

    std::optional<Image> find(const ImageRef& ref) const;
    Image get(const ImageRef& ref) const;  // throws Error("no such image: NAME:TAG")
    std::vector<Image> list() const;       // sorted by name, tag

    // From a tarball (tar or cpio; gzip, xz, zstd, bzip2 or plain, detected by content) or a
    // directory. Replaces an existing NAME:TAG only once the new image is complete. On any
    // error nothing is left behind. Does not take lock_reference(): a caller that holds it
    // would wait for itself (flock locks belong to open files, not processes).
    Image import(const std::filesystem::path& source, const ImageRef& ref);

    // Throws if missing. Whether a container still uses it is the caller's business.
    void remove(const ImageRef& ref);

    const std::filesystem::path& root() const { return root_; }
    // The layer store beside the images: <store>/layers (images_root is always <store>/images).
    std::filesystem::path layers_root() const { return root_.parent_path() / "layers"; }

    // A hidden, private temporary image in the store. commit() makes it NAME:TAG atomically
    // (replacing an existing one in one step, exactly as import() does); if the Staging is
    // destroyed without commit(), its tree is removed. While it exists the process holds a flock
    // on it, so sweep_stale() can tell a live staging dir from one left by a process killed with
    // SIGKILL.
    class Staging {
    public:
        Staging(Staging&&) noexcept = default;
        Staging& operator=(Staging&&) noexcept = default;

        int rootfs_fd() const { return rootfs_fd_.get(); }  // the (initially empty, 0755) rootfs
        const std::filesystem::path& rootfs() const { return rootfs_; }
        // Writes image.json (created = now; size, config, source, digest, layers from `meta`),
        // syncs, renames in. meta.ref must equal the staged ref; dir and rootfs are filled in.
        // Once only: the Staging is empty afterwards.
        Image commit(const Image& meta);
        // Adds a file beside image.json (e.g. kOciConfigFile), before commit().
        void write_file(const std::string& name, const std::string& content);

    private:
        friend class ImageStore;
        Staging(const ImageStore& store, const ImageRef& ref);

        std::filesystem::path store_root_;
        ImageRef ref_;
        OwnedDir dir_;
        std::filesystem::path rootfs_;
        Fd rootfs_fd_;
    };
    Staging stage(const ImageRef& ref);

    // Serialises pulls of one reference across processes: an flock on a lock file under
    // <root>/.locks/ named after the reference. Blocks until it is free; released when the Fd
    // is destroyed.
    Fd lock_reference(const ImageRef& ref);

    // sweep_stale_dirs() of the image store. Called at the start of stage() and import(), and
    // by every command through sweep_store().
    void sweep_stale() { sweep_stale_dirs(root_); }

private:
    std::filesystem::path dir_of(const ImageRef& ref) const;
    void prune_empty_parents(const ImageRef& ref) const;
    // Renames a finished tree to NAME:TAG. Returns whether an old image was swapped to `from`.
    bool put_in_place(const std::filesystem::path& from, const ImageRef& ref) const;

    std::filesystem::path root_;
};

}  // namespace srl
