// `run`'s value checks (launcher/validate.hpp, run_flags.hpp, rootfs.hpp's mount destinations)
// and how errors echo values (error.hpp). The real binary's refusals are in
// tests/integration/validation_test.cpp.
#include <catch2/catch.hpp>
#include <string>

#include "launcher/cgroup.hpp"
#include "launcher/error.hpp"
#include "launcher/rootfs.hpp"
#include "launcher/run_flags.hpp"
#include "launcher/units.hpp"
#include "launcher/validate.hpp"

using namespace srl;
using Catch::Contains;

TEST_CASE("shown: long values shortened at a character boundary, control characters hidden", "[unit][validate]") {
    CHECK(shown("short") == "short");
    CHECK(shown(std::string(64, 'a')) == std::string(64, 'a'));
    CHECK(shown(std::string(5000, 'a')) == std::string(64, 'a') + "…");
    // "é" is two bytes: a cut in its middle backs off to before it.
    CHECK(shown(std::string(63, 'a') + "é" + "b") == std::string(63, 'a') + "…");
    CHECK(shown("a\nb\tc") == "a?b?c");
    CHECK(one_line("open /x:\nNo such file") == "open /x: No such file");
    CHECK(one_line("a " + std::string(300, 'p') + " b") == "a " + std::string(64, 'p') + "… b");
    CHECK(one_line("a " + std::string(200, 'p')) == "a " + std::string(200, 'p'));
}

TEST_CASE("container names as docker's, at most 128 characters", "[unit][validate]") {
    for (const char* ok : {"a", "web-1", "A.b_c-d", "0"}) CHECK_NOTHROW(check_container_name(ok));
    CHECK_NOTHROW(check_container_name(std::string(128, 'n')));
    CHECK_THROWS_WITH(check_container_name(""), Contains("must not be empty"));
    CHECK_THROWS_WITH(check_container_name("-a"), Contains("[a-zA-Z0-9][a-zA-Z0-9_.-]*"));
    CHECK_THROWS_WITH(check_container_name("a b"), Contains("[a-zA-Z0-9][a-zA-Z0-9_.-]*"));
    CHECK_THROWS_WITH(check_container_name("a/b"), Contains("[a-zA-Z0-9][a-zA-Z0-9_.-]*"));
    CHECK_THROWS_WITH(check_container_name(std::string(300, 'n')),
                      Contains("300 characters, at most 128") && Contains(std::string(64, 'n') + "…\""));
}

TEST_CASE("hostnames: RFC 1123, at most 64 characters", "[unit][validate]") {
    for (const char* ok : {"box", "a-b.example.org", "0x", "A1", "x.y"}) CHECK_NOTHROW(check_hostname(ok));
    CHECK_NOTHROW(check_hostname(std::string(63, 'h')));
    CHECK_THROWS_WITH(check_hostname(""), Contains("must not be empty"));
    CHECK_THROWS_WITH(check_hostname("a b"), Contains("RFC 1123") && Contains("' '"));
    CHECK_THROWS_WITH(check_hostname("a_b"), Contains("RFC 1123"));
    CHECK_THROWS_WITH(check_hostname("-a"), Contains("starts or ends with '-'"));
    CHECK_THROWS_WITH(check_hostname("a-"), Contains("starts or ends with '-'"));
    CHECK_THROWS_WITH(check_hostname("a..b"), Contains("empty label"));
    CHECK_THROWS_WITH(check_hostname(".a"), Contains("empty label"));
    CHECK_THROWS_WITH(check_hostname("a."), Contains("empty label"));
    CHECK_THROWS_WITH(check_hostname(std::string(64, 'h')), Contains("longer than 63"));
    CHECK_THROWS_WITH(check_hostname(std::string(65, 'h')), Contains("65 characters, at most 64"));
}

TEST_CASE("paths in the container: absolute, no \"..\", normalised", "[unit][validate]") {
    CHECK(container_path("/", "-v") == "/");
    CHECK(container_path("//a/./b//", "-v") == "/a/b");
    CHECK(container_path("/a/b.c/..d", "-v") == "/a/b.c/..d");
    CHECK_THROWS_WITH(container_path("a", "-v"), Contains("-v") && Contains("must be absolute"));
    CHECK_THROWS_WITH(container_path("", "-w"), Contains("must be absolute"));
    CHECK_THROWS_WITH(container_path("/lib/../../../x", "-v"), Contains("\"..\" is not allowed"));
    CHECK_THROWS_WITH(container_path("/a/..", "-v"), Contains("\"..\""));
    CHECK_THROWS_WITH(container_path("/" + std::string(256, 'x'), "-v"), Contains("more than 255"));
    CHECK_THROWS_WITH(container_path("/" + std::string(5000, 'x'), "-v"), Contains("(4095)") && Contains("…"));
}

TEST_CASE("mount destinations: not /, nor on or under /proc and /sys, but runc's /proc files", "[unit][validate]") {
    for (const char* ok : {"/data", "/dev/fuse", "/dev", "/procx", "/system", "/proc/meminfo", "/proc/cpuinfo",
                           "/proc/sys/kernel/ns_last_pid"})
        CHECK_NOTHROW(check_mount_destination(ok, "-v"));
    CHECK_THROWS_WITH(check_mount_destination("/", "-v"), Contains("root"));
    for (const char* bad : {"/proc", "/proc/sys", "/proc/1/root", "/proc/sysrq-trigger"})
        CHECK_THROWS_WITH(check_mount_destination(bad, "-v"), Contains("under /proc are refused"));
    for (const char* bad : {"/sys", "/sys/fs/cgroup", "/sys/kernel/security"})
        CHECK_THROWS_WITH(check_mount_destination(bad, "--tmpfs"), Contains("--tmpfs") && Contains("under /sys"));
}

TEST_CASE("volumes: HOST:CONTAINER[:ro|rw], ':' only between fields", "[unit][validate]") {
    Mount m = parse_volume("/tmp:/data/./x/:ro");
    CHECK(m.source == "/tmp");
    CHECK(m.destination == "/data/x");
    CHECK(m.read_only);
    CHECK_FALSE(parse_volume("/tmp:/d:rw").read_only);
    CHECK_THROWS_WITH(parse_volume("/tmp"), Contains("expected HOST:CONTAINER[:ro|rw]"));
    CHECK_THROWS_WITH(parse_volume("/tmp:/d:rx"), Contains("mode must be ro or rw, not \"rx\""));
    CHECK_THROWS_WITH(parse_volume("/tmp/a:b:/d"), Contains("':' separates") && Contains("containing ':'"));
    CHECK_THROWS_WITH(parse_volume("/tmp:/d:ro:x"), Contains("':' separates"));
    CHECK_THROWS_WITH(parse_volume("tmp:/d"), Contains("must be absolute"));
    CHECK_THROWS_WITH(parse_volume("/tmp:/proc"), Contains("/proc"));
    CHECK_THROWS_WITH(parse_volume("/tmp:/a/../b"), Contains("\"..\""));
    CHECK_THROWS_WITH(parse_volume("/nonexistent-srl-test:/d"), Contains("No such file or directory"));
}

TEST_CASE("resources: sizes in range, memory+swap as docker resolves it", "[unit][validate][cgroup]") {
    ResourceFlags f;
    f.memory = "32m";
    Resources r = build_resources(f);
    CHECK(memory_and_swap(r) == 64 << 20);  // -m alone: as much swap as memory
    f.memory_swap = "48m";
    CHECK(memory_and_swap(build_resources(f)) == 48 << 20);
    f.memory_swap = "-1";
    CHECK(memory_and_swap(build_resources(f)) == -1);
    CHECK(memory_and_swap(Resources{}) == std::nullopt);

    f = {};
    f.memory = "4611686018427387903";  // the largest: twice it still fits an int64_t
    CHECK(memory_and_swap(build_resources(f)) == INT64_MAX - 1);
    for (const char* bad : {"4611686018427387904", "9223372036854775807", "8388607t", "5m", "0"}) {
        f.memory = bad;
        CHECK_THROWS_WITH(build_resources(f), Contains("the range is 6m to 4611686018427387903"));
    }
    f.memory = "9223372036854775808";
    CHECK_THROWS_WITH(build_resources(f), Contains("expected a size"));

    f = {};
    f.pids_limit = 4194304;
    CHECK(build_resources(f).pids_limit == 4194304);
    f.pids_limit = 4194305;
    CHECK_THROWS_WITH(build_resources(f), Contains("at most 4194304"));
    f.pids_limit = 0;
    CHECK(build_resources(f).pids_limit == -1);

    CHECK(parse_cpus_quota("0.01", 100'000, "--cpus", 2) == 1000);
    CHECK(parse_cpus_quota("2", 100'000, "--cpus", 2) == 200'000);
    CHECK_THROWS_WITH(parse_cpus_quota("2.5", 100'000, "--cpus", 2), Contains("the range is 0.01 to 2"));
    CHECK_THROWS_WITH(parse_cpus_quota("0.001", 100'000, "--cpus", 2), Contains("the range is 0.01 to 2"));
    for (const char* bad : {"", " 1", "1e0", "0x1", "inf", "nan", "1.2.3", ".", "-1"})
        CHECK_THROWS_WITH(parse_cpus_quota(bad, 100'000, "--cpus", 2), Contains("positive number of CPUs"));
}

TEST_CASE("ids: 0 to 4294967294", "[unit][validate]") {
    CHECK(checked_id(0, "uid", "-u 0") == 0);
    CHECK(checked_id(4294967294u, "uid", "-u x") == 4294967294u);
    CHECK_THROWS_WITH(checked_id(4294967295u, "uid", "-u 4294967295"),
                      "uid 4294967295 (-u 4294967295) is out of range: ids go from 0 to 4294967294");
}
