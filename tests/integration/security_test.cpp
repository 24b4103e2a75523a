// Capabilities and no_new_privs of the workload (issue 6, first part).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/alpine_store.hpp"
#include "../support/caller_fds.hpp"

using namespace test;
namespace fs = std::filesystem;

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

namespace {

// Where a host file lives: its file system ("MAJ:MIN", as mountinfo writes it) and its path
// inside that file system (the host's mount of it may not be its root).
struct FsPath {
    std::string dev, path;
};
FsPath fs_path(const std::string& file) {
    struct stat st {};
    REQUIRE(stat(file.c_str(), &st) == 0);
    std::string dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string best_point, best_root;
    for (std::string line; std::getline(mountinfo, line);) {
        std::istringstream f(line);
        std::string id, parent, mdev, root, point;
        f >> id >> parent >> mdev >> root >> point;
        bool under = point == "/" || file.rfind(point + "/", 0) == 0;
        if (mdev == dev && under && point.size() >= best_point.size()) best_point = point, best_root = root;
    }
    REQUIRE(!best_point.empty());
    std::string rest = best_point == "/" ? file : file.substr(best_point.size());
    return {dev, (fs::path(best_root) / fs::path(rest).relative_path()).lexically_normal().string()};
}

// Whether some mount in `mountinfo` shows `f`: a mount of its file system whose root is the
// file or a directory above it.
bool exposes(const std::string& mountinfo, const FsPath& f) {
    std::istringstream in(mountinfo);
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string id, parent, dev, root;
        fields >> id >> parent >> dev >> root;
        if (dev == f.dev && (root == "/" || root == f.path || f.path.rfind(root + "/", 0) == 0)) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("security: root with every capability cannot write the host's srlaunch or srinit (CVE-2019-5736)",
          "[security]") {
    AlpineStore s;
    const std::string launcher = fs::canonical(SRLAUNCH_PATH).string(), init = fs::canonical(srinit_path()).string();
    auto sha256 = [](const std::string& path) {
        auto r = run({"sha256sum", path});
        REQUIRE(r.status == 0);
        return r.out.substr(0, 64);
    };
    const std::string launcher_sum = sha256(launcher), init_sum = sha256(init);
    auto size = [](const std::string& p) { return std::to_string(fs::file_size(p)); };
    // Every way a workload could aim at a binary of the host: each visible process's exe (PID 1
    // is srinit; srlaunch itself is outside the PID namespace), opened for writing and written;
    // then every mount, and every file in the tree of either binary's size.
    const std::string script =
        "for p in /proc/[0-9]*; do echo \"$p $(readlink $p/exe) $(/sysprobe open-write $p/exe)\"; done\n"
        "echo \"self $(/sysprobe open-write /proc/self/exe)\"\n"
        "echo \"write $(/sysprobe write /proc/1/exe x)\"\n"
        "echo ===\n"
        "cat /proc/self/mountinfo\n"
        "echo ===\n"
        "find / \\( -path /proc -o -path /sys \\) -prune -o -type f \\( -size " + size(launcher) + "c -o -size " +
        size(init) + "c \\) -print | xargs -r sha256sum\n";
    // --cap-add ALL: everything short of --privileged, CAP_SYS_PTRACE (to open /proc/1/exe at
    // all) and CAP_DAC_OVERRIDE included.
    auto r = s.in_alpine({"--cap-add", "ALL", "-v", helper_path("sysprobe") + ":/sysprobe:ro"}, {"sh", "-c", script});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    auto first = r.out.find("===\n"), second = r.out.find("===\n", first + 4);
    REQUIRE(second != std::string::npos);
    // srinit runs from a sealed memfd, never from the host's file; every running binary refuses
    // writers (ETXTBSY) — and were that ever lifted, the memfd's F_SEAL_WRITE refuses writes.
    CHECK(r.out.substr(0, first) ==
          "/proc/1 /memfd:srinit (deleted) ETXTBSY\n"
          "/proc/2 /bin/busybox ETXTBSY\n"
          "self ETXTBSY\n"
          "write ETXTBSY\n");
    std::string mountinfo = r.out.substr(first + 4, second - first - 4);
    CHECK_FALSE(exposes(mountinfo, fs_path(launcher)));
    CHECK_FALSE(exposes(mountinfo, fs_path(init)));
    // The check above would see a mount of the binaries' directory (the sysprobe bind is one).
    CHECK(exposes(mountinfo, fs_path(helper_path("sysprobe"))));
    std::string same_size = r.out.substr(second + 4);
    CHECK(same_size.find(launcher_sum) == std::string::npos);
    CHECK(same_size.find(init_sum) == std::string::npos);

    CHECK(sha256(launcher) == launcher_sum);
    CHECK(sha256(init) == init_sum);
}

TEST_CASE("security: no caller fd reaches PID 1, an exec'd process or a -d monitor (CVE-2024-21626)", "[security]") {
    AlpineStore s;
    TempDir host;
    CallerFds caller(host.path());
    // CAP_SYS_PTRACE lets the container open /proc/1/fd/* of its PID 1, whose capabilities
    // exceed its own: what srinit holds is what the container could reach.
    for (const std::string userns : {"host", "auto"}) {
        INFO("--userns " << userns);
        auto r = run(s.alpine_argv({"--userns", userns, "--cap-add", "SYS_PTRACE"}, {"sh", "-c", caller.probe()}), caller.opts);
        INFO(r.err);
        CHECK(r.status == 0);
        CHECK(r.out == "0 1 2 ");  // srinit: its stdio only (its config fd is closed once read)
        CHECK(!fs::exists(host / "ESCAPED"));
    }

    auto started = run(s.argv({"run", "-d", "--cap-add", "SYS_PTRACE", "alpine:3.20", "sleep", "1000"}), caller.opts);
    REQUIRE(started.status == 0);
    std::string id = started.out.substr(0, 64);
    auto exec = run(s.argv({"exec", id, "sh", "-c", caller.probe()}), caller.opts);
    INFO(exec.err);
    CHECK(exec.status == 0);
    CHECK(exec.out == "0 1 2 ");
    CHECK(!fs::exists(host / "ESCAPED"));
    // The monitor holds none of them either: a caller's pipe must not stay open for the
    // container's lifetime.
    auto state = nlohmann::json::parse(read_file(s.path("containers/" + id + "/state.json")));
    pid_t monitor = state.at("monitorPid");
    for (int fd : caller.fds) {
        INFO("fd " << fd);
        std::string theirs = fs::path("/proc/" + std::to_string(monitor) + "/fd/" + std::to_string(fd));
        std::error_code ec;
        auto target = fs::read_symlink(theirs, ec);
        if (!ec) CHECK(target != fs::read_symlink("/proc/self/fd/" + std::to_string(fd)));
    }
    CHECK(s.srl({"rm", "-f", id}).status == 0);
}
