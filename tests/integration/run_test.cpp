// `srlaunch run`: real containers from the real Alpine fixture, imported into a temporary
// store, and from a busybox-static root built here.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/proc.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

using Store = AlpineStore;

std::string host_hostname() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

}  // namespace

TEST_CASE("seed 1: the hostname is the container's own", "[run]") {
    Store s;
    std::string before = host_hostname();
    auto r = s.in_alpine({"--hostname", "inner"}, {"hostname"});
    REQUIRE(r.status == 0);
    CHECK(r.out == "inner\n");
    // Changing it needs CAP_SYS_ADMIN (not in the default set, as in docker).
    auto denied = s.in_alpine({"--hostname", "inner"}, {"hostname", "other"});
    CHECK(denied.status == 1);
    CHECK(denied.err.find("Operation not permitted") != std::string::npos);
    auto changed = s.in_alpine({"--hostname", "inner", "--cap-add", "SYS_ADMIN"},
                               {"sh", "-c", "hostname other && hostname && cat /etc/hostname"});
    CHECK(changed.status == 0);
    CHECK(changed.out == "other\ninner\n");
    CHECK(host_hostname() == before);
    auto dflt = s.in_alpine({}, {"hostname"});
    CHECK(trim(dflt.out).size() == 12);
    CHECK(trim(dflt.out) != before);
}

TEST_CASE("seed 2: two containers with different user namespace maps at once", "[run]") {
    Store s;
    TempDir shared;
    chmod(shared.path().c_str(), 0777);
    write_file(shared / "unmapped", "x");
    REQUIRE(chown((shared / "unmapped").c_str(), 4'000'000, 4'000'000) == 0);
    auto start = [&](const std::string& base, const std::string& file) {
        std::string map = "0:" + base + ":65536";
        return std::make_unique<Child>(s.argv({"run", "--rm", "--uidmap", map, "--gidmap", map, "-v",
                                              shared.path() + ":/vol", "alpine:3.20", "sh", "-c",
                                              "id; cat /proc/self/uid_map; touch /vol/" + file +
                                                  "; stat -c %U:%G /vol/unmapped; sleep 1"}));
    };
    auto a = start("100000", "from-a");
    auto b = start("300000", "from-b");
    CHECK(a->wait() == 0);
    CHECK(b->wait() == 0);
    for (auto* c : {a.get(), b.get()}) {
        INFO(c->out() << c->err());
        CHECK(c->out().rfind("uid=0(root) gid=0(root)", 0) == 0);
        CHECK(c->out().find("nobody:nobody") != std::string::npos);
    }
    CHECK(a->out().find("0     100000      65536") != std::string::npos);
    CHECK(b->out().find("0     300000      65536") != std::string::npos);
    struct stat st {};
    REQUIRE(stat((shared / "from-a").c_str(), &st) == 0);
    CHECK(st.st_uid == 100000);
    CHECK(st.st_gid == 100000);
    REQUIRE(stat((shared / "from-b").c_str(), &st) == 0);
    CHECK(st.st_uid == 300000);
}

TEST_CASE("a user namespace container's root owns its root filesystem", "[run]") {
    Store s;
    // The image is idmapped: its root-owned files belong to the container's root.
    auto r = s.in_alpine({"--uidmap", "0:300000:65536"},
                         {"sh", "-c", "stat -c %U /etc/passwd && echo ok > /etc/written && cat /etc/written"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "root\nok\n");
    auto autons = s.in_alpine({"--userns", "auto"}, {"sh", "-c", "id -u; cat /proc/self/uid_map"});
    CHECK(autons.status == 0);
    CHECK(autons.out.find("0    1048576      65536") != std::string::npos);
    CHECK(count_entries(s.path("userns")) <= 1);  // only the lock file: the range was released
}

TEST_CASE("PID namespace: the container sees only its own processes", "[run]") {
    Store s;
    Child host_sleeper({"sleep", "43210"});
    auto r = s.in_alpine({}, {"ps", "-o", "pid,ppid,args"});
    REQUIRE(r.status == 0);
    INFO(r.out);
    CHECK(r.out.find("\n    1     0 srinit") != std::string::npos);
    CHECK(r.out.find("    2     1 ps -o pid,ppid,args") != std::string::npos);
    CHECK(r.out.find("43210") == std::string::npos);

    Child inside(s.argv({"run", "--rm", "alpine:3.20", "sh", "-c", "echo ready; exec sleep 54321"}));
    REQUIRE(inside.read_until("ready"));
    auto host_ps = run({"ps", "-eo", "args"});
    CHECK(host_ps.out.find("sleep 54321") != std::string::npos);
    kill(inside.pid(), SIGTERM);
    CHECK(inside.wait() == 143);
}

TEST_CASE("every namespace is new: ipc, mnt, net, uts, cgroup, pid", "[run]") {
    Store s;
    auto r = s.in_alpine({}, {"sh", "-c", "for n in ipc mnt net uts cgroup pid; do readlink /proc/self/ns/$n; done"});
    REQUIRE(r.status == 0);
    for (std::string ns : {"ipc", "mnt", "net", "uts", "cgroup", "pid"}) {
        std::string host = fs::read_symlink("/proc/self/ns/" + ns).string();
        CHECK(r.out.find(ns + ":[") != std::string::npos);
        CHECK(r.out.find(host) == std::string::npos);
    }
    auto net = s.in_alpine({}, {"sh", "-c", "ls /sys/class/net; ip link show lo"});
    CHECK(net.out.rfind("lo\n", 0) == 0);
    CHECK(net.out.find(",UP") != std::string::npos);
    auto cg = s.in_alpine({}, {"cat", "/proc/self/cgroup"});
    std::istringstream lines(cg.out);
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) CHECK(line.substr(line.rfind(':')) == ":/");
    CHECK(n > 0);
    auto hostnet = s.in_alpine({"--net", "host"}, {"readlink", "/proc/self/ns/net"});
    CHECK(trim(hostnet.out) == fs::read_symlink("/proc/self/ns/net").string());
}

TEST_CASE("the container has its own /proc, /sys, /dev and masked paths", "[run]") {
    Store s;
    auto r = s.in_alpine({}, {"sh", "-c",
                              "ls /dev | tr '\\n' ' '; echo; wc -c < /proc/timer_list; "
                              "(echo x > /proc/sys/kernel/hostname) 2>&1 || true"});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    for (std::string dev : {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue",
                            "fd", "stdin", "stdout", "stderr"})
        CHECK(r.out.find(dev + " ") != std::string::npos);
    CHECK(r.out.find("\n0\n") != std::string::npos);  // /proc/timer_list masked
    CHECK(r.out.find("Read-only file system") != std::string::npos);
    auto echo = s.in_alpine({}, {"sh", "-c", "echo hi > /dev/null && head -c 4 /dev/zero | wc -c"});
    CHECK(echo.out == "4\n");
}

TEST_CASE("overlay: writes stay in the container, --read-only refuses them", "[run]") {
    Store s;
    auto w = s.in_alpine({}, {"sh", "-c", "echo mine > /etc/newfile && rm /etc/alpine-release && cat /etc/newfile"});
    CHECK(w.out == "mine\n");
    CHECK(s.in_alpine({}, {"sh", "-c", "test ! -e /etc/newfile && cat /etc/alpine-release"}).out == "3.20.3\n");
    auto images = run({"sh", "-c", "find " + s.path("images") + " -name newfile | wc -l"});
    CHECK(trim(images.out) == "0");

    TempDir vol;
    auto ro = s.in_alpine({"--read-only", "-v", vol.path() + ":/data", "--tmpfs", "/scratch"},
                          {"sh", "-c", "touch /etc/x 2>&1; touch /data/ok /scratch/ok && echo writable"});
    CHECK(ro.out.find("Read-only file system") != std::string::npos);
    CHECK(ro.out.find("writable") != std::string::npos);
    CHECK(fs::exists(vol / "ok"));
    auto rov = s.in_alpine({"-v", vol.path() + ":/data:ro"}, {"touch", "/data/no"});
    CHECK(rov.status != 0);
    CHECK(!fs::exists(vol / "no"));
}

TEST_CASE("users, working directory and environment", "[run]") {
    Store s;
    CHECK(s.in_alpine({"-u", "nobody"}, {"id", "-u"}).out == "65534\n");
    CHECK(s.in_alpine({"-u", "1000:1000"}, {"id"}).out == "uid=1000 gid=1000 groups=1000\n");
    CHECK(s.in_alpine({"-u", "daemon"}, {"id", "-G"}).out == "2 1 4\n");  // supplementary groups set
    CHECK(s.in_alpine({"-w", "/tmp"}, {"pwd"}).out == "/tmp\n");
    CHECK(s.in_alpine({"-e", "A=1"}, {"sh", "-c", "echo $A"}).out == "1\n");
    auto env = s.in_alpine({}, {"env"}).out;
    CHECK(env.find("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n") != std::string::npos);
    CHECK(env.find("HOME=/root\n") != std::string::npos);
    CHECK(s.in_alpine({"-u", "nobody"}, {"sh", "-c", "echo $HOME"}).out == "/\n");
    CHECK(s.in_alpine({}, {"sh", "-c", "exit 3"}).status == 3);
}

TEST_CASE("bad input: clear errors, docker's exit statuses, nothing left behind", "[run]") {
    Store s;
    auto unknown = s.srl({"run", "--rm", "nosuch:image", "true"});
    CHECK(unknown.status == 125);
    CHECK(unknown.err.find("nosuch:image") != std::string::npos);
    auto badmap = s.in_alpine({"--uidmap", "0:100000"}, {"true"});
    CHECK(badmap.status == 125);
    CHECK(badmap.err.find("--uidmap") != std::string::npos);
    auto overlap = s.in_alpine({"--uidmap", "0:100000:1000", "--uidmap", "500:300000:10"}, {"true"});
    CHECK(overlap.status == 125);
    CHECK(overlap.err.find("overlaps") != std::string::npos);
    auto missing = s.in_alpine({}, {"/no/such/command"});
    CHECK(missing.status == 127);
    CHECK(missing.err.find("/no/such/command") != std::string::npos);
    auto flag = s.srl({"run", "--no-such-flag", "alpine:3.20"});
    CHECK(flag.status == 125);
    CHECK(std::count(flag.err.begin(), flag.err.end(), '\n') == 1);
    auto badvol = s.in_alpine({"-v", "relative:/x"}, {"true"});
    CHECK(badvol.status == 125);
    CHECK(count_entries(s.path("containers")) == 0);
}

TEST_CASE("a busybox-only --rootfs directory runs", "[run]") {
    require_root();
    require_program("busybox");
    TempDir root;
    fs::create_directories(root / "bin");
    std::string busybox = trim(run({"sh", "-c", "command -v busybox"}).out);
    fs::copy_file(busybox, root / "bin/busybox");
    for (const char* app : {"sh", "ls", "cat", "id"}) fs::create_symlink("busybox", root / (std::string("bin/") + app));
    TempDir store;
    auto r = run({SRLAUNCH_PATH, "--root", store.path(), "run", "--rm", "--rootfs", root.path(), "--hostname", "bb",
                  "/bin/sh", "-c", "cat /etc/hostname; ls /proc/self/exe >/dev/null && echo proc-ok"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "bb\nproc-ok\n");
}

TEST_CASE("run --boot-offset gives the container its own time namespace", "[run]") {
    Store s;
    auto r = s.in_alpine({"--boot-offset", "864000"}, {"cut", "-d.", "-f1", "/proc/uptime"});
    REQUIRE(r.status == 0);
    CHECK(std::stol(r.out) >= 864000);
}

TEST_CASE("leaks: 100 containers leave no mounts, fds, cgroups or directories behind", "[run]") {
    Store s;
    TempDir ids;
    auto mounts_before = read_file("/proc/self/mountinfo");
    size_t fds_before = count_entries("/proc/self/fd");
    for (int i = 0; i < 100; ++i) {
        auto r = s.in_alpine({"--cidfile", ids / std::to_string(i)}, {"true"});
        REQUIRE(r.status == 0);
    }
    CHECK(read_file("/proc/self/mountinfo") == mounts_before);
    CHECK(count_entries("/proc/self/fd") == fds_before);
    CHECK(count_entries(s.path("containers")) == 0);
    CHECK(count_entries(s.path("names")) == 0);
    // None of their cgroups is left in any hierarchy (other tests' containers may run now).
    std::string cgroups = run({"find", "/sys/fs/cgroup", "-type", "d", "-path", "*/srlaunch/*"}).out;
    for (int i = 0; i < 100; ++i) {
        std::string id = read_file(ids / std::to_string(i));
        REQUIRE(id.size() == 64);
        CHECK(cgroups.find(id) == std::string::npos);
    }
}

TEST_CASE("import refuses archives that escape the image, leaving nothing", "[run]") {
    Store s;
    require_program("tar");
    TempDir src;
    write_file(src / "passwd", "pw\n");
    auto evil = run({"tar", "-C", src.path(), "-cPf", src / "evil.tar", "--transform", "s,^passwd,../../etc/passwd,",
                     "passwd"});
    REQUIRE(evil.status == 0);
    fs::create_symlink("/", src / "link");
    REQUIRE(run({"tar", "-C", src.path(), "-cf", src / "sym.tar", "link"}).status == 0);
    REQUIRE(run({"tar", "-C", src.path(), "-rPf", src / "sym.tar", "--transform",
                 "s,^passwd,link/tmp/srlaunch-escaped," , "passwd"}).status == 0);
    auto images_before = run({"find", s.path("images")}).out;
    auto a = s.srl({"import", src / "evil.tar", "bad:1"});
    CHECK(a.status == 125);
    CHECK(a.err == "srlaunch: unsafe path in archive: ../../etc/passwd\n");
    auto b = s.srl({"import", src / "sym.tar", "bad:2"});
    CHECK(b.status == 125);
    CHECK(b.err.find("link/tmp/srlaunch-escaped") != std::string::npos);
    CHECK(!fs::exists("/tmp/srlaunch-escaped"));
    CHECK(run({"find", s.path("images")}).out == images_before);
}

TEST_CASE("srlaunch forwards SIGTERM to the container and enforces --stop-timeout", "[run]") {
    Store s;
    Child polite(s.argv({"run", "--rm", "alpine:3.20", "sh", "-c",
                         "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done"}));
    REQUIRE(polite.read_until("ready"));
    kill(polite.pid(), SIGTERM);
    CHECK(polite.wait() == 0);
    CHECK(polite.out().find("got-term") != std::string::npos);

    Child stubborn(s.argv({"run", "--rm", "--stop-timeout", "1", "alpine:3.20", "sh", "-c",
                           "trap '' TERM; echo ready; while :; do sleep 0.05; done"}));
    REQUIRE(stubborn.read_until("ready"));
    auto start = Clock::now();
    kill(stubborn.pid(), SIGTERM);
    CHECK(stubborn.wait() == 137);  // SIGKILL after the timeout
    CHECK(std::chrono::duration<double>(Clock::now() - start).count() >= 1.0);
    CHECK(count_entries(s.path("containers")) == 0);
}

TEST_CASE("an error in the container's setup is reported once, with 125", "[run]") {
    Store s;
    // /etc/passwd is a file: a tmpfs cannot be mounted below it.
    auto r = s.in_alpine({"--tmpfs", "/etc/passwd/sub"}, {"true"});
    CHECK(r.status == 125);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("/etc/passwd/sub") != std::string::npos);
    CHECK(count_entries(s.path("containers")) == 0);
    auto name = s.srl({"run", "--name", "bad name", "alpine:3.20", "true"});
    CHECK(name.status == 125);
}

TEST_CASE("names are unique while a container holds them", "[run]") {
    Store s;
    Child first(s.argv({"run", "--rm", "--name", "web", "alpine:3.20", "sh", "-c", "echo ready; sleep 2"}));
    REQUIRE(first.read_until("ready"));
    auto second = s.srl({"run", "--rm", "--name", "web", "alpine:3.20", "true"});
    CHECK(second.status == 125);
    CHECK(second.err.find("already in use") != std::string::npos);
    CHECK(first.wait() == 0);
    CHECK(s.srl({"run", "--rm", "--name", "web", "alpine:3.20", "true"}).status == 0);
}
