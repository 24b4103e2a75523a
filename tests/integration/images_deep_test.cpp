// Deep trees (issue 14): a 4,000-deep tree, twice as deep as a path can name (PATH_MAX), imports
// whole and `rmi` removes it whole, under the usual limit of 1,024 open files. This binary has a
// short ctest TIMEOUT of its own (tests/CMakeLists.txt): extraction used to resolve every entry's
// directory from the root, which took 95 s at this depth; it now takes well under a second.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "../support/proc.hpp"
#include "images_helpers.hpp"
#include "launcher/fd.hpp"

using namespace test;
using namespace images_test;
namespace fs = std::filesystem;

namespace {

constexpr int kDepth = 4000;
constexpr int kSide = 2000;  // where a side branch leaves the main one

std::string chain(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += "d/";
    return s;
}

// The main branch d/d/.../d (0750, listed), a side branch half-way down, back to the main one,
// a hard link from the bottom to the side branch, and entries at the top again at the end: the
// extraction's way down has to go up and down again in the middle and at the end.
std::vector<Entry> deep_entries() {
    std::vector<Entry> e;
    for (int i = 1; i <= kDepth; ++i) {
        e.push_back(dir_entry(chain(i), 0750));
        if (i == kSide) {
            e.push_back(dir_entry(chain(i) + "side/"));
            e.push_back(file_entry(chain(i) + "side/x", "side\n"));
        }
    }
    e.push_back(file_entry(chain(kDepth) + "deepest", "the bottom\n"));
    e.push_back(hardlink_entry(chain(kDepth) + "link", chain(kSide) + "side/x"));
    e.push_back(file_entry("top", "top\n"));
    e.push_back(file_entry("d/late", "late\n"));
    return e;
}

// RLIMIT_NOFILE's usual soft limit, for the processes started meanwhile.
class FdLimit {
public:
    explicit FdLimit(rlim_t soft) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        rlimit l = saved_;
        l.rlim_cur = std::min(soft, saved_.rlim_max);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &l) == 0);
    }
    ~FdLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_;
};

// `depth` levels of "d" below dir, one fd open at a time (the path is too long to open).
srl::Fd open_down(const std::string& dir, int depth) {
    srl::Fd cur(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(cur);
    for (int i = 0; i < depth; ++i) {
        srl::Fd next(::openat(cur.get(), "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) FAIL("no directory d at depth " << i + 1 << " of " << dir);
        cur = std::move(next);
    }
    return cur;
}

std::string read_at(int dir, const char* name) {
    srl::Fd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    REQUIRE(fd);
    char buf[64];
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    REQUIRE(n >= 0);
    return std::string(buf, static_cast<std::size_t>(n));
}

struct stat stat_of(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st;
}

}  // namespace

TEST_CASE("images: a 4,000-deep tree imports whole and rmi removes it whole", "[images][deep]") {
    require_root();
    TempDir tmp;
    const std::string tar = tmp / "deep.tar.gz", store = tmp / "store";
    write_tar(tar, deep_entries(), Filter::gzip);
    const auto srl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", store});
        return run(args);
    };
    FdLimit limit(1024);

    auto imported = srl({"import", tar, "deep:1"});
    INFO(imported.err);
    REQUIRE(imported.status == 0);
    const std::string rootfs = store + "/images/deep/@1/rootfs";
    {
        srl::Fd bottom = open_down(rootfs, kDepth);
        CHECK(read_at(bottom.get(), "deepest") == "the bottom\n");
        CHECK(read_at(bottom.get(), "link") == "side\n");
        struct stat link {};
        REQUIRE(::fstatat(bottom.get(), "link", &link, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK(link.st_nlink == 2);
        // Modes and times wait until a directory's content is written: applied at every depth.
        for (int depth : {1, kSide, kDepth}) {
            INFO("depth " << depth);
            const struct stat st = stat_of(open_down(rootfs, depth).get());
            CHECK((st.st_mode & 07777) == 0750);
            CHECK(st.st_mtime == 1700000000);
        }
        srl::Fd side = open_down(rootfs, kSide);
        srl::Fd side_dir(::openat(side.get(), "side", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        REQUIRE(side_dir);
        CHECK(read_at(side_dir.get(), "x") == "side\n");
        CHECK(read_file(rootfs + "/top") == "top\n");
        CHECK(read_file(rootfs + "/d/late") == "late\n");
    }
    CHECK(srl({"images"}).out.find("deep") != std::string::npos);

    auto removed = srl({"rmi", "deep:1"});
    INFO(removed.err);
    CHECK(removed.status == 0);
    // Nothing at all: no image, and no .rm-* directory that the removal gave up on.
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(store + "/images")) left.push_back(e.path().filename());
    CHECK(left.empty());
}
