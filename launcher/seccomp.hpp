// Seccomp: profiles in Docker's/OCI's JSON format, a built-in profile equivalent to Docker's
// default, and their compilation with libseccomp into the raw BPF program that srinit
// installs on itself (srinit links no libseccomp: see ../shared/DESIGN.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace srl {

// One comparison of a system call argument (all of a rule's must hold).
struct SeccompArg {
    unsigned index = 0;          // 0..5
    uint64_t value = 0;
    uint64_t value_two = 0;      // the mask's operand for MASKED_EQ
    int op = 0;                  // libseccomp's enum scmp_compare
};

// When a rule applies, with Docker's semantics: `includes` needs every listed capability,
// the running architecture among the listed ones and at least the kernel version;
// `excludes` drops the rule for any listed capability or architecture, or from the version on.
struct SeccompCondition {
    uint64_t caps = 0;                         // bit N = capability N
    std::vector<std::string> arches;           // Go's names as Docker writes them: amd64, x32, arm64...
    std::optional<std::pair<int, int>> min_kernel;
};

struct SeccompRule {
    std::vector<std::string> names;
    uint32_t action = 0;                       // a libseccomp action value (SCMP_ACT_*), errno included
    std::vector<SeccompArg> args;
    SeccompCondition includes, excludes;
};

struct SeccompProfile {
    std::string source;                        // the file, or "built-in", for messages
    uint32_t default_action = 0;
    std::vector<uint32_t> arches;              // libseccomp arch tokens besides the native one
    std::vector<SeccompRule> rules;
    // Only the built-in profile may name system calls this libseccomp does not know (newer
    // ones); in a user's profile an unknown name is an error, not silently allowed or denied.
    bool skip_unknown_syscalls = false;
};

// Parses a profile; any problem throws Error naming `source` and the offending item.
SeccompProfile parse_seccomp_profile(const std::string& json_text, const std::string& source);
SeccompProfile load_seccomp_profile(const std::filesystem::path& file);

// Docker's default (moby profiles/seccomp/default.json), as our own table: an allow-list,
// everything else EPERM, more allowed for granted capabilities. See seccomp_default.cpp.
const SeccompProfile& default_seccomp_profile();

// The profile's filter for a container whose capabilities (bit N = capability N) are final:
// the raw array of struct sock_filter that seccomp(SECCOMP_SET_MODE_FILTER) takes.
std::string compile_seccomp(const SeccompProfile& profile, uint64_t capabilities);

// The same, kept in cache_dir between runs. libseccomp takes 5-20 ms to generate a filter
// for Docker's three x86 architectures, more than the rest of a container start; a cached
// one is a file read. An entry holds its whole key (the profile, the capabilities, the
// kernel and libseccomp versions), compared in full, so a stale entry or a hash collision
// can only miss. A store that cannot be written only costs the compilation.
std::string compile_seccomp_cached(const SeccompProfile& profile, uint64_t capabilities,
                                   const std::filesystem::path& cache_dir);

}  // namespace srl
