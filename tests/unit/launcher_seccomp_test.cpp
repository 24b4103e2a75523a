// Seccomp profiles: parsing errors, and what the compiled filters do, tried in a forked child
// that installs them under no_new_privs (which needs no root).
#include <catch2/catch.hpp>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <string>

#include "launcher/capabilities.hpp"
#include "launcher/error.hpp"
#include "launcher/seccomp.hpp"

using srl::compile_seccomp;
using srl::parse_seccomp_profile;

namespace {

std::string parse_error(const std::string& json) {
    try {
        parse_seccomp_profile(json, "p.json");
    } catch (const srl::Error& e) {
        return e.what();
    }
    return "";
}

// Runs `probe` in a child under the filter; returns what it returned (an errno, 0 for
// success) or -1 when the child did not exit normally.
int under_filter(const std::string& bpf, const std::function<int()>& probe) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sock_fprog prog{static_cast<unsigned short>(bpf.size() / sizeof(sock_filter)),
                        reinterpret_cast<sock_filter*>(const_cast<char*>(bpf.data()))};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
            _exit(200);
        _exit(probe());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int errno_of(long result) { return result < 0 ? errno : 0; }

}  // namespace

TEST_CASE("seccomp profiles: errors name the file and the item", "[unit][seccomp]") {
    auto rule = [](const std::string& body) {
        return R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}, )" +
               body + "]}";
    };
    struct Case {
        std::string json, expect;
    } cases[] = {
        {"{\"defaultAction\": ", "malformed JSON"},
        {"[]", "expected a JSON object"},
        {"{}", "no defaultAction"},
        {R"({"defaultAction": "SCMP_ACT_MAYBE"})", "defaultAction: unknown action \"SCMP_ACT_MAYBE\""},
        {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]})",
         "architectures: unknown architecture \"SCMP_ARCH_Z80\""},
        {rule(R"({"names": ["mkdir"], "action": "SCMP_ACT_PANIC"})"), "syscalls[1].action: unknown action \"SCMP_ACT_PANIC\""},
        {rule(R"({"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW"})"), "syscalls[1]: unknown system call \"no_such_call\""},
        {rule(R"({"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]})"),
         "syscalls[1].args[0].op: unknown operator \"SCMP_CMP_ABOUT\""},
        {rule(R"({"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]})"),
         "syscalls[1].args[0].index"},
        {rule(R"({"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_TELEPORT"]}})"),
         "syscalls[1].includes.caps: unknown capability \"CAP_TELEPORT\""},
        {rule(R"({"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["vax"]}})"),
         "syscalls[1].excludes.arches: unknown architecture \"vax\""},
        {rule(R"({"names": "mkdir", "action": "SCMP_ACT_ALLOW"})"), "syscalls[1].names: expected an array of strings"},
    };
    for (const auto& c : cases) {
        INFO(c.json);
        std::string err = parse_error(c.json);
        CHECK(err.rfind("seccomp profile p.json: ", 0) == 0);
        CHECK(err.find(c.expect) != std::string::npos);
        CHECK(err.find('\n') == std::string::npos);
    }
}

TEST_CASE("seccomp profiles: Docker's format parses, archMap picks this machine's entry", "[unit][seccomp]") {
    auto p = parse_seccomp_profile(R"({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                    {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "ignored"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})",
                                   "docker.json");
    CHECK(p.rules.size() == 4);
    CHECK(p.rules[1].args.at(0).value == 2114060288u);
    CHECK(p.rules[2].includes.min_kernel == std::pair{4, 8});
    CHECK(p.arches.size() == 2);  // x86 and x32 besides the native x86_64
    std::string bpf = compile_seccomp(p, srl::default_capabilities());
    CHECK(bpf.size() % sizeof(sock_filter) == 0);
}

TEST_CASE("seccomp: the built-in profile denies what docker's does", "[unit][seccomp]") {
    const auto& profile = srl::default_seccomp_profile();
    std::string bpf = compile_seccomp(profile, srl::default_capabilities());
    REQUIRE(bpf.size() % sizeof(sock_filter) == 0);
    CHECK(bpf.size() / sizeof(sock_filter) <= BPF_MAXINSNS);

    CHECK(under_filter(bpf, [] { return errno_of(getppid()); }) == 0);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr)); }) == EPERM);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_clone3, nullptr, 0)); }) == ENOSYS);
    CHECK(under_filter(bpf, [] { return errno_of(unshare(0)); }) == EPERM);  // the filter, not the kernel
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0)); }) == EPERM);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_personality, 0x0040000)); }) == EPERM);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_personality, 0xffffffff)); }) == 0);
    CHECK(under_filter(bpf, [] { return errno_of(socket(AF_VSOCK, SOCK_STREAM, 0)); }) == EPERM);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_userfaultfd, 0)); }) == EPERM);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0)); }) == EPERM);
    // fork (clone without namespace flags) and a plain clone still work.
    CHECK(under_filter(bpf, [] {
              pid_t child = fork();
              if (child == 0) _exit(0);
              return child < 0 ? errno : 0;
          }) == 0);
    CHECK(under_filter(bpf, [] { return errno_of(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)); }) == EPERM);

    // Granted capabilities bring their system calls: CAP_SYS_PTRACE kcmp (comparing an fd with
    // itself), CAP_SYS_ADMIN unshare and clone3 (which the kernel then refuses as too short).
    uint64_t ptrace_caps = srl::default_capabilities() | uint64_t(1) << srl::capability_number("SYS_PTRACE");
    CHECK(under_filter(compile_seccomp(profile, ptrace_caps),
                       [] { return errno_of(syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0)); }) == 0);
    uint64_t admin_caps = srl::default_capabilities() | uint64_t(1) << srl::capability_number("SYS_ADMIN");
    std::string admin = compile_seccomp(profile, admin_caps);
    CHECK(under_filter(admin, [] { return errno_of(syscall(SYS_clone3, nullptr, 0)); }) != ENOSYS);
    CHECK(under_filter(admin, [] { return errno_of(unshare(0)); }) == 0);
}

TEST_CASE("seccomp: a user profile's errnoRet reaches the caller", "[unit][seccomp]") {
    auto p = parse_seccomp_profile(
        R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})",
        "mkdir.json");
    std::string bpf = compile_seccomp(p, 0);
    CHECK(under_filter(bpf, [] { return errno_of(mkdir("/nonexistent-dir/x", 0700)); }) == ENOSYS);
    CHECK(under_filter(bpf, [] { return errno_of(getppid()); }) == 0);
}

TEST_CASE("seccomp: compiled filters are cached by their whole key", "[unit][seccomp]") {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/srl-seccomp-cache-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    fs::path dir = fs::path(tmpl) / "cache";
    const auto& profile = srl::default_seccomp_profile();
    uint64_t caps = srl::default_capabilities();
    std::string fresh = compile_seccomp(profile, caps);
    CHECK(srl::compile_seccomp_cached(profile, caps, dir) == fresh);  // a miss, stored
    REQUIRE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
    fs::path entry = fs::directory_iterator(dir)->path();
    CHECK(srl::compile_seccomp_cached(profile, caps, dir) == fresh);  // a hit
    // Other capabilities are another entry with another program.
    uint64_t admin = caps | uint64_t(1) << srl::capability_number("SYS_ADMIN");
    CHECK(srl::compile_seccomp_cached(profile, admin, dir) == compile_seccomp(profile, admin));
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
    // A damaged entry is a miss, never a filter.
    for (auto size : {fs::file_size(entry) - 3, uintmax_t(10)}) {
        fs::resize_file(entry, size);
        CHECK(srl::compile_seccomp_cached(profile, caps, dir) == fresh);
    }
    fs::remove_all(tmpl);
}
