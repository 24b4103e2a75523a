// The escape suite (issue 6): from inside a default container, as root, each way out must
// fail with the errno the kernel gives for the layer that stops it; a --privileged control
// container shows the same operation working where trying it cannot harm the host, so a
// refusal is known to come from the container's confinement and not from the operation.
//
// The operations run through tests/helpers/sysprobe (static, bind-mounted read-only at
// /sysprobe), which prints "ok" or the errno's name. Which layer refuses what:
//   seccomp (the default profile) first, for mount, umount2, init_module, finit_module,
//   reboot, keyctl, add_key, unshare/clone of a user namespace and ptrace: EPERM;
//   the capability set, for what the filter lets through (sethostname, raw sockets without
//   NET_RAW) and again beneath the filter for mount, umount, ptrace and reboot;
//   the devices cgroup, for a device node root may make (CAP_MKNOD) but not open;
//   mounts, for /proc/sysrq-trigger (read-only), /proc/kcore and friends (masked), a
//   --read-only root; namespaces, for hostnames, processes and /proc/*/root.
// The last test runs the seccomp-refused cases unconfined to show which of them only the
// filter stops.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "../support/alpine_store.hpp"
#include "cgroup_helpers.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

class EscapeStore : public AlpineStore {
public:
    // `sysprobe OP ARGS...` in a container run with `flags`: "ok" or the errno's name.
    std::string probe(std::vector<std::string> flags, std::vector<std::string> op) const {
        return script(std::move(flags), "/sysprobe " + join(op));
    }
    // A shell script in a container with /sysprobe; its trimmed stdout.
    std::string script(std::vector<std::string> flags, const std::string& sh) const {
        flags.insert(flags.end(), {"-v", helper_path("sysprobe") + ":/sysprobe:ro"});
        auto r = in_alpine(flags, {"sh", "-c", sh});
        INFO("script: " << sh << "\nstderr: " << r.err);
        REQUIRE(r.status <= 1);  // sysprobe's 0 or 1, not a failed start
        return trim(r.out);
    }

private:
    static std::string join(const std::vector<std::string>& v) {
        std::string out;
        for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
        return out;
    }
};

const std::vector<std::string> kDefault = {};
const std::vector<std::string> kPrivileged = {"--privileged"};

std::string host_hostname() {
    char name[256] = {};
    REQUIRE(gethostname(name, sizeof name - 1) == 0);
    return name;
}

}  // namespace

TEST_CASE("escape: mounts: tmpfs, umount /, remount a --read-only root", "[escape]") {
    EscapeStore s;
    CHECK(s.probe(kDefault, {"mount-tmpfs", "/mnt"}) == "EPERM");
    CHECK(s.probe(kDefault, {"umount", "/"}) == "EPERM");
    // The root stays read-only: no remount, no new file.
    CHECK(s.script({"--read-only"}, "/sysprobe remount-rw /; touch /escape 2>&1 | sed 's/.*: //'") ==
          "EPERM\nRead-only file system");

    CHECK(s.probe(kPrivileged, {"mount-tmpfs", "/mnt"}) == "ok");
    CHECK(s.script({"--privileged", "--read-only"}, "/sysprobe remount-rw / && touch /escape && echo written") ==
          "ok\nwritten");
}

TEST_CASE("escape: kernel modules, reboot, keyrings, user namespaces", "[escape]") {
    EscapeStore s;
    for (const char* op : {"init-module", "finit-module", "reboot", "keyctl", "add_key", "unshare-user", "clone-newuser"}) {
        INFO(op);
        CHECK(s.probe(kDefault, {op}) == "EPERM");
    }
    // The control: keyrings and user namespaces are harmless to try. (Modules and reboot are
    // not tried: a privileged container can really load a module or change the host's
    // Ctrl-Alt-Del handling.)
    CHECK(s.probe(kPrivileged, {"keyctl"}) == "ok");
    CHECK(s.probe(kPrivileged, {"unshare-user"}) == "ok");
    CHECK(s.probe(kPrivileged, {"clone-newuser"}) == "ok");
}

TEST_CASE("escape: ptrace of PID 1", "[escape]") {
    EscapeStore s;
    CHECK(s.probe(kDefault, {"ptrace-attach", "1"}) == "EPERM");
    // No control: attaching stops srinit, which would then hang the container.
}

TEST_CASE("escape: a block device node can be made, not read", "[escape]") {
    EscapeStore s;
    TempDir tmp;
    write_file(tmp / "disk", "srlaunch-escape-marker");
    cgtest::LoopDevice loop(tmp / "disk", 1 << 20);
    struct stat st {};
    REQUIRE(stat(loop.path().c_str(), &st) == 0);
    std::string maj = std::to_string(major(st.st_rdev)), min = std::to_string(minor(st.st_rdev));
    // CAP_MKNOD and the devices cgroup's "b *:* m" let root make the node; using it is denied.
    const std::string sh = "/sysprobe mknod-block /tmp/disk " + maj + " " + min + " && /sysprobe open-read /tmp/disk";
    CHECK(s.script(kDefault, sh) == "ok\nEPERM");
    CHECK(s.script(kPrivileged, sh + " && head -c 22 /tmp/disk") == "ok\nok\nsrlaunch-escape-marker");
}

TEST_CASE("escape: /proc/sysrq-trigger is read-only, /proc/kcore and the kernel's lists are masked", "[escape]") {
    EscapeStore s;
    // Kernels without CONFIG_MAGIC_SYSRQ or CONFIG_PROC_KCORE have no such files at all.
    std::string sysrq = fs::exists("/proc/sysrq-trigger") ? "EROFS" : "ENOENT";
    CHECK(s.probe(kDefault, {"write", "/proc/sysrq-trigger", "h"}) == sysrq);
    if (fs::exists("/proc/kcore"))
        CHECK(s.script(kDefault, "/sysprobe open-read /proc/kcore; wc -c < /proc/kcore") == "ok\n0");
    else
        CHECK(s.probe(kDefault, {"open-read", "/proc/kcore"}) == "ENOENT");
    // Masked files read as empty; the control sees the host kernel's.
    CHECK(s.script(kDefault, "wc -c < /proc/timer_list") == "0");
    CHECK(std::stol(s.script(kPrivileged, "wc -c < /proc/timer_list")) > 0);
}

TEST_CASE("escape: the host's hostname", "[escape]") {
    EscapeStore s;
    auto host = [] { return trim(run({"hostname"}).out); };
    std::string before = host();
    REQUIRE(before == host_hostname());
    // Without CAP_SYS_ADMIN not even the container's own UTS namespace changes its name.
    CHECK(s.script({"--hostname", "inside"}, "/sysprobe sethostname escaped; hostname") == "EPERM\ninside");
    CHECK(host() == before);
    // The control renames its own UTS namespace, and only that.
    CHECK(s.script({"--privileged", "--hostname", "inside"}, "/sysprobe sethostname escaped; hostname") ==
          "ok\nescaped");
    CHECK(host() == before);
}

TEST_CASE("escape: no host process is visible", "[escape]") {
    EscapeStore s;
    // sh expands the glob itself, without forking: PID 1 is srinit, 2 the shell, and that is
    // all there is.
    CHECK(s.script(kDefault, "echo /proc/[0-9]*") == "/proc/1 /proc/2");
    CHECK(s.script(kPrivileged, "echo /proc/[0-9]*") == "/proc/1 /proc/2");
    // This test is a host process: its PID names nothing inside.
    CHECK(s.probe(kDefault, {"open-read", "/proc/" + std::to_string(getpid()) + "/status"}) == "ENOENT");
}

TEST_CASE("escape: /proc/*/root and /proc/*/cwd never reach the host's tree", "[escape]") {
    EscapeStore s;
    TempDir host;
    write_file(host / "host-only", "x");
    const std::string marker = host / "host-only";
    const std::string sh = "for p in /proc/[0-9]* /proc/self; do for l in root cwd; do "
                           "echo \"$p/$l $(/sysprobe open-read $p/$l" + marker + ")\"; done; done; "
                           "/sysprobe open-read /proc/2/root/etc/alpine-release";
    // PID 1 (srinit) holds capabilities the workload lacks, so even its links are closed to it
    // (ptrace access mode: EACCES); the others lead into the container's own tree, where the
    // host's file is not.
    CHECK(s.script(kDefault, sh) ==
          "/proc/1/root EACCES\n/proc/1/cwd EACCES\n/proc/2/root ENOENT\n/proc/2/cwd ENOENT\n"
          "/proc/self/root ENOENT\n/proc/self/cwd ENOENT\nok");
    // The control may follow PID 1's links, and finds the container's tree there too.
    CHECK(s.script(kPrivileged, sh) ==
          "/proc/1/root ENOENT\n/proc/1/cwd ENOENT\n/proc/2/root ENOENT\n/proc/2/cwd ENOENT\n"
          "/proc/self/root ENOENT\n/proc/self/cwd ENOENT\nok");
}

TEST_CASE("escape: a setuid-root binary made inside gains nothing under no-new-privileges", "[escape]") {
    EscapeStore s;
    TempDir vol;
    fs::permissions(vol.path(), fs::perms(0755));  // nobody has to reach into it
    const std::string volume = vol.path() + ":/vol";
    // Root in the container makes a setuid-root copy of the probe (CAP_FOWNER, CAP_FSETID).
    CHECK(s.script({"-v", volume}, "cp /sysprobe /vol/suid && chmod u+s /vol/suid && stat -c '%A %U' /vol/suid") ==
          "-rwsr-xr-x root");
    // /etc/shadow is root:shadow 0640: nobody reads it only through the setuid bit.
    const std::string sh = "id -u; /sysprobe open-read /etc/shadow; /vol/suid open-read /etc/shadow";
    CHECK(s.script({"-u", "nobody", "-v", volume}, sh) == "65534\nEACCES\nok");
    CHECK(s.script({"-u", "nobody", "--security-opt", "no-new-privileges", "-v", volume}, sh) ==
          "65534\nEACCES\nEACCES");
}

TEST_CASE("escape: no raw socket after --cap-drop NET_RAW", "[escape]") {
    EscapeStore s;
    CHECK(s.probe(kDefault, {"raw-socket"}) == "ok");  // NET_RAW is in docker's default set
    CHECK(s.probe({"--cap-drop", "NET_RAW"}, {"raw-socket"}) == "EPERM");
    CHECK(s.probe({"--cap-drop", "ALL"}, {"raw-socket"}) == "EPERM");
    CHECK(s.probe(kPrivileged, {"raw-socket"}) == "ok");
}

TEST_CASE("escape: beneath the seccomp filter capabilities still refuse, keyrings and user namespaces need it",
          "[escape]") {
    EscapeStore s;
    const std::vector<std::string> unconfined = {"--security-opt", "seccomp=unconfined"};
    const std::vector<std::vector<std::string>> still_refused = {
        {"mount-tmpfs", "/mnt"}, {"umount", "/"}, {"reboot"}, {"ptrace-attach", "1"}, {"sethostname", "x"}};
    for (const auto& op : still_refused) {
        INFO(op[0]);
        CHECK(s.probe(unconfined, op) == "EPERM");
    }
    // Without the filter a kernel built without module support answers first.
    std::string modules = fs::exists("/proc/modules") ? "EPERM" : "ENOSYS";
    CHECK(s.probe(unconfined, {"init-module"}) == modules);
    CHECK(s.probe(unconfined, {"finit-module"}) == modules);
    // These need no capability: only the filter stands in the way.
    for (const char* op : {"keyctl", "add_key", "unshare-user", "clone-newuser"}) {
        INFO(op);
        CHECK(s.probe(unconfined, {op}) == "ok");
    }
}
