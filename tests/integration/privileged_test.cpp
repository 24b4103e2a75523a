// --privileged (issue 6): every capability srlaunch holds, no seccomp filter, no masked or
// read-only /proc paths, /sys and the cgroup hierarchies writable, every host device node in
// the container's /dev and a devices cgroup that allows them all. Each check is made against
// a default container too, so a test cannot pass because the default got looser.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "../support/alpine_store.hpp"
#include "cgroup_helpers.hpp"
#include "launcher/devices.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

std::string status_field(const std::string& status, const std::string& key) {
    auto at = status.find(key + ":\t");
    REQUIRE(at != std::string::npos);
    auto start = at + key.size() + 2;
    return status.substr(start, status.find('\n', start) - start);
}

// "MOUNTPOINT OPTIONS" for each line of a mountinfo.
std::map<std::string, std::string> mount_options(const std::string& mountinfo) {
    std::map<std::string, std::string> out;
    std::istringstream in(mountinfo);
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string id, parent, dev, root, point, opts;
        f >> id >> parent >> dev >> root >> point >> opts;
        out[point] = opts;
    }
    return out;
}

bool read_only(const std::string& opts) { return opts.rfind("ro", 0) == 0 && (opts.size() == 2 || opts[2] == ','); }

}  // namespace

TEST_CASE("privileged: every capability srlaunch holds, in PID 1 and the workload, no seccomp filter", "[privileged]") {
    AlpineStore s;
    // "Every" is what this process's bounding set holds: a sandbox may have taken some away.
    std::string host_bounding = status_field(read_file("/proc/self/status"), "CapBnd");
    auto r = s.in_alpine({"--privileged"}, {"sh", "-c", "cat /proc/self/status; echo ===; cat /proc/1/status"});
    REQUIRE(r.status == 0);
    auto split = r.out.find("===\n");
    REQUIRE(split != std::string::npos);
    for (const std::string& status : {r.out.substr(0, split), r.out.substr(split + 4)}) {
        INFO(status);
        for (const char* set : {"CapBnd", "CapPrm", "CapEff"}) CHECK(status_field(status, set) == host_bounding);
        CHECK(status_field(status, "CapInh") == "0000000000000000");
        CHECK(status_field(status, "CapAmb") == "0000000000000000");
        CHECK(status_field(status, "Seccomp") == "0");
        CHECK(status_field(status, "NoNewPrivs") == "0");
    }
    // --cap-drop means nothing to a privileged container, as with docker.
    auto dropped = s.in_alpine({"--privileged", "--cap-drop", "ALL"}, {"cat", "/proc/self/status"});
    CHECK(status_field(dropped.out, "CapEff") == host_bounding);
    // The default container, for contrast: docker's 14 and the filter.
    auto plain = s.in_alpine({}, {"cat", "/proc/self/status"});
    CHECK(status_field(plain.out, "CapEff") == "00000000a80425fb");
    CHECK(status_field(plain.out, "Seccomp") == "2");
}

TEST_CASE("privileged: no masked or read-only /proc paths, /sys and cgroups writable", "[privileged]") {
    AlpineStore s;
    const std::string script = "cat /proc/self/mountinfo; echo ===; wc -c < /proc/timer_list; ls /sys/firmware | wc -l";
    auto priv = s.in_alpine({"--privileged"}, {"sh", "-c", script});
    auto plain = s.in_alpine({}, {"sh", "-c", script});
    REQUIRE(priv.status == 0);
    REQUIRE(plain.status == 0);
    auto mounts = [](const Result& r) { return mount_options(r.out.substr(0, r.out.find("===\n"))); };
    auto tail = [](const Result& r) { return r.out.substr(r.out.find("===\n") + 4); };

    auto p = mounts(priv), d = mounts(plain);
    INFO("privileged:\n" << priv.out << "default:\n" << plain.out);
    // Nothing mounted over anything in /proc: /proc/sys, sysrq-trigger... are the host's.
    for (const auto& [point, opts] : p) CHECK(point.rfind("/proc/", 0) != 0);
    CHECK(d.count("/proc/sys"));
    CHECK(read_only(d["/proc/sys"]));
    CHECK(d.count("/proc/timer_list"));  // masked (bound to /dev/null)
    // timer_list and /sys/firmware have something to show on every x86 kernel.
    std::istringstream pt(tail(priv)), dt(tail(plain));
    long p_timer = 0, p_firmware = 0, d_timer = -1, d_firmware = -1;
    pt >> p_timer >> p_firmware;
    dt >> d_timer >> d_firmware;
    CHECK(p_timer > 0);
    CHECK(p_firmware > 0);
    CHECK(d_timer == 0);
    CHECK(d_firmware == 0);

    REQUIRE(p.count("/sys"));
    CHECK_FALSE(read_only(p["/sys"]));
    CHECK(read_only(d["/sys"]));
    // The hierarchies: /sys/fs/cgroup/* on v1 and hybrid hosts (under a tmpfs that stays
    // read-only), /sys/fs/cgroup itself on v2.
    auto is_hierarchy = [](const std::string& point) { return point.rfind("/sys/fs/cgroup/", 0) == 0; };
    bool v2_only = std::none_of(p.begin(), p.end(), [&](const auto& m) { return is_hierarchy(m.first); });
    int hierarchies = 0;
    for (const auto& [point, opts] : p)
        if (v2_only ? point == "/sys/fs/cgroup" : is_hierarchy(point)) {
            ++hierarchies;
            CHECK_FALSE(read_only(opts));
            CHECK(read_only(d[point]));
        }
    CHECK(hierarchies > 0);
}

TEST_CASE("privileged: every host device node, usable, the devices cgroup allows all", "[privileged]") {
    AlpineStore s;
    // The host's nodes as the launcher lists them, against what the container's /dev holds.
    std::set<std::string> host;
    for (const auto& d : srl::host_devices()) {
        std::ostringstream line;
        line << d.container_path << ' ' << d.type << ' ' << d.major << ':' << d.minor;
        host.insert(line.str());
    }
    REQUIRE(host.count("/dev/null c 1:3"));
    auto r = s.in_alpine({"--privileged"},
                         {"sh", "-c", "find /dev -path /dev/pts -prune -o \\( -type c -o -type b \\) -print | "
                                      "while read n; do stat -c '%n %F %t %T' $n; done"});
    REQUIRE(r.status == 0);
    std::set<std::string> inside;
    std::istringstream in(r.out);
    for (std::string name, kind, special, file, hex_major, hex_minor; in >> name >> kind;) {
        // "block special file" / "character special file"
        in >> special >> file >> hex_major >> hex_minor;
        std::ostringstream line;
        line << name << ' ' << (kind == "block" ? 'b' : 'c') << ' ' << std::stoul(hex_major, nullptr, 16) << ':'
             << std::stoul(hex_minor, nullptr, 16);
        inside.insert(line.str());
    }
    CHECK(inside == host);
    CHECK(inside.count("/dev/loop-control c 10:237") == host.count("/dev/loop-control c 10:237"));

    // The devices cgroup lets it use them: read a loop device the host attached.
    TempDir tmp;
    write_file(tmp / "disk", "srlaunch-privileged-marker");
    cgtest::LoopDevice loop(tmp / "disk", 1 << 20);
    auto read = s.in_alpine({"--privileged"}, {"head", "-c", "26", loop.path()});
    INFO(read.err);
    CHECK(read.status == 0);
    CHECK(read.out == "srlaunch-privileged-marker");
    auto denied = s.in_alpine({}, {"ls", loop.path()});
    CHECK(denied.status != 0);  // not even there by default

    // v1 (and hybrid) hosts: the rule as the kernel lists it.
    if (fs::exists("/sys/fs/cgroup/devices/devices.list")) {
        auto priv_list = s.in_alpine({"--privileged"}, {"cat", "/sys/fs/cgroup/devices/devices.list"});
        CHECK(priv_list.out == "a *:* rwm\n");
        auto plain_list = s.in_alpine({}, {"cat", "/sys/fs/cgroup/devices/devices.list"});
        CHECK(plain_list.out ==
              "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\n"
              "c 5:2 rwm\nc 136:* rwm\nc 10:200 rwm\n");
    }
}

TEST_CASE("privileged: ALL is what srlaunch's bounding set holds, a named missing one is an error", "[privileged]") {
    AlpineStore s;
    require_program("setpriv");
    // srlaunch started without CAP_SYS_NICE (bit 23) in its bounding set, as in a sandbox.
    auto without_nice = [&](std::vector<std::string> flags) {
        auto argv = s.alpine_argv(std::move(flags), {"grep", "CapEff", "/proc/self/status"});
        argv.insert(argv.begin(), {"setpriv", "--bounding-set", "-sys_nice"});
        return run(argv);
    };
    std::string bounding = status_field(read_file("/proc/self/status"), "CapBnd");
    char expected[17];
    std::snprintf(expected, sizeof expected, "%016llx", std::stoull(bounding, nullptr, 16) & ~(1ull << 23));
    for (const char* flag : {"--privileged", "--cap-add=ALL"}) {
        auto r = without_nice({flag});
        INFO(flag << ": " << r.err);
        CHECK(r.status == 0);
        CHECK(r.out == std::string("CapEff:\t") + expected + "\n");
    }
    auto named = without_nice({"--cap-add", "SYS_NICE"});
    CHECK(named.status == 125);
    CHECK(named.err == "srlaunch: cannot add capability \"SYS_NICE\": srlaunch's own bounding set lacks it\n");
}
