#include "fetch/remote_ref.hpp"

#include <regex>

#include "fetch/digest.hpp"
#include "launcher/error.hpp"

namespace srl {
namespace {

// From distribution/reference: a domain is a dotted hostname (or localhost, or an IPv4
// address) with an optional port; path components are lower-case alphanumerics joined by
// single separators.
const std::regex kDomain(R"(([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(\.([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(:[0-9]+)?)");
const std::regex kComponent(R"([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)");
const std::regex kTag(R"([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");

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
        if (!std::regex_match(r.tag, kTag)) bad(s, "a tag is up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'");
    }
    if (r.tag.empty() && r.digest.empty()) r.tag = "latest";

    // The first component is a registry when it looks like a host: it has a '.' or a ':',
    // or is "localhost", exactly as Docker decides.
    auto slash = rest.find('/');
    if (slash != std::string::npos) {
        std::string first = rest.substr(0, slash);
        if (first.find_first_of(".:") != std::string::npos || first == "localhost") {
            if (!std::regex_match(first, kDomain)) bad(s, "\"" + first + "\" is not a registry host[:port]");
            r.registry = first;
            rest = rest.substr(slash + 1);
        }
    }
    if (r.registry.empty() || r.registry == "index.docker.io" || r.registry == "registry-1.docker.io") r.registry = "docker.io";
    if (rest.empty()) bad(s, "no repository name");
    for (std::size_t b = 0;;) {
        auto e = rest.find('/', b);
        std::string comp = rest.substr(b, e == std::string::npos ? std::string::npos : e - b);
        if (!std::regex_match(comp, kComponent))
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
