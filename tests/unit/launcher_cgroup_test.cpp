// The cgroup v2 implementation against a directory tree shaped like cgroupfs (the real v2
// runs in the v2 guest), and docker's units.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "launcher/cgroup.hpp"
#include "launcher/error.hpp"
#include "launcher/units.hpp"

using namespace srl;
namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
struct FakeTree {
    fs::path root = fs::temp_directory_path() / ("srl-cg-" + std::to_string(::getpid()));
    FakeTree() {
        fs::create_directories(root / "parent");
        std::ofstream(root / "parent/cgroup.controllers") << "cpuset cpu io memory hugetlb pids rdma\n";
        std::ofstream(root / "parent/cgroup.subtree_control") << "";
        // The kernel accounts swap: a non-root cgroup's memory.swap.max (the shared srlaunch/ one).
        fs::create_directories(root / "parent/srlaunch");
        std::ofstream(root / "parent/srlaunch/memory.swap.max") << "max\n";
    }
    ~FakeTree() { fs::remove_all(root); }
};
}  // namespace

TEST_CASE("cgroup v2: limits land in the files the kernel reads", "[unit][cgroup]") {
    FakeTree t;
    Resources r;
    r.memory = 32 << 20;
    r.memory_swap = 64 << 20;
    r.cpu_shares = 102;
    r.cpu_quota_us = 50'000;
    r.cpuset_cpus = "1";
    r.pids_limit = 64;
    r.read_bps = {{"/dev/loop0", 7, 0, 4 << 20}};
    r.write_iops = {{"/dev/loop0", 7, 0, 100}};
    auto cg = create_cgroup_v2(t.root, "/parent", "abc", r);
    fs::path dir = t.root / "parent/srlaunch/abc";
    REQUIRE(cg->paths() == std::vector<fs::path>{dir});
    // Controllers enabled in every ancestor we own, only those we use.
    CHECK(slurp(t.root / "parent/cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids");
    CHECK(slurp(t.root / "parent/srlaunch/cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids");
    CHECK(slurp(dir / "memory.max") == "33554432");
    CHECK(slurp(dir / "memory.swap.max") == "33554432");  // docker's memory+swap minus memory
    CHECK(slurp(dir / "cpu.weight") == "4");                // 1 + (102-2)*9999/262142
    CHECK(slurp(dir / "cpu.max") == "50000 100000");
    CHECK(slurp(dir / "cpuset.cpus") == "1");
    CHECK(slurp(dir / "pids.max") == "64");
    CHECK(slurp(dir / "io.max") == "7:0 rbps=4194304 wiops=100");
    cg->attach(1234);
    CHECK(slurp(dir / "cgroup.procs") == "1234");
    std::ofstream(dir / "memory.events") << "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n";
    CHECK(cg->oom_killed());
    std::ofstream(dir / "cpu.stat") << "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
    std::ofstream(dir / "io.stat") << "7:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n";
    auto s = cg->stats();
    CHECK(s.cpu_usage_ns == 1'500'000);
    CHECK(s.io_read_bytes == 4096);
    CHECK(s.io_write_ops == 2);
}

TEST_CASE("cgroup v2: no limits still enables controllers for stats, none unavailable", "[unit][cgroup]") {
    FakeTree t;
    std::ofstream(t.root / "parent/cgroup.controllers") << "memory pids\n";
    std::ofstream(t.root / "parent/cgroup.subtree_control") << "memory pids\n";  // already on: no write
    auto cg = create_cgroup_v2(t.root, "/parent", "def", Resources{});
    CHECK(slurp(t.root / "parent/cgroup.subtree_control") == "memory pids\n");
    CHECK(slurp(t.root / "parent/srlaunch/cgroup.subtree_control") == "+memory +pids");
    CHECK(!fs::exists(t.root / "parent/srlaunch/def/memory.max"));
}

TEST_CASE("cgroup v2: swap as docker sets it, memory.swap.max counting swap alone", "[unit][cgroup]") {
    FakeTree t;
    auto swap_max = [&](const std::string& id, std::optional<int64_t> memory, std::optional<int64_t> memory_swap) {
        Resources r;
        r.memory = memory;
        r.memory_swap = memory_swap;
        auto cg = create_cgroup_v2(t.root, "/parent", id, r);
        fs::path file = t.root / "parent/srlaunch" / id / "memory.swap.max";
        return fs::exists(file) ? slurp(file) : "(none)";
    };
    const int64_t mib = 1 << 20;
    // -m alone: memory+swap is twice the memory (docker's default on v1 and v2), so as much
    // swap as memory, not unlimited swap.
    CHECK(swap_max("a", 32 * mib, std::nullopt) == std::to_string(32 * mib));
    CHECK(swap_max("b", 32 * mib, 48 * mib) == std::to_string(16 * mib));
    CHECK(swap_max("c", 32 * mib, 32 * mib) == "0");
    CHECK(swap_max("d", 32 * mib, -1) == "max");
    CHECK(swap_max("e", std::nullopt, std::nullopt) == "(none)");
    CHECK_THROWS_WITH(swap_max("f", 32 * mib, 16 * mib), "--memory-swap must be at least --memory");

    // A kernel that does not account swap has no memory.swap.max: -m alone sets none, and
    // --memory-swap is an error (removing the directory is cgroupfs's rmdir, not checked here).
    fs::remove(t.root / "parent/srlaunch/memory.swap.max");
    CHECK(swap_max("g", 32 * mib, std::nullopt) == "(none)");
    CHECK(slurp(t.root / "parent/srlaunch/g/memory.max") == std::to_string(32 * mib));
    CHECK_THROWS_WITH(swap_max("h", 32 * mib, 64 * mib), Catch::Contains("does not account swap"));
}

TEST_CASE("cgroup v2: containers go beside the launcher's cgroup, which holds processes", "[unit][cgroup]") {
    CHECK(cgroup_v2_parent("/") == "/");
    CHECK(cgroup_v2_parent("/user.slice/user-0.slice/session-1.scope") == "/user.slice/user-0.slice");
    CHECK(cgroup_v2_parent("/test.slice") == "/");
}

TEST_CASE("docker's units", "[unit][cgroup]") {
    CHECK(parse_size("32m", "-m") == 32 << 20);
    CHECK(parse_size("2mb", "--x") == 2 << 20);
    CHECK(parse_size("512K", "-m") == 512 << 10);
    CHECK(parse_size("1g", "-m") == 1ll << 30);
    CHECK(parse_size("100", "-m") == 100);
    CHECK_THROWS_WITH(parse_size("12q", "--memory"), Catch::Contains("--memory") && Catch::Contains("12q"));
    CHECK_THROWS(parse_size("", "-m"));
    CHECK_THROWS(parse_size("-1", "-m"));
    CHECK(parse_cpus_quota("0.5", 100'000, "--cpus") == 50'000);
    CHECK(parse_cpus_quota("2", 100'000, "--cpus") == 200'000);
    CHECK_THROWS(parse_cpus_quota("-1", 100'000, "--cpus"));
    CHECK_THROWS(parse_cpus_quota("0", 100'000, "--cpus"));
    CHECK_THROWS(parse_cpus_quota("abc", 100'000, "--cpus"));
    CHECK_NOTHROW(validate_cpu_list("0-1,3", "--cpuset-cpus"));
    CHECK_THROWS(validate_cpu_list("0-", "--cpuset-cpus"));
    CHECK_THROWS(validate_cpu_list("a", "--cpuset-cpus"));
    CHECK(shares_to_weight(1024) == 39);
    CHECK(shares_to_weight(2) == 1);
    CHECK(shares_to_weight(262144) == 10000);
    CHECK(format_mib(32 << 20) == "32 MiB");
}
