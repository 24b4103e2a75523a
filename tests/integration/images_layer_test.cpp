// apply_layer: OCI image layers built here as tars in memory, applied one over the other into
// a plain directory, as fetch/ applies them into a staging tree. Whiteouts, opaque directories,
// replacement rules, metadata, and every way a layer could reach outside the tree.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <map>

#include "../support/proc.hpp"
#include "images/layer.hpp"
#include "images_helpers.hpp"
#include "launcher/error.hpp"

using namespace test;
using namespace images_test;
namespace fs = std::filesystem;

namespace {

// A layer as fetch/ hands it over once decompressed: plain tar bytes.
std::string layer_tar(const std::vector<Entry>& entries, const Xattrs& xattrs = {}) {
    std::string out;
    srl::ArchiveWriter a(archive_write_new());
    REQUIRE(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK);
    auto append = [](archive*, void* buf, const void* data, std::size_t n) -> la_ssize_t {
        static_cast<std::string*>(buf)->append(static_cast<const char*>(data), n);
        return static_cast<la_ssize_t>(n);
    };
    REQUIRE(archive_write_open(a.get(), &out, nullptr, append, nullptr) == ARCHIVE_OK);
    write_entries(a.get(), entries, xattrs);
    REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
    return out;
}

srl::UnpackStats apply_layer_to(const std::string& root, const std::vector<Entry>& entries, const Xattrs& xattrs = {}) {
    const std::string bytes = layer_tar(entries, xattrs);
    srl::ArchiveReader a(archive_read_new());
    archive_read_support_format_tar(a.get());
    REQUIRE(archive_read_open_memory(a.get(), bytes.data(), bytes.size()) == ARCHIVE_OK);
    srl::Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(fd);
    return srl::apply_layer(a.get(), fd.get());
}

// A lower tree, an empty directory next to it to check nothing lands outside, and a file there
// that nothing may delete.
struct Layers {
    TempDir tmp;
    std::string root = tmp / "root", outside = tmp / "outside";
    Layers() {
        fs::create_directory(root);
        fs::create_directory(outside);
        write_file(outside + "/victim", "untouched");
    }
    std::vector<std::string> tree() const { return store_contents(root); }
    void require_outside_untouched() const {
        CHECK(store_contents(outside) == std::vector<std::string>{"victim"});
        CHECK(read_file(outside + "/victim") == "untouched");
    }
};

Entry with_mtime(Entry e, time_t mtime) {
    e.mtime = mtime;
    return e;
}

}  // namespace

TEST_CASE("layers: a whiteout deletes a file, a symlink or a whole tree of a lower layer", "[images][layers]") {
    require_root();
    Layers l;
    apply_layer_to(l.root, {dir_entry("etc"), file_entry("etc/keep", "k"), file_entry("etc/gone", "g"), symlink_entry("link", "/etc"),
                   dir_entry("dir"), dir_entry("dir/a"), dir_entry("dir/a/b"), file_entry("dir/a/b/c", "c"),
                   file_entry("dir/x", "x"), symlink_entry("dir/a/out", l.outside), symlink_entry("dir/a/victim", l.outside + "/victim")});
    const auto stats = apply_layer_to(l.root, {file_entry(".wh.etc-is-not-here", ""), file_entry("etc/.wh.gone", ""),
                                      file_entry(".wh.link", ""), file_entry(".wh.dir", ""), file_entry("etc/.wh.never-was", ""),
                                      file_entry("missing/.wh.x", ""), file_entry("etc/new", "n")});
    CHECK(l.tree() == std::vector<std::string>{"etc", "etc/keep", "etc/new"});
    CHECK(stats.entries == 1);  // whiteouts are no entries of the image
    CHECK_FALSE(fs::exists(l.root + "/missing"));
    l.require_outside_untouched();
}

TEST_CASE("layers: an opaque directory hides what lower layers put in it, keeps this layer's own", "[images][layers]") {
    require_root();
    Layers l;
    apply_layer_to(l.root, {dir_entry("d"), file_entry("d/old1", "1"), dir_entry("d/sub"), file_entry("d/sub/old2", "2"),
                   dir_entry("d/keep"), file_entry("d/keep/old3", "3"), symlink_entry("d/out", l.outside),
                   dir_entry("other"), file_entry("other/f", "f")});
    const Entry marker = file_entry("d/.wh..wh..opq", "");
    std::vector<Entry> upper;
    SECTION("marker before the directory's entries") {
        upper = {dir_entry("d", 0750), marker, file_entry("d/new1", "n"), dir_entry("d/keep"), file_entry("d/keep/new3", "n")};
    }
    SECTION("marker after them") {
        upper = {dir_entry("d", 0750), file_entry("d/new1", "n"), dir_entry("d/keep"), file_entry("d/keep/new3", "n"), marker};
    }
    SECTION("marker in between, and a parent this layer does not list") {
        upper = {file_entry("d/new1", "n"), marker, file_entry("d/keep/new3", "n"), dir_entry("d", 0750)};
    }
    apply_layer_to(l.root, upper);
    CHECK(l.tree() == std::vector<std::string>{"d", "d/keep", "d/keep/new3", "d/new1", "other", "other/f"});
    CHECK((lstat_of(l.root + "/d").st_mode & 07777) == 0750);
    CHECK(read_file(l.root + "/d/keep/new3") == "n");
    l.require_outside_untouched();

    // An opaque marker at the top hides every lower entry.
    apply_layer_to(l.root, {file_entry("top", "t"), file_entry(".wh..wh..opq", "")});
    CHECK(l.tree() == std::vector<std::string>{"top"});
}

TEST_CASE("layers: an entry replaces what is at its path, but a directory over a directory merges", "[images][layers]") {
    require_root();
    Layers l;
    apply_layer_to(l.root, {dir_entry("a"), file_entry("a/x", "x"), dir_entry("a/y"), file_entry("a/y/z", "z"), symlink_entry("a/out", l.outside),
                   file_entry("b", "file b"), dir_entry("c", 0700), file_entry("c/keep", "k"), symlink_entry("s", "target"),
                   file_entry("f", "file f"), symlink_entry("t", l.outside), file_entry("dev0", "was a file")});
    Entry c = with_mtime(dir_entry("c", 0751), 1500000000);
    c.uid = 42;
    c.gid = 43;
    Entry fifo{"dev0", AE_IFIFO, "", 0620};
    apply_layer_to(l.root, {file_entry("a", "now a file"), dir_entry("b"), file_entry("b/inner", "i"), c, file_entry("c/added", "+"),
                   symlink_entry("f", "elsewhere"), file_entry("s", "now a file"), dir_entry("t"), file_entry("t/in", "in"), fifo});
    CHECK(l.tree() == std::vector<std::string>{"a", "b", "b/inner", "c", "c/added", "c/keep", "dev0", "f", "s", "t", "t/in"});
    CHECK(read_file(l.root + "/a") == "now a file");
    CHECK(fs::is_directory(fs::symlink_status(l.root + "/b")));
    const auto cst = lstat_of(l.root + "/c");
    CHECK((cst.st_mode & 07777) == 0751);
    CHECK(cst.st_mtime == 1500000000);
    CHECK(cst.st_uid == 42);
    CHECK(cst.st_gid == 43);
    CHECK(read_file(l.root + "/c/keep") == "k");
    CHECK(fs::read_symlink(l.root + "/f") == "elsewhere");
    CHECK(fs::is_regular_file(fs::symlink_status(l.root + "/s")));
    CHECK(fs::is_directory(fs::symlink_status(l.root + "/t")));
    CHECK(S_ISFIFO(lstat_of(l.root + "/dev0").st_mode));
    l.require_outside_untouched();

    // And back: a file where this layer's directory was, and a directory where a file was.
    apply_layer_to(l.root, {file_entry("b", "a file again"), dir_entry("a"), file_entry("a/again", "")});
    CHECK(read_file(l.root + "/b") == "a file again");
    CHECK(fs::is_regular_file(l.root + "/a/again"));
}

TEST_CASE("layers: links, devices, owners, modes, times and capabilities are kept", "[images][layers]") {
    require_root();
    Layers l;
    apply_layer_to(l.root, {dir_entry("bin"), file_entry("bin/tool", "tool"), dir_entry("dev")});

    Entry ping = with_mtime(file_entry("usr/bin/ping", "ping", 04755), 1400000000);
    ping.uid = 1234;
    ping.gid = 5678;
    Entry null{"dev/null", AE_IFCHR, "", 0666};
    null.rdev = makedev(1, 3);
    null.gid = 5;
    Entry lib = with_mtime(dir_entry("usr/lib", 0710), 1300000000);
    // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted = CAP_NET_RAW (13), inheritable 0.
    std::string cap(20, '\0');
    const std::uint32_t cap_words[5] = {0x02000001u, 1u << 13, 0, 0, 0};
    std::memcpy(cap.data(), cap_words, sizeof cap_words);
    const Xattrs xattrs = {{"usr/bin/ping", {{"security.capability", cap}, {"user.srl", "file"}}}, {"usr/lib", {{"user.srl", "dir"}}}};

    const auto stats = apply_layer_to(l.root, {hardlink_entry("usr/bin/tool2", "bin/tool"), symlink_entry("abs", "/etc/passwd"),
                                      symlink_entry("rel", "../../x"), null, ping, lib},
                             xattrs);
    CHECK(stats.entries == 6);
    CHECK(stats.regular_bytes == 4);

    const auto tool = lstat_of(l.root + "/bin/tool");
    CHECK(lstat_of(l.root + "/usr/bin/tool2").st_ino == tool.st_ino);
    CHECK(tool.st_nlink == 2);
    CHECK(fs::read_symlink(l.root + "/abs") == "/etc/passwd");
    CHECK(fs::read_symlink(l.root + "/rel") == "../../x");
    const auto n = lstat_of(l.root + "/dev/null");
    CHECK(S_ISCHR(n.st_mode));
    CHECK(n.st_rdev == makedev(1, 3));
    CHECK((n.st_mode & 07777) == 0666);
    CHECK(n.st_gid == 5);
    const auto p = lstat_of(l.root + "/usr/bin/ping");
    CHECK((p.st_mode & 07777) == 04755);
    CHECK(p.st_uid == 1234);
    CHECK(p.st_gid == 5678);
    CHECK(p.st_mtime == 1400000000);
    const auto d = lstat_of(l.root + "/usr/lib");
    CHECK((d.st_mode & 07777) == 0710);
    CHECK(d.st_mtime == 1300000000);

    char value[64] = {};
    const ssize_t len = ::getxattr((l.root + "/usr/bin/ping").c_str(), "security.capability", value, sizeof value);
    REQUIRE(len >= 20);  // 24 (revision 3) inside a user namespace
    std::uint32_t permitted;
    std::memcpy(&permitted, value + 4, sizeof permitted);
    CHECK(permitted == 1u << 13);
    if (::getxattr((l.root + "/usr/bin/ping").c_str(), "user.srl", value, sizeof value) >= 0) {
        CHECK(::getxattr((l.root + "/usr/lib").c_str(), "user.srl", value, sizeof value) == 3);
        CHECK(std::string(value, 3) == "dir");
    }
}

TEST_CASE("layers: every way out of the tree is refused, naming the path", "[images][layers]") {
    require_root();
    Layers l;
    const std::string passwd_before = read_file("/etc/passwd");
    const auto passwd_links = lstat_of("/etc/passwd").st_nlink;
    apply_layer_to(l.root, {dir_entry("etc"), file_entry("etc/ok", "ok"), symlink_entry("out", l.outside),
                   symlink_entry("up", "../../../../../../../.." + l.outside), symlink_entry("sys", "/etc"),
                   dir_entry("d"), symlink_entry("d/victim", l.outside + "/victim")});
    const auto before = l.tree();

    auto refused = [&](const std::vector<Entry>& layer, const std::string& message) {
        INFO("expected: " << message);
        CHECK_THROWS_WITH(apply_layer_to(l.root, layer), message);
        l.require_outside_untouched();
    };
    refused({file_entry("../evil", "x")}, "unsafe path in archive: ../evil");
    refused({file_entry("etc/../../evil", "x")}, "unsafe path in archive: etc/../../evil");
    refused({file_entry(l.outside + "/evil", "x")}, "unsafe path in archive: " + l.outside + "/evil");
    // A symlink a lower layer planted must not redirect a later layer's writes.
    refused({file_entry("out/evil", "x")}, "unsafe path in archive: out/evil (goes through symlink out)");
    refused({dir_entry("up/sub")}, "unsafe path in archive: up/sub/ (goes through symlink up)");
    refused({file_entry("sys/passwd", "x")}, "unsafe path in archive: sys/passwd (goes through symlink sys)");
    // Whiteouts are never followed through symlinks either.
    refused({file_entry("out/.wh.victim", "")}, "unsafe path in archive: out/.wh.victim (goes through symlink out)");
    refused({file_entry("out/.wh..wh..opq", "")}, "unsafe path in archive: out/.wh..wh..opq (goes through symlink out)");
    refused({file_entry(".wh..", "")}, "unsafe path in archive: .wh..");
    refused({file_entry("etc/.wh...", "")}, "unsafe path in archive: etc/.wh...");
    refused({file_entry("../.wh.outside", "")}, "unsafe path in archive: ../.wh.outside");
    // Hard links to outside, directly or through a symlink.
    refused({hardlink_entry("h", "../outside/victim")}, "unsafe hard link in archive: h -> ../outside/victim");
    refused({hardlink_entry("h", l.outside + "/victim")}, "unsafe hard link in archive: h -> " + l.outside + "/victim");
    refused({hardlink_entry("h", "out/victim")}, "unsafe hard link in archive: h -> out/victim (goes through symlink out)");
    refused({hardlink_entry("h", "sys/passwd")}, "unsafe hard link in archive: h -> sys/passwd (goes through symlink sys)");
    CHECK(lstat_of("/etc/passwd").st_nlink == passwd_links);
    CHECK(read_file("/etc/passwd") == passwd_before);
    CHECK(l.tree() == before);
    // Nor a symlink from the same layer (which was written, as a layer's earlier entries are).
    refused({symlink_entry("etc/in", l.outside), file_entry("etc/in/evil", "x")},
            "unsafe path in archive: etc/in/evil (goes through symlink etc/in)");

    // What the symlinks point to is never deleted: not when the link is whited out, nor when a
    // directory holding them goes, nor when an entry replaces them.
    apply_layer_to(l.root, {file_entry(".wh.out", ""), file_entry(".wh.d", ""), file_entry("up", "now a file"), dir_entry("sys")});
    CHECK(l.tree() == std::vector<std::string>{"etc", "etc/in", "etc/ok", "sys", "up"});
    l.require_outside_untouched();
}
