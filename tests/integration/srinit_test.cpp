// srinit as a real PID 1 of real PID namespaces, and standalone as a subreaper.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "../support/proc.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

SpawnOptions in_namespace() {
    SpawnOptions o;
    o.pid_namespace = true;
    return o;
}

std::vector<std::string> init(std::vector<std::string> cmd, std::vector<std::string> opts = {}) {
    std::vector<std::string> argv{srinit_path()};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.emplace_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return argv;
}

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// tests/helpers/sigrecord.c: records signals, dies of them, or is an inheriting parent.
std::string sigrecord() { return helper_path("sigrecord"); }

// Signals 1..64 as tini's and dumb-init's tests take them: all but SIGKILL and SIGSTOP (no
// one can catch them) and SIGCHLD (which srinit takes to mean "reap").
std::vector<int> forwardable_signals() {
    std::vector<int> sigs;
    for (int sig = 1; sig <= 64; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD) sigs.push_back(sig);
    return sigs;
}

// Those whose default action ends the process: all but the stop signals and the ones ignored
// by default. The real-time signals 32..64 all terminate.
bool fatal_by_default(int sig) {
    switch (sig) {
    case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:     // ignored
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:     // stop
        return false;
    default:
        return true;
    }
}

// The pid `sigrecord parent` printed for its child ("child=PID").
pid_t child_of_parent(Child& c) {
    REQUIRE(c.read_until("child="));  // the whole line: sigrecord writes each in one write(2)
    std::size_t at = c.out().find("child=") + 6;
    return static_cast<pid_t>(std::stol(c.out().substr(at)));
}

}  // namespace

TEST_CASE("srinit is a static binary with no program interpreter", "[srinit]") {
    require_program("readelf");
    require_program("file");
    auto headers = run({"readelf", "-lW", srinit_path()});
    REQUIRE(headers.status == 0);
    CHECK(headers.out.find("INTERP") == std::string::npos);
    auto kind = run({"file", "-L", srinit_path()});
    CHECK(kind.out.find("statically linked") != std::string::npos);
}

TEST_CASE("srinit passes the workload's exit status through", "[srinit]") {
    require_root();
    for (int code : {0, 1, 2, 255}) {
        auto r = run(init({"sh", "-c", "exit " + std::to_string(code)}), in_namespace());
        CHECK(r.status == code);
    }
    // Standalone too.
    CHECK(run(init({"sh", "-c", "exit 3"})).status == 3);
}

TEST_CASE("srinit reports a missing command with 127 and names it", "[srinit]") {
    require_root();
    auto r = run(init({"/no/such/command"}), in_namespace());
    CHECK(r.status == 127);
    CHECK(r.err.find("/no/such/command") != std::string::npos);
    auto bare = run(init({"no-such-command-xyz"}), in_namespace());
    CHECK(bare.status == 127);
    CHECK(bare.err.find("no-such-command-xyz") != std::string::npos);
}

TEST_CASE("srinit reports a command that cannot be executed with 126", "[srinit]") {
    require_root();
    TempDir dir;
    write_file(dir / "script", "#!/bin/sh\necho should-not-run\n", 0644);
    auto r = run(init({dir / "script"}), in_namespace());
    CHECK(r.status == 126);
    CHECK(r.err.find(dir / "script") != std::string::npos);
    CHECK(r.out.find("should-not-run") == std::string::npos);
    CHECK(run(init({dir.path()}), in_namespace()).status == 126);  // a directory
}

TEST_CASE("signals sent to srinit end the workload with 128+N", "[srinit]") {
    require_root();
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
        INFO("signal " << sig);
        Child c(init({"sh", "-c", "echo ready; exec sleep 100"}), in_namespace());
        REQUIRE(c.read_until("ready"));
        REQUIRE(kill(c.pid(), sig) == 0);
        CHECK(c.wait(10s) == 128 + sig);
    }
}

TEST_CASE("srinit forwards every signal 1..64 to the workload", "[srinit][signals]") {
    // tini's test_signals: each signal sent to srinit reaches the workload, which blocks all 64
    // and prints "got N" for each one it takes. 32..34 included: musl (srinit's libc) keeps
    // them for itself, and 34 is SIGRTMIN in glibc programs. One signal at a time, so standard
    // signals cannot merge; 64 last, which ends the recorder (exit 0).
    auto pid1 = GENERATE(false, true);
    INFO((pid1 ? "as PID 1" : "standalone"));
    if (pid1) require_root();
    Child c(init({sigrecord(), "record"}), pid1 ? in_namespace() : SpawnOptions{});
    REQUIRE(c.read_until("ready\n"));
    std::string expected = "ready\n";
    for (int sig : forwardable_signals()) {
        INFO("signal " << sig);
        REQUIRE(kill(c.pid(), sig) == 0);
        expected += "got " + std::to_string(sig) + "\n";
        REQUIRE(c.read_until(expected, 5s));
    }
    CHECK(c.wait(10s) == 0);
    CHECK(c.out() == expected);
}

TEST_CASE("a workload killed by any fatal signal N makes srinit exit 128+N", "[srinit][signals]") {
    // Each signal whose default action is fatal, sent to srinit, kills the idle workload; srinit
    // then exits (it is not killed itself) with 128+N. `sigrecord parent` runs srinit and tells
    // which of the two happened: a shell's status could not.
    for (int sig : forwardable_signals()) {
        if (!fatal_by_default(sig)) continue;
        INFO("signal " << sig);
        Child c({sigrecord(), "parent", "--", srinit_path(), "--", sigrecord(), "idle"});
        pid_t srinit = child_of_parent(c);
        REQUIRE(c.read_until("ready\n"));
        REQUIRE(kill(srinit, sig) == 0);
        CHECK(c.wait(10s) == 0);
        CHECK(c.out().find("exited " + std::to_string(128 + sig) + "\n") != std::string::npos);
        CHECK(c.out().find("killed") == std::string::npos);
    }
}

TEST_CASE("srinit as PID 1 receives signals sent from inside its namespace", "[srinit]") {
    require_root();
    // The kernel drops signals to a namespace's init that has no handler for them; srinit
    // blocks and waits for every signal, so `kill 1` from inside still reaches the workload.
    auto r = run(init({"sh", "-c",
                       "trap 'echo got-term; exit 0' TERM; kill -TERM 1; "
                       "i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 1"}),
                 in_namespace());
    CHECK(r.out.find("got-term") != std::string::npos);
    CHECK(r.status == 0);
}

TEST_CASE("srinit reaps 1,000 orphans and bursts of simultaneous exits", "[srinit]") {
    require_root();
    std::string orphans = helper_path("orphans");
    auto r = run(init({"sh", "-c",
                       orphans + " spawn 1000 && " + orphans + " burst 300 && " + orphans +
                           " spawn 200 && " + orphans + " burst 500 && " + orphans +
                           " zombies 10000; exit 7"}),
                 in_namespace(), 120s);
    INFO(r.err);
    CHECK(r.out.find("zombies=0") != std::string::npos);
    CHECK(r.status == 7);
}

TEST_CASE("srinit -g forwards signals to the workload's whole process group", "[srinit]") {
    require_root();
    // The leader traps USR1, starts a member in its own group that traps USR1 too, and waits
    // for it; the member gives up after 2 s if the signal never comes.
    std::string script =
        "trap 'echo leader-got' USR1; "
        "(trap 'echo member-got; exit 0' USR1; echo ready; i=0; "
        " while [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; echo member-timeout) & "
        "wait; wait; exit 0";
    SECTION("with -g every member gets it") {
        Child c(init({"sh", "-c", script}, {"-g"}), in_namespace());
        REQUIRE(c.read_until("ready"));
        kill(c.pid(), SIGUSR1);
        CHECK(c.wait() == 0);
        CHECK(c.out().find("leader-got") != std::string::npos);
        CHECK(c.out().find("member-got") != std::string::npos);
    }
    SECTION("without -g only the workload gets it") {
        Child c(init({"sh", "-c", script}), in_namespace());
        REQUIRE(c.read_until("ready"));
        kill(c.pid(), SIGUSR1);
        CHECK(c.wait() == 0);
        CHECK(c.out().find("leader-got") != std::string::npos);
        CHECK(c.out().find("member-timeout") != std::string::npos);
        CHECK(c.out().find("member-got") == std::string::npos);
    }
}

TEST_CASE("the workload starts with no blocked and no ignored signals", "[srinit]") {
    require_root();
    // srinit's parent ignores INT and blocks USR1; srinit blocks everything; the workload
    // must see none of it.
    auto r = run({"env", "--ignore-signal=INT", "--block-signal=USR1", srinit_path(), "--", "grep",
                  "-E", "^Sig(Blk|Ign)", "/proc/self/status"},
                 in_namespace());
    REQUIRE(r.status == 0);
    CHECK(r.out.find("SigBlk:\t0000000000000000") != std::string::npos);
    CHECK(r.out.find("SigIgn:\t0000000000000000") != std::string::npos);
}

TEST_CASE("no inherited ignored or blocked signal of 1..64 reaches the workload", "[srinit][signals]") {
    // srinit's parent ignores INT, CHLD, 32, 33, 34 (glibc's SIGRTMIN) and 64, and blocks USR1,
    // 32..34 and 64: musl's sigaction cannot even name 32..34, so srinit resets them through
    // the raw calls. An ignored SIGCHLD would also have the kernel reap srinit's children
    // for it, without a SIGCHLD: srinit must still see its workload end and report its status.
    Child c({sigrecord(), "parent", "-i", "2,17,32,33,34,64", "-b", "10,32,33,34,64", "--",
             srinit_path(), "--", "sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status; exit 4"});
    CHECK(c.wait(30s) == 0);
    INFO(c.out() << c.err());
    CHECK(c.out().find("SigBlk:\t0000000000000000\n") != std::string::npos);
    CHECK(c.out().find("SigIgn:\t0000000000000000\n") != std::string::npos);
    CHECK(c.out().find("exited 4\n") != std::string::npos);
}

TEST_CASE("a stop request during the drain ends it and keeps the workload's status", "[srinit][signals]") {
    // The workload leaves a recorder behind (it takes SIGTERM and lives on) and exits 3. The
    // drain's SIGTERM reaching the recorder shows srinit is in its 10 s grace period. A SIGUSR1
    // then is dropped; a SIGTERM, SIGINT or SIGHUP ends the grace at once: the recorder is
    // killed and srinit exits 3, where `srlaunch stop` would otherwise SIGKILL it (137).
    require_root();
    auto pid1 = GENERATE(false, true);
    auto stop = GENERATE(SIGTERM, SIGINT, SIGHUP);
    INFO((pid1 ? "as PID 1" : "standalone") << ", stopped with signal " << stop);
    TempDir dir;
    std::string ready = dir / "ready";
    std::string script = sigrecord() + " record " + ready + " & while [ ! -e " + ready +
                         " ]; do sleep 0.01; done; exit 3";
    Child c(init({"sh", "-c", script}, {"-t", "10"}), pid1 ? in_namespace() : SpawnOptions{});
    REQUIRE(c.read_until("got 15\n", 10s));

    REQUIRE(kill(c.pid(), SIGUSR1) == 0);
    std::this_thread::sleep_for(300ms);
    char state = process_state(c.pid());
    CHECK(state != '\0');
    CHECK(state != 'Z');  // still draining

    auto start = Clock::now();
    REQUIRE(kill(c.pid(), stop) == 0);
    CHECK(c.wait(30s) == 3);
    CHECK(seconds_since(start) < 5.0);  // not the 10 s grace
    CHECK(c.out().find("got 10\n") == std::string::npos);
}

TEST_CASE("leftover processes get SIGTERM, a grace period, then SIGKILL", "[srinit]") {
    require_root();
    TempDir dir;
    std::string ready = dir / "ready", pidfile = dir / "pid", clean = dir / "clean";
    std::string wait_ready = "while [ ! -e " + ready + " ]; do sleep 0.01; done; exit 3";

    SECTION("one that ignores SIGTERM is killed after the grace period") {
        auto pid1 = GENERATE(true, false);
        INFO((pid1 ? "as PID 1" : "standalone"));
        std::string script = "(trap '' TERM; sh -c 'echo $PPID' > " + pidfile +
                             "; touch " + ready + "; exec sleep 100) & " + wait_ready;
        auto start = Clock::now();
        auto r = run(init({"sh", "-c", script}, {"-t", "1"}), pid1 ? in_namespace() : SpawnOptions{});
        double took = seconds_since(start);
        CHECK(r.status == 3);
        CHECK(took >= 1.0);   // the grace period was given...
        CHECK(took < 8.0);    // ...and it was the 1 s asked for, not the default 10 s
        if (!pid1) {
            // No namespace teardown to help: srinit itself must have killed and reaped it.
            pid_t leftover = std::stoi(read_file(pidfile));
            CHECK(process_state(leftover) == '\0');
        }
    }
    SECTION("one that handles SIGTERM exits cleanly, and srinit does not wait longer") {
        std::string script = "(trap 'echo done > " + clean + "; exit 0' TERM; touch " + ready +
                             "; while :; do sleep 0.05; done) & " + wait_ready;
        auto start = Clock::now();
        auto r = run(init({"sh", "-c", script}), in_namespace());
        CHECK(r.status == 3);
        CHECK(read_file(clean) == "done\n");
        CHECK(seconds_since(start) < 5.0);  // default grace is 10 s; it was not needed
    }
}

TEST_CASE("standalone srinit is a subreaper: orphans come to it and are waited for", "[srinit]") {
    TempDir dir;
    // The orphan ignores SIGTERM so it outlives the workload, then reports its parent.
    std::string script = "(trap '' TERM; touch " + dir / "ready" +
                         "; sleep 0.3; exec grep PPid /proc/self/status > " + dir / "ppid" +
                         ") & while [ ! -e " + dir / "ready" + " ]; do sleep 0.01; done; exit 0";
    Child c(init({"sh", "-c", script}));
    pid_t srinit = c.pid();
    CHECK(c.wait() == 0);
    CHECK(read_file(dir / "ppid") == "PPid:\t" + std::to_string(srinit) + "\n");
}

TEST_CASE("srinit closes inherited fds except 0-2 and the preserved ones", "[srinit]") {
    // fds 5 and 9 are inherited without close-on-exec; --preserve-fds 3 keeps 3, 4 and 5.
    int null = open("/dev/null", O_RDONLY);
    REQUIRE(null >= 0);
    REQUIRE(dup2(null, 5) == 5);
    REQUIRE(dup2(null, 9) == 9);
    close(null);
    SpawnOptions o;
    o.leak_fds = {5, 9};
    std::string probe = "for f in 3 4 5 6 7 8 9; do [ -e /proc/self/fd/$f ] && echo open=$f; done; true";
    auto plain = run(init({"sh", "-c", probe}), o);
    auto kept = run(init({"sh", "-c", probe}, {"--preserve-fds", "3"}), o);
    close(5);
    close(9);
    CHECK(plain.out == "");
    CHECK(kept.out == "open=5\n");
}

TEST_CASE("srinit reads the launcher's config stream from an fd", "[srinit]") {
    TempDir dir;
    auto record = [](const std::string& k, const std::string& v) {
        return k + " " + std::to_string(v.size()) + "\n" + v + "\n";
    };
    std::string script = "echo \"$GREETING\"; pwd; env | grep -c =; [ -e /proc/self/fd/3 ] || echo fd3-closed";
    write_file(dir / "config", record("arg", "sh") + record("arg", "-c") + record("arg", script) +
                                   record("env", "GREETING=hello world") +
                                   record("env", "PATH=/usr/bin:/bin") + record("cwd", dir.path()) +
                                   record("grace_ms", "500"));
    auto r = run({"sh", "-c", srinit_path() + " --config-fd 3 3<" + dir / "config"});
    CHECK(r.status == 0);
    // Only the variables given (plus PWD, which sh sets), in the directory given.
    CHECK(r.out == "hello world\n" + dir.path() + "\n3\nfd3-closed\n");

    write_file(dir / "bad", record("arg", "true") + record("colour", "blue"));
    auto bad = run({"sh", "-c", srinit_path() + " --config-fd 3 3<" + dir / "bad"});
    CHECK(bad.status == 125);
    CHECK(bad.err.find("colour") != std::string::npos);
}

TEST_CASE("an interactive shell under srinit has job control on its terminal", "[srinit]") {
    require_root();
    require_program("busybox");
    SpawnOptions o = in_namespace();
    o.pty = true;
    o.env = {"PS1=prompt> ", "ENV="};
    Child c(init({"busybox", "sh", "-i"}), o);
    REQUIRE(c.read_until("prompt> "));

    // Ctrl-C ends the foreground job, not the shell (nor srinit).
    c.write("sleep 100\n");
    REQUIRE(c.read_until("sleep 100"));
    std::this_thread::sleep_for(300ms);
    c.write("\x03");
    c.write("echo alive-$((40+2))\n");
    REQUIRE(c.read_until("alive-42"));

    // Ctrl-Z stops a job; it stays stopped until `fg` resumes it.
    c.write("busybox sh -c 'sleep 1; echo resumed-$((6*7))'\n");
    std::this_thread::sleep_for(300ms);
    c.write("\x1a");
    REQUIRE(c.read_until("Stopped"));
    std::this_thread::sleep_for(1500ms);
    CHECK(c.out().find("resumed-42") == std::string::npos);
    c.write("fg\n");
    REQUIRE(c.read_until("resumed-42"));
    c.write("exit 5\n");
    CHECK(c.wait() == 5);
}

TEST_CASE("srinit is PID 1 of a root filesystem with no libc at all", "[srinit]") {
    require_root();
    require_program("busybox");
    TempDir root;
    fs::create_directories(root / "bin");
    std::string busybox = run({"sh", "-c", "command -v busybox"}).out;
    busybox.erase(busybox.find_last_not_of('\n') + 1);
    REQUIRE(run({"sh", "-c", "file -L " + busybox + " | grep -q 'statically linked'"}).status == 0);
    fs::copy_file(busybox, root / "bin/busybox");
    fs::copy_file(srinit_path(), root / "srinit");
    fs::create_symlink("busybox", root / "bin/sh");
    // Nothing but the two static binaries and a symlink.
    auto listing = run({"find", root.path(), "-type", "f"});
    CHECK(std::count(listing.out.begin(), listing.out.end(), '\n') == 2);

    auto r = run({"chroot", root.path(), "/srinit", "--", "/bin/sh", "-c",
                  "echo pid=$$ parent=$PPID; exit 9"},
                 in_namespace());
    CHECK(r.out == "pid=2 parent=1\n");
    CHECK(r.status == 9);
}
