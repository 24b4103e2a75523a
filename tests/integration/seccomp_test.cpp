// Seccomp (issue 6): the built-in profile on srinit and the workload, what it denies and with
// which errno, what capabilities give back, unconfined, a user's profile and its errors.
// build/helpers/sysprobe is bind-mounted into each container: `sysprobe OP` prints "ok" or
// the errno's name.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <sstream>

#include "../support/alpine_store.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

std::string probe_mount() {
    std::string probe = helper_path("sysprobe");
    REQUIRE(fs::exists(probe));
    return probe + ":/sysprobe:ro";
}

// Runs every probe in one container: {"op args" -> "ok" | "EPERM" ...}.
std::map<std::string, std::string> probes(const AlpineStore& s, std::vector<std::string> flags,
                                          const std::vector<std::string>& ops) {
    std::string script;
    for (const auto& op : ops) script += "echo \"" + op + "=$(/sysprobe " + op + ")\"\n";
    flags.insert(flags.end(), {"-v", probe_mount()});
    auto r = s.in_alpine(flags, {"sh", "-c", script});
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::map<std::string, std::string> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        auto eq = line.find('=');
        out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

std::string seccomp_lines(const Result& r) {
    std::string out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("Seccomp:", 0) == 0 || line.rfind("NoNewPrivs:", 0) == 0) out += line + "\n";
    return out;
}

}  // namespace

TEST_CASE("seccomp: srinit and the workload are both filtered by default", "[seccomp]") {
    AlpineStore s;
    std::vector<std::string> show{"sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status /proc/self/status | cut -d: -f2-"};
    // Installed by srinit without no_new_privs: that stays the user's choice.
    auto r = s.in_alpine({}, show);
    INFO(r.err);
    CHECK(seccomp_lines(r) == "NoNewPrivs:\t0\nSeccomp:\t2\nNoNewPrivs:\t0\nSeccomp:\t2\n");
    // srinit installs it while it still has every capability, whatever the workload keeps,
    // in a user namespace too, and before it becomes another user.
    for (std::vector<std::string> flags : {std::vector<std::string>{"--cap-drop", "ALL"}, {"--userns", "auto"}, {"-u", "nobody"}}) {
        INFO(flags[0]);
        auto f = s.in_alpine(flags, show);
        INFO(f.err);
        CHECK(f.status == 0);
        CHECK(seccomp_lines(f) == "NoNewPrivs:\t0\nSeccomp:\t2\nNoNewPrivs:\t0\nSeccomp:\t2\n");
    }
    auto nnp = s.in_alpine({"--security-opt", "no-new-privileges"}, {"grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"});
    CHECK(nnp.out == "NoNewPrivs:\t1\nSeccomp:\t2\n");
}

TEST_CASE("seccomp: the default profile denies what docker's does, with its errnos", "[seccomp]") {
    AlpineStore s;
    std::map<std::string, std::string> expect = {
        {"keyctl", "EPERM"},         {"add_key", "EPERM"},        {"unshare-user", "EPERM"},
        {"unshare-net", "EPERM"},    {"unshare-mnt", "EPERM"},    {"clone-newuser", "EPERM"},
        {"clone3", "ENOSYS"},        {"bpf", "EPERM"},            {"perf-event-open", "EPERM"},
        {"userfaultfd", "EPERM"},    {"init-module", "EPERM"},    {"finit-module", "EPERM"},
        {"reboot", "EPERM"},         {"personality 0x0040000", "EPERM"}, {"personality 0x0", "ok"},
        {"personality 0xffffffff", "ok"}, {"mount-tmpfs /mnt", "EPERM"}, {"umount /", "EPERM"},
        {"ptrace-traceme", "EPERM"}, {"kcmp", "EPERM"},           {"iopl", "EPERM"},
        {"ioperm", "EPERM"},         {"acct", "EPERM"},           {"settimeofday", "EPERM"},
        {"swapon /etc/hostname", "EPERM"}, {"setns /proc/self/ns/net", "EPERM"},
        {"sethostname x", "EPERM"},
        // Granted by default (CAP_SYS_CHROOT, CAP_NET_RAW): allowed by the filter too.
        {"chroot /", "ok"},          {"raw-socket", "ok"},
    };
    std::vector<std::string> ops;
    for (const auto& [op, result] : expect) ops.push_back(op);
    auto got = probes(s, {}, ops);
    for (const auto& [op, result] : expect) {
        INFO(op);
        CHECK(got[op] == result);
    }
    // Ordinary work is untouched: fork, exec, files, waiting.
    auto work = s.in_alpine({}, {"sh", "-c", "echo hi > /tmp/f && cat /tmp/f && sleep 0 & wait $!"});
    CHECK(work.status == 0);
    CHECK(work.out == "hi\n");
}

TEST_CASE("seccomp: granted capabilities bring their system calls back", "[seccomp]") {
    AlpineStore s;
    auto admin = probes(s, {"--cap-add", "SYS_ADMIN"}, {"unshare-net", "mount-tmpfs /mnt", "clone3", "keyctl"});
    CHECK(admin["unshare-net"] == "ok");
    CHECK(admin["mount-tmpfs /mnt"] == "ok");
    CHECK(admin["clone3"] == "ok");
    CHECK(admin["keyctl"] == "EPERM");  // no capability brings the keyring back
    // ptrace: attach to a sleeping child of the shell, then make sure it is gone.
    for (bool granted : {false, true}) {
        std::vector<std::string> flags{"-v", probe_mount()};
        if (granted) flags.insert(flags.end(), {"--cap-add", "SYS_PTRACE"});
        auto r = s.in_alpine(flags, {"sh", "-c", "sleep 30 & p=$!; /sysprobe ptrace-attach $p; kill -9 $p; /sysprobe kcmp"});
        INFO("SYS_PTRACE " << granted << ": " << r.err);
        CHECK(r.out == (granted ? "ok\nok\n" : "EPERM\nEPERM\n"));
    }
}

TEST_CASE("seccomp: --security-opt seccomp=unconfined runs without a filter", "[seccomp]") {
    AlpineStore s;
    auto r = s.in_alpine({"--security-opt", "seccomp=unconfined", "-v", probe_mount()},
                         {"sh", "-c", "grep Seccomp: /proc/1/status /proc/self/status | cut -d: -f2-; /sysprobe keyctl"});
    INFO(r.err);
    CHECK(r.out == "Seccomp:\t0\nSeccomp:\t0\nok\n");
}

TEST_CASE("seccomp: a profile file in Docker's format replaces the default", "[seccomp]") {
    AlpineStore s;
    TempDir dir;
    write_file(dir / "mkdir.json", R"({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    })");
    auto r = s.in_alpine({"--security-opt", "seccomp=" + dir / "mkdir.json", "-v", probe_mount()},
                         {"sh", "-c", "grep Seccomp: /proc/self/status; /sysprobe keyctl; echo hi > /tmp/f && cat /tmp/f; mkdir /tmp/x"});
    CHECK(r.status == 1);
    CHECK(r.out == "Seccomp:\t2\nok\nhi\n");  // what the default profile denies, this one allows
    CHECK(r.err.find("Function not implemented") != std::string::npos);  // ENOSYS
}

TEST_CASE("seccomp: a bad profile is refused in one line, leaving nothing behind", "[seccomp]") {
    AlpineStore s;
    TempDir dir;
    struct Case {
        const char* file;
        const char* json;
        const char* expect;
    } cases[] = {
        {"malformed.json", R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [)", "malformed JSON"},
        {"action.json", R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_MAYBE"}]})",
         "syscalls[0].action: unknown action \"SCMP_ACT_MAYBE\""},
        {"syscall.json", R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", "teleport"], "action": "SCMP_ACT_ERRNO"}]})",
         "syscalls[0]: unknown system call \"teleport\""},
        {"arch.json", R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]})",
         "architectures: unknown architecture \"SCMP_ARCH_PDP11\""},
    };
    for (const auto& c : cases) {
        INFO(c.file);
        write_file(dir / c.file, c.json);
        auto r = s.in_alpine({"--name", "bad", "--cidfile", dir / "cid", "--security-opt", std::string("seccomp=") + (dir / c.file)}, {"true"});
        CHECK(r.status == 125);
        CHECK(r.err.rfind("srlaunch: seccomp profile " + (dir / c.file) + ": ", 0) == 0);
        CHECK(r.err.find(c.expect) != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(!fs::exists(dir / "cid"));
    }
    auto missing = s.in_alpine({"--security-opt", "seccomp=" + dir / "none.json"}, {"true"});
    CHECK(missing.status == 125);
    CHECK(missing.err == "srlaunch: seccomp profile " + (dir / "none.json") + ": No such file or directory\n");
    CHECK(count_entries(s.path("containers")) == 0);
    CHECK(count_entries(s.path("names")) == 0);
}
