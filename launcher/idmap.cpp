#include "launcher/idmap.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {

namespace fs = std::filesystem;

IdMapping parse_id_mapping(const std::string& text) {
    IdMapping m;
    uint32_t* fields[] = {&m.container, &m.host, &m.count};
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int i = 0; i < 3; ++i) {
        auto [next, ec] = std::from_chars(p, end, *fields[i]);
        bool sep_ok = i < 2 ? (next < end && *next == ':') : next == end;
        if (ec != std::errc() || next == p || !sep_ok)
            throw Error("invalid ID mapping '" + shown(text) + "': expected CONTAINER_ID:HOST_ID:COUNT");
        p = next + 1;
    }
    return m;
}

void validate_id_mappings(const std::vector<IdMapping>& maps, const char* which) {
    auto end = [](uint64_t start, uint32_t count) { return start + count; };
    for (size_t i = 0; i < maps.size(); ++i) {
        const auto& a = maps[i];
        std::string desc = std::string(which) + " " + std::to_string(a.container) + ":" +
                           std::to_string(a.host) + ":" + std::to_string(a.count);
        if (a.count == 0) throw Error("invalid " + desc + ": count must be positive");
        if (end(a.container, a.count) > (1ull << 32) - 1 || end(a.host, a.count) > (1ull << 32) - 1)
            throw Error("invalid " + desc + ": range exceeds 32-bit ids");
        for (size_t j = 0; j < i; ++j) {
            const auto& b = maps[j];
            bool ctr = a.container < end(b.container, b.count) && b.container < end(a.container, a.count);
            bool host = a.host < end(b.host, b.count) && b.host < end(a.host, a.count);
            if (ctr || host)
                throw Error("invalid " + desc + ": overlaps another mapping on the " +
                            (ctr ? "container" : "host") + " side");
        }
    }
    if (maps.size() > 340) throw Error(std::string("too many ") + which + " ranges (kernel limit 340)");
}

std::optional<uint32_t> map_to_host(const std::vector<IdMapping>& maps, uint32_t id) {
    for (const auto& m : maps)
        if (id >= m.container && id - m.container < m.count) return m.host + (id - m.container);
    return std::nullopt;
}

std::string format_id_map(const std::vector<IdMapping>& maps) {
    std::string out;
    for (const auto& m : maps)
        out += std::to_string(m.container) + " " + std::to_string(m.host) + " " +
               std::to_string(m.count) + "\n";
    return out;
}

static void write_proc_file(pid_t pid, const char* name, const std::string& text) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + name;
    Fd fd(check(open(path.c_str(), O_WRONLY | O_CLOEXEC), "open " + path));
    // The kernel takes a map file in exactly one write.
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw_errno("write " + path);
}

void write_id_maps(pid_t pid, const std::vector<IdMapping>& uids, const std::vector<IdMapping>& gids) {
    // An unprivileged writer may only map its own gid, and only after setgroups is denied:
    // otherwise it could drop a supplementary group that denies it access (a "negative
    // group" permission) by calling setgroups inside. As root (CAP_SETGID over the parent
    // namespace) the kernel lets us leave setgroups allowed, which -u USER needs for its
    // supplementary groups.
    if (geteuid() != 0) write_proc_file(pid, "setgroups", "deny");
    write_proc_file(pid, "uid_map", format_id_map(uids));
    write_proc_file(pid, "gid_map", format_id_map(gids));
}

namespace {
// flock on a lock file in the ranges dir, released with the fd.
Fd lock_dir(const fs::path& dir) {
    fs::create_directories(dir);
    std::string lock = (dir / ".lock").string();
    Fd fd(check(open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600), "open " + lock));
    check(flock(fd.get(), LOCK_EX), "lock " + lock);
    return fd;
}
}  // namespace

namespace {
// A range is handed out only to a container whose directory exists (launch() makes it
// first), and `rm` releases it before the directory goes. One whose container has no
// directory was abandoned (the directory was deleted by hand): free again.
bool abandoned(const fs::path& entry, const fs::path& containers) {
    std::ifstream f(entry);
    std::string owner;
    if (!std::getline(f, owner) || owner.empty()) return false;
    std::error_code ec;
    return !fs::exists(containers / owner, ec) && !ec;
}
}  // namespace

uint32_t UsernsRanges::allocate(const std::string& container_id) {
    Fd lock = lock_dir(dir_);
    std::vector<uint32_t> taken;
    fs::path containers = dir_.parent_path() / "containers";
    for (const auto& e : fs::directory_iterator(dir_)) {
        uint32_t base = 0;
        auto name = e.path().filename().string();
        if (std::from_chars(name.data(), name.data() + name.size(), base).ec != std::errc()) continue;
        if (abandoned(e.path(), containers)) {
            std::error_code ec;
            fs::remove(e.path(), ec);
            continue;
        }
        taken.push_back(base);
    }
    for (uint32_t base = kFirst; base < kLimit; base += kSize) {
        if (std::find(taken.begin(), taken.end(), base) != taken.end()) continue;
        fs::path entry = dir_ / std::to_string(base);
        Fd f(check(open(entry.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "create " + entry.string()));
        std::string line = container_id + "\n";
        if (write(f.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
            int err = errno;
            unlink(entry.c_str());
            throw Error("write " + entry.string(), err);
        }
        return base;
    }
    throw Error("no free user namespace range left for --userns auto");
}

void UsernsRanges::release(const std::string& container_id) {
    if (!fs::exists(dir_)) return;
    Fd lock = lock_dir(dir_);
    for (const auto& e : fs::directory_iterator(dir_)) {
        if (e.path().filename() == ".lock") continue;
        std::ifstream f(e.path());
        std::string owner;
        if (std::getline(f, owner) && owner == container_id) fs::remove(e.path());
    }
}

}  // namespace srl
