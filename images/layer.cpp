#include "images/layer.hpp"

#include <fcntl.h>

#include <string_view>
#include <unordered_set>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {
namespace {

constexpr std::string_view kWhiteout = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";
// aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs), which Docker skips too: not image content.
constexpr std::string_view kAufsMeta = ".wh..wh.";

std::string child_path(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

class LayerApplier {
public:
    explicit LayerApplier(int root_fd) : writer_(root_fd, SafeWriter::Mode::layer) {}

    void apply(archive* src, archive_entry* e) {
        const char* path = archive_entry_pathname(e);
        if (!path) throw Error("archive entry with a name that cannot be read");
        const std::string shown = path;
        auto parts = split_beneath(shown);
        if (!parts) throw Error("unsafe path in archive: " + shown);
        if (!parts->empty() && parts->back().starts_with(kWhiteout)) return whiteout(*parts, shown);
        if (!parts->empty() && parts->front().starts_with(kAufsMeta)) return;
        if (writer_.write(src, e)) record(*parts);
    }

    UnpackStats finish() { return writer_.finish(); }

private:
    using Parts = SafeWriter::Parts;

    // The path and its parents: a parent this layer did not list still holds what it wrote.
    void record(const Parts& parts) {
        for (std::size_t n = parts.size(); n > 0; --n)
            if (!kept_.insert(join_path(parts, n)).second) break;  // so are its parents
    }

    void whiteout(const Parts& parts, const std::string& shown) {
        const std::string& marker = parts.back();
        const std::string unsafe_msg = "unsafe path in archive: " + shown;
        // A symlink on the way is refused like any write through one; a missing directory
        // simply has nothing to hide.
        Fd dir = writer_.open_dir(parts, parts.size() - 1, SafeWriter::Lookup::if_present, unsafe_msg);
        if (!dir) return;
        const std::string dir_path = join_path(parts, parts.size() - 1);
        if (marker == kOpaque) {
            for (const std::string& child : list_directory(dir.get(), dir_path.empty() ? "." : dir_path))
                hide_lower(dir.get(), child_path(dir_path, child), child);
            return;
        }
        if (marker.starts_with(kAufsMeta)) return;
        const std::string name = marker.substr(kWhiteout.size());
        if (name.empty() || name == "." || name == "..") throw Error(unsafe_msg);
        hide_lower(dir.get(), child_path(dir_path, name), name);
    }

    // Removes what lower layers have at `path` (name in dirfd), keeping what this layer wrote.
    void hide_lower(int dirfd, const std::string& path, const std::string& name) {
        if (!kept_.contains(path)) return remove_tree_at(dirfd, name, path);
        int fd = ::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return;  // not a directory: all ours
            throw_errno("cannot open directory " + path);
        }
        Fd dir(fd);
        for (const std::string& child : list_directory(dir.get(), path)) hide_lower(dir.get(), path + "/" + child, child);
    }

    SafeWriter writer_;
    std::unordered_set<std::string> kept_;  // paths written by this layer, and their parents
};

}  // namespace

UnpackStats apply_layer(archive* src, int root_fd) {
    LayerApplier layer(root_fd);
    for (;;) {
        archive_entry* e;
        int r = archive_read_next_header(src, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            const char* why = archive_error_string(src);
            throw Error(std::string("cannot read layer: ") + (why ? why : "unknown libarchive error"));
        }
        layer.apply(src, e);
    }
    return layer.finish();
}

}  // namespace srl
