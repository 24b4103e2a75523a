// Containers after `run -d`: ps, logs, exec, stats, stop, kill, wait, rm, inspect, and what
// is left when a monitor dies. Real containers from the Alpine fixture.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/proc.hpp"

using namespace test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// `run -d ARGS...`: the id it printed.
std::string detach(const AlpineStore& s, std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    auto r = s.srl(args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string id = trim(r.out);
    REQUIRE(id.size() == 64);
    return id;
}

json inspect(const AlpineStore& s, const std::string& c) {
    auto r = s.srl({"inspect", c});
    INFO(r.err);
    REQUIRE(r.status == 0);
    return json::parse(r.out).at(0);
}

// Polls until `pred` holds, for up to `timeout`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

bool process_alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0 && process_state(pid) != 'Z'; }

// Nothing of the container left on the host: cgroups, mounts, directory, name.
void check_nothing_left(const AlpineStore& s, const std::string& id) {
    std::string cgroups = run({"find", "/sys/fs/cgroup", "-type", "d", "-path", "*/srlaunch/" + id}).out;
    CHECK(cgroups.empty());
    CHECK(read_file("/proc/self/mountinfo").find(id) == std::string::npos);
    CHECK(!fs::exists(s.path("containers/" + id)));
}

}  // namespace

TEST_CASE("run -d: a service listed, logged, exec'd into, measured, stopped and removed", "[lifecycle]") {
    AlpineStore s;
    std::string id = detach(s, {"--name", "svc", "-m", "64m", "alpine:3.20", "sh", "-c",
                                "echo service-started; trap '' TERM; while :; do sleep 0.1; done"});
    auto ps = s.srl({"ps"});
    REQUIRE(ps.status == 0);
    CHECK(ps.out.find(id.substr(0, 12)) != std::string::npos);
    CHECK(ps.out.find("svc") != std::string::npos);
    CHECK(ps.out.find("running") != std::string::npos);
    auto ps_json = s.srl({"ps", "--format", "json"});
    REQUIRE(ps_json.status == 0);
    json row = json::parse(ps_json.out.substr(0, ps_json.out.find('\n')));
    CHECK(row["ID"] == id);
    CHECK(row["Names"] == "svc");
    CHECK(row["Status"] == "running");

    CHECK(eventually([&] { return s.srl({"logs", "svc"}).out == "service-started\n"; }));

    // exec sees the container's PID namespace: srinit is 1, the service is there.
    auto ex = s.srl({"exec", "svc", "ps", "-o", "pid,args"});
    INFO(ex.err);
    REQUIRE(ex.status == 0);
    std::istringstream lines(ex.out);
    std::string header, first;
    std::getline(lines, header);
    std::getline(lines, first);
    CHECK(first.find("1 srinit") != std::string::npos);
    CHECK(ex.out.find("echo service-started") != std::string::npos);

    // Memory in use, under the 64 MiB limit.
    auto st = s.srl({"stats", "--no-stream", "svc"});
    INFO(st.out << st.err);
    REQUIRE(st.status == 0);
    std::string line = st.out.substr(st.out.find(id.substr(0, 12)));
    CHECK(line.find("/ 67.1MB") != std::string::npos);  // 64 MiB in docker's decimal units
    std::istringstream f(line);
    std::string short_id, name, cpu, used, slash, limit, mem_pct;
    f >> short_id >> name >> cpu >> used >> slash >> limit >> mem_pct;
    double pct = std::stod(mem_pct);
    CHECK(pct > 0.0);
    CHECK(pct < 100.0);

    json info = inspect(s, "svc");
    pid_t monitor = info["State"]["MonitorPid"];
    pid_t init = info["State"]["Pid"];
    CHECK(process_alive(monitor));
    CHECK(process_alive(init));
    CHECK(info["Config"]["process"]["args"][0] == "sh");
    CHECK(info["Cgroups"].size() >= 1);

    // It ignores SIGTERM: stop waits its grace period, then kills.
    auto start = Clock::now();
    auto stop = s.srl({"stop", "-t", "2", "svc"});
    double took = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(stop.status == 0);
    CHECK(took >= 1.9);
    CHECK(took < 8.0);
    CHECK(s.srl({"ps", "-a"}).out.find("exited (137)") != std::string::npos);
    CHECK(s.srl({"ps"}).out.find("svc") == std::string::npos);
    CHECK(!process_alive(monitor));
    CHECK(!process_alive(init));

    auto rm = s.srl({"rm", "svc"});
    CHECK(rm.status == 0);
    check_nothing_left(s, id);
    CHECK(!fs::exists(s.path("names/svc")));
    CHECK(s.srl({"ps", "-a"}).out.find(id.substr(0, 12)) == std::string::npos);
}

TEST_CASE("stop while srinit drains leftovers: the workload's status survives", "[lifecycle][signals]") {
    // The workload leaves a child that outlives SIGTERM and exits 3. srinit then SIGTERMs
    // the child and gives it the container's --stop-timeout (10 s) before SIGKILL; the child
    // says "draining" when that SIGTERM comes. `stop -t 1` must not wait that out and SIGKILL
    // srinit (which would record 137): its SIGTERM ends the drain, and 3 is recorded.
    AlpineStore s;
    std::string id = detach(s, {"--stop-timeout", "10", "alpine:3.20", "sh", "-c",
                                "(trap 'echo draining' TERM; while :; do sleep 0.1; done) & "
                                "sleep 0.5; exit 3"});
    REQUIRE(eventually([&] { return s.srl({"logs", id}).out.find("draining") != std::string::npos; }));
    auto stop = s.srl({"stop", "-t", "1", id});
    INFO(stop.err);
    CHECK(stop.status == 0);
    CHECK(s.srl({"wait", id}).out == "3\n");
    CHECK(s.srl({"ps", "-a"}).out.find("exited (3)") != std::string::npos);
    CHECK(s.srl({"rm", id}).status == 0);
    check_nothing_left(s, id);
}

TEST_CASE("stop of a workload that leaves a TERM-proof child: the workload's own status", "[lifecycle][signals]") {
    // The stop's SIGTERM ends the workload (143) but not its child. The container was asked
    // to stop, so srinit gives the child no grace of its own: `stop -t 1` does not have to
    // SIGKILL srinit (137), and the workload's 143 is recorded.
    AlpineStore s;
    std::string id = detach(s, {"--stop-timeout", "10", "alpine:3.20", "sh", "-c",
                                "(trap 'echo draining' TERM; while :; do sleep 0.1; done) & echo up; wait"});
    REQUIRE(eventually([&] { return s.srl({"logs", id}).out.find("up") != std::string::npos; }));
    auto stop = s.srl({"stop", "-t", "1", id});
    INFO(stop.err);
    CHECK(stop.status == 0);
    CHECK(s.srl({"wait", id}).out == "143\n");
    CHECK(s.srl({"rm", id}).status == 0);
    check_nothing_left(s, id);
}

TEST_CASE("exec: user, workdir, environment, stdin and exit status", "[lifecycle]") {
    AlpineStore s;
    std::string id = detach(s, {"-e", "FROM_RUN=1", "alpine:3.20", "sleep", "300"});
    std::string prefix = id.substr(0, 6);  // a short prefix names it too
    auto who = s.srl({"exec", "-u", "nobody", "-w", "/tmp", "-e", "EXTRA=x", prefix, "sh", "-c",
                      "id -un; pwd; echo $FROM_RUN$EXTRA; cat /proc/self/status | grep ^CapEff"});
    INFO(who.err);
    REQUIRE(who.status == 0);
    CHECK(who.out.find("nobody\n/tmp\n1x\nCapEff:\t0000000000000000") == 0);
    CHECK(s.srl({"exec", prefix, "sh", "-c", "exit 7"}).status == 7);
    CHECK(s.srl({"exec", prefix, "no-such-command"}).status == 127);
    SpawnOptions in;
    in.stdin_data = "a\nb\nc\n";
    CHECK(run(s.argv({"exec", "-i", prefix, "wc", "-l"}), in).out == "3\n");
    // The same seccomp filter and no_new_privs as the container's PID 1.
    auto seccomp = s.srl({"exec", prefix, "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"});
    auto pid1 = s.srl({"exec", prefix, "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/1/status"});
    CHECK(seccomp.out.find("Seccomp:\t2") != std::string::npos);
    CHECK(seccomp.out == pid1.out);
    REQUIRE(s.srl({"kill", prefix}).status == 0);
    CHECK(s.srl({"wait", prefix}).out == "137\n");
    auto late = s.srl({"exec", prefix, "true"});
    CHECK(late.status == 125);
    CHECK(late.err.find("is not running") != std::string::npos);
    CHECK(s.srl({"rm", prefix}).status == 0);
    check_nothing_left(s, id);
}

TEST_CASE("logs --tail and -f, wait, kill -s, and rm of a running container", "[lifecycle]") {
    AlpineStore s;
    std::string id = detach(s, {"--name", "talk", "alpine:3.20", "sh", "-c",
                                "trap 'echo got-usr1' USR1; for i in 1 2 3 4 5; do echo line$i; done; "
                                "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo late; exit 5"});
    CHECK(eventually([&] { return s.srl({"logs", "talk"}).out.find("line5") != std::string::npos; }));
    CHECK(s.srl({"logs", "--tail", "2", "talk"}).out == "line4\nline5\n");
    CHECK(s.srl({"rm", "talk"}).status == 125);  // running: refused without -f
    REQUIRE(s.srl({"kill", "-s", "USR1", "talk"}).status == 0);
    CHECK(eventually([&] { return s.srl({"logs", "talk"}).out.find("got-usr1") != std::string::npos; }));
    Child follow(s.argv({"logs", "-f", "--tail", "0", "talk"}));
    REQUIRE(s.srl({"exec", "talk", "touch", "/tmp/go"}).status == 0);
    CHECK(follow.wait(20s) == 0);  // ends with the container
    CHECK(follow.out() == "late\n");
    CHECK(s.srl({"wait", "talk"}).out == "5\n");
    CHECK(s.srl({"ps", "-a"}).out.find("exited (5)") != std::string::npos);
    CHECK(s.srl({"rm", "talk"}).status == 0);

    std::string again = detach(s, {"--name", "talk", "alpine:3.20", "sleep", "300"});
    auto dup = s.srl({"run", "-d", "--name", "talk", "alpine:3.20", "true"});
    CHECK(dup.status == 125);
    CHECK(dup.err.find("already in use") != std::string::npos);
    CHECK(s.srl({"rm", "-f", "talk"}).status == 0);
    check_nothing_left(s, again);
    auto none = s.srl({"logs", "nothing-here"});
    CHECK(none.status == 125);
    CHECK(none.err == "srlaunch: no such container: nothing-here\n");
}

TEST_CASE("a monitor killed with SIGKILL: exited (unknown), and rm still cleans up", "[lifecycle]") {
    AlpineStore s;
    std::string id = detach(s, {"alpine:3.20", "sleep", "300"});
    json info = inspect(s, id);
    pid_t monitor = info["State"]["MonitorPid"];
    pid_t init = info["State"]["Pid"];
    REQUIRE(kill(monitor, SIGKILL) == 0);
    // The container dies with its monitor (PR_SET_PDEATHSIG): nobody could wait for it.
    CHECK(eventually([&] { return !process_alive(init); }));
    CHECK(eventually([&] { return s.srl({"ps", "-a"}).out.find("exited (unknown)") != std::string::npos; }));
    CHECK(s.srl({"ps"}).out.find(id.substr(0, 12)) == std::string::npos);
    // Its cgroups are still there: nobody removed them.
    CHECK(!run({"find", "/sys/fs/cgroup", "-type", "d", "-path", "*/srlaunch/" + id}).out.empty());
    auto rm = s.srl({"rm", id});
    INFO(rm.err);
    CHECK(rm.status == 0);
    check_nothing_left(s, id);
}

TEST_CASE("run -i: pipes pass straight through", "[lifecycle]") {
    AlpineStore s;
    SpawnOptions in;
    in.stdin_data = "a\nb\n";
    auto r = run(s.alpine_argv({"-i"}, {"wc", "-l"}), in);
    CHECK(r.status == 0);
    CHECK(r.out == "2\n");
    // Without -i stdin is /dev/null, as docker's.
    auto closed = run(s.alpine_argv({}, {"wc", "-l"}), in);
    CHECK(closed.out == "0\n");
}

TEST_CASE("run -d: an OOM kill is recorded, shown by ps and told in the log", "[lifecycle]") {
    AlpineStore s;
    std::string mount = helper_path("memhog") + ":/memhog:ro";
    std::string id = detach(s, {"-m", "32m", "--cap-add", "IPC_LOCK", "-v", mount, "alpine:3.20", "/memhog", "200"});
    CHECK(s.srl({"wait", id}).out == "137\n");
    CHECK(s.srl({"ps", "-a"}).out.find("oom-killed") != std::string::npos);
    CHECK(inspect(s, id)["State"]["OOMKilled"] == true);
    CHECK(s.srl({"logs", id}).out.find("srlaunch: killed: out of memory (limit 32 MiB)") != std::string::npos);
    CHECK(s.srl({"rm", id}).status == 0);
    check_nothing_left(s, id);
}
