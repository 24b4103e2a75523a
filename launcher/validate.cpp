#include "launcher/validate.hpp"

#include <cctype>
#include <vector>

#include "launcher/error.hpp"

namespace srl {

namespace {

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

void check_container_name(const std::string& name) {
    auto bad = [&](const std::string& why) {
        return Error("invalid container name \"" + shown(name) + "\": " + why);
    };
    if (name.empty()) throw Error("invalid container name \"\": a name must not be empty");
    if (name.size() > kMaxNameLength)
        throw bad(std::to_string(name.size()) + " characters, at most " + std::to_string(kMaxNameLength));
    bool ok = alnum(name[0]);
    for (char c : name) ok = ok && (alnum(c) || c == '_' || c == '.' || c == '-');
    if (!ok) throw bad("use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
}

void check_hostname(const std::string& name) {
    auto bad = [&](const std::string& why) {
        return Error("invalid --hostname \"" + shown(name) + "\": " + why);
    };
    if (name.empty()) throw Error("invalid --hostname \"\": a hostname must not be empty");
    if (name.size() > 64) throw bad(std::to_string(name.size()) + " characters, at most 64");
    size_t start = 0;
    while (true) {
        size_t dot = name.find('.', start);
        std::string label = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (label.empty()) throw bad("an empty label (a leading, trailing or double '.')");
        if (label.size() > 63) throw bad("a label longer than 63 characters");
        for (char c : label)
            if (!alnum(c) && c != '-')
                throw bad("letters, digits, '-' and '.' only (RFC 1123), not '" + shown(std::string(1, c)) + "'");
        if (label.front() == '-' || label.back() == '-') throw bad("a label starts or ends with '-'");
        if (dot == std::string::npos) return;
        start = dot + 1;
    }
}

std::string container_path(const std::string& path, const char* flag) {
    auto bad = [&](const std::string& why) {
        return Error(std::string("invalid ") + flag + " \"" + shown(path) + "\": " + why);
    };
    if (path.empty() || path[0] != '/') throw bad("the path in the container must be absolute");
    // The kernel's limits (PATH_MAX with its NUL, NAME_MAX), which it would otherwise enforce
    // only once the container is being made.
    if (path.size() > 4095) throw bad(std::to_string(path.size()) + " bytes, more than a path may have (4095)");
    std::vector<std::string> parts;
    for (size_t start = 1; start <= path.size();) {
        size_t slash = path.find('/', start);
        if (slash == std::string::npos) slash = path.size();
        std::string part = path.substr(start, slash - start);
        start = slash + 1;
        if (part.empty() || part == ".") continue;
        // Refused, not resolved: whether "a/.." means "." depends on what "a" is in the
        // image (a symlink's ".." is its target's parent), which is not known here.
        if (part == "..") throw bad("\"..\" is not allowed in a path in the container");
        if (part.size() > 255) throw bad("a name of " + std::to_string(part.size()) + " bytes, more than 255");
        parts.push_back(std::move(part));
    }
    std::string out;
    for (const auto& p : parts) out += "/" + p;
    return out.empty() ? "/" : out;
}

uint32_t checked_id(uint64_t id, const char* what, const std::string& from) {
    if (id > 4294967294u)
        throw Error(std::string(what) + " " + std::to_string(id) + " (" + shown(from) +
                    ") is out of range: ids go from 0 to 4294967294");
    return static_cast<uint32_t>(id);
}

}  // namespace srl
