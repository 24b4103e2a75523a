// Rootless mode (issue 6): srlaunch run by a normal user. Each test makes the user `srltest`
// itself (useradd, subordinate ids 200000-265535 through usermod, which take shadow's locks),
// gives it a home with its store, runs srlaunch as it (setpriv, a clean environment), and
// deletes it again. A leftover user or process from a crashed run is cleaned up first, and a
// lock keeps the tests of this file, each a process of its own under ctest -j, one at a time.
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/caller_fds.hpp"
#include "../support/proc.hpp"
#include "../support/servers.hpp"
#include "launcher/cgroup.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

constexpr const char* kUser = "srltest";
// Apart from the ranges other tests map (run_test.cpp: 100000, 300000): the leak checks
// count every process in this range as the test user's.
constexpr uint32_t kSubStart = 200000, kSubCount = 65536;

// "0 1001 1" for a uid_map line, whatever the kernel's column widths.
std::string squeeze(const std::string& text) {
    std::istringstream in(text);
    std::string out, line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string w, joined;
        while (words >> w) joined += (joined.empty() ? "" : " ") + w;
        out += joined + "\n";
    }
    return out;
}

bool in_user_range(uid_t id, uid_t uid) { return id == uid || (id >= kSubStart && id < kSubStart + kSubCount); }

// Processes whose real uid is the test user's or one of its subordinate ids.
std::vector<pid_t> user_processes(uid_t uid) {
    std::vector<pid_t> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
        std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        // A zombie holds nothing: a -d container's monitor, once it exits, is init's to
        // reap, and some inits (this CI's among them) take their time.
        if (process_state(std::stoi(name)) == 'Z') continue;
        std::ifstream status(e.path() / "status");
        for (std::string line; std::getline(status, line);)
            if (line.rfind("Uid:", 0) == 0) {
                uid_t real = static_cast<uid_t>(std::stoul(line.substr(4)));
                if (in_user_range(real, uid)) out.push_back(std::stoi(name));
                break;
            }
    }
    return out;
}

// cgroup directories owned by the user or its subordinate ids, anywhere on the host.
std::vector<std::string> user_cgroups(uid_t uid) {
    std::vector<std::string> out;
    std::vector<fs::path> todo{"/sys/fs/cgroup"};
    while (!todo.empty()) {
        fs::path dir = todo.back();
        todo.pop_back();
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            struct stat st {};
            if (lstat(it->path().c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) continue;
            if (in_user_range(st.st_uid, uid)) out.push_back(it->path());
            todo.push_back(it->path());
        }
    }
    return out;
}

// A prerequisite of the host: skipped without it, failed under CI=true (as require_root).
void require(bool ok, const std::string& what) {
    if (ok) return;
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL("missing prerequisite under CI=true: " << what);
    std::fprintf(stderr, "SKIPPED: missing prerequisite: %s\n", what.c_str());
    std::exit(77);
}

std::string first_line(const std::string& file) {
    std::string line;
    std::ifstream in(file);
    std::getline(in, line);
    return line;
}

// The test user, its subordinate ids and home, for one test; see the file comment.
class RootlessUser {
public:
    explicit RootlessUser(bool subordinate_ids = true) {
        require_root();
        for (const char* p : {"useradd", "usermod", "userdel", "setpriv", "newuidmap", "newgidmap"}) require_program(p);
        require(first_line("/proc/sys/user/max_user_namespaces") != "0" &&
                    first_line("/proc/sys/kernel/unprivileged_userns_clone") != "0",
                "user namespaces for unprivileged users");
        const char* lock_path = fs::exists("/run/lock") ? "/run/lock/srlaunch-rootless-test.lock"
                                                         : "/tmp/srlaunch-rootless-test.lock";
        lock_ = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(lock_ >= 0);
        REQUIRE(flock(lock_, LOCK_EX) == 0);
        remove_user();  // a crashed run's leftover
        // usermod edits the subordinate id files only where they exist.
        for (const char* f : {"/etc/subuid", "/etc/subgid"})
            if (!fs::exists(f)) {
                write_file(f, "", 0644);
                created_.emplace_back(f);
            }
        auto add = run({"useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-d", "/nonexistent", kUser});
        INFO(add.err);
        REQUIRE(add.status == 0);
        const passwd* pw = getpwnam(kUser);
        REQUIRE(pw != nullptr);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        // useradd may have handed out a range of its own (SUB_UID_COUNT): only ours is wanted.
        REQUIRE(run({"usermod", "--del-subuids", "0-4294967294", "--del-subgids", "0-4294967294", kUser}).status == 0);
        if (subordinate_ids) {
            std::string range = std::to_string(kSubStart) + "-" + std::to_string(kSubStart + kSubCount - 1);
            REQUIRE(run({"usermod", "--add-subuids", range, "--add-subgids", range, kUser}).status == 0);
        }
        REQUIRE(chown(home.path().c_str(), uid, gid) == 0);
        REQUIRE(chmod(home.path().c_str(), 0700) == 0);
        // A checkout the user cannot reach (one under /root is 0700): copies in its home.
        srlaunch_ = SRLAUNCH_PATH;
        fixture_ = alpine_fixture();
        if (as_user({"test", "-x", srlaunch_}) != 0 || as_user({"test", "-r", fixture_}) != 0) {
            fs::create_directory(home / "bin");
            fs::copy_file(SRLAUNCH_PATH, home / "bin/srlaunch");
            fs::copy_file(srinit_path(), home / "bin/srinit");  // found beside srlaunch
            fs::copy_file(fixture_, home / "alpine.tar.gz");
            srlaunch_ = home / "bin/srlaunch";
            fixture_ = home / "alpine.tar.gz";
        }
    }
    ~RootlessUser() {
        remove_user();
        for (const auto& f : created_)
            if (read_file(f).empty()) unlink(f.c_str());
        close(lock_);
    }
    RootlessUser(const RootlessUser&) = delete;
    RootlessUser& operator=(const RootlessUser&) = delete;

    // `srlaunch ARGS...` as the user, in an environment of HOME, PATH and `env` alone.
    std::vector<std::string> argv(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const {
        std::vector<std::string> a{"setpriv", "--reuid", std::to_string(uid), "--regid", std::to_string(gid),
                                   "--init-groups", "env", "-i", "HOME=" + home.path(),
                                   "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"};
        a.insert(a.end(), env.begin(), env.end());
        a.push_back(srlaunch_);
        a.insert(a.end(), args.begin(), args.end());
        return a;
    }
    Result srl(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const {
        return run(argv(args, env));
    }
    // `run --rm FLAGS... alpine:3.20 CMD...`
    Result in_alpine(std::vector<std::string> flags, const std::vector<std::string>& cmd) const {
        std::vector<std::string> args{"run", "--rm"};
        args.insert(args.end(), flags.begin(), flags.end());
        args.emplace_back("alpine:3.20");
        args.insert(args.end(), cmd.begin(), cmd.end());
        return srl(args);
    }
    void import_alpine() const {
        auto r = srl({"import", fixture_, "alpine:3.20"});
        INFO(r.err);
        REQUIRE(r.status == 0);
    }
    std::string store() const { return home / ".local/share/srlaunch"; }
    std::string ids() const { return std::to_string(uid) + ":" + std::to_string(gid); }

    // Nothing of the user's is left running, mounted or in a cgroup, and no container dir.
    void check_nothing_left() const {
        // srlaunch waits for its container; a moment for setpriv's own exit to be reaped.
        for (int i = 0; i < 50 && !user_processes(uid).empty(); ++i) std::this_thread::sleep_for(10ms);
        CHECK(user_processes(uid).empty());
        CHECK(read_file("/proc/self/mountinfo").find(home.path()) == std::string::npos);
        CHECK(user_cgroups(uid).empty());
        CHECK(count_entries(store() + "/containers") == 0);
    }

    uid_t uid = 0;
    gid_t gid = 0;
    TempDir home;

private:
    int as_user(const std::vector<std::string>& cmd) const {
        std::vector<std::string> a{"setpriv", "--reuid", std::to_string(uid), "--regid", std::to_string(gid), "--init-groups"};
        a.insert(a.end(), cmd.begin(), cmd.end());
        return run(a).status;
    }
    void remove_user() {
        const passwd* pw = getpwnam(kUser);
        if (!pw) return;
        // Only processes of this test user (and its subordinate ids) can be leftovers here.
        for (pid_t pid : user_processes(pw->pw_uid)) kill(pid, SIGKILL);
        for (int i = 0; i < 100 && !user_processes(pw->pw_uid).empty(); ++i) std::this_thread::sleep_for(10ms);
        run({"usermod", "--del-subuids", "0-4294967294", "--del-subgids", "0-4294967294", kUser});
        auto del = run({"userdel", kUser});
        INFO(del.err);
        CHECK(del.status == 0);
    }
    int lock_ = -1;
    std::string srlaunch_, fixture_;
    std::vector<std::string> created_;
};

// A tmpfs the host mounts nosuid,nodev,noexec,noatime: flags a user namespace cannot clear.
class LockedFlagsMount {
public:
    explicit LockedFlagsMount(uid_t uid, gid_t gid) {
        REQUIRE(mount("tmpfs", dir.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME, "mode=755") == 0);
        REQUIRE(chown(dir.path().c_str(), uid, gid) == 0);
        write_file(dir / "data", "hello\n");
    }
    ~LockedFlagsMount() { umount2(dir.path().c_str(), MNT_DETACH); }
    TempDir dir;
};

}  // namespace

TEST_CASE("rootless: import and run as a normal user, root inside a user namespace", "[rootless]") {
    RootlessUser u;
    u.import_alpine();
    // The store: ~/.local/share/srlaunch without XDG_DATA_HOME, private to the user.
    struct stat st {};
    REQUIRE(stat(u.store().c_str(), &st) == 0);
    CHECK(st.st_uid == u.uid);
    CHECK((st.st_mode & 07777) == 0700);
    // Image files belong to the user (extraction as a user does not chown).
    REQUIRE(stat((u.store() + "/images/alpine/@3.20/rootfs/etc/passwd").c_str(), &st) == 0);
    CHECK(st.st_uid == u.uid);

    auto r = u.in_alpine({"--hostname", "inner"},
                         {"sh", "-c", "id; hostname; cat /proc/self/uid_map /proc/self/gid_map; ps -o pid,args"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("uid=0(root) gid=0(root)", 0) == 0);
    CHECK(r.out.find("\ninner\n") != std::string::npos);
    std::string maps = squeeze(r.out);
    std::string expect = "0 " + std::to_string(u.uid) + " 1\n1 200000 65536\n0 " + std::to_string(u.gid) + " 1\n1 200000 65536\n";
    CHECK(maps.find(expect) != std::string::npos);
    CHECK(r.out.find("\n    1 srinit") != std::string::npos);
    CHECK(r.err == "");
    // The container's namespaces are new, its user namespace included.
    auto ns = u.in_alpine({}, {"sh", "-c", "for n in user mnt pid uts ipc net cgroup; do readlink /proc/self/ns/$n; done"});
    REQUIRE(ns.status == 0);
    for (std::string n : {"user", "mnt", "pid", "uts", "ipc", "net", "cgroup"})
        CHECK(ns.out.find(fs::read_symlink("/proc/self/ns/" + n).string()) == std::string::npos);
    u.check_nothing_left();

    // $XDG_DATA_HOME, when set, holds the store instead.
    std::string xdg = u.home / "xdg-data";
    auto listed = u.srl({"images"}, {"XDG_DATA_HOME=" + xdg});
    CHECK(listed.status == 0);
    REQUIRE(stat((xdg + "/srlaunch").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    CHECK(st.st_uid == u.uid);
}

TEST_CASE("rootless: volumes, chown into the subordinate range, -u, and --rm removes it all", "[rootless]") {
    RootlessUser u;
    u.import_alpine();
    std::string vol = u.home / "vol";
    REQUIRE(mkdir(vol.c_str(), 0755) == 0);
    REQUIRE(chown(vol.c_str(), u.uid, u.gid) == 0);
    write_file(vol + "/mine", "m");
    REQUIRE(chown((vol + "/mine").c_str(), u.uid, u.gid) == 0);
    write_file(vol + "/hosts-root", "r");  // root's on the host: nobody's inside
    auto r = u.in_alpine({"-v", vol + ":/vol"},
                         {"sh", "-c",
                          "stat -c %u:%g /vol/mine /vol/hosts-root; touch /vol/new && chown 1000:1000 /vol/new; "
                          "touch /made && chown 1000:1000 /made && stat -c %u:%g /made; "
                          // A tree the user could not remove on the host: 1000's, mode 0700.
                          "mkdir -p /home/u/d && touch /home/u/d/f && chown -R 1000:1000 /home/u && chmod -R 700 /home/u"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out == "0:0\n65534:65534\n1000:1000\n");
    struct stat st {};
    REQUIRE(stat((vol + "/new").c_str(), &st) == 0);
    CHECK(st.st_uid == kSubStart + 999);
    CHECK(st.st_gid == kSubStart + 999);
    // A user of the image: nobody is 65534 inside, a subordinate id outside.
    auto nobody = u.in_alpine({"-u", "nobody", "-v", vol + ":/vol"}, {"sh", "-c", "id; touch /tmp/n; stat -c %u /tmp/n"});
    INFO(nobody.err);
    CHECK(nobody.status == 0);
    CHECK(nobody.out == "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)\n65534\n");
    u.check_nothing_left();
}

TEST_CASE("rootless: --net none has its own loopback, --net host the host's network and a read-only /sys", "[rootless]") {
    RootlessUser u;
    u.import_alpine();
    std::string host_net = fs::read_symlink("/proc/self/ns/net").string();
    auto none = u.in_alpine({}, {"sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; readlink /proc/self/ns/net"});
    INFO(none.err);
    REQUIRE(none.status == 0);
    CHECK(none.out.rfind("lo\n", 0) == 0);
    CHECK(none.out.find(host_net) == std::string::npos);

    std::string host_ifaces;
    for (const auto& e : fs::directory_iterator("/sys/class/net")) host_ifaces += e.path().filename().string() + " ";
    auto host = u.in_alpine({"--net", "host"},
                            {"sh", "-c", "readlink /proc/self/ns/net; for i in /sys/class/net/*; do printf '%s ' ${i##*/}; done; "
                                         "echo; touch /sys/kernel/x; ps -o pid,args"});
    INFO(host.err);
    CHECK(host.status == 0);
    CHECK(host.out.rfind(host_net + "\n", 0) == 0);
    // Each of the host's interfaces is there (the same sysfs, bound read-only).
    for (const auto& e : fs::directory_iterator("/sys/class/net"))
        CHECK(host.out.find(e.path().filename().string() + " ") != std::string::npos);
    CHECK(host.err.find("Read-only file system") != std::string::npos);
    CHECK(host.out.find("\n    1 srinit") != std::string::npos);
    u.check_nothing_left();
}

TEST_CASE("rootless: resource flags fail with one clear line, status 125, before anything exists", "[rootless]") {
    RootlessUser u;
    u.import_alpine();
    bool v2 = srl::detect_cgroup_layout() == srl::CgroupLayout::V2;
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"-m", "32m"}, "--memory"},
        {{"--memory", "64m", "--memory-swap", "128m"}, "--memory"},
        {{"--cpus", "0.5"}, "--cpus"},
        {{"--cpu-shares", "512"}, "--cpu-shares"},
        {{"--cpuset-cpus", "0"}, "--cpuset-cpus"},
        {{"--pids-limit", "10"}, "--pids-limit"},
    };
    for (const auto& [flags, name] : cases) {
        std::vector<std::string> args = flags;
        args.insert(args.end(), {"--name", "limited", "--cidfile", u.home / "cid"});
        auto r = u.in_alpine(args, {"true"});
        INFO(name << ": " << r.err);
        CHECK(r.status == 125);
        CHECK(r.out == "");
        if (!v2) {
            CHECK(r.err == "srlaunch: " + name + " needs a cgroup, and this host does not delegate cgroups to user " +
                               kUser + " (cgroup v1)\n");
        } else {
            // The v2 guest: the user's cgroup here (from root's session) is not delegated.
            CHECK(r.err.rfind("srlaunch: " + name + " needs ", 0) == 0);
            CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        }
        CHECK(!fs::exists(u.home / "cid"));
    }
    // Before an image is pulled, too.
    auto missing = u.srl({"run", "--rm", "-m", "32m", "--pull", "always", "--mirror", "http://127.0.0.1:9", "alpine:3.20", "true"});
    CHECK(missing.status == 125);
    CHECK(missing.err.find("needs a cgroup") != std::string::npos);
    CHECK(count_entries(u.store() + "/names") == 0);
    CHECK(count_entries(u.store() + "/images") == 1);
    u.check_nothing_left();
}

TEST_CASE("rootless: without subordinate ids only the user is mapped, and the run says so once", "[rootless]") {
    RootlessUser u(false);
    u.import_alpine();
    auto r = u.in_alpine({}, {"sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/setgroups; touch /x; chown 1000 /x || echo refused"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(squeeze(r.out) == "0\n0 " + std::to_string(u.uid) + " 1\ndeny\nrefused\n");
    CHECK(r.err.rfind("srlaunch: no /etc/subuid and /etc/subgid ranges for user srltest: the container maps only your own id", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 2);  // the notice, then chown's complaint
    auto nobody = u.in_alpine({"-u", "nobody"}, {"true"});
    CHECK(nobody.status == 125);
    CHECK(nobody.err.find("is not mapped into the user namespace") != std::string::npos);
    u.check_nothing_left();
}

TEST_CASE("rootless: --uidmap/--gidmap inside the user's ranges are honoured, others refused", "[rootless]") {
    RootlessUser u;
    u.import_alpine();
    std::string uid = std::to_string(u.uid), gid = std::to_string(u.gid);
    auto r = u.in_alpine({"--uidmap", "0:" + uid + ":1", "--uidmap", "1:200000:1000", "--gidmap", "0:" + gid + ":1",
                          "--gidmap", "1:201000:1000"},
                         {"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(squeeze(r.out) == "0 " + uid + " 1\n1 200000 1000\n0 " + gid + " 1\n1 201000 1000\n");
    auto outside = u.in_alpine({"--uidmap", "0:" + uid + ":1", "--uidmap", "1:300000:10"}, {"true"});
    CHECK(outside.status == 125);
    CHECK(outside.err == "srlaunch: --uidmap 1:300000:10: host ids 300000-300009 are not yours to map (yours: " + uid +
                             ", 200000-265535 from /etc/subuid)\n");
    auto root_elsewhere = u.in_alpine({"--uidmap", "0:200000:65536"}, {"true"});
    CHECK(root_elsewhere.status == 125);
    CHECK(root_elsewhere.err.find("must map container id 0 to your own id") != std::string::npos);
    auto autons = u.in_alpine({"--userns", "auto"}, {"true"});
    CHECK(autons.status == 125);
    CHECK(autons.err.find("--userns auto needs root") != std::string::npos);
    u.check_nothing_left();
}

TEST_CASE("rootless: read-only volumes of a nosuid,nodev,noexec mount, --read-only, --tmpfs, --timens", "[rootless]") {
    RootlessUser u;
    u.import_alpine();
    LockedFlagsMount locked(u.uid, u.gid);
    auto r = u.in_alpine({"-v", locked.dir.path() + ":/data:ro", "--read-only", "--tmpfs", "/scratch"},
                         {"sh", "-c", "cat /data/data; touch /data/x; touch /y; touch /scratch/z && echo scratch; "
                                      "grep ' /data ' /proc/self/mounts"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out.rfind("hello\nscratch\n", 0) == 0);
    CHECK(r.out.find(" ro,nosuid,nodev,noexec,noatime") != std::string::npos);
    CHECK(r.err == "touch: /data/x: Read-only file system\ntouch: /y: Read-only file system\n");
    double host_uptime = std::stod(read_file("/proc/uptime"));
    auto t = u.in_alpine({"--boot-offset", "100000"}, {"cat", "/proc/uptime"});
    INFO(t.err);
    REQUIRE(t.status == 0);
    CHECK(std::stod(t.out) > host_uptime + 99'000);
    u.check_nothing_left();
}

TEST_CASE("rootless: pull from a loopback Alpine mirror, then run it", "[rootless]") {
    RootlessUser u;
    AlpineMirror mirror;
    auto pulled = u.srl({"pull", "-q", "--mirror", mirror.url(), "alpine"});
    INFO(pulled.err);
    REQUIRE(pulled.status == 0);
    CHECK(pulled.out == "alpine:latest\n");
    auto r = u.srl({"run", "--rm", "--pull", "never", "alpine", "id", "-u"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "0\n");
    u.check_nothing_left();
}

TEST_CASE("rootless: run -d, exec, stop, and rm of files owned by subordinate ids", "[rootless][lifecycle]") {
    RootlessUser u;
    u.import_alpine();
    auto started = u.srl({"run", "-d", "--name", "bg", "alpine:3.20", "sh", "-c",
                          "adduser -D -u 1000 student && su student -c 'touch /home/student/mine' && "
                          "echo ready && exec sleep 300"});
    INFO(started.err);
    REQUIRE(started.status == 0);
    std::string id = trim(started.out);
    bool ready = false;
    for (int i = 0; i < 200 && !ready; ++i) {
        ready = u.srl({"logs", "bg"}).out.find("ready") != std::string::npos;
        if (!ready) std::this_thread::sleep_for(50ms);
    }
    REQUIRE(ready);
    auto ex = u.srl({"exec", "bg", "stat", "-c", "%u", "/home/student/mine"});
    INFO(ex.err);
    CHECK(ex.out == "1000\n");
    CHECK(u.srl({"stop", "-t", "1", "bg"}).status == 0);
    auto rm = u.srl({"rm", "bg"});
    INFO(rm.err);
    CHECK(rm.status == 0);
    CHECK(!fs::exists(u.store() + "/containers/" + id));
    u.check_nothing_left();
}

TEST_CASE("rootless: no caller fd reaches PID 1, an exec'd process or a -d container", "[rootless][security]") {
    RootlessUser u;
    u.import_alpine();
    TempDir host;
    REQUIRE(chmod(host.path().c_str(), 0777) == 0);  // the user could write here: an escape would show
    CallerFds caller(host.path());
    auto fg = run(u.argv({"run", "--rm", "--cap-add", "SYS_PTRACE", "alpine:3.20", "sh", "-c", caller.probe()}), caller.opts);
    INFO(fg.err);
    CHECK(fg.status == 0);
    CHECK(fg.out == "0 1 2 ");
    auto started = run(u.argv({"run", "-d", "--cap-add", "SYS_PTRACE", "alpine:3.20", "sleep", "300"}), caller.opts);
    INFO(started.err);
    REQUIRE(started.status == 0);
    std::string id = trim(started.out);
    auto exec = run(u.argv({"exec", id, "sh", "-c", caller.probe()}), caller.opts);
    INFO(exec.err);
    CHECK(exec.status == 0);
    CHECK(exec.out == "0 1 2 ");
    CHECK(!fs::exists(host / "ESCAPED"));
    CHECK(u.srl({"rm", "-f", id}).status == 0);
    u.check_nothing_left();
}

namespace {

// A cgroup v2 subtree delegated to the user as systemd delegates one (Delegate=yes): the
// directory and the files a manager writes (cgroup.procs, cgroup.subtree_control,
// cgroup.threads) are the user's. It is made beside this process's cgroup, whose controllers
// it can have (this cgroup holds processes and could not enable them for a child). Commands
// run in its leaf scope/, as `systemd-run --user --scope` would start them.
class DelegatedCgroup {
public:
    DelegatedCgroup(uid_t uid, gid_t gid) {
        std::string own;
        std::istringstream self(read_file("/proc/self/cgroup"));
        for (std::string line; std::getline(self, line);)
            if (line.rfind("0::", 0) == 0) own = line.substr(3);
        fs::path parent = fs::path("/sys/fs/cgroup") / srl::cgroup_v2_parent(own).relative_path();
        dir = parent / ("srltest-" + std::to_string(getpid()) + ".slice");
        scope = dir / "scope";
        // Every controller the user's containers may use, offered to the delegated subtree.
        std::string enabled = read_file(parent / "cgroup.subtree_control");
        for (const char* c : {"cpu", "memory", "pids"})
            if (enabled.find(c) == std::string::npos) write_file(parent / "cgroup.subtree_control", std::string("+") + c);
        REQUIRE(mkdir(dir.c_str(), 0755) == 0);
        REQUIRE(mkdir(scope.c_str(), 0755) == 0);
        for (const fs::path& p : {dir, dir / "cgroup.procs", dir / "cgroup.subtree_control", dir / "cgroup.threads",
                                  scope, scope / "cgroup.procs", scope / "cgroup.threads"})
            REQUIRE(chown(p.c_str(), uid, gid) == 0);
    }
    ~DelegatedCgroup() {
        // A task that has exited can stay counted for a moment after it was reaped.
        for (int i = 0; i < 100 && rmdir(scope.c_str()) < 0 && errno == EBUSY; ++i) std::this_thread::sleep_for(10ms);
        rmdir(dir.c_str());
    }
    DelegatedCgroup(const DelegatedCgroup&) = delete;
    DelegatedCgroup& operator=(const DelegatedCgroup&) = delete;
    // argv, started in scope/. With no cap on locked memory: the hog locks what it touches,
    // and a user's default RLIMIT_MEMLOCK (8 MiB) would stop it before any cgroup limit.
    std::vector<std::string> in_scope(const std::vector<std::string>& argv) const {
        std::vector<std::string> a{"sh", "-c",
                                   "echo $$ > " + (scope / "cgroup.procs").string() +
                                       " && ulimit -l unlimited && exec \"$@\"",
                                   "sh"};
        a.insert(a.end(), argv.begin(), argv.end());
        return a;
    }
    fs::path dir, scope;
};

}  // namespace

TEST_CASE("rootless: on a delegated cgroup v2 subtree the resource flags work", "[rootless]") {
    if (srl::detect_cgroup_layout() != srl::CgroupLayout::V2) {
        WARN("not a cgroup v2 host: nothing can be delegated (the v2 guest, tests/vm, runs this)");
        return;
    }
    RootlessUser u;
    u.import_alpine();
    {
        DelegatedCgroup d(u.uid, u.gid);
        auto run_args = [&](const std::vector<std::string>& flags, const std::vector<std::string>& cmd) {
            std::vector<std::string> args{"run", "--rm"};
            args.insert(args.end(), flags.begin(), flags.end());
            args.emplace_back("alpine:3.20");
            args.insert(args.end(), cmd.begin(), cmd.end());
            return d.in_scope(u.argv(args));
        };
        // The limits are in the container's cgroup (made in the delegated subtree, beside the
        // launcher's scope), which the container sees as its /sys/fs/cgroup.
        auto limits = run(run_args({"-m", "64m", "--cpus", "0.5", "--pids-limit", "50"},
                                   {"sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max "
                                                "/sys/fs/cgroup/pids.max"}));
        INFO(limits.err);
        CHECK(limits.status == 0);
        CHECK(limits.out == "0::/\n" + std::to_string(64 << 20) + "\n50000 100000\n50\n");
        // The seed's hog ends by the OOM killer, and srlaunch says so, as for root.
        fs::copy_file(helper_path("memhog"), u.home / "memhog");
        auto hog = run(run_args({"-m", "32m", "-v", u.home / "memhog" + ":/memhog:ro"}, {"/memhog", "200"}));
        INFO(hog.out << hog.err);
        CHECK(hog.status == 137);
        CHECK(hog.err.find("out of memory") != std::string::npos);
        CHECK(hog.out.find("done") == std::string::npos);
        // Nothing left in the subtree but the scope (srlaunch/ goes when its last container does).
        std::vector<std::string> left;
        for (const auto& e : fs::directory_iterator(d.dir))
            if (e.is_directory() && e.path() != d.scope) left.push_back(e.path());
        CHECK(left == std::vector<std::string>{});
    }
    u.check_nothing_left();
}
