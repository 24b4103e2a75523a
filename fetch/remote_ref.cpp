#include "fetch/remote_ref.hpp"

#include <cctype>

#include "fetch/digest.hpp"
#include "launcher/error.hpp"

namespace srl {
namespace {

// The grammar of distribution/reference, written out by hand: std::regex would cost every
// `run` (which maps its image argument through here) a few hundred microseconds.
bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// host[:port]: dot-separated labels of letters, digits and inner '-'.
bool valid_domain(std::string_view d) {
    if (auto colon = d.find(':'); colon != std::string_view::npos) {
        std::string_view port = d.substr(colon + 1);
        if (port.empty() || port.size() > 5) return false;
        for (char c : port)
            if (c < '0' || c > '9') return false;
        d = d.substr(0, colon);
    }
    for (std::size_t b = 0;;) {
        std::size_t e = d.find('.', b);
        std::string_view label = d.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
        if (label.empty() || !alnum(label.front()) || !alnum(label.back())) return false;
        for (char c : label)
            if (!alnum(c) && c != '-') return false;
        if (e == std::string_view::npos) return true;
        b = e + 1;
    }
}

// [a-z0-9]+ joined by one '.', one or two '_', or any number of '-'.
bool valid_component(std::string_view c) {
    if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (lower_alnum(c[i])) continue;
        std::size_t j = i;
        while (j < c.size() && !lower_alnum(c[j])) ++j;
        std::string_view sep = c.substr(i, j - i);
        const bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
        if (!ok) return false;
        i = j - 1;
    }
    return true;
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > 128 || !(alnum(t.front()) || t.front() == '_')) return false;
    for (char c : t)
        if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
}

[[noreturn]] void bad(std::string_view s, const std::string& why) {
    throw Error("invalid reference format: \"" + std::string(s) + "\": " + why);
}

}  // namespace

RemoteRef RemoteRef::parse(std::string_view s) {
    if (s.empty()) bad(s, "empty");
    if (s.size() > 255 + 128 + 72) bad(s, "too long");
    RemoteRef r;
    std::string rest(s);
    if (auto at = rest.find('@'); at != std::string::npos) {
        r.digest = rest.substr(at + 1);
        rest.resize(at);
        try {
            check_sha256_digest(r.digest, "the reference");
        } catch (const Error&) {
            bad(s, "a digest is sha256: and 64 lower-case hex digits");
        }
    }
    if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        r.tag = rest.substr(colon + 1);
        rest.resize(colon);
        if (!valid_tag(r.tag)) bad(s, "a tag is up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'");
    }
    if (r.tag.empty() && r.digest.empty()) r.tag = "latest";

    // The first component is a registry when it looks like a host: it has a '.' or a ':',
    // or is "localhost", exactly as Docker decides.
    auto slash = rest.find('/');
    if (slash != std::string::npos) {
        std::string first = rest.substr(0, slash);
        if (first.find_first_of(".:") != std::string::npos || first == "localhost") {
            if (!valid_domain(first)) bad(s, "\"" + first + "\" is not a registry host[:port]");
            r.registry = first;
            rest = rest.substr(slash + 1);
        }
    }
    if (r.registry.empty() || r.registry == "index.docker.io" || r.registry == "registry-1.docker.io") r.registry = "docker.io";
    if (rest.empty()) bad(s, "no repository name");
    for (std::size_t b = 0;;) {
        auto e = rest.find('/', b);
        std::string comp = rest.substr(b, e == std::string::npos ? std::string::npos : e - b);
        if (!valid_component(comp))
            bad(s, "repository names are lower-case letters, digits and single separators (._-)");
        if (e == std::string::npos) break;
        b = e + 1;
    }
    if (r.registry == "docker.io" && rest.find('/') == std::string::npos) rest = "library/" + rest;
    r.repository = rest;
    return r;
}

std::string RemoteRef::str() const {
    return registry + "/" + repository + (digest.empty() ? ":" + tag : "@" + digest);
}

ImageRef RemoteRef::local() const {
    std::string name = repository;
    if (registry == "docker.io") {
        if (name.starts_with("library/")) name = name.substr(8);
    } else {
        name = registry + "/" + name;
    }
    std::string t = digest.empty() ? tag : "sha256-" + digest.substr(7);
    return ImageRef::parse(name + ":" + t);
}

bool is_alpine_mirror_ref(std::string_view s) { return s == "alpine" || (s.starts_with("alpine:") && s.find('@') == std::string_view::npos); }

}  // namespace srl
