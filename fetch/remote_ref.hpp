// A reference to an image somewhere else: [REGISTRY/]NAME[:TAG|@sha256:DIGEST], with Docker's
// defaults (docker.io, "library/" for one-word names, tag "latest") and Docker's grammar.
#pragma once

#include <string>
#include <string_view>

#include "images/reference.hpp"

namespace srl {

struct RemoteRef {
    std::string registry;    // "docker.io", "127.0.0.1:5000", "ghcr.io"
    std::string repository;  // "library/debian", "lab/plain"
    std::string tag;         // empty when pulled by digest
    std::string digest;      // "sha256:<hex>" or empty

    // Throws srl::Error("invalid reference format: ...").
    static RemoteRef parse(std::string_view s);

    // "docker.io/library/debian:bookworm", "127.0.0.1:5000/lab/plain@sha256:..."
    std::string str() const;
    // The tag or the digest, as the registry API wants it in /v2/NAME/manifests/<reference>.
    const std::string& reference() const { return digest.empty() ? tag : digest; }
    // The name in the local store, as Docker shows it: "debian:bookworm", "user/app:1",
    // "127.0.0.1:5000/lab/plain:1"; by digest the tag is "sha256-<hex>".
    ImageRef local() const;
};

// Bare "alpine" and "alpine:TAG" are pulled from the Alpine mirror, not from a registry
// (an explicit "docker.io/library/alpine" still goes to Docker Hub).
bool is_alpine_mirror_ref(std::string_view s);

}  // namespace srl
