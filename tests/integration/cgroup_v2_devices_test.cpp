// The cgroup v2 device program (launcher/cgroup_v2_devices.cpp), on whatever cgroup2 tree
// this host has: device programs work on any cgroup2 directory, so on a hybrid host the
// unified hierarchy serves. Each test makes a directory under this process's own cgroup2
// cgroup, attaches a program built from rules there, moves a forked child into it and has
// the child try device opens and mknods; then removes the directory and checks that the
// program went with it.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../support/proc.hpp"
#include "launcher/cgroup.hpp"
#include "launcher/cgroup_v2_devices.hpp"
#include "launcher/devices.hpp"
#include "launcher/error.hpp"

using namespace test;
namespace fs = std::filesystem;
using srl::DeviceRule;

namespace {

// Where this host's cgroup2 hierarchy is mounted, and this process's cgroup in it (the "0::"
// line of /proc/self/cgroup).
struct Cgroup2 {
    fs::path mount, own;
    fs::path dir() const { return mount / own.relative_path(); }
};
Cgroup2 own_cgroup2() {
    fs::path mount;
    switch (srl::detect_cgroup_layout()) {
    case srl::CgroupLayout::V2: mount = "/sys/fs/cgroup"; break;
    case srl::CgroupLayout::Hybrid: mount = "/sys/fs/cgroup/unified"; break;
    case srl::CgroupLayout::V1: {
        const char* ci = std::getenv("CI");
        if (ci && std::string(ci) == "true") FAIL("no cgroup2 hierarchy on this host");
        std::fprintf(stderr, "SKIPPED: no cgroup2 hierarchy on this host\n");
        std::exit(77);
    }
    }
    std::ifstream self("/proc/self/cgroup");
    for (std::string line; std::getline(self, line);)
        if (line.rfind("0::", 0) == 0) return {mount, line.substr(3)};
    FAIL("no 0:: line in /proc/self/cgroup");
    return {};
}

int prog_fd_by_id(uint32_t id) {
    bpf_attr attr{};
    attr.prog_id = id;
    return static_cast<int>(syscall(SYS_bpf, BPF_PROG_GET_FD_BY_ID, &attr, sizeof attr));
}

// How many bpf-prog fds this process holds.
int bpf_prog_fds() {
    int n = 0;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        if (fs::read_symlink(e.path(), ec).string() == "anon_inode:bpf-prog") ++n;
    }
    return n;
}

// One thing the child tries: open `path` with `flags`, or (path empty) mknod a node of
// `type` dev in a scratch directory.
struct Try {
    std::string path;
    int flags = O_RDONLY;
    mode_t type = 0;
    dev_t dev = 0;
};
Try open_of(const std::string& path, int flags) { return {path, flags, 0, 0}; }
Try mknod_of(mode_t type, unsigned maj, unsigned min) { return {"", 0, type, makedev(maj, min)}; }

// Runs the tries in a child moved into the cgroup `dir`; returns each one's errno (0: it worked).
std::vector<int> run_in(const fs::path& dir, const std::vector<Try>& tries) {
    TempDir scratch;
    int pipefd[2];
    REQUIRE(pipe2(pipefd, O_CLOEXEC) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::string procs = (dir / "cgroup.procs").string();
        int cg = open(procs.c_str(), O_WRONLY);
        if (cg < 0 || write(cg, "0", 1) != 1) _exit(2);
        close(cg);
        for (size_t i = 0; i < tries.size(); ++i) {
            const Try& t = tries[i];
            int rc;
            if (!t.path.empty()) {
                rc = open(t.path.c_str(), t.flags | O_CLOEXEC);
                if (rc >= 0) close(rc);
            } else {
                std::string node = scratch / ("node" + std::to_string(i));
                rc = mknod(node.c_str(), t.type | 0600, t.dev);
            }
            int err = rc < 0 ? errno : 0;
            if (write(pipefd[1], &err, sizeof err) != sizeof err) _exit(3);
        }
        _exit(0);
    }
    close(pipefd[1]);
    std::vector<int> errs;
    int err;
    while (read(pipefd[0], &err, sizeof err) == sizeof err) errs.push_back(err);
    close(pipefd[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(errs.size() == tries.size());
    return errs;
}

// A cgroup2 directory with a device program from `rules`, removed at the end.
class DeviceCgroup {
public:
    explicit DeviceCgroup(const std::vector<DeviceRule>& rules)
        : dir_(own_cgroup2().dir() / ("srl-devtest-" + std::to_string(getpid()))) {
        require_root();
        REQUIRE(mkdir(dir_.c_str(), 0755) == 0);
        try {
            srl::apply_device_rules(dir_, rules);
        } catch (...) {
            rmdir(dir_.c_str());
            throw;
        }
    }
    ~DeviceCgroup() { rmdir(dir_.c_str()); }
    DeviceCgroup(const DeviceCgroup&) = delete;
    DeviceCgroup& operator=(const DeviceCgroup&) = delete;
    const fs::path& dir() const { return dir_; }

    std::vector<int> run(const std::vector<Try>& tries) const { return run_in(dir_, tries); }

private:
    fs::path dir_;
};

}  // namespace

TEST_CASE("cgroup v2 devices: a program allowing only /dev/null rw", "[cgroup-v2-devices]") {
    std::vector<uint32_t> ids;
    {
        DeviceCgroup cg({{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rw"}});
        // Attached, and no fd of it left open here: the attachment is its only holder.
        ids = srl::attached_device_programs(cg.dir());
        REQUIRE(ids.size() == 1);
        CHECK(bpf_prog_fds() == 0);
        auto errs = cg.run({open_of("/dev/null", O_RDWR), open_of("/dev/null", O_RDONLY), open_of("/dev/zero", O_RDONLY),
                            open_of("/dev/full", O_WRONLY), mknod_of(S_IFCHR, 1, 3), mknod_of(S_IFBLK, 7, 0)});
        CHECK(errs == std::vector<int>{0, 0, EPERM, EPERM, EPERM, EPERM});
        // The launcher's own process is not in the cgroup and unaffected.
        int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        close(fd);
    }
    // rmdir detaches and frees the program (asynchronously, in the kernel's cgroup release).
    int fd = -1;
    for (int i = 0; i < 500; ++i) {
        fd = prog_fd_by_id(ids[0]);
        if (fd < 0) break;
        close(fd);
        std::this_thread::sleep_for(10ms);
    }
    CHECK(fd < 0);
    CHECK(errno == ENOENT);
}

TEST_CASE("cgroup v2 devices: wildcards, access bits and the last matching rule", "[cgroup-v2-devices]") {
    SECTION("c 1:* r: reads of any memory device, no writes") {
        DeviceCgroup cg({{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, -1, "r"}});
        auto errs = cg.run({open_of("/dev/zero", O_RDONLY), open_of("/dev/null", O_RDONLY), open_of("/dev/zero", O_WRONLY),
                            open_of("/dev/null", O_RDWR), open_of("/dev/tty", O_RDONLY)});
        CHECK(errs == std::vector<int>{0, 0, EPERM, EPERM, EPERM});
    }
    SECTION("default allow with one deny rule") {
        DeviceCgroup cg({{false, 'c', 1, 5, "rwm"}});
        auto errs = cg.run({open_of("/dev/null", O_RDWR), open_of("/dev/zero", O_RDONLY), mknod_of(S_IFCHR, 1, 5),
                            mknod_of(S_IFCHR, 1, 7)});
        CHECK(errs == std::vector<int>{0, EPERM, EPERM, 0});
    }
    SECTION("a later deny narrows an earlier allow") {
        DeviceCgroup cg({{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, -1, "rwm"}, {false, 'c', 1, 5, "w"}});
        auto errs = cg.run({open_of("/dev/zero", O_RDONLY), open_of("/dev/zero", O_WRONLY), open_of("/dev/null", O_RDWR)});
        CHECK(errs == std::vector<int>{0, EPERM, 0});
    }
    SECTION("docker's defaults: the standard nodes, mknod of anything, no other device") {
        DeviceCgroup cg(srl::device_rules({}, false));
        auto errs = cg.run({open_of("/dev/null", O_RDWR), open_of("/dev/urandom", O_RDONLY), open_of("/dev/full", O_WRONLY),
                            mknod_of(S_IFBLK, 7, 0), mknod_of(S_IFCHR, 10, 237), open_of("/dev/loop-control", O_RDWR)});
        CHECK(errs == std::vector<int>{0, 0, 0, 0, 0, EPERM});
    }
}

TEST_CASE("cgroup v2 devices: no program when everything is allowed, the verifier log for a bad one",
          "[cgroup-v2-devices]") {
    CHECK_FALSE(srl::compile_device_program({}));
    CHECK_FALSE(srl::compile_device_program(srl::device_rules({}, true)));
    CHECK_FALSE(srl::compile_device_program({{false, 'a', -1, -1, "rwm"}, {true, 'a', -1, -1, "rwm"}}));
    REQUIRE(srl::compile_device_program(srl::device_rules({}, false)));
    {
        DeviceCgroup cg(srl::device_rules({}, true));
        CHECK(srl::attached_device_programs(cg.dir()).empty());
    }
    // R0 never set: the verifier refuses it and says why.
    bpf_insn exit_only{};
    exit_only.code = BPF_JMP | BPF_EXIT;
    require_root();
    try {
        srl::load_device_program({exit_only});
        FAIL("the verifier accepted a program that never sets R0");
    } catch (const srl::Error& e) {
        INFO(e.what());
        CHECK(e.code() == EACCES);
        CHECK(std::string(e.what()).find("verifier: ") != std::string::npos);
        CHECK(std::string(e.what()).find("R0") != std::string::npos);
    }
}

TEST_CASE("cgroup v2 devices: CgroupV2 attaches the program to the container's cgroup", "[cgroup-v2-devices]") {
    require_root();
    Cgroup2 v2 = own_cgroup2();
    srl::Resources res;
    res.device_rules = srl::device_rules({}, false);
    std::string id = "devtest-" + std::to_string(getpid());
    std::vector<uint32_t> ids;
    {
        // Where create_cgroup puts it: beside this process's cgroup (on a pure v2 host this
        // process's cgroup may offer controllers, which it could not enable for a child).
        auto cg = srl::create_cgroup_v2(v2.mount, srl::cgroup_v2_parent(v2.own), id, res);
        REQUIRE(cg->paths().size() == 1);
        fs::path dir = cg->paths()[0];
        CHECK(dir == v2.mount / srl::cgroup_v2_parent(v2.own).relative_path() / "srlaunch" / id);
        ids = srl::attached_device_programs(dir);
        REQUIRE(ids.size() == 1);
        CHECK(bpf_prog_fds() == 0);
        auto errs = run_in(dir, {open_of("/dev/null", O_RDWR), open_of("/dev/loop-control", O_RDWR)});
        CHECK(errs == std::vector<int>{0, EPERM});
    }
    CHECK_FALSE(fs::exists(v2.mount / srl::cgroup_v2_parent(v2.own).relative_path() / "srlaunch" / id));
    int fd = -1;
    for (int i = 0; i < 500 && (fd = prog_fd_by_id(ids[0])) >= 0; ++i) {
        close(fd);
        std::this_thread::sleep_for(10ms);
    }
    CHECK(fd < 0);
}
