// Helpers shared by the image store tests: tarballs built with libarchive's write API, the
// tarball's own view of its entries, and a look at everything left in a store directory.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "images/archive.hpp"
#include "images/store.hpp"

namespace images_test {

namespace fs = std::filesystem;
using srl::ImageRef;
using srl::ImageStore;


inline const std::string kAlpine = FIXTURES_DIR "/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz";

struct Entry {
    std::string path;
    unsigned type = AE_IFREG;
    std::string data;  // file content, or symlink / hard link target
    mode_t perm = 0644;
    la_int64_t uid = 0, gid = 0;
    time_t mtime = 1700000000;
    dev_t rdev = 0;
    bool hardlink = false;
};

inline Entry file_entry(std::string path, std::string data, mode_t perm = 0644) { return {std::move(path), AE_IFREG, std::move(data), perm}; }
inline Entry dir_entry(std::string path, mode_t perm = 0755) { return {std::move(path), AE_IFDIR, "", perm}; }
inline Entry symlink_entry(std::string path, std::string target) { return {std::move(path), AE_IFLNK, std::move(target), 0777}; }
inline Entry hardlink_entry(std::string path, std::string target) {
    Entry e{std::move(path), AE_IFREG, std::move(target)};
    e.hardlink = true;
    return e;
}

using Xattrs = std::map<std::string, std::map<std::string, std::string>>;  // path -> name -> value

// Writes the entries (and their xattrs) to an archive opened for writing.
inline void write_entries(archive* a, const std::vector<Entry>& entries, const Xattrs& xattrs = {}) {
    for (const auto& en : entries) {
        srl::ArchiveEntry e(archive_entry_new());
        archive_entry_set_pathname(e.get(), en.path.c_str());
        archive_entry_set_filetype(e.get(), en.type);
        archive_entry_set_perm(e.get(), en.perm);
        archive_entry_set_uid(e.get(), en.uid);
        archive_entry_set_gid(e.get(), en.gid);
        archive_entry_set_mtime(e.get(), en.mtime, 0);
        const bool has_data = en.type == AE_IFREG && !en.hardlink;
        if (en.hardlink) archive_entry_set_hardlink(e.get(), en.data.c_str());
        if (en.type == AE_IFLNK) archive_entry_set_symlink(e.get(), en.data.c_str());
        if (en.type == AE_IFCHR || en.type == AE_IFBLK) archive_entry_set_rdev(e.get(), en.rdev);
        archive_entry_set_size(e.get(), has_data ? static_cast<la_int64_t>(en.data.size()) : 0);
        if (auto x = xattrs.find(en.path); x != xattrs.end())
            for (const auto& [name, value] : x->second)
                archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
        REQUIRE(archive_write_header(a, e.get()) == ARCHIVE_OK);
        if (has_data && !en.data.empty())
            REQUIRE(archive_write_data(a, en.data.data(), en.data.size()) == static_cast<la_ssize_t>(en.data.size()));
    }
}

enum class Filter { none, gzip, xz, zstd, bzip2 };

inline void write_tar(const std::string& path, const std::vector<Entry>& entries, Filter filter = Filter::none) {
    srl::ArchiveWriter a(archive_write_new());
    REQUIRE(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK);
    switch (filter) {
    case Filter::none: break;
    case Filter::gzip: REQUIRE(archive_write_add_filter_gzip(a.get()) == ARCHIVE_OK); break;
    case Filter::xz: REQUIRE(archive_write_add_filter_xz(a.get()) == ARCHIVE_OK); break;
    case Filter::zstd: REQUIRE(archive_write_add_filter_zstd(a.get()) == ARCHIVE_OK); break;
    case Filter::bzip2: REQUIRE(archive_write_add_filter_bzip2(a.get()) == ARCHIVE_OK); break;
    }
    REQUIRE(archive_write_open_filename(a.get(), path.c_str()) == ARCHIVE_OK);
    write_entries(a.get(), entries);
    REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
}

struct Meta {
    unsigned type;
    mode_t perm;
    la_int64_t uid, gid, size;
    time_t mtime;
    std::string symlink;
};

// What the Alpine tarball says about each entry, to compare the unpacked tree against.
inline std::map<std::string, Meta> read_tar(const std::string& path) {
    srl::ArchiveReader a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    REQUIRE(archive_read_open_filename(a.get(), path.c_str(), 65536) == ARCHIVE_OK);
    std::map<std::string, Meta> out;
    archive_entry* e;
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
        const char* link = archive_entry_symlink(e);
        out[fs::path(archive_entry_pathname(e)).lexically_normal().string()] =
            Meta{archive_entry_filetype(e), archive_entry_perm(e), archive_entry_uid(e), archive_entry_gid(e),
                 archive_entry_size(e), archive_entry_mtime(e), link ? link : ""};
    }
    return out;
}

inline struct stat lstat_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
}

// Everything in the store directory, recursively, as relative paths.
inline std::vector<std::string> store_contents(const std::string& root) {
    std::vector<std::string> out;
    if (!fs::exists(root)) return out;
    for (const auto& e : fs::recursive_directory_iterator(root))
        out.push_back(e.path().lexically_relative(root).string());
    std::sort(out.begin(), out.end());
    return out;
}

inline void require_refused(ImageStore& store, const std::string& tar, const std::string& message) {
    CHECK_THROWS_WITH(store.import(tar, ImageRef::parse("evil:1")), message);
    CHECK(store_contents(store.root().string()).empty());
    CHECK_FALSE(store.find(ImageRef::parse("evil:1")));
}

}  // namespace images_test
