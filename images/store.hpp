// The local image store: one directory per NAME:TAG holding the unpacked root filesystem and
// its metadata. Images appear and are replaced atomically (rename), so a reader sees either
// the complete old image or the complete new one, never a half-unpacked tree.
//
// Layout: <images_root>/<name, '/' kept as subdirectories>/@<tag>/{rootfs/, image.json}
// The '@' keeps tags apart from name components ("lab:os" and "lab/os:1" would otherwise share
// lab/os/); it cannot start a name component. Dot-entries in images_root are the store's own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "images/reference.hpp"

namespace srl {

struct ImageConfig {
    std::vector<std::string> entrypoint, cmd, env;
    std::string workdir, user;
};

struct Image {
    ImageRef ref;
    std::filesystem::path dir;     // holds rootfs/ and image.json
    std::filesystem::path rootfs;
    std::uint64_t size_bytes = 0;  // sum of regular file sizes
    std::int64_t created = 0;      // unix seconds
    ImageConfig config;
};

class ImageStore {
public:
    explicit ImageStore(std::filesystem::path images_root);  // created on demand

    std::optional<Image> find(const ImageRef& ref) const;
    Image get(const ImageRef& ref) const;  // throws Error("no such image: NAME:TAG")
    std::vector<Image> list() const;       // sorted by name, tag

    // From a tarball (tar or cpio; gzip, xz, zstd, bzip2 or plain, detected by content) or a
    // directory. Replaces an existing NAME:TAG only once the new image is complete. On any
    // error nothing is left behind.
    Image import(const std::filesystem::path& source, const ImageRef& ref);

    // Throws if missing. Whether a container still uses it is the caller's business.
    void remove(const ImageRef& ref);

    const std::filesystem::path& root() const { return root_; }

private:
    std::filesystem::path dir_of(const ImageRef& ref) const;
    void prune_empty_parents(const ImageRef& ref) const;

    std::filesystem::path root_;
};

}  // namespace srl
