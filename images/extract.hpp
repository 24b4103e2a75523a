// Safe extraction: writes archive entries beneath a root directory and nowhere else.
//
// Every entry is created relative to an O_DIRECTORY fd of the root. Its parent directory is
// resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or, where openat2 is missing or
// fails, a component-by-component O_NOFOLLOW walk that also tells us why it failed. So neither
// "..", nor an absolute path, nor a symlink planted earlier in the same archive can move a write
// outside the root; the leaf itself is never followed either (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW).
// We do this ourselves instead of using archive_write_disk so the guarantee is ours to test.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "launcher/fd.hpp"

namespace srl {

struct UnpackStats {
    std::uint64_t entries = 0;        // entries written, not counting the root itself
    std::uint64_t regular_bytes = 0;  // sum of regular file sizes (each hard-linked file once)
};

class SafeWriter {
public:
    // root_fd must stay open until finish(). Ownership is preserved only when running as root;
    // otherwise everything is owned by the caller.
    explicit SafeWriter(int root_fd);

    // Creates one entry; regular file data is read from `src` with archive_read_data_block.
    // Throws srl::Error (e.g. "unsafe path in archive: ../../etc/passwd") and writes nothing
    // for an entry that would land outside the root.
    void write(archive* src, archive_entry* entry);

    // Applies directory modes and times, which had to wait until their contents were written.
    UnpackStats finish();

private:
    struct DeferredDir {
        std::vector<std::string> parts;
        mode_t mode;
        timespec times[2];
    };

    using Parts = std::vector<std::string>;
    // The directory made of the first n of parts, beneath the root; creates missing ones if asked.
    Fd open_dir(const Parts& parts, std::size_t n, bool create, const std::string& unsafe_msg);
    Fd walk(const Parts& parts, std::size_t n, bool create, const std::string& unsafe_msg);
    void make_dir(int parent, const Parts& parts, archive_entry* e, const std::string& shown);
    void make_file(archive* src, int parent, const std::string& name, archive_entry* e,
                   const std::string& shown);
    void make_hardlink(int parent, const std::string& name, archive_entry* e, const std::string& shown);
    void chown_at(int dirfd, const std::string& name, archive_entry* e, const std::string& shown);

    int root_;
    bool chown_;
    bool openat2_ = true;
    std::vector<DeferredDir> dirs_;
    UnpackStats stats_;
};

// Unpacks a tar (or cpio) archive, compressed in any way libarchive detects, into root_fd.
UnpackStats unpack_archive(const std::filesystem::path& source, int root_fd);

// Copies a directory tree into root_fd through the same SafeWriter, without following symlinks
// and without crossing mount points; hard links inside the tree stay hard links.
UnpackStats copy_directory(const std::filesystem::path& source, int root_fd);

}  // namespace srl
