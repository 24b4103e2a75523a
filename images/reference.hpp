// A local image reference, NAME[:TAG]. The grammar is Docker's (minus registry hosts and
// digests, which belong to fetch/), and it is also what keeps store paths safe: a valid
// name or tag can never be "..", start with '.', or contain anything but [A-Za-z0-9._/-].
#pragma once

#include <compare>
#include <string>
#include <string_view>

namespace srl {

struct ImageRef {
    std::string name;
    std::string tag = "latest";

    // "alpine", "alpine:3.20", "lab/os:1". Throws srl::Error with a one-line reason.
    static ImageRef parse(std::string_view s);
    std::string str() const;  // "name:tag"

    auto operator<=>(const ImageRef&) const = default;
};

}  // namespace srl
