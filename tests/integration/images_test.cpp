// The image store and `import`: the real Alpine tarball, archives built here with libarchive
// (including hostile ones that try to write outside the image), and directory imports.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "../support/proc.hpp"
#include "images/archive.hpp"
#include "images/store.hpp"
#include "launcher/error.hpp"

using namespace test;
namespace fs = std::filesystem;
using srl::Image;
using srl::ImageRef;
using srl::ImageStore;

namespace {

const std::string kAlpine = FIXTURES_DIR "/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz";

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

Entry file_entry(std::string path, std::string data, mode_t perm = 0644) { return {std::move(path), AE_IFREG, std::move(data), perm}; }
Entry dir_entry(std::string path, mode_t perm = 0755) { return {std::move(path), AE_IFDIR, "", perm}; }
Entry symlink_entry(std::string path, std::string target) { return {std::move(path), AE_IFLNK, std::move(target), 0777}; }
Entry hardlink_entry(std::string path, std::string target) {
    Entry e{std::move(path), AE_IFREG, std::move(target)};
    e.hardlink = true;
    return e;
}

enum class Filter { none, gzip, xz, zstd, bzip2 };

void write_tar(const std::string& path, const std::vector<Entry>& entries, Filter filter = Filter::none) {
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
        REQUIRE(archive_write_header(a.get(), e.get()) == ARCHIVE_OK);
        if (has_data && !en.data.empty())
            REQUIRE(archive_write_data(a.get(), en.data.data(), en.data.size()) == static_cast<la_ssize_t>(en.data.size()));
    }
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
std::map<std::string, Meta> read_tar(const std::string& path) {
    srl::ArchiveReader a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_all(a.get());
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

struct stat lstat_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
}

// Everything in the store directory, recursively, as relative paths.
std::vector<std::string> store_contents(const std::string& root) {
    std::vector<std::string> out;
    if (!fs::exists(root)) return out;
    for (const auto& e : fs::recursive_directory_iterator(root))
        out.push_back(e.path().lexically_relative(root).string());
    std::sort(out.begin(), out.end());
    return out;
}

void require_refused(ImageStore& store, const std::string& tar, const std::string& message) {
    CHECK_THROWS_WITH(store.import(tar, ImageRef::parse("evil:1")), message);
    CHECK(store_contents(store.root().string()).empty());
    CHECK_FALSE(store.find(ImageRef::parse("evil:1")));
}

}  // namespace

TEST_CASE("images: import the real Alpine minirootfs tarball", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const Image img = store.import(kAlpine, ImageRef::parse("alpine:3.20"));
    const std::string root = img.rootfs.string();

    CHECK(img.ref.str() == "alpine:3.20");
    CHECK(img.dir == fs::path(tmp / "images") / "alpine" / "@3.20");
    CHECK(img.rootfs == img.dir / "rootfs");
    CHECK(fs::is_regular_file(img.dir / "image.json"));
    CHECK(img.created > 1700000000);

    auto busybox = lstat_of(root + "/bin/busybox");
    CHECK(S_ISREG(busybox.st_mode));
    CHECK((busybox.st_mode & 0111) == 0111);
    CHECK(busybox.st_uid == 0);
    CHECK(busybox.st_gid == 0);
    CHECK(fs::is_symlink(root + "/bin/sh"));
    CHECK(fs::read_symlink(root + "/bin/sh") == "/bin/busybox");
    CHECK(read_file(root + "/etc/alpine-release").find("3.20.3") != std::string::npos);
    CHECK((lstat_of(root + "/tmp").st_mode & 07777) == 01777);
    auto shadow = lstat_of(root + "/etc/shadow");
    CHECK((shadow.st_mode & 07777) == 0640);
    CHECK(shadow.st_gid == 42);

    // Every entry as the tarball describes it: type, mode, owner, size, mtime, link target.
    std::uint64_t regular_bytes = 0;
    std::size_t checked = 0;
    for (const auto& [path, m] : read_tar(kAlpine)) {
        INFO(path);
        auto st = lstat_of(path == "." ? root : root + "/" + path);
        CHECK((st.st_mode & S_IFMT) == m.type);
        if (m.type != AE_IFLNK) CHECK((st.st_mode & 07777) == m.perm);
        CHECK(st.st_uid == m.uid);
        CHECK(st.st_gid == m.gid);
        CHECK(st.st_mtime == m.mtime);
        if (m.type == AE_IFREG) {
            CHECK(st.st_size == m.size);
            regular_bytes += static_cast<std::uint64_t>(m.size);
        }
        if (m.type == AE_IFLNK) CHECK(fs::read_symlink(root + "/" + path) == m.symlink);
        ++checked;
    }
    CHECK(checked > 500);
    CHECK(img.size_bytes == regular_bytes);

    auto again = store.get(ImageRef::parse("alpine:3.20"));
    CHECK(again.size_bytes == img.size_bytes);
    CHECK(again.created == img.created);
    CHECK(again.rootfs == img.rootfs);
    CHECK(store_contents((tmp / "images")).front() == "alpine");  // no temporary directories left
}

TEST_CASE("images: gzip, xz, zstd, bzip2 and plain tarballs all import", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::pair<Filter, const char*> filters[] = {
        {Filter::none, "plain"}, {Filter::gzip, "gzip"}, {Filter::xz, "xz"}, {Filter::zstd, "zstd"}, {Filter::bzip2, "bzip2"}};
    for (auto [filter, name] : filters) {
        INFO(name);
        const std::string tar = tmp / (std::string(name) + ".tar");
        write_tar(tar, {dir_entry("etc"), file_entry("etc/os-release", std::string("ID=") + name + "\n")}, filter);
        auto img = store.import(tar, ImageRef::parse(std::string("c:") + name));
        CHECK(read_file(img.rootfs.string() + "/etc/os-release") == std::string("ID=") + name + "\n");
        CHECK(img.size_bytes == 4 + std::string(name).size());
    }
    CHECK(store.list().size() == 5);
}

TEST_CASE("images: tarball metadata is preserved: owners, setuid, devices, hard links, late dirs", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    Entry suid = file_entry("usr/bin/su", "#!/bin/sh\n", 04755);
    Entry sgid = file_entry("usr/bin/wall", "w", 02711);
    sgid.uid = 1234;
    sgid.gid = 5678;
    Entry null{"dev/null", AE_IFCHR, "", 0666};
    null.rdev = makedev(1, 3);
    Entry loop{"dev/loop0", AE_IFBLK, "", 0660};
    loop.rdev = makedev(7, 0);
    loop.gid = 6;
    Entry fifo{"run/fifo", AE_IFIFO, "", 0620};
    // The directory entry comes after its contents, as tar --sort and some exporters write it.
    Entry late_dir = dir_entry("var/lib", 0710);
    late_dir.mtime = 1500000000;
    late_dir.uid = 42;
    Entry old_file = file_entry("var/lib/data", "0123456789");
    old_file.mtime = 1400000000;
    const std::string tar = tmp / "meta.tar.gz";
    write_tar(tar, {suid, sgid, null, loop, fifo, old_file, hardlink_entry("var/lib/data2", "./var/lib/data"),
                    symlink_entry("var/lib/abs", "/etc/passwd"), late_dir},
              Filter::gzip);
    auto img = store.import(tar, ImageRef::parse("meta"));
    const std::string r = img.rootfs.string();

    CHECK((lstat_of(r + "/usr/bin/su").st_mode & 07777) == 04755);
    auto w = lstat_of(r + "/usr/bin/wall");
    CHECK((w.st_mode & 07777) == 02711);
    CHECK(w.st_uid == 1234);
    CHECK(w.st_gid == 5678);
    auto n = lstat_of(r + "/dev/null");
    CHECK(S_ISCHR(n.st_mode));
    CHECK(n.st_rdev == makedev(1, 3));
    CHECK((n.st_mode & 07777) == 0666);
    auto l = lstat_of(r + "/dev/loop0");
    CHECK(S_ISBLK(l.st_mode));
    CHECK(l.st_rdev == makedev(7, 0));
    CHECK(l.st_gid == 6);
    auto f = lstat_of(r + "/run/fifo");
    CHECK(S_ISFIFO(f.st_mode));
    CHECK((f.st_mode & 07777) == 0620);
    // Implicit parents are 0755 whatever the umask.
    CHECK((lstat_of(r + "/run").st_mode & 07777) == 0755);
    auto lib = lstat_of(r + "/var/lib");
    CHECK((lib.st_mode & 07777) == 0710);
    CHECK(lib.st_mtime == 1500000000);
    CHECK(lib.st_uid == 42);
    auto data = lstat_of(r + "/var/lib/data");
    CHECK(data.st_mtime == 1400000000);
    CHECK(data.st_nlink == 2);
    CHECK(lstat_of(r + "/var/lib/data2").st_ino == data.st_ino);
    CHECK(fs::read_symlink(r + "/var/lib/abs") == "/etc/passwd");
    CHECK(img.size_bytes == 10 + 10 + 1);  // the hard link counts once
}

TEST_CASE("images: an archive entry with .. is refused and nothing is left", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string tar = tmp / "dotdot.tar";
    // Valid entries first: what they created must go too.
    write_tar(tar, {dir_entry("etc"), file_entry("etc/hostname", "x"), file_entry("../../etc/passwd", "owned")});
    require_refused(store, tar, "unsafe path in archive: ../../etc/passwd");
    CHECK_FALSE(fs::exists(tmp / "etc"));
    CHECK_FALSE(fs::exists(tmp / "images/etc"));

    write_tar(tar, {file_entry("a/b/../../../x", "owned")});
    require_refused(store, tar, "unsafe path in archive: a/b/../../../x");
    CHECK_FALSE(fs::exists(tmp / "images/x"));
}

TEST_CASE("images: an absolute path in an archive is refused", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string tar = tmp / "abs.tar";
    const std::string victim = tmp / "victim";
    write_tar(tar, {dir_entry("./"), file_entry("./ok", "ok"), file_entry(victim, "owned")});
    require_refused(store, tar, "unsafe path in archive: " + victim);
    CHECK_FALSE(fs::exists(victim));
}

TEST_CASE("images: writing through a symlink from the same archive is refused", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string tar = tmp / "symlink.tar";
    const std::string outside = tmp / "outside";
    fs::create_directory(outside);

    write_tar(tar, {symlink_entry("link", "/"), file_entry("link/etc/evil", "owned")});
    require_refused(store, tar, "unsafe path in archive: link/etc/evil (goes through symlink link)");
    CHECK_FALSE(fs::exists("/etc/evil"));

    // A relative symlink that climbs out, deeper in the tree.
    write_tar(tar, {dir_entry("a"), symlink_entry("a/up", "../../../../../../../../" + outside), file_entry("a/up/evil", "owned")});
    require_refused(store, tar, "unsafe path in archive: a/up/evil (goes through symlink a/up)");
    CHECK(fs::is_empty(outside));

    write_tar(tar, {symlink_entry("evil", outside), dir_entry("evil/sub")});
    require_refused(store, tar, "unsafe path in archive: evil/sub/ (goes through symlink evil)");
    CHECK(fs::is_empty(outside));
}

TEST_CASE("images: a symlink as the last component is replaced, never followed", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string victim = tmp / "victim";
    write_file(victim, "original");
    const std::string tar = tmp / "leaf.tar";
    write_tar(tar, {symlink_entry("f", victim), file_entry("f", "inside"), symlink_entry("d", tmp.path()), dir_entry("d", 0700)});
    auto img = store.import(tar, ImageRef::parse("leaf"));
    CHECK(read_file(victim) == "original");
    CHECK(fs::is_regular_file(fs::symlink_status(img.rootfs / "f")));
    CHECK(read_file((img.rootfs / "f").string()) == "inside");
    CHECK(fs::is_directory(fs::symlink_status(img.rootfs / "d")));
    CHECK((lstat_of(tmp.path()).st_mode & 07777) == 0700);  // mkdtemp's mode, untouched
}

TEST_CASE("images: hard links to outside the image are refused", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string tar = tmp / "hard.tar";

    write_tar(tar, {file_entry("ok", "ok"), hardlink_entry("h", "../x")});
    require_refused(store, tar, "unsafe hard link in archive: h -> ../x");

    write_tar(tar, {hardlink_entry("h", "/etc/passwd")});
    require_refused(store, tar, "unsafe hard link in archive: h -> /etc/passwd");

    write_tar(tar, {symlink_entry("etc", "/etc"), hardlink_entry("h", "etc/passwd")});
    require_refused(store, tar, "unsafe hard link in archive: h -> etc/passwd (goes through symlink etc)");
    CHECK(lstat_of("/etc/passwd").st_nlink == 1);

    write_tar(tar, {hardlink_entry("h", "./")});
    require_refused(store, tar, "unsafe hard link in archive: h -> ./");
}

TEST_CASE("images: import a directory through the same safe writer", "[images]") {
    require_root();
    TempDir tmp;
    const std::string src = tmp / "src";
    fs::create_directories(src + "/dir/sub");
    write_file(src + "/dir/file", "hello");
    REQUIRE(::link((src + "/dir/file").c_str(), (src + "/dir/hard").c_str()) == 0);
    fs::create_symlink("dir/file", src + "/link");
    fs::create_symlink("/etc/passwd", src + "/abs");
    REQUIRE(::mkfifo((src + "/fifo").c_str(), 0640) == 0);
    REQUIRE(::chmod((src + "/fifo").c_str(), 0640) == 0);
    write_file(src + "/suid", "#!/bin/sh\n");
    REQUIRE(::chown((src + "/suid").c_str(), 1234, 5678) == 0);
    REQUIRE(::chmod((src + "/suid").c_str(), 04755) == 0);
    REQUIRE(::mknod((src + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
    REQUIRE(::chmod((src + "/null").c_str(), 0666) == 0);
    REQUIRE(::lchown((src + "/link").c_str(), 7, 8) == 0);
    const bool xattrs = ::setxattr((src + "/dir/file").c_str(), "user.srl", "v", 1, 0) == 0;
    REQUIRE(::chmod((src + "/dir").c_str(), 0750) == 0);
    const timespec times[2] = {{1600000000, 0}, {1600000000, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (src + "/dir").c_str(), times, 0) == 0);

    ImageStore store(tmp / "images");
    auto img = store.import(src, ImageRef::parse("lab/dir:1"));
    const std::string r = img.rootfs.string();

    auto file_st = lstat_of(r + "/dir/file");
    auto hard_st = lstat_of(r + "/dir/hard");
    CHECK(file_st.st_ino == hard_st.st_ino);
    CHECK(file_st.st_nlink == 2);
    CHECK(read_file(r + "/dir/file") == "hello");
    CHECK(fs::read_symlink(r + "/link") == "dir/file");
    CHECK(lstat_of(r + "/link").st_uid == 7);
    CHECK(lstat_of(r + "/link").st_gid == 8);
    CHECK(fs::read_symlink(r + "/abs") == "/etc/passwd");
    auto fifo = lstat_of(r + "/fifo");
    CHECK(S_ISFIFO(fifo.st_mode));
    CHECK((fifo.st_mode & 07777) == 0640);
    auto suid = lstat_of(r + "/suid");
    CHECK((suid.st_mode & 07777) == 04755);
    CHECK(suid.st_uid == 1234);
    CHECK(suid.st_gid == 5678);
    auto null = lstat_of(r + "/null");
    CHECK(S_ISCHR(null.st_mode));
    CHECK(null.st_rdev == makedev(1, 3));
    auto d = lstat_of(r + "/dir");
    CHECK((d.st_mode & 07777) == 0750);
    CHECK(d.st_mtime == 1600000000);
    CHECK(fs::is_directory(r + "/dir/sub"));
    if (xattrs) {
        char v[8] = {};
        CHECK(::getxattr((r + "/dir/file").c_str(), "user.srl", v, sizeof v) == 1);
        CHECK(std::string(v) == "v");
    }
    CHECK(img.size_bytes == 5 + 10);  // the hard link counts once
    CHECK(store.get(ImageRef::parse("lab/dir:1")).rootfs == img.rootfs);
}

TEST_CASE("images: a directory that contains the store is refused", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    CHECK_THROWS_WITH(store.import(tmp.path(), ImageRef::parse("self")), Catch::Contains("contains the image store"));
    CHECK(store_contents(tmp / "images").empty());
}

TEST_CASE("images: empty, missing and non-archive sources are refused cleanly", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string empty = tmp / "empty.tar";
    write_tar(empty, {});
    CHECK_THROWS_WITH(store.import(empty, ImageRef::parse("e")), Catch::Contains("contains no files"));
    CHECK_THROWS_WITH(store.import(tmp / "missing.tar", ImageRef::parse("e")),
                      Catch::Contains("missing.tar: No such file or directory"));
    write_file(tmp / "junk.tar", std::string(4096, 'j'));
    CHECK_THROWS_AS(store.import(tmp / "junk.tar", ImageRef::parse("e")), srl::Error);
    fs::create_directory(tmp / "emptydir");
    CHECK_THROWS_WITH(store.import(tmp / "emptydir", ImageRef::parse("e")), Catch::Contains("contains no files"));
    CHECK(store_contents(tmp / "images").empty());
    // A truncated archive fails part-way through and still leaves nothing.
    const std::string big = tmp / "big.tar";
    write_tar(big, {file_entry("a", std::string(100000, 'a')), file_entry("b", std::string(100000, 'b'))});
    fs::resize_file(big, 150000);
    CHECK_THROWS_AS(store.import(big, ImageRef::parse("e")), srl::Error);
    CHECK(store_contents(tmp / "images").empty());
}

TEST_CASE("images: list, get and remove", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    CHECK(store.list().empty());  // the store does not exist yet
    const std::string tar = tmp / "t.tar";
    write_tar(tar, {file_entry("f", "x")});
    for (const char* ref : {"lab/os:1", "b", "a:2", "a:1", "lab:os", "lab/os:rootfs"}) store.import(tar, ImageRef::parse(ref));

    std::vector<std::string> names;
    for (const auto& img : store.list()) names.push_back(img.ref.str());
    CHECK(names == std::vector<std::string>{"a:1", "a:2", "b:latest", "lab:os", "lab/os:1", "lab/os:rootfs"});
    CHECK(store.get(ImageRef::parse("lab/os:rootfs")).size_bytes == 1);

    CHECK_THROWS_WITH(store.get(ImageRef::parse("nope:1")), "no such image: nope:1");
    CHECK_FALSE(store.find(ImageRef::parse("a:3")));
    CHECK_THROWS_WITH(store.remove(ImageRef::parse("nope:1")), "no such image: nope:1");

    store.remove(ImageRef::parse("lab/os:1"));
    store.remove(ImageRef::parse("lab/os:rootfs"));
    CHECK_FALSE(fs::exists(tmp / "images/lab/os"));  // empty name directories go too
    CHECK(store.find(ImageRef::parse("lab:os")));
    store.remove(ImageRef::parse("lab:os"));
    store.remove(ImageRef::parse("a:1"));
    CHECK_FALSE(fs::exists(tmp / "images/lab"));
    names.clear();
    for (const auto& img : store.list()) names.push_back(img.ref.str());
    CHECK(names == std::vector<std::string>{"a:2", "b:latest"});
    CHECK(store_contents(tmp / "images") ==
          std::vector<std::string>{"a", "a/@2", "a/@2/image.json", "a/@2/rootfs", "a/@2/rootfs/f", "b", "b/@latest",
                                   "b/@latest/image.json", "b/@latest/rootfs", "b/@latest/rootfs/f"});
}

TEST_CASE("images: re-importing a tag replaces it atomically", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const auto ref = ImageRef::parse("x:1");
    const std::string v1 = tmp / "v1.tar", v2 = tmp / "v2.tar", bad = tmp / "bad.tar";
    write_tar(v1, {file_entry("version", "1"), file_entry("only-in-1", "")});
    write_tar(v2, {file_entry("version", "22")});
    write_tar(bad, {file_entry("version", "3"), file_entry("../escape", "")});

    auto first = store.import(v1, ref);
    // Held open across the replacement: a reader of the old image keeps a complete tree.
    const std::string old_dir = first.rootfs.string();
    auto second = store.import(v2, ref);
    CHECK(second.rootfs == first.rootfs);
    CHECK(read_file(second.rootfs.string() + "/version") == "22");
    CHECK_FALSE(fs::exists(second.rootfs / "only-in-1"));
    CHECK(second.size_bytes == 2);
    CHECK(store.get(ref).size_bytes == 2);
    CHECK(store_contents(tmp / "images") ==
          std::vector<std::string>{"x", "x/@1", "x/@1/image.json", "x/@1/rootfs", "x/@1/rootfs/version"});

    // A failed re-import leaves the old image exactly as it was.
    CHECK_THROWS_WITH(store.import(bad, ref), "unsafe path in archive: ../escape");
    CHECK(read_file(old_dir + "/version") == "22");
    CHECK(store_contents(tmp / "images") ==
          std::vector<std::string>{"x", "x/@1", "x/@1/image.json", "x/@1/rootfs", "x/@1/rootfs/version"});
}

TEST_CASE("images: refs not made by parse cannot escape the store", "[images]") {
    TempDir tmp;
    ImageStore store(tmp / "images");
    CHECK_THROWS_AS(store.find(ImageRef{"../../etc", "x"}), srl::Error);
    CHECK_THROWS_AS(store.import(tmp.path(), ImageRef{"a", "../b"}), srl::Error);
    CHECK_THROWS_AS(store.remove(ImageRef{"a/../../b", "1"}), srl::Error);
}
