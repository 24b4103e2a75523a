// All 64 signals through the raw system calls.
//
// musl keeps signals 32, 33 and 34 for itself (thread cancellation, timers, setxid
// broadcasts): its sigfillset leaves them out, and sigaddset and sigaction refuse them with
// EINVAL. glibc keeps only 32 and 33, so 34 is glibc's SIGRTMIN, which glibc programs use.
// srinit must block, wait for and forward those too, and reset them for the workload, so it
// speaks to the kernel directly: a sigset is one 64-bit word (bit N-1 is signal N) and every
// rt_sig* call is told that size, 8 bytes, which is the only size the kernel accepts
// (sizeof(sigset_t) in the kernel, not musl's 128-byte sigset_t).
// Header-only, no heap, no errno games: a few syscalls each.
#pragma once

#include <csignal>
#include <ctime>
#include <sys/syscall.h>
#include <unistd.h>

namespace srinit::ksig {

inline constexpr int kLast = 64;  // the kernel's _NSIG on x86-64: signals are 1..64

using Mask = unsigned long long;  // the kernel's sigset_t
inline constexpr Mask kAll = ~Mask{0};
inline constexpr Mask kNone = 0;
static_assert(sizeof(Mask) * 8 == kLast);

// The kernel's struct sigaction as rt_sigaction reads it on x86-64 (and arm64): handler,
// flags, restorer, mask. musl's struct sigaction differs (a 128-byte mask), so it cannot be
// passed to the raw call.
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    Mask mask;
};
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "check struct KernelSigaction against this architecture's kernel struct sigaction"
#endif

// rt_sigprocmask(how, set, old). The kernel silently leaves SIGKILL and SIGSTOP out of
// any mask, so kAll is fine to pass. Returns 0 or -1 (errno set).
inline int set_mask(int how, Mask set, Mask* old = nullptr) {
    return static_cast<int>(syscall(SYS_rt_sigprocmask, how, &set, old, sizeof(Mask)));
}

// rt_sigtimedwait(set, info, timeout): takes one pending signal of the set, or waits for one
// (forever with a null timeout). The signals must be blocked. Returns the signal number, or
// -1 with errno EAGAIN on timeout, EINTR after a stop and continue.
inline int wait(Mask set, siginfo_t* info, const timespec* timeout) {
    return static_cast<int>(syscall(SYS_rt_sigtimedwait, &set, info, timeout, sizeof(Mask)));
}

// Every disposition back to SIG_DFL, 32..34 included. An ignored signal stays ignored across
// execve (only handlers are reset by it), so whatever our parent ignored would reach the
// workload. SIGKILL and SIGSTOP cannot be changed (EINVAL) and are always default anyway.
inline void reset_dispositions() {
    KernelSigaction dfl{};
    dfl.handler = SIG_DFL;
    for (int s = 1; s <= kLast; ++s) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, s, &dfl, nullptr, sizeof(Mask));
    }
}

}  // namespace srinit::ksig
