// The pieces of the container lifecycle that need no kernel: detach keys, signal names,
// status strings, the state file's JSON.
#include <csignal>
#include <catch2/catch.hpp>

#include "launcher/error.hpp"
#include "launcher/lifecycle.hpp"
#include "launcher/state.hpp"
#include "launcher/terminal.hpp"

using namespace srl;

TEST_CASE("Ctrl-P Ctrl-Q detaches, also split across reads, a lone Ctrl-P passes", "[unit][lifecycle]") {
    DetachKeys keys;
    bool detached = false;
    std::string out;
    keys.scan("ab\x10", 3, detached, out);
    CHECK(out == "ab");  // Ctrl-P held back
    CHECK(!detached);
    keys.scan("\x11zz", 3, detached, out);
    CHECK(detached);
    CHECK(out.empty());

    DetachKeys other;
    other.scan("\x10x\x10\x10", 4, detached, out);
    CHECK(!detached);
    CHECK(out == std::string("\x10x\x10"));  // the second Ctrl-P of a pair waits
    other.scan("q", 1, detached, out);
    CHECK(out == std::string("\x10q"));
}

TEST_CASE("signals by name, SIG name or number", "[unit][lifecycle]") {
    CHECK(parse_signal("KILL") == SIGKILL);
    CHECK(parse_signal("SIGUSR1") == SIGUSR1);
    CHECK(parse_signal("15") == SIGTERM);
    CHECK_THROWS_AS(parse_signal("NOPE"), Error);
    CHECK_THROWS_AS(parse_signal("0"), Error);
    CHECK_THROWS_AS(parse_signal("99"), Error);
}

TEST_CASE("status strings as ps shows them", "[unit][lifecycle]") {
    ContainerState s;
    s.status = ContainerState::Status::Running;
    CHECK(display_status(s, true) == "running");
    CHECK(display_status(s, false) == "exited (unknown)");  // its supervisor died
    s.status = ContainerState::Status::Exited;
    s.exit_code = 3;
    CHECK(display_status(s, false) == "exited (3)");
    s.oom_killed = true;
    CHECK(display_status(s, false) == "oom-killed");
    s.status = ContainerState::Status::Created;
    CHECK(display_status(s, true) == "created");
}

TEST_CASE("state survives its JSON round trip", "[unit][lifecycle]") {
    ContainerState s;
    s.id = std::string(64, 'a');
    s.name = "web";
    s.command = {"sh", "-c", "echo hi"};
    s.status = ContainerState::Status::Exited;
    s.exit_code = 137;
    s.pid = 4242;
    s.pid_start = 99;
    s.cgroups = {"/sys/fs/cgroup/pids/srlaunch/x"};
    s.network = {{"mode", "bridge"}, {"address", "10.88.0.2"}};
    ContainerState t = ContainerState::from_json(s.to_json());
    CHECK(t.to_json() == s.to_json());
}
