// kill -9 of srlaunch at any moment (issue 14): nothing runs unsupervised, `ps -a` tells the
// truth about what is left, and `rm -f` removes all of it — cgroups, user namespace ranges,
// names, mounts and directories — however far a start or an earlier `rm` got.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/bridge_net.hpp"
#include "../support/proc.hpp"

using namespace test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The supervisors started from this store's srlaunch (the caller, the -d monitor): their
// command lines name the store. Not the container's first process before it execs srinit: it
// has the same command line, but lives in the container's new PID namespace, and a user's
// kill -9 of srlaunch does not reach it.
std::vector<pid_t> srlaunch_processes(const std::string& store) {
    std::vector<pid_t> out;
    auto own_pidns = fs::read_symlink("/proc/self/ns/pid");
    for (const auto& e : fs::directory_iterator("/proc")) {
        std::error_code ec;
        if (fs::read_symlink(e.path() / "ns/pid", ec) != own_pidns) continue;
        std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(e.path() / "cmdline");
        std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (cmdline.find(std::string(1, '\0') + store + '\0') != std::string::npos &&
            cmdline.find("srlaunch") != std::string::npos && process_state(std::stoi(name)) != 'Z')
            out.push_back(std::stoi(name));
    }
    return out;
}

// Processes of any of these containers: in one of their cgroups, or carrying the marker the
// test put in every container's environment.
std::vector<std::string> container_processes(const std::set<std::string>& ids, const std::string& marker) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
        std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cgroup = read_file(e.path() / "cgroup");
        std::ifstream env_in(e.path() / "environ");
        std::string env((std::istreambuf_iterator<char>(env_in)), std::istreambuf_iterator<char>());
        bool ours = env.find(marker) != std::string::npos;
        for (const auto& id : ids) ours = ours || cgroup.find("/srlaunch/" + id) != std::string::npos;
        if (ours && process_state(std::stoi(name)) != 'Z') out.push_back(name + " " + read_file(e.path() / "comm"));
    }
    return out;
}

// cgroup directories of these containers, anywhere under /sys/fs/cgroup.
std::vector<std::string> container_cgroups(const std::set<std::string>& ids) {
    std::vector<std::string> out;
    for (const auto& id : ids) {
        auto r = run({"find", "/sys/fs/cgroup", "-type", "d", "-name", id});
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) out.push_back(line);
    }
    return out;
}

std::set<std::string> container_dirs(const AlpineStore& s) {
    std::set<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(s.path("containers"), ec)) ids.insert(e.path().filename());
    return ids;
}

std::vector<json> ps_all(const AlpineStore& s) {
    auto r = s.srl({"ps", "-a", "--format", "json"});
    REQUIRE(r.status == 0);
    std::vector<json> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
}

void kill_all(const std::string& store) {
    for (int round = 0; round < 3; ++round)
        for (pid_t pid : srlaunch_processes(store)) kill(pid, SIGKILL);
}

}  // namespace

TEST_CASE("recovery: 100 starts killed at random moments leave nothing unsupervised, and rm -f removes all", "[lifecycle][kill9]") {
    BridgeNet b;
    const AlpineStore& s = b.s;
    std::string marker = "SRL_KILL9=" + std::to_string(getpid());
    std::mt19937 rng(static_cast<unsigned>(getpid()));
    std::uniform_int_distribution<int> delay_ms(5, 80);
    for (int i = 0; i < 100; ++i) {
        // Foreground and -d, with a name, an automatic user namespace range, limits and a
        // bridge veth with its lease now and then: each a resource a killed start must not leak.
        std::vector<std::string> args{"run", "-e", marker};
        if (i % 2) args.push_back("-d");
        if (i % 3 == 0) args.insert(args.end(), {"--name", "k" + std::to_string(i)});
        if (i % 4 == 0) args.insert(args.end(), {"--userns", "auto"});
        if (i % 5 == 0) args.insert(args.end(), {"-m", "64m", "--pids-limit", "100"});
        if (i % 3 == 1) args.insert(args.end(), {"--net", "bridge"});
        args.insert(args.end(), {"alpine:3.20", "sleep", "1000"});
        Child start(s.argv(args));
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
        kill(start.pid(), SIGKILL);  // by pid too: it may not have exec'd srlaunch yet
        kill_all(s.dir.path());
        start.wait();
    }
    kill_all(s.dir.path());
    std::set<std::string> ids = container_dirs(s);
    INFO(ids.size() << " container directories left by killed starts");

    // The parent-death signal is asynchronous: moments, not seconds.
    auto deadline = Clock::now() + 20s;
    while (!container_processes(ids, marker).empty() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
    auto left = container_processes(ids, marker);
    INFO("running without a supervisor: " << json(left).dump());
    CHECK(left.empty());

    // ps -a lists every directory, and none as running: their supervisors are all dead.
    auto listed = ps_all(s);
    CHECK(listed.size() == ids.size());
    for (const auto& c : listed) {
        INFO(c.dump());
        CHECK(ids.count(c.at("ID").get<std::string>()) == 1);
        std::string status = c.at("Status");
        CHECK((status == "exited (unknown)" || status == "dead"));
        CHECK(s.srl({"stop", c.at("ID")}).status == 0);  // nothing to stop: not an error
    }

    for (const auto& id : ids) {
        auto rm = s.srl({"rm", "-f", id});
        INFO(id << ": " << rm.err);
        CHECK(rm.status == 0);
    }
    CHECK(count_entries(s.path("containers")) == 0);
    CHECK(container_cgroups(ids).empty());
    CHECK(count_entries(s.path("names")) == 0);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(s.path("userns"), ec)) CHECK(e.path().filename() == ".lock");
    CHECK(read_file("/proc/self/mountinfo").find(s.dir.path()) == std::string::npos);
    b.expect_clean();  // no veth on the test's bridge, no lease
}

TEST_CASE("recovery: an rm -f killed at random moments leaves a listed container that the next rm removes", "[lifecycle][kill9]") {
    AlpineStore s;
    std::mt19937 rng(static_cast<unsigned>(getpid()));
    // Kills spread over the whole of an rm -f, however long it takes on this machine.
    auto time_rm = [&] {
        auto started = s.srl({"run", "-d", "alpine:3.20", "sleep", "1000"});
        REQUIRE(started.status == 0);
        auto t0 = Clock::now();
        REQUIRE(s.srl({"rm", "-f", started.out.substr(0, 64)}).status == 0);
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    };
    std::uniform_int_distribution<long> delay_ms(0, time_rm());
    for (int i = 0; i < 20; ++i) {
        auto started = s.srl({"run", "-d", "--name", "r" + std::to_string(i), "alpine:3.20", "sleep", "1000"});
        REQUIRE(started.status == 0);
        std::string id = started.out.substr(0, 64);
        Child rm(s.argv({"rm", "-f", id}));
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
        kill(rm.pid(), SIGKILL);
        rm.wait();
        // Whatever is left of it is listed, and removable.
        bool listed = false;
        for (const auto& c : ps_all(s)) listed = listed || c.at("ID") == id;
        CHECK(listed == fs::exists(s.path("containers/" + id)));
        if (listed) {
            auto again = s.srl({"rm", "-f", id});
            INFO(again.err);
            CHECK(again.status == 0);
        }
        CHECK(!fs::exists(s.path("containers/" + id)));
        CHECK(!fs::exists(s.path("names/r" + std::to_string(i))));
        CHECK(container_cgroups({id}).empty());
    }
    kill_all(s.dir.path());
}

TEST_CASE("recovery: a directory without a state is listed as dead and removed", "[lifecycle][kill9]") {
    AlpineStore s;
    std::string id(64, 'a');
    fs::create_directories(s.path("containers/" + id + "/upper/etc"));
    write_file(s.path("containers/" + id + "/config.json"), "{}");
    auto ps = ps_all(s);
    REQUIRE(ps.size() == 1);
    CHECK(ps[0].at("ID") == id);
    CHECK(ps[0].at("Status") == "dead");
    CHECK(s.srl({"inspect", id.substr(0, 12)}).status == 0);
    auto rm = s.srl({"rm", id.substr(0, 12)});
    INFO(rm.err);
    CHECK(rm.status == 0);
    CHECK(!fs::exists(s.path("containers/" + id)));
    CHECK(s.srl({"rm", id}).status == 125);  // gone: no such container
}

TEST_CASE("recovery: rm -f of a running --rm container, and wait on one, report its end", "[lifecycle]") {
    AlpineStore s;
    auto started = s.srl({"run", "-d", "--rm", "alpine:3.20", "sleep", "1000"});
    REQUIRE(started.status == 0);
    std::string id = started.out.substr(0, 64);
    auto rm = s.srl({"rm", "-f", id});
    INFO(rm.err);
    CHECK(rm.status == 0);
    CHECK(rm.err == "");
    CHECK(!fs::exists(s.path("containers/" + id)));

    auto quick = s.srl({"run", "-d", "--rm", "alpine:3.20", "sh", "-c", "sleep 1; exit 3"});
    REQUIRE(quick.status == 0);
    auto wait = s.srl({"wait", quick.out.substr(0, 64)});
    CHECK(wait.status == 0);
    CHECK(wait.out == "3\n");
}

TEST_CASE("recovery: a store that fills up while the container runs keeps the workload's status", "[lifecycle]") {
    AlpineStore base;
    TempDir small;
    REQUIRE(mount("tmpfs", small.path().c_str(), "tmpfs", 0, "size=48m") == 0);
    struct Unmount {
        std::string path;
        ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
    } unmount{small.path()};
    std::string store = small / "store";
    auto srl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", store});
        return run(args);
    };
    REQUIRE(srl({"import", alpine_fixture(), "alpine:3.20"}).status == 0);
    // The workload fills the store (its writable layer lives there), then exits 3.
    auto r = srl({"run", "--rm", "alpine:3.20", "sh", "-c", "dd if=/dev/zero of=/fill bs=1M 2>/dev/null; exit 3"});
    INFO(r.err);
    CHECK(r.status == 3);
    if (r.err.find("srlaunch:") != std::string::npos) CHECK(r.err.find("No space left on device") != std::string::npos);
    CHECK(count_entries(store + "/containers") == 0);

    // Full from the start: a clear error with the kernel's reason, and nothing left.
    write_file(small / "filler", "");
    run({"dd", "if=/dev/zero", "of=" + small / "filler", "bs=1M"});
    auto full = srl({"run", "--rm", "alpine:3.20", "true"});
    CHECK(full.status == 125);
    CHECK(full.err.find("No space left on device") != std::string::npos);
    CHECK(count_entries(store + "/containers") == 0);
}
