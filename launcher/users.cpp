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
#include "launcher/validate.hpp"

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

// A decimal field ("1000"); nullopt for anything else (a name). Too large is UINT64_MAX.
std::optional<uint64_t> decimal(const std::string& s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() ? v : UINT64_MAX;
}

// The same as an id, checked when it is used: a number too large for an id is refused, not
// read as a name.
std::optional<uint32_t> number(const std::string& s, const char* what, const std::string& from) {
    auto v = decimal(s);
    if (!v) return std::nullopt;
    if (*v == UINT64_MAX)  // too large even to read: said as given
        throw Error(std::string(what) + " " + shown(s) + " (" + shown(from) + ") is out of range: ids go from 0 to 4294967294");
    return checked_id(*v, what, from);
}

}  // namespace

ResolvedUser resolve_user(const std::filesystem::path& rootfs, const std::string& spec) {
    ResolvedUser r;
    std::string user = spec.substr(0, spec.find(':'));
    std::optional<std::string> group;
    if (auto colon = spec.find(':'); colon != std::string::npos) group = spec.substr(colon + 1);
    if (group && group->empty()) throw Error("invalid -u \"" + shown(spec) + "\": no group after ':'");
    if (user.empty()) user = "0";
    const std::string flag = "-u " + spec;

    auto passwd = records(read_in_root(rootfs, "etc/passwd"));
    std::string name;
    auto num = number(user, "uid", flag);
    bool found = false;
    for (const auto& f : passwd) {
        if (f.size() < 7) continue;
        if (num ? decimal(f[2]) == num : f[0] == user) {
            auto uid = number(f[2], "uid", "passwd entry " + f[0]);
            if (!uid) continue;
            r.uid = *uid;
            r.gid = number(f[3], "gid", "passwd entry " + f[0]).value_or(0);
            r.home = f[5].empty() ? "/" : f[5];
            name = f[0];
            found = true;
            break;
        }
    }
    if (!found) {
        if (!num) throw Error("unable to find user " + shown(user) + ": no matching entries in passwd file");
        r.uid = *num;
    }

    auto groups = records(read_in_root(rootfs, "etc/group"));
    if (group) {
        auto gnum = number(*group, "gid", flag);
        bool gfound = gnum.has_value();
        if (gnum) r.gid = *gnum;
        for (const auto& f : groups)
            if (!gnum && f.size() >= 3 && f[0] == *group) {
                auto gid = number(f[2], "gid", "group entry " + f[0]);
                if (!gid) continue;
                r.gid = *gid;
                gfound = true;
            }
        if (!gfound) throw Error("unable to find group " + shown(*group) + ": no matching entries in group file");
    }
    if (!name.empty()) {
        for (const auto& f : groups) {
            if (f.size() < 4) continue;
            std::istringstream members(f[3]);
            for (std::string m; std::getline(members, m, ',');) {
                if (m != name) continue;
                auto gid = number(f[2], "gid", "group entry " + f[0]);
                if (gid &&
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
