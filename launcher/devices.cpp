#include "launcher/devices.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <set>

namespace srl {

namespace fs = std::filesystem;

std::vector<DeviceRule> default_device_rules() {
    return {
        {false, 'a', -1, -1, "rwm"},
        {true, 'c', -1, -1, "m"},    {true, 'b', -1, -1, "m"},
        {true, 'c', 1, 3, "rwm"},    {true, 'c', 1, 5, "rwm"},  {true, 'c', 1, 7, "rwm"},  // null zero full
        {true, 'c', 1, 8, "rwm"},    {true, 'c', 1, 9, "rwm"},                             // random urandom
        {true, 'c', 5, 0, "rwm"},    {true, 'c', 5, 1, "rwm"},  {true, 'c', 5, 2, "rwm"},  // tty console ptmx
        {true, 'c', 136, -1, "rwm"},                                                       // pts/*
        {true, 'c', 10, 200, "rwm"},                                                       // net/tun
    };
}

std::vector<DeviceRule> device_rules(const std::vector<Device>& devices, bool privileged) {
    if (privileged) return {{true, 'a', -1, -1, "rwm"}};
    std::vector<DeviceRule> rules = default_device_rules();
    for (const auto& d : devices) rules.push_back({true, d.type, d.major, d.minor, d.access});
    return rules;
}

std::vector<Device> host_devices(const fs::path& dev) {
    // runc's list (libcontainer/devices): directories that are the container's own or
    // belong to other runtimes; console and ptmx are made per container.
    static const std::set<std::string> kSkipDirs = {"pts", "shm", "fuse", "mqueue", ".lxc", ".lxd-mounts", ".udev"};
    static const std::set<std::string> kSkipNodes = {"console", "ptmx"};
    std::vector<Device> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(dev, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        // directory_entry's type is lstat's: a symlink to a directory is not followed.
        if (it->is_directory(ec) && !it->is_symlink(ec)) {
            if (kSkipDirs.count(name)) it.disable_recursion_pending();
            continue;
        }
        if (kSkipNodes.count(name) && it.depth() == 0) continue;
        struct stat st {};
        if (lstat(it->path().c_str(), &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) continue;
        if (major(st.st_rdev) == 0) continue;  // not a real device (as runc)
        Device d;
        d.host_path = d.container_path = it->path().string();
        if (dev != "/dev") d.container_path = "/dev" / fs::path(it->path()).lexically_relative(dev);
        d.type = S_ISBLK(st.st_mode) ? 'b' : 'c';
        d.major = major(st.st_rdev);
        d.minor = minor(st.st_rdev);
        d.mode = st.st_mode & 07777;
        out.push_back(std::move(d));
    }
    std::sort(out.begin(), out.end(), [](const Device& a, const Device& b) { return a.container_path < b.container_path; });
    return out;
}

bool resets_all(const DeviceRule& r) {
    auto has = [&](char c) { return r.access.find(c) != std::string::npos; };
    return r.type == 'a' && r.major < 0 && r.minor < 0 && has('r') && has('w') && has('m');
}

std::string device_rule_text(const DeviceRule& r) {
    auto num = [](int64_t n) { return n < 0 ? std::string("*") : std::to_string(n); };
    return std::string(1, r.type) + " " + num(r.major) + ":" + num(r.minor) + " " + r.access;
}

}  // namespace srl
