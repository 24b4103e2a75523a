// sysprobe OP [ARGS...]: tries one privileged operation and prints exactly "ok" or the errno's
// name (EPERM, ENOSYS...), exiting 0 or 1, so tests can assert what a container may do.
// Static, so it runs inside any image when bind-mounted there. Raw system calls throughout:
// libc wrappers may try something else first (clone3, for one) and hide what failed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc >= 2.32 names errnos ("EPERM"); anything it does not know prints as errnoN.
static const char* errno_name(int e) {
    static char buf[32];
    const char* name = strerrorname_np(e);
    if (name) return name;
    snprintf(buf, sizeof buf, "errno%d", e);
    return buf;
}

// A clone child that exits at once; returns the result of waiting for it (0 or -1).
static long reap(long pid) {
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return pid < 0 ? -1 : 0;
}

static long probe(const char* op, int argc, char** a) {
#define IS(name, nargs) (strcmp(op, name) == 0 && (argc >= (nargs) || (fprintf(stderr, "%s: missing arguments\n", name), exit(2), 0)))
    if (IS("keyctl", 0)) return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "sysprobe");
    if (IS("add_key", 0)) return syscall(SYS_add_key, "user", "sysprobe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (IS("unshare-user", 0)) return unshare(CLONE_NEWUSER);
    if (IS("unshare-net", 0)) return unshare(CLONE_NEWNET);
    if (IS("unshare-mnt", 0)) return unshare(CLONE_NEWNS);
    if (IS("clone-newuser", 0)) return reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (IS("clone3", 0)) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        return reap(syscall(SYS_clone3, &args, sizeof args));
    }
    if (IS("mount-tmpfs", 1)) return mount("none", a[0], "tmpfs", 0, NULL);
    if (IS("umount", 1)) return umount2(a[0], MNT_DETACH);
    if (IS("remount-rw", 1)) return mount(NULL, a[0], NULL, MS_REMOUNT | MS_BIND, NULL);
    if (IS("init-module", 0)) return syscall(SYS_init_module, "", 0, "");
    if (IS("finit-module", 0)) {
        // Not a regular file: even where it is allowed, the kernel refuses it (EINVAL).
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : syscall(SYS_finit_module, fd, "", 0);
    }
    if (IS("reboot", 0))
        return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, NULL);
    if (IS("bpf", 0)) {
        struct bpf_insn prog[] = {{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
                                  {.code = BPF_JMP | BPF_EXIT}};
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
        attr.insns = (uintptr_t)prog;
        attr.insn_cnt = 2;
        attr.license = (uintptr_t) "GPL";
        return syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    }
    if (IS("perf-event-open", 0)) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_SOFTWARE;
        attr.config = PERF_COUNT_SW_TASK_CLOCK;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    }
    if (IS("userfaultfd", 0)) return syscall(SYS_userfaultfd, O_CLOEXEC);
    if (IS("personality", 1)) return syscall(SYS_personality, strtoul(a[0], NULL, 16));
    if (IS("ptrace-attach", 1)) return syscall(SYS_ptrace, PTRACE_ATTACH, atoi(a[0]), 0, 0);
    if (IS("ptrace-traceme", 0)) return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    if (IS("mknod-block", 3))
        return mknod(a[0], S_IFBLK | 0600, makedev(strtoul(a[1], NULL, 10), strtoul(a[2], NULL, 10)));
    if (IS("open-read", 1)) {
        char c;
        int fd = open(a[0], O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : read(fd, &c, 1) < 0 ? -1 : 0;
    }
    if (IS("open-write", 1)) return open(a[0], O_WRONLY | O_CLOEXEC);
    if (IS("write", 2)) {
        int fd = open(a[0], O_WRONLY | O_CLOEXEC);
        return fd < 0 ? -1 : write(fd, a[1], strlen(a[1])) < 0 ? -1 : 0;
    }
    if (IS("sethostname", 1)) return sethostname(a[0], strlen(a[0]));
    if (IS("raw-socket", 0)) return socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (IS("swapon", 1)) return swapon(a[0], 0);
    if (IS("acct", 0)) return syscall(SYS_acct, NULL);
    if (IS("settimeofday", 0)) {
        struct timeval now;
        gettimeofday(&now, NULL);
        return syscall(SYS_settimeofday, &now, NULL);
    }
    if (IS("chroot", 1)) return chroot(a[0]);
    if (IS("setns", 1)) {
        int fd = open(a[0], O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : setns(fd, 0);
    }
    if (IS("kcmp", 0)) return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0);
    if (IS("iopl", 0)) return syscall(SYS_iopl, 0);
    if (IS("ioperm", 0)) return syscall(SYS_ioperm, 0x80, 1, 0);
    fprintf(stderr, "sysprobe: unknown operation %s\n", op);
    exit(2);
#undef IS
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sysprobe OP [ARGS...]\n");
        return 2;
    }
    errno = 0;
    long r = probe(argv[1], argc - 2, argv + 2);
    if (r >= 0) {
        puts("ok");
        return 0;
    }
    puts(errno_name(errno));
    return 1;
}
