// A local image reference, [HOST[:PORT]/]NAME[:TAG]. The grammar is Docker's (minus digests,
// which belong to fetch/), and it is also what keeps store paths safe: a valid name or tag can
// never be "..", start with '.', or contain anything but [A-Za-z0-9._/-] and the ':' of one
// leading registry host:port component.
//
// Names are stored the way Docker shows them: docker.io's own prefixes are dropped
// ("docker.io/library/debian" is "debian", "docker.io/user/repo" is "user/repo"), other
// registries keep their host ("localhost:5000/foo/bar"). So a name alone says where an image
// comes from: a first component that is a host names the registry, anything else is Docker Hub.
#pragma once

#include <compare>
#include <string>
#include <string_view>

namespace srl {

struct ImageRef {
    std::string name;
    std::string tag = "latest";

    // "alpine", "alpine:3.20", "lab/os:1", "127.0.0.1:5000/lab/os:1". Throws srl::Error with a
    // one-line reason.
    static ImageRef parse(std::string_view s);
    std::string str() const;  // "name:tag"

    // The registry host[:port] the name starts with, or "" for a Docker Hub name.
    std::string registry_host() const;

    auto operator<=>(const ImageRef&) const = default;
};

}  // namespace srl
