#include "launcher/users.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {

namespace {

std::string read_in_root(const std::filesystem::path& rootfs, const char* rel) {
    Fd root(open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open " + rootfs.string());
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    Fd fd(static_cast<int>(syscall(SYS_openat2, root.get(), rel, &how, sizeof how)));
    if (!fd) return {};  // no such file: numeric ids still work
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = read(fd.get(), buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    return text;
}

std::vector<std::vector<std::string>> records(const std::string& text) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> fields;
        std::istringstream l(line);
        for (std::string f; std::getline(l, f, ':');) fields.push_back(f);
        if (!line.empty() && line.back() == ':') fields.emplace_back();
        out.push_back(std::move(fields));
    }
    return out;
}

std::optional<uint32_t> number(const std::string& s) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

}  // namespace

ResolvedUser resolve_user(const std::filesystem::path& rootfs, const std::string& spec) {
    ResolvedUser r;
    std::string user = spec.substr(0, spec.find(':'));
    std::optional<std::string> group;
    if (auto colon = spec.find(':'); colon != std::string::npos) group = spec.substr(colon + 1);
    if (user.empty()) user = "0";

    auto passwd = records(read_in_root(rootfs, "etc/passwd"));
    std::string name;
    auto num = number(user);
    bool found = false;
    for (const auto& f : passwd) {
        if (f.size() < 7) continue;
        if (num ? number(f[2]) == num : f[0] == user) {
            r.uid = *number(f[2]);
            r.gid = number(f[3]).value_or(0);
            r.home = f[5].empty() ? "/" : f[5];
            name = f[0];
            found = true;
            break;
        }
    }
    if (!found) {
        if (!num) throw Error("unable to find user " + user + ": no matching entries in passwd file");
        r.uid = *num;
    }

    auto groups = records(read_in_root(rootfs, "etc/group"));
    if (group) {
        auto gnum = number(*group);
        bool gfound = gnum.has_value();
        if (gnum) r.gid = *gnum;
        for (const auto& f : groups)
            if (!gnum && f.size() >= 3 && f[0] == *group) {
                r.gid = *number(f[2]);
                gfound = true;
            }
        if (!gfound) throw Error("unable to find group " + *group + ": no matching entries in group file");
    }
    if (!name.empty()) {
        for (const auto& f : groups) {
            if (f.size() < 4) continue;
            std::istringstream members(f[3]);
            for (std::string m; std::getline(members, m, ',');) {
                auto gid = number(f[2]);
                if (m == name && gid &&
                    std::find(r.additional_gids.begin(), r.additional_gids.end(), *gid) == r.additional_gids.end())
                    r.additional_gids.push_back(*gid);
            }
        }
    }
    // As docker: with no group listing the user, the primary group is the only one.
    if (r.additional_gids.empty()) r.additional_gids.push_back(r.gid);
    return r;
}

}  // namespace srl
