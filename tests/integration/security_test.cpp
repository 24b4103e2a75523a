// Capabilities and no_new_privs of the workload (issue 6, first part).
#include <catch2/catch.hpp>

#include "../support/alpine_store.hpp"

using namespace test;

namespace {
std::string status_line(const std::string& status, const std::string& key) {
    auto at = status.find("\n" + key + ":\t");
    REQUIRE(at != std::string::npos);
    auto start = at + key.size() + 3;
    return status.substr(start, status.find('\n', start) - start);
}
}  // namespace

TEST_CASE("security: root gets docker's 14 capabilities, nothing inheritable or ambient", "[security]") {
    AlpineStore s;
    auto r = s.in_alpine({}, {"cat", "/proc/self/status"});
    REQUIRE(r.status == 0);
    for (const char* set : {"CapPrm", "CapEff", "CapBnd"}) CHECK(status_line(r.out, set) == "00000000a80425fb");
    CHECK(status_line(r.out, "CapInh") == "0000000000000000");
    CHECK(status_line(r.out, "CapAmb") == "0000000000000000");
    CHECK(status_line(r.out, "NoNewPrivs") == "0");
    // What the missing CAP_SYS_ADMIN means in practice.
    auto mount = s.in_alpine({}, {"mount", "-t", "tmpfs", "none", "/mnt"});
    CHECK(mount.status != 0);
    CHECK(mount.err.find("permission denied") != std::string::npos);  // busybox: EPERM
}

TEST_CASE("security: a non-root user has no effective capabilities", "[security]") {
    AlpineStore s;
    auto r = s.in_alpine({"-u", "nobody", "--cap-add", "ALL"}, {"cat", "/proc/self/status"});
    REQUIRE(r.status == 0);
    CHECK(status_line(r.out, "CapEff") == "0000000000000000");
    CHECK(status_line(r.out, "CapPrm") == "0000000000000000");
}

TEST_CASE("security: --cap-add and --cap-drop, by any spelling, and ALL", "[security]") {
    AlpineStore s;
    auto added = s.in_alpine({"--cap-add", "sys_admin", "--cap-drop", "CAP_NET_RAW"}, {"cat", "/proc/self/status"});
    // + SYS_ADMIN (bit 21), - NET_RAW (bit 13)
    CHECK(status_line(added.out, "CapEff") == "00000000a82405fb");
    auto none = s.in_alpine({"--cap-drop", "ALL"}, {"sh", "-c", "grep CapEff /proc/self/status; chown nobody /etc/hostname"});
    CHECK(none.out == "CapEff:\t0000000000000000\n");
    CHECK(none.status != 0);
    auto bad = s.in_alpine({"--cap-add", "NOT_A_CAP"}, {"true"});
    CHECK(bad.status == 125);
    CHECK(bad.err == "srlaunch: unknown capability \"NOT_A_CAP\"\n");
}

TEST_CASE("security: --security-opt no-new-privileges sets NoNewPrivs", "[security]") {
    AlpineStore s;
    auto r = s.in_alpine({"--security-opt", "no-new-privileges"}, {"grep", "NoNewPrivs", "/proc/self/status"});
    CHECK(r.out == "NoNewPrivs:\t1\n");
    auto bad = s.in_alpine({"--security-opt", "apparmor=foo"}, {"true"});
    CHECK(bad.status == 125);
}

TEST_CASE("security: no launcher fd reaches the workload (CVE-2024-21626)", "[security]") {
    AlpineStore s;
    auto open_fds = s.in_alpine({}, {"sh", "-c", "for f in $(seq 3 64); do [ -e /proc/self/fd/$f ] && echo open=$f; done; true"});
    CHECK(open_fds.status == 0);
    CHECK(open_fds.out == "");
    // A working directory through an inherited fd would be a host directory: none is left to
    // point at, so the container fails to start instead.
    for (int fd = 3; fd < 10; ++fd) {
        INFO("fd " << fd);
        auto r = s.in_alpine({"-w", "/proc/self/fd/" + std::to_string(fd)}, {"pwd"});
        CHECK(r.status == 125);
        CHECK(r.out == "");
    }
}
