#include "images/reference.hpp"

#include <algorithm>

#include "launcher/error.hpp"

namespace srl {
namespace {

constexpr std::size_t kMaxNameLength = 255;  // Docker's limit; also keeps paths well short of PATH_MAX
constexpr std::size_t kMaxTagLength = 128;
constexpr std::size_t kMaxHostLabel = 63;
constexpr std::string_view kDockerHub[] = {"docker.io/", "index.docker.io/"};
constexpr std::string_view kOfficial = "library/";

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool tag_char(char c) {
    return lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

[[noreturn]] void bad(std::string_view ref, const std::string& why) {
    throw Error("invalid image reference \"" + std::string(ref) + "\": " + why);
}

// One path component of a name: [a-z0-9]+([._-][a-z0-9]+)*
void check_component(std::string_view ref, std::string_view c) {
    if (c.empty()) bad(ref, "empty name component");
    if (c == "." || c == "..") bad(ref, "\"" + std::string(c) + "\" is not allowed in a name");
    bool after_separator = true;
    for (char ch : c) {
        if (lower_alnum(ch)) {
            after_separator = false;
        } else if (ch == '.' || ch == '_' || ch == '-') {
            if (after_separator) bad(ref, "name components must start and end with [a-z0-9] and not repeat separators");
            after_separator = true;
        } else if (ch >= 'A' && ch <= 'Z') {
            bad(ref, "name must be lowercase");
        } else {
            bad(ref, "invalid character '" + std::string(1, ch) + "' in name");
        }
    }
    if (after_separator) bad(ref, "name components must start and end with [a-z0-9] and not repeat separators");
}

// Docker's rule for telling a registry from a user name: "localhost", or something with a dot.
bool looks_like_host(std::string_view host) { return host == "localhost" || host.find('.') != std::string_view::npos; }

// DNS labels, lowercase: [a-z0-9]([a-z0-9-]*[a-z0-9])? joined by single dots (IPv4 included).
bool valid_hostname(std::string_view host) {
    if (host.empty()) return false;
    for (std::size_t start = 0;;) {
        auto end = host.find('.', start);
        auto label = host.substr(start, end == std::string_view::npos ? end : end - start);
        if (label.empty() || label.size() > kMaxHostLabel || label.front() == '-' || label.back() == '-') return false;
        if (!std::all_of(label.begin(), label.end(), [](char ch) { return lower_alnum(ch) || ch == '-'; })) return false;
        if (end == std::string_view::npos) return true;
        start = end + 1;
    }
}

// The first of several components may be a registry, host[:port]; ':' is allowed nowhere else.
void check_first_component(std::string_view ref, std::string_view c) {
    auto colon = c.find(':');
    if (colon == std::string_view::npos) {
        if (looks_like_host(c) && valid_hostname(c)) return;
        check_component(ref, c);
        return;
    }
    std::string_view host = c.substr(0, colon), port = c.substr(colon + 1);
    if (std::any_of(host.begin(), host.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
        bad(ref, "name must be lowercase");
    if (!looks_like_host(host) || !valid_hostname(host))
        bad(ref, "invalid character ':' in name (only a registry host:port may have one, and its host must be "
                 "localhost or contain a '.')");
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), digit) ||
        std::stoul(std::string(port)) > 65535 || port.front() == '0')
        bad(ref, "invalid port \"" + std::string(port) + "\" in registry host");
}

// Docker Hub names are kept as Docker shows them: "docker.io/library/debian" is "debian".
std::string_view familiar(std::string_view name) {
    for (auto hub : kDockerHub)
        if (name.starts_with(hub)) {
            name.remove_prefix(hub.size());
            break;
        }
    if (name.starts_with(kOfficial) && name.find('/', kOfficial.size()) == std::string_view::npos)
        name.remove_prefix(kOfficial.size());
    return name;
}

}  // namespace

ImageRef ImageRef::parse(std::string_view s) {
    if (s.empty()) bad(s, "empty");
    // The tag separator is a ':' after the last '/', as in Docker references.
    auto slash = s.rfind('/');
    auto colon = s.find(':', slash == std::string_view::npos ? 0 : slash);
    ImageRef ref;
    std::string_view name = s.substr(0, colon);
    if (colon != std::string_view::npos) {
        std::string_view tag = s.substr(colon + 1);
        if (tag.empty()) bad(s, "empty tag");
        if (tag.size() > kMaxTagLength) bad(s, "tag longer than 128 characters");
        // Tags may not start with '.' or '-': that rules out "." and "..", and keeps store
        // directories apart from the store's own dot-files.
        if (tag[0] == '.' || tag[0] == '-') bad(s, "tag must start with [A-Za-z0-9_]");
        for (char ch : tag)
            if (!tag_char(ch)) bad(s, "invalid character '" + std::string(1, ch) + "' in tag (allowed: A-Z a-z 0-9 _ . -)");
        ref.tag = tag;
    }
    if (name.empty()) bad(s, "empty name");
    if (name.size() > kMaxNameLength) bad(s, "name longer than 255 characters");
    for (std::size_t start = 0;;) {
        auto end = name.find('/', start);
        auto component = name.substr(start, end == std::string_view::npos ? end : end - start);
        if (start == 0 && end != std::string_view::npos)
            check_first_component(s, component);
        else
            check_component(s, component);
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    ref.name = familiar(name);
    return ref;
}

std::string ImageRef::str() const { return name + ":" + tag; }

std::string ImageRef::registry_host() const {
    auto slash = name.find('/');
    if (slash == std::string::npos) return "";
    std::string_view first = std::string_view(name).substr(0, slash);
    const bool host = first.find(':') != std::string_view::npos || (looks_like_host(first) && valid_hostname(first));
    return host ? std::string(first) : "";
}

}  // namespace srl
