// srinit's configuration: from the command line (standalone, like tini) or from the
// launcher's config stream on an inherited fd. Kept free of heap and exceptions so the
// same code builds into the static musl srinit and into the host's unit tests.
#pragma once

#include <cstddef>

namespace srinit {

struct Config {
    static constexpr int kMaxArgs = 1024;
    static constexpr int kMaxEnv = 1024;

    const char* argv[kMaxArgs + 1] = {};  // workload command, null-terminated
    int argc = 0;
    const char* envp[kMaxEnv + 1] = {};   // replaces the environment when env_set
    int envc = 0;
    bool env_set = false;
    const char* cwd = nullptr;
    bool group = false;       // forward signals to the workload's whole process group
    int grace_ms = 10'000;    // time leftover processes get between SIGTERM and SIGKILL
    int preserve_fds = 0;     // fds 3 .. 3+N-1 stay open for the workload
    static constexpr int kMaxGroups = 64;
    long uid = -1;            // switch the workload to this user/group (-1: stay)
    long gid = -1;
    unsigned groups[kMaxGroups] = {};  // supplementary groups, set when set_groups
    int ngroups = 0;
    bool set_groups = false;
    unsigned long long caps = 0;  // capabilities kept (bit N = capability N), when caps_set
    bool caps_set = false;
    bool no_new_privs = false;
    // The launcher's seccomp filter (raw struct sock_filter[], 8 bytes each), installed by
    // srinit on itself before the workload starts; null: none.
    static constexpr std::size_t kSockFilterSize = 8;
    static constexpr std::size_t kBpfMaxInsns = 4096;  // the kernel's BPF_MAXINSNS
    const char* seccomp = nullptr;
    std::size_t seccomp_len = 0;
    // `srlaunch exec`: become the workload (seccomp, privileges, cwd, exec) instead of
    // supervising it; the container's PID 1 is already there to reap.
    bool exec = false;
    int config_fd = -1;       // launcher mode: read the config stream from this fd
    bool help = false;
    bool version = false;
};

// Parses `srinit [options] [--] CMD [ARG...]`. Returns nullptr or a static error message.
// `bad` receives the offending argument, if any.
const char* parse_options(int argc, char** argv, Config& cfg, const char** bad);

// Parses the launcher's config stream, held in buf[0..len). The stream is a sequence of
// records `KEY SP LEN LF VALUE LF`, where LEN is the decimal byte length of VALUE (which may
// hold any byte, so binary payloads such as BPF programs fit later). Values are used in
// place: the trailing LF of each record becomes the value's NUL terminator.
// Keys: arg (repeatable), env (repeatable, replaces the environment), cwd, group (0|1),
// grace_ms, preserve_fds, uid, gid, groups (comma-separated gids; empty clears them),
// caps (hex mask of the capabilities the workload keeps), no_new_privs (0|1), exec (0|1), seccomp (a raw
// BPF program: a non-empty multiple of 8 bytes, at most 4096 instructions). An unknown key is
// an error, so a launcher/srinit mismatch is loud.
const char* parse_stream(char* buf, std::size_t len, Config& cfg, const char** bad);

// Parses a decimal duration in seconds ("10", "0.25") into milliseconds; -1 if malformed.
int parse_seconds_ms(const char* s);

// Parses a non-negative decimal int no larger than max; -1 if malformed.
int parse_uint(const char* s, std::size_t n, int max);

}  // namespace srinit
