#include "launcher/cgroup.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {

namespace fs = std::filesystem;

CgroupLayout detect_cgroup_layout(const fs::path& mount) {
    struct statfs st {};
    if (statfs(mount.c_str(), &st) < 0) throw_errno("statfs " + mount.string());
    if (st.f_type == CGROUP2_SUPER_MAGIC) return CgroupLayout::V2;
    struct statfs unified {};
    if (statfs((mount / "unified").c_str(), &unified) == 0 && unified.f_type == CGROUP2_SUPER_MAGIC)
        return CgroupLayout::Hybrid;
    return CgroupLayout::V1;
}

std::unique_ptr<Cgroup> create_cgroup(const std::string& id, const Resources& res, const RecordCgroups& record) {
    if (detect_cgroup_layout() != CgroupLayout::V2) {
        // Hybrid hosts keep every controller we use on v1 (the unified tree holds at most
        // hugetlb there): use v1 throughout rather than refuse, as crun does.
        return create_cgroup_v1(id, res, record);
    }
    std::ifstream self("/proc/self/cgroup");
    std::string line, own;
    while (std::getline(self, line))
        if (line.rfind("0::", 0) == 0) own = line.substr(3);
    return create_cgroup_v2("/sys/fs/cgroup", cgroup_v2_parent(own.empty() ? "/" : own), id, res, record);
}

std::optional<int64_t> memory_and_swap(const Resources& res) {
    if (res.memory_swap) return res.memory_swap;
    if (res.memory) return 2 * *res.memory;
    return std::nullopt;
}

fs::path cgroup_v2_parent(const fs::path& own) {
    // v2 lets a cgroup other than the root hand controllers down only while it holds no
    // processes of its own ("no internal processes"), and the launcher's cgroup holds the
    // launcher: on a systemd host a session or service scope (EBUSY on its
    // cgroup.subtree_control). Its parent, a slice, holds none. runc places relative
    // cgroupsPaths the same way; so does rootless mode, for the same reason.
    if (own.relative_path().empty()) return "/";
    return own.parent_path();
}

CgroupStats read_cgroup_stats(const std::vector<fs::path>& dirs) {
    CgroupStats s;
    auto has = [](const fs::path& f) {
        std::error_code ec;
        return fs::exists(f, ec);
    };
    for (const auto& d : dirs) {
        if (has(d / "memory.usage_in_bytes")) {  // v1
            s.memory_current = cgroupfs::read_u64(d / "memory.usage_in_bytes");
            s.memory_peak = cgroupfs::read_u64(d / "memory.max_usage_in_bytes");
            uint64_t limit = cgroupfs::read_u64(d / "memory.limit_in_bytes");
            s.memory_limit = limit >= (1ull << 62) ? 0 : limit;  // "unlimited" is a huge number in v1
        } else if (has(d / "memory.current")) {  // v2
            s.memory_current = cgroupfs::read_u64(d / "memory.current");
            s.memory_peak = cgroupfs::read_u64(d / "memory.peak");
            s.memory_limit = cgroupfs::read_u64(d / "memory.max");
        }
        if (has(d / "cpuacct.usage")) s.cpu_usage_ns = cgroupfs::read_u64(d / "cpuacct.usage");
        else if (has(d / "cpu.stat") && !has(d / "cpu.shares")) s.cpu_usage_ns = cgroupfs::keyed(d / "cpu.stat", "usage_usec") * 1000;
        if (has(d / "pids.current")) s.pids_current = cgroupfs::read_u64(d / "pids.current");
        if (has(d / "blkio.throttle.io_service_bytes")) {
            auto sum = [&](const char* file, const char* op) {
                uint64_t total = 0;
                std::istringstream in(cgroupfs::read(d / file));
                std::string dev, o;
                uint64_t v;
                while (in >> dev >> o >> v)
                    if (o == op) total += v;
                return total;
            };
            s.io_read_bytes = sum("blkio.throttle.io_service_bytes", "Read");
            s.io_write_bytes = sum("blkio.throttle.io_service_bytes", "Write");
            s.io_read_ops = sum("blkio.throttle.io_serviced", "Read");
            s.io_write_ops = sum("blkio.throttle.io_serviced", "Write");
        } else if (has(d / "io.stat")) {
            std::istringstream io(cgroupfs::read(d / "io.stat"));
            for (std::string line; std::getline(io, line);) {
                std::istringstream fields(line);
                std::string f;
                fields >> f;  // MAJ:MIN
                while (fields >> f) {
                    auto eq = f.find('=');
                    if (eq == std::string::npos) continue;
                    uint64_t v = std::stoull(f.substr(eq + 1));
                    std::string k = f.substr(0, eq);
                    if (k == "rbytes") s.io_read_bytes += v;
                    else if (k == "wbytes") s.io_write_bytes += v;
                    else if (k == "rios") s.io_read_ops += v;
                    else if (k == "wios") s.io_write_ops += v;
                }
            }
        }
    }
    return s;
}

namespace cgroupfs {

void write(const fs::path& file, const std::string& value) {
    // O_CREAT only matters for test trees; cgroupfs files always exist.
    Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) throw_errno("open " + file.string());
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        throw_errno("set " + file.filename().string() + " to \"" + value + "\" in " + file.parent_path().string());
}

std::string read(const fs::path& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

uint64_t read_u64(const fs::path& file) {
    std::string s = read(file);
    return s.empty() || s.rfind("max", 0) == 0 ? 0 : std::stoull(s);
}

uint64_t keyed(const fs::path& file, const std::string& key) {
    std::istringstream in(read(file));
    std::string k;
    uint64_t v = 0;
    while (in >> k >> v)
        if (k == key) return v;
    return 0;
}

void make_dir(const fs::path& dir) {
    // Another launcher may remove the shared parent between our mkdir -p and mkdir: retry.
    for (int attempt = 0;; ++attempt) {
        std::error_code ec;
        fs::create_directories(dir.parent_path(), ec);
        if (::mkdir(dir.c_str(), 0755) == 0) return;
        if (errno != ENOENT || attempt == 3) throw_errno("create cgroup " + dir.string());
    }
}

void remove_dir(const fs::path& dir) noexcept {
    // A task that has exited can stay counted for a moment after its parent reaped it.
    for (int i = 0; i < 200 && ::rmdir(dir.c_str()) < 0 && errno == EBUSY; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ::rmdir(dir.parent_path().c_str());  // the shared "srlaunch" dir, if now empty
}

}  // namespace cgroupfs

}  // namespace srl
