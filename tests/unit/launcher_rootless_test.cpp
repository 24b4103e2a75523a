// Rootless mode's pure parts: /etc/subuid parsing, the default map, what --uidmap may ask for,
// and which cgroup a rootless run may use, against a directory tree shaped like cgroupfs
// (the real v2 delegation runs in the v2 guest).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>

#include "launcher/error.hpp"
#include "launcher/rootless.hpp"

using namespace srl;
namespace fs = std::filesystem;

namespace {
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("rootless: subordinate ranges are the user's lines, by name or number, in order", "[unit][rootless]") {
    std::string text =
        "alice:100000:65536\n"
        "bob:165536:65536\n"
        "# a comment\n"
        "\n"
        "1000:300000:1000\n"
        "alice:bad:10\n"          // unparsable: skipped, as shadow does
        "alice:400000:0\n"        // empty: skipped
        "alice:4294967295:2\n"    // wraps: skipped
        "alice:500000:10\r\n";
    auto r = parse_subordinate_ids(text, "alice", 1000);
    REQUIRE(r.size() == 3);
    CHECK(r[0] == SubordinateRange{100000, 65536});
    CHECK(r[1] == SubordinateRange{300000, 1000});
    CHECK(r[2] == SubordinateRange{500000, 10});
    CHECK(parse_subordinate_ids(text, "carol", 1002).empty());
    CHECK(parse_subordinate_ids("", "alice", 1000).empty());
}

TEST_CASE("rootless: the default map puts the caller at 0 and the ranges above it", "[unit][rootless]") {
    CHECK(rootless_id_map(1000, {}) == std::vector<IdMapping>{{0, 1000, 1}});
    CHECK(rootless_id_map(1000, {{100000, 65536}, {300000, 1000}}) ==
          std::vector<IdMapping>{{0, 1000, 1}, {1, 100000, 65536}, {65537, 300000, 1000}});
    // A range holding the caller's own id would make the kernel refuse the whole map.
    CHECK(rootless_id_map(1000, {{900, 200}, {100000, 10}}) ==
          std::vector<IdMapping>{{0, 1000, 1}, {1, 100000, 10}});
    // The kernel's 340 lines.
    std::vector<SubordinateRange> many;
    for (uint32_t i = 0; i < 400; ++i) many.push_back({100000 + i * 10, 10});
    CHECK(rootless_id_map(1000, many).size() == 340);
}

TEST_CASE("rootless: --uidmap must keep 0 on the caller and stay in the ranges", "[unit][rootless]") {
    std::vector<SubordinateRange> ranges{{100000, 65536}, {165536, 100}};
    CHECK_NOTHROW(check_rootless_id_map({{0, 1000, 1}, {1, 100000, 1000}}, 1000, ranges, "--uidmap", "/etc/subuid"));
    // Adjacent ranges join, as newuidmap allows.
    CHECK_NOTHROW(check_rootless_id_map({{0, 1000, 1}, {1, 165000, 600}}, 1000, ranges, "--uidmap", "/etc/subuid"));
    CHECK(error_of([&] { check_rootless_id_map({{0, 1000, 1}, {1, 165000, 700}}, 1000, ranges, "--uidmap", "/etc/subuid"); }) ==
          "--uidmap 1:165000:700: host ids 165000-165699 are not yours to map (yours: 1000, 100000-165535, "
          "165536-165635 from /etc/subuid)");
    CHECK(error_of([&] { check_rootless_id_map({{0, 100000, 65536}}, 1000, ranges, "--uidmap", "/etc/subuid"); })
              .rfind("--uidmap must map container id 0 to your own id 1000", 0) == 0);
    // The caller's own id only once: newuidmap maps it with count 1 only.
    CHECK(!error_of([&] { check_rootless_id_map({{0, 1000, 2}}, 1000, ranges, "--gidmap", "/etc/subgid"); }).empty());
}

namespace {
struct FakeCgroupTree {
    fs::path root = fs::temp_directory_path() / ("srl-rl-" + std::to_string(::getpid()));
    fs::path slice = root / "user.slice/user-1000.slice/user@1000.service/app.slice";
    FakeCgroupTree() {
        fs::create_directories(slice / "run-1.scope");
        std::ofstream(slice / "cgroup.controllers") << "cpu memory pids\n";
        std::ofstream(slice / "cgroup.subtree_control") << "";
        std::ofstream(slice / "cgroup.procs") << "";
        std::ofstream(slice / "run-1.scope/cgroup.procs") << "4242\n";
    }
    ~FakeCgroupTree() { fs::remove_all(root); }
    RootlessCgroupHost host(CgroupLayout layout, uid_t uid) const {
        RootlessCgroupHost h;
        h.layout = layout;
        h.mount = root;
        h.own = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope";
        h.uid = uid;
        h.user = "alice";
        return h;
    }
};
}  // namespace

TEST_CASE("rootless: no resource flags, no cgroup, v1 and hybrid hosts refuse limits", "[unit][rootless]") {
    FakeCgroupTree t;
    Resources none;
    CHECK(!rootless_cgroup_parent(none, t.host(CgroupLayout::V1, getuid())));
    CHECK(!rootless_cgroup_parent(none, t.host(CgroupLayout::V2, getuid() + 1)));
    Resources mem;
    mem.memory = 32 << 20;
    CHECK(error_of([&] { rootless_cgroup_parent(mem, t.host(CgroupLayout::V1, getuid())); }) ==
          "--memory needs a cgroup, and this host does not delegate cgroups to user alice (cgroup v1)");
    CHECK(error_of([&] { rootless_cgroup_parent(mem, t.host(CgroupLayout::Hybrid, getuid())); }) ==
          "--memory needs a cgroup, and this host does not delegate cgroups to user alice (cgroup v1)");
    Resources pids;
    pids.pids_limit = 10;
    CHECK(error_of([&] { rootless_cgroup_parent(pids, t.host(CgroupLayout::V1, getuid())); })
              .rfind("--pids-limit needs a cgroup", 0) == 0);
}

TEST_CASE("rootless: cgroup v2 uses the delegated parent of the launcher's cgroup", "[unit][rootless]") {
    FakeCgroupTree t;
    Resources r;
    r.memory = 32 << 20;
    r.pids_limit = 10;
    // The tree belongs to the test's user: delegated to it, to nobody else.
    auto parent = rootless_cgroup_parent(r, t.host(CgroupLayout::V2, getuid()));
    REQUIRE(parent);
    CHECK(*parent == "/user.slice/user-1000.slice/user@1000.service/app.slice");
    CHECK(error_of([&] { rootless_cgroup_parent(r, t.host(CgroupLayout::V2, getuid() + 1)); }) ==
          "--memory needs a cgroup, and this host does not delegate cgroups to user alice (cgroup v2: "
          "/user.slice/user-1000.slice/user@1000.service/app.slice is not delegated; run srlaunch in a delegated "
          "scope, e.g. `systemd-run --user --scope srlaunch ...`)");
    // A controller the delegation does not include.
    Resources io;
    io.blkio_weight = 100;
    CHECK(error_of([&] { rootless_cgroup_parent(io, t.host(CgroupLayout::V2, getuid())); }) ==
          "--blkio-weight needs the io controller, which this host does not delegate to user alice (cgroup v2: "
          "/user.slice/user-1000.slice/user@1000.service/app.slice offers cpu memory pids)");
    // A parent with processes of its own cannot enable controllers for its children...
    std::ofstream(t.slice / "cgroup.procs") << "77\n";
    CHECK(error_of([&] { rootless_cgroup_parent(r, t.host(CgroupLayout::V2, getuid())); })
              .find("has processes of its own") != std::string::npos);
    // ...unless they are on already.
    std::ofstream(t.slice / "cgroup.subtree_control") << "memory pids\n";
    CHECK(rootless_cgroup_parent(r, t.host(CgroupLayout::V2, getuid())));
    // The root cgroup has no parent to use.
    auto at_root = t.host(CgroupLayout::V2, getuid());
    at_root.own = "/";
    CHECK(error_of([&] { rootless_cgroup_parent(r, at_root); }).find("the launcher runs in the root cgroup") !=
          std::string::npos);
}

TEST_CASE("rootless: the store is created 0700, parents included", "[unit][rootless]") {
    fs::path base = fs::temp_directory_path() / ("srl-store-" + std::to_string(::getpid()));
    fs::create_directories(base);
    chmod(base.c_str(), 0755);
    make_private_store(base / "share/srlaunch");
    struct stat st {};
    REQUIRE(stat((base / "share").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(stat((base / "share/srlaunch").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    // An existing directory is left as its owner made it.
    REQUIRE(stat(base.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0755);
    fs::remove_all(base);
}
