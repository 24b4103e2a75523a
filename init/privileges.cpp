#include "privileges.hpp"

#include <cerrno>
#include <cstdint>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace srinit {

namespace {

// The kernel's capset ABI (linux/capability.h, which musl does not ship): version 3 takes
// two 32-bit words per set.
struct CapHeader {
    uint32_t version;
    int pid;
};
struct CapData {
    uint32_t effective, permitted, inheritable;
};
constexpr uint32_t kCapVersion3 = 0x20080522;

// linux/seccomp.h and linux/filter.h, which musl does not ship either.
constexpr unsigned kSeccompSetModeFilter = 1;
struct SockFprog {
    unsigned short len;    // instructions
    const void* filter;    // struct sock_filter[len]
};

int set_caps(uint64_t mask) {
    CapHeader h{kCapVersion3, 0};
    // Nothing inheritable: a granted capability must not survive into an exec'd program
    // through the inheritable set (CVE-2022-24769, as docker and runc now do).
    CapData d[2] = {{uint32_t(mask), uint32_t(mask), 0}, {uint32_t(mask >> 32), uint32_t(mask >> 32), 0}};
    return static_cast<int>(syscall(SYS_capset, &h, d));
}

}  // namespace

const char* drop_privileges(const Config& cfg) {
    // The bounding set first, while we still hold CAP_SETPCAP: it caps what any later exec
    // (a setuid binary, file capabilities) can ever gain back. Beyond the kernel's last
    // capability the call fails with EINVAL, which ends the loop.
    if (cfg.caps_set) {
        for (int cap = 0; cap < 64; ++cap) {
            if (cfg.caps & (uint64_t(1) << cap)) continue;
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                if (errno == EINVAL) break;
                return "cannot drop capabilities from the bounding set";
            }
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
            return "cannot clear ambient capabilities";
    }
    // Groups before gid before uid: once the uid changes we may no longer change the rest.
    if (cfg.set_groups && setgroups(static_cast<size_t>(cfg.ngroups), cfg.groups) < 0)
        return "cannot set supplementary groups";
    if (cfg.gid >= 0 && setgid(static_cast<gid_t>(cfg.gid)) < 0) return "cannot set group id";
    if (cfg.uid >= 0 && setuid(static_cast<uid_t>(cfg.uid)) < 0) return "cannot set user id";
    // A switch to a non-zero uid has already emptied the permitted and effective sets; root
    // keeps exactly the granted ones.
    if (cfg.caps_set && set_caps(cfg.uid > 0 ? 0 : cfg.caps) < 0) return "cannot set capabilities";
    if (cfg.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "cannot set no_new_privs";
    return nullptr;
}

const char* install_seccomp(const Config& cfg) {
    if (!cfg.seccomp) return nullptr;
    // parse_stream checked the length. No no_new_privs is needed: srinit still holds
    // CAP_SYS_ADMIN in its user namespace here, and no_new_privs stays the user's choice.
    SockFprog prog{static_cast<unsigned short>(cfg.seccomp_len / Config::kSockFilterSize), cfg.seccomp};
    if (syscall(SYS_seccomp, kSeccompSetModeFilter, 0, &prog) < 0) return "cannot install the seccomp filter";
    return nullptr;
}

}  // namespace srinit
