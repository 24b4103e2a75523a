// Safe extraction: writes archive entries beneath a root directory and nowhere else.
//
// Every entry is created relative to an O_DIRECTORY fd of its parent directory, reached from the
// root one component at a time with O_NOFOLLOW (see dir_chain.hpp: the walk resumes from the
// previous entry's directory, so a deep tree costs the same per entry as a flat one). So neither
// "..", nor an absolute path, nor a symlink planted earlier in the same archive can move a write
// outside the root; the leaf itself is never followed either (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW).
// We do this ourselves instead of using archive_write_disk so the guarantee is ours to test.
//
// Entries deeper than kMaxDepth components are refused. Trees that deep cannot be named by a
// path (PATH_MAX, 4096 bytes, holds at most 2,048 components), so no real image has them; the
// limit is far above that, so that trees made through fd-relative calls still import (bench/
// deep_tree.sh goes to 10,000), and keeps the work and memory of one entry bounded.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "images/dir_chain.hpp"
#include "launcher/fd.hpp"

namespace srl {

constexpr std::size_t kMaxDepth = 16384;  // components in an entry's path

struct UnpackStats {
    std::uint64_t entries = 0;        // entries written, not counting the root itself
    std::uint64_t regular_bytes = 0;  // sum of regular file sizes (each hard-linked file once)
};

// The components of a path that stays beneath a root ("./a//b" is {"a", "b"}, "./" is {}), or
// nullopt for an absolute path or one with "..".
std::optional<std::vector<std::string>> split_beneath(std::string_view path);
std::string join_path(const std::vector<std::string>& parts, std::size_t n);

// The names in a directory but "." and "..", read in full (so the caller may remove them).
std::vector<std::string> list_directory(int dirfd, const std::string& shown);

// Removes `name` in dirfd and, if it is a directory, everything beneath it, through fds alone:
// no symlink is ever followed and no mount point entered, however the tree changes meanwhile;
// one directory open at a time, however deep the tree (remove_tree.cpp). A missing name is no
// error.
void remove_tree_at(int dirfd, const std::string& name, const std::string& shown);

class SafeWriter {
public:
    // import: an archive unpacked into an empty root, where an entry only ever replaces an earlier
    //   entry of the same archive, and a non-empty directory is never replaced.
    // layer: an image layer applied over the layers below it, where an entry replaces whatever is
    //   at its path, a whole directory tree included.
    enum class Mode { import, layer };
    // How open_dir treats a directory on the way that is not there.
    enum class Lookup {
        create,        // make it, 0755, as tar makes parents an archive does not list
        existing,      // it is an error
        if_present,    // return an empty Fd (also when it is not a directory); a symlink is still refused
        if_directory,  // return an empty Fd when it is missing, not a directory, or a symlink
    };
    using Parts = std::vector<std::string>;

    // root_fd must stay open until finish(). Ownership is preserved only when running as root;
    // otherwise everything is owned by the caller.
    explicit SafeWriter(int root_fd, Mode mode = Mode::import);

    // Creates one entry; regular file data is read from `src` with archive_read_data_block.
    // Throws srl::Error (e.g. "unsafe path in archive: ../../etc/passwd") and writes nothing
    // for an entry that would land outside the root. Returns false for an entry that is not
    // image content and was skipped (a socket).
    bool write(archive* src, archive_entry* entry);

    // The directory made of the first n of parts, beneath the root, as an O_PATH fd, never
    // through a symlink: one is refused with "<unsafe_msg> (goes through symlink <path>)".
    // Parts deeper than kMaxDepth are refused.
    Fd open_dir(const Parts& parts, std::size_t n, Lookup lookup, const std::string& unsafe_msg);

    // Applies directory modes and times, which had to wait until their contents were written.
    UnpackStats finish();

private:
    struct DeferredDir {
        DirChain::Node dir;
        mode_t mode;
        timespec times[2];
    };

    void create_dir(const Parts& parts, std::size_t i);
    bool clear_leaf(int parent, const std::string& name, bool keep_dir, const std::string& shown);
    void make_dir(int parent, const std::string& name, archive_entry* e, const std::string& shown);
    void make_file(archive* src, int parent, const std::string& name, archive_entry* e,
                   const std::string& shown);
    void make_hardlink(int parent, const std::string& name, archive_entry* e, const std::string& shown);
    void chown_at(int dirfd, const std::string& name, archive_entry* e, const std::string& shown);

    int root_;
    Mode mode_;
    bool chown_;
    DirChain chain_;  // at the last entry's parent directory
    std::vector<DeferredDir> dirs_;
    UnpackStats stats_;
};

// Unpacks a tar (or cpio) archive, compressed in any way libarchive detects, into root_fd.
UnpackStats unpack_archive(const std::filesystem::path& source, int root_fd);

// Copies a directory tree into root_fd through the same SafeWriter, without following symlinks
// and without crossing mount points; hard links inside the tree stay hard links.
UnpackStats copy_directory(const std::filesystem::path& source, int root_fd);

}  // namespace srl
