// Compiled seccomp filters kept in the store (see compile_seccomp_cached in seccomp.hpp).
#include <fcntl.h>
#include <seccomp.h>
#include <linux/filter.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/seccomp.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

// Everything the generated program depends on, as text.
std::string cache_key(const SeccompProfile& p, uint64_t caps) {
    utsname u{};
    uname(&u);
    std::string k = "srlaunch seccomp cache 1\nlibseccomp " + std::to_string(SCMP_VER_MAJOR) + "." +
                    std::to_string(SCMP_VER_MINOR) + "." + std::to_string(SCMP_VER_MICRO) + "\nkernel " +
                    u.release + " " + u.machine + "\ncaps " + std::to_string(caps) + "\ndefault " +
                    std::to_string(p.default_action) + (p.skip_unknown_syscalls ? " skip" : "") + "\narches";
    for (uint32_t a : p.arches) k += " " + std::to_string(a);
    auto condition = [&k](const char* what, const SeccompCondition& c) {
        k += std::string(" ") + what + " " + std::to_string(c.caps);
        for (const auto& a : c.arches) k += "," + a;
        if (c.min_kernel) k += " " + std::to_string(c.min_kernel->first) + "." + std::to_string(c.min_kernel->second);
    };
    for (const auto& r : p.rules) {
        k += "\nrule " + std::to_string(r.action);
        for (const auto& n : r.names) k += " " + n;
        for (const auto& a : r.args)
            k += " [" + std::to_string(a.index) + " " + std::to_string(a.op) + " " + std::to_string(a.value) + " " +
                 std::to_string(a.value_two) + "]";
        condition("+", r.includes);
        condition("-", r.excludes);
    }
    return k + "\n";
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

bool valid_program(size_t size) {
    return size > 0 && size % sizeof(sock_filter) == 0 && size / sizeof(sock_filter) <= BPF_MAXINSNS;
}

std::optional<std::string> read_entry(const fs::path& file, const std::string& key) {
    Fd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) < 0 || static_cast<size_t>(st.st_size) <= key.size() + 1) return std::nullopt;
    std::string content(static_cast<size_t>(st.st_size), '\0');
    if (pread(fd.get(), content.data(), content.size(), 0) != st.st_size) return std::nullopt;
    // KEY NUL PROGRAM
    if (content.compare(0, key.size(), key) != 0 || content[key.size()] != '\0') return std::nullopt;
    std::string bpf = content.substr(key.size() + 1);
    if (!valid_program(bpf.size())) return std::nullopt;
    return bpf;
}

// Written beside and renamed in, so a reader never sees half an entry.
void write_entry(const fs::path& dir, const fs::path& file, const std::string& key, const std::string& bpf) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    fs::path tmp = file;
    tmp += ".tmp" + std::to_string(getpid());
    Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return;
    std::string content = key + '\0' + bpf;
    bool ok = write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size());
    fd.reset();
    if (!ok || rename(tmp.c_str(), file.c_str()) < 0) unlink(tmp.c_str());
}

}  // namespace

std::string compile_seccomp_cached(const SeccompProfile& profile, uint64_t capabilities, const fs::path& cache_dir) {
    std::string key = cache_key(profile, capabilities);
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(fnv1a(key)));
    fs::path file = cache_dir / name;
    if (auto hit = read_entry(file, key)) return *hit;
    std::string bpf = compile_seccomp(profile, capabilities);
    write_entry(cache_dir, file, key, bpf);
    return bpf;
}

}  // namespace srl
