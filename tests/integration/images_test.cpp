// The image store and `import`: the real Alpine tarball, archives built here with libarchive,
// directory imports, listing, removal and atomic replacement.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "../support/proc.hpp"
#include "images/store.hpp"
#include "images_helpers.hpp"
#include "launcher/error.hpp"

using namespace test;
using namespace images_test;
namespace fs = std::filesystem;
using srl::Image;
using srl::ImageRef;
using srl::ImageStore;

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

