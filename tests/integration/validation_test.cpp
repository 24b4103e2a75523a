// Bad input to `run` (issue 14), through the real binary: each is refused with exit 125 and
// one short line naming the problem, and leaves nothing behind: no container directory, name
// claim, user-namespace range, cidfile or cgroup. What a run created is seen as it happens
// (inotify on the store's directories), so a container directory made and removed again
// counts too, and the cgroups looked for are those of the run's own ids: other stores'
// containers may run on this host meanwhile.
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "cgroup_helpers.hpp"

using namespace cgtest;

namespace {

constexpr const char* kImage = "alpine:3.20";

struct BadRun {
    std::vector<std::string> args;      // after `run`
    std::vector<std::string> mentions;  // the error says all of these
    // Refused before anything exists (the flags are checked first). Otherwise the run got as
    // far as creating the container and must have removed all of it again.
    bool before_anything = true;
};

// The store's directories a run writes: containers/<id>, names/<name>, userns/<base>.
struct StoreWatch {
    explicit StoreWatch(Store& s)
        : containers(s.path("containers")), names(s.path("names")), userns(s.path("userns")) {}
    DirWatch containers, names, userns;
};

std::string joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + (a.size() > 40 ? a.substr(0, 40) + "..." : a);
    return out;
}

void check_refused(Store& s, StoreWatch& w, const BadRun& c) {
    std::vector<std::string> args{"run"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = s.srl(args);
    INFO("run " << joined(c.args) << "\n-> " << r.status << ", stderr: " << r.err);
    CHECK(r.status == 125);
    CHECK(r.out.empty());
    // One line, "srlaunch: ...", short: a 5000-byte value is not echoed whole.
    CHECK(r.err.rfind("srlaunch: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.size() <= 400);
    for (const auto& m : c.mentions) CHECK(contains(r.err, m));

    auto ids = w.containers.new_entries();
    if (c.before_anything) {
        CHECK(ids.empty());
        CHECK(w.names.new_entries().empty());
        CHECK(w.userns.new_entries().empty());
    } else {
        CHECK(ids.size() == 1);
        w.names.new_entries();
    }
    CHECK(count_entries(s.path("containers")) == 0);
    CHECK(count_entries(s.path("names")) == 0);
    CHECK(count_entries(s.path("userns")) <= 1);  // its lock file
    CHECK(cgroups_of(ids).empty());
}

unsigned cpus_available() {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    return static_cast<unsigned>(CPU_COUNT(&set));
}

}  // namespace

TEST_CASE("run: bad flags are one-line errors, exit 125, and leave nothing behind", "[run][validate]") {
    Store s;
    StoreWatch w(s);
    TempDir t;
    const std::string dir = t.path();  // an existing host directory
    fs::create_directory(t / "a:b");
    const std::string long_path = "/" + std::string(5000, 'p');
    const std::string long_name(300, 'n');
    const std::string too_many_cpus = std::to_string(cpus_available() + 1);
    auto cpus = launcher_cpus();
    REQUIRE(!cpus.empty());
    const std::string outside_cpu = std::to_string(*cpus.rbegin() + 1);

    const std::vector<BadRun> cases = {
        // Sizes.
        {{"-m", "9223372036854775807", kImage, "true"}, {"--memory", "6m to 4611686018427387903"}},
        {{"-m", "", kImage, "true"}, {"--memory", "empty"}},
        {{"-m", "5m", kImage, "true"}, {"--memory", "6m"}},
        {{"-m", "32m", "--memory-swap", "16m", kImage, "true"}, {"--memory-swap", "at least"}},
        {{"--memory-swap", "64m", kImage, "true"}, {"--memory-swap needs --memory"}},
        {{"-m", "32m", "--memory-swap", "", kImage, "true"}, {"--memory-swap", "empty"}},
        // Names and hostnames.
        {{"--name", "", kImage, "true"}, {"--name", "empty"}},
        {{"--name", "a b", kImage, "true"}, {"container name", "[a-zA-Z0-9][a-zA-Z0-9_.-]*"}},
        {{"--name", long_name, kImage, "true"}, {"container name", "300 characters, at most 128", "…"}},
        {{"--hostname", "a b", kImage, "true"}, {"--hostname", "RFC 1123"}},
        {{"--hostname", "", kImage, "true"}, {"--hostname", "empty"}},
        {{"--hostname", std::string(65, 'h'), kImage, "true"}, {"--hostname", "at most 64"}},
        {{"--hostname", "a..b", kImage, "true"}, {"--hostname", "empty label"}},
        {{"--hostname", "a-.b", kImage, "true"}, {"--hostname", "'-'"}},
        // Volumes, tmpfs and devices: where they may go.
        {{"-v", dir + ":/proc", kImage, "true"}, {"-v", "/proc", "refused"}},
        {{"-v", dir + ":/proc/sys/kernel", kImage, "true"}, {"-v", "under /proc"}},
        {{"-v", dir + ":/sys/fs/cgroup", kImage, "true"}, {"-v", "under /sys"}},
        {{"-v", dir + ":/", kImage, "true"}, {"-v", "root"}},
        {{"-v", dir + ":/lib/../../../x", kImage, "true"}, {"-v", "\"..\""}},
        {{"-v", dir + ":lib", kImage, "true"}, {"-v", "absolute"}},
        {{"-v", "relative:/x", kImage, "true"}, {"-v", "host path must be absolute"}},
        {{"-v", dir + "/a:b:/x", kImage, "true"}, {"-v", "':' separates", "containing ':'"}},
        {{"-v", dir + ":/x:rx", kImage, "true"}, {"-v", "mode must be ro or rw", "\"rx\""}},
        {{"-v", dir + ":/x:ro:z", kImage, "true"}, {"-v", "':' separates"}},
        {{"-v", dir + "/nonexistent:/x", kImage, "true"}, {"-v", "No such file or directory"}},
        {{"-v", dir + ":/x", "-v", dir + ":/x/", kImage, "true"}, {"duplicate mount point", "/x"}},
        {{"-v", "", kImage, "true"}, {"--volume", "empty"}},
        {{"--tmpfs", "/proc", kImage, "true"}, {"--tmpfs", "/proc"}},
        {{"--tmpfs", "/run:size=1m", kImage, "true"}, {"--tmpfs", "options"}},
        {{"--tmpfs", "run", kImage, "true"}, {"--tmpfs", "absolute"}},
        {{"--device", "/dev/null:/sys/x", kImage, "true"}, {"--device", "/sys"}},
        {{"--device", "/dev/null:dev/x", kImage, "true"}, {"--device", "absolute"}},
        {{"--device", dir, kImage, "true"}, {"--device", "not a device node"}},
        {{"--device-read-bps", "/dev/null:1mb", kImage, "true"}, {"--device-read-bps", "not a block device"}},
        // Long values are echoed shortened.
        {{"-v", long_path + ":/x", kImage, "true"}, {"-v", "…"}},
        {{"--rootfs", long_path, "true"}, {"--rootfs", "…"}},
        {{"-v", dir + ":" + long_path, kImage, "true"}, {"-v", "…", "more than a path may have"}},
        {{"-v", dir + ":/" + std::string(300, 'd'), kImage, "true"}, {"-v", "…", "more than 255"}},
        // Flags CLI11 does not know arrive where the image would be.
        {{"--frobnicate", kImage, "true"}, {"unknown flag --frobnicate"}},
        {{"--frobnicate=1", "--name", "x", kImage, "true"}, {"unknown flag --frobnicate=1"}},
        // Users: the kernel's range, checked here rather than failing inside srinit.
        {{"-u", "4294967295", kImage, "true"}, {"uid 4294967295", "0 to 4294967294"}},
        {{"-u", "0:4294967295", kImage, "true"}, {"gid 4294967295", "0 to 4294967294"}},
        {{"-u", "99999999999999999999999", kImage, "true"}, {"uid", "out of range"}},
        {{"-u", "root:", kImage, "true"}, {"-u", "no group"}},
        {{"-u", "nosuchuser", kImage, "true"}, {"unable to find user nosuchuser"}},
        // CPUs, processes, ports and the rest.
        {{"--cpus", too_many_cpus, kImage, "true"}, {"--cpus", "0.01 to"}},
        {{"--cpus", "0.001", kImage, "true"}, {"--cpus", "0.01 to"}},
        {{"--cpus", "1e0", kImage, "true"}, {"--cpus", "positive number"}},
        {{"--pids-limit", "5000000", kImage, "true"}, {"--pids-limit", "4194304"}},
        {{"--cpu-shares", "1", kImage, "true"}, {"--cpu-shares", "2 and 262144"}},
        {{"--net", "bridge", "-p", "99999:80", kImage, "true"}, {"-p", "99999"}},
        {{"-p", "8080:80", kImage, "true"}, {"--net bridge"}},
        {{"-e", "=x", kImage, "true"}, {"environment variable"}},
        {{"-w", "relative", kImage, "true"}, {"--workdir", "absolute"}},
        {{"-w", "/a/../b", kImage, "true"}, {"--workdir", "\"..\""}},
        {{"--stop-timeout", "-1", kImage, "true"}, {"--stop-timeout", "0 or more"}},
        {{"--boot-offset", "-99999999999", kImage, "true"}, {"--boot-offset", "the range is"}},
        {{"--boot-offset", "99999999999999", kImage, "true"}, {"--boot-offset", "the range is"}},
        {{"--cap-add", "NOPE", kImage, "true"}, {"unknown capability \"NOPE\""}},
        {{"--security-opt", "apparmor=x", kImage, "true"}, {"--security-opt"}},
        {{"--userns", "auto", "--uidmap", "0:100000:65536", kImage, "true"}, {"--userns auto excludes"}},
        // Checked after the image is read (the user is the image's), but still before the
        // automatic id range is taken.
        {{"--userns", "auto", "-u", "4294967295", kImage, "true"}, {"uid 4294967295"}},
        {{"--userns", "auto", "-u", "70000", kImage, "true"}, {"not mapped"}},
        {{"--cidfile", "", kImage, "true"}, {"--cidfile", "empty"}},
        {{"--pull", "sometimes", kImage, "true"}, {"--pull sometimes"}},
        // Failing only when its cgroup is made (the kernel checks the CPU list): the container's
        // directory and cgroups existed, and went again, and so did its cidfile.
        {{"--cidfile", t / "cid", "--cpuset-cpus", outside_cpu, kImage, "true"}, {"cpuset"}, false},
    };
    for (const auto& c : cases) check_refused(s, w, c);
    CHECK(!fs::exists(t / "cid"));
}

TEST_CASE("import echoes a long path shortened", "[run][validate]") {
    Store s;
    auto r = s.srl({"import", "/" + std::string(5000, 'i'), "x:1"});
    INFO("-> " << r.status << ", stderr: " << r.err);
    CHECK(r.status == 125);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.size() <= 400);
    CHECK(contains(r.err, "…"));
}
