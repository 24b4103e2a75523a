// Hostile and broken sources for `import`: every way out of the image is refused, and a
// refused or failed import leaves nothing in the store.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "../support/proc.hpp"
#include "images/extract.hpp"
#include "images/store.hpp"
#include "images_helpers.hpp"
#include "launcher/error.hpp"

using namespace test;
using namespace images_test;
namespace fs = std::filesystem;
using srl::Image;
using srl::ImageRef;
using srl::ImageStore;

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
    Entry late = dir_entry("e", 0751);
    late.mtime = 1000;
    // A directory replaced by a symlink before its deferred mode and mtime are applied.
    write_tar(tar, {symlink_entry("f", victim), file_entry("f", "inside"), symlink_entry("d", tmp.path()),
                    dir_entry("d", 0751), late, symlink_entry("e", tmp.path())});
    const auto before = lstat_of(tmp.path());
    auto img = store.import(tar, ImageRef::parse("leaf"));
    CHECK(read_file(victim) == "original");
    CHECK(fs::is_regular_file(fs::symlink_status(img.rootfs / "f")));
    CHECK(read_file((img.rootfs / "f").string()) == "inside");
    CHECK(fs::is_directory(fs::symlink_status(img.rootfs / "d")));
    CHECK((lstat_of((img.rootfs / "d").string()).st_mode & 07777) == 0751);
    CHECK(fs::is_symlink(img.rootfs / "e"));
    const auto after = lstat_of(tmp.path());
    CHECK((after.st_mode & 07777) == (before.st_mode & 07777));  // mkdtemp's 0700, not 0751
    CHECK(after.st_mtime != 1000);
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

TEST_CASE("images: refs not made by parse cannot escape the store", "[images]") {
    TempDir tmp;
    ImageStore store(tmp / "images");
    CHECK_THROWS_AS(store.find(ImageRef{"../../etc", "x"}), srl::Error);
    CHECK_THROWS_AS(store.import(tmp.path(), ImageRef{"a", "../b"}), srl::Error);
    CHECK_THROWS_AS(store.remove(ImageRef{"a/../../b", "1"}), srl::Error);
}

TEST_CASE("images: an entry deeper than kMaxDepth components is refused, saying how deep", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string tar = tmp / "deep.tar";
    std::string path;
    for (std::size_t i = 0; i < srl::kMaxDepth; ++i) path += "d/";
    path += "f";
    // The entry before it was written, and goes with the refused import.
    write_tar(tar, {file_entry("ok", "ok"), file_entry(path, "too deep")});
    // The path is shortened in the message: one line, not 32 KiB.
    CHECK_THROWS_WITH(store.import(tar, ImageRef::parse("evil:1")),
                      "path in archive too deep: " + path.substr(0, 60) + "..." + path.substr(path.size() - 40) +
                          " (32769 bytes) has 16385 components, srlaunch stores at most 16384");
    CHECK(store_contents(store.root().string()).empty());
    CHECK_FALSE(store.find(ImageRef::parse("evil:1")));
}
