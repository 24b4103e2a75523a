// The built-in seccomp profile: equivalent to Docker's default (moby's
// profiles/seccomp/default.json), written as our own table. An allow-list: anything not
// named here fails with EPERM. Kept out of reach without a capability: namespaces and
// mounts (SYS_ADMIN), tracing other processes (SYS_PTRACE), modules, reboot, clocks,
// accounting, raw port I/O. Never allowed: the kernel keyring (keyctl, add_key,
// request_key, not namespaced), userfaultfd, kexec_*, swapon/swapoff, io_uring_* (which
// Docker dropped in 25.0 for its record of kernel bugs), and everything obsolete.
#include <seccomp.h>
#include <sys/capability.h>

#include <string_view>
#include <utility>

#include "launcher/seccomp.hpp"

namespace srl {

namespace {

// Allowed to everyone, grouped by what they are for. Names that exist only on 32-bit x86
// (chown32, _llseek, socketcall...) matter because x86 programs are filtered too.
constexpr const char* kAllowed[] = {
    // files and directories
    "access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat chown fchown fchownat lchown "
    "chown32 fchown32 lchown32 creat open openat openat2 close close_range dup dup2 dup3 fcntl fcntl64 flock "
    "link linkat symlink symlinkat unlink unlinkat rename renameat renameat2 mkdir mkdirat rmdir mknod mknodat "
    "readlink readlinkat stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx statfs statfs64 "
    "fstatfs fstatfs64 truncate truncate64 ftruncate ftruncate64 umask utime utimes utimensat utimensat_time64 "
    "futimesat getdents getdents64 name_to_handle_at fallocate fadvise64 fadvise64_64 readahead sync syncfs "
    "fsync fdatasync sync_file_range copy_file_range",
    // extended attributes
    "getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr removexattr "
    "lremovexattr fremovexattr",
    // reading, writing, waiting for fds
    "read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2 lseek _llseek sendfile sendfile64 "
    "splice tee vmsplice ioctl select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64 epoll_create "
    "epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2 eventfd eventfd2 "
    "inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark signalfd signalfd4 "
    "timerfd_create timerfd_settime timerfd_settime64 timerfd_gettime timerfd_gettime64 pipe pipe2 io_setup "
    "io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64",
    // memory
    "brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 mlockall munlock munlockall "
    "remap_file_pages membarrier memfd_create memfd_secret pkey_alloc pkey_free pkey_mprotect",
    // processes and threads (clone and personality: below, with conditions)
    "execve execveat exit exit_group fork vfork wait4 waitid waitpid kill tkill tgkill pidfd_open "
    "pidfd_send_signal process_mrelease getpid getppid gettid getpgid getpgrp getsid setsid setpgid getpriority "
    "setpriority ioprio_get ioprio_set prctl restart_syscall set_tid_address set_robust_list get_robust_list rseq "
    "futex futex_time64 futex_waitv get_thread_area set_thread_area capget capset getrlimit setrlimit ugetrlimit "
    "prlimit64 getrusage times sysinfo uname seccomp landlock_create_ruleset landlock_add_rule "
    "landlock_restrict_self getcpu sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr "
    "sched_getparam sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max "
    "sched_get_priority_min sched_rr_get_interval sched_rr_get_interval_time64",
    // user and group ids (the kernel checks CAP_SETUID/SETGID)
    "getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32 getresgid "
    "getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32 "
    "setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32 setgroups setgroups32",
    // signals
    "rt_sigaction rt_sigprocmask rt_sigpending rt_sigqueueinfo rt_tgsigqueueinfo rt_sigreturn rt_sigsuspend "
    "rt_sigtimedwait rt_sigtimedwait_time64 sigaltstack sigprocmask sigreturn pause alarm",
    // clocks and timers (reading; adjtimex without CAP_SYS_TIME only reads)
    "clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_nanosleep clock_nanosleep_time64 "
    "nanosleep gettimeofday time adjtimex clock_adjtime clock_adjtime64 getitimer setitimer timer_create "
    "timer_delete timer_settime timer_settime64 timer_gettime timer_gettime64 timer_getoverrun",
    // System V and POSIX IPC (the container has its own IPC namespace)
    "ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl shmget shmat shmdt shmctl "
    "mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64 mq_notify "
    "mq_getsetattr",
    // sockets (socket itself: below, without AF_VSOCK)
    "socketpair socketcall bind connect listen accept accept4 getsockname getpeername getsockopt setsockopt "
    "shutdown send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64",
};

// Allowed with a capability: what the capability is for, and nothing that Docker keeps
// from a container even then.
struct CapAllowed {
    int cap;
    const char* names;
};
constexpr CapAllowed kWithCap[] = {
    {CAP_SYS_ADMIN,
     "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount "
     "open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare"},
    // Stricter than today's moby, which opens ptrace to everyone on kernels >= 4.8: tracing
    // stays a capability here, as in Docker before 19.03 (strace and gdb need SYS_PTRACE).
    {CAP_SYS_PTRACE, "ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd process_madvise"},
    {CAP_SYS_MODULE, "init_module finit_module delete_module"},
    {CAP_SYS_BOOT, "reboot"},
    {CAP_SYS_CHROOT, "chroot"},
    {CAP_SYS_PACCT, "acct"},
    {CAP_SYS_RAWIO, "iopl ioperm"},
    {CAP_SYS_TIME, "settimeofday stime clock_settime clock_settime64"},
    {CAP_SYS_TTY_CONFIG, "vhangup"},
    {CAP_SYS_NICE, "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"},
    {CAP_SYSLOG, "syslog"},
    {CAP_DAC_READ_SEARCH, "open_by_handle_at"},
    {CAP_BPF, "bpf"},
    {CAP_PERFMON, "perf_event_open"},
};

// clone's flags that create namespaces: without CAP_SYS_ADMIN, clone is allowed only when
// (flags & mask) == 0, which leaves fork, vfork and threads alone.
constexpr uint64_t kNamespaceFlags = 0x7E020000;  // CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

// personality values that change nothing dangerous: PER_LINUX, PER_LINUX32, UNAME26
// variants and the query 0xffffffff (no ADDR_NO_RANDOMIZE, no READ_IMPLIES_EXEC).
constexpr uint64_t kSafePersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

constexpr int kAfVsock = 40;

// By hand rather than with an istringstream, whose locale set-up alone costs more than
// the rest of this table on every container start.
std::vector<std::string> split(std::string_view names) {
    std::vector<std::string> out;
    for (size_t pos = 0; pos < names.size();) {
        size_t end = names.find(' ', pos);
        if (end == std::string_view::npos) end = names.size();
        if (end > pos) out.emplace_back(names.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

SeccompRule allow(const char* names) {
    SeccompRule r;
    r.names = split(names);
    r.action = SCMP_ACT_ALLOW;
    return r;
}

SeccompProfile build() {
    SeccompProfile p;
    p.source = "built-in";
    p.default_action = SCMP_ACT_ERRNO(EPERM);
    p.skip_unknown_syscalls = true;
    // Docker's archMap for x86_64: 32-bit and x32 programs are filtered, not killed.
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) p.arches = {SCMP_ARCH_X86, SCMP_ARCH_X32};
    else if (seccomp_arch_native() == SCMP_ARCH_AARCH64) p.arches = {SCMP_ARCH_ARM};
    for (const char* names : kAllowed) p.rules.push_back(allow(names));

    SeccompRule socket = allow("socket");
    socket.args = {{0, kAfVsock, 0, SCMP_CMP_NE}};  // vsock reaches the hypervisor, not this namespace
    p.rules.push_back(std::move(socket));
    for (uint64_t value : kSafePersonalities) {
        SeccompRule r = allow("personality");
        r.args = {{0, value, 0, SCMP_CMP_EQ}};
        p.rules.push_back(std::move(r));
    }
    SeccompRule arch_prctl = allow("arch_prctl");
    arch_prctl.includes.arches = {"amd64", "x32"};
    p.rules.push_back(std::move(arch_prctl));
    SeccompRule modify_ldt = allow("modify_ldt");
    modify_ldt.includes.arches = {"amd64", "x32", "x86"};
    p.rules.push_back(std::move(modify_ldt));

    for (const auto& [cap, names] : kWithCap) {
        SeccompRule r = allow(names);
        r.includes.caps = uint64_t(1) << cap;
        p.rules.push_back(std::move(r));
    }
    const uint64_t sys_admin = uint64_t(1) << CAP_SYS_ADMIN;
    SeccompRule clone = allow("clone");
    clone.args = {{0, kNamespaceFlags, 0, SCMP_CMP_MASKED_EQ}};
    clone.excludes.caps = sys_admin;
    p.rules.push_back(std::move(clone));
    // clone3 passes its flags in memory, out of the filter's sight: ENOSYS makes glibc and
    // musl fall back to clone, which the rule above can check.
    SeccompRule clone3;
    clone3.names = {"clone3"};
    clone3.action = SCMP_ACT_ERRNO(ENOSYS);
    clone3.excludes.caps = sys_admin;
    p.rules.push_back(std::move(clone3));
    return p;
}

}  // namespace

const SeccompProfile& default_seccomp_profile() {
    static const SeccompProfile profile = build();
    return profile;
}

}  // namespace srl
