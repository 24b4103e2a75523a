// `srlaunch pull`: from a reference to a verified image in the local store.
#pragma once

#include <string>

#include "fetch/http.hpp"
#include "fetch/progress.hpp"
#include "images/store.hpp"

namespace srl {

struct PullOptions {
    std::string alpine_mirror;    // base URL; empty: $SRLAUNCH_ALPINE_MIRROR or dl-cdn.alpinelinux.org
    std::string registry_mirror;  // replaces Docker Hub; empty: $SRLAUNCH_REGISTRY_MIRROR or none
    bool tls_verify = true;
    bool quiet = false;
};

// The local store name a reference is pulled to (and looked up under by `run`).
ImageRef local_name(const std::string& reference);

// Pulls (or finds up to date) and stores the image; concurrent pulls of one reference are
// serialised and the second finds the first's result. Throws srl::Error naming the reference.
Image pull_image(ImageStore& store, const std::string& reference, const PullOptions& opts);

// --- used by pull_image, one per kind of source ---
struct PullContext {
    ImageStore& store;
    const PullOptions& opts;
    HttpOptions http;
    Progress& progress;
};
Image pull_from_alpine_mirror(PullContext& ctx, const std::string& reference);
Image pull_from_registry(PullContext& ctx, const std::string& reference);

// Sum of regular file sizes in a tree, each inode once; what `images` shows as SIZE.
std::uint64_t tree_size(int root_fd);

}  // namespace srl
