// `srlaunch build`: an image from a Dockerfile (or Containerfile) subset, one layer per step that
// changes files, each RUN in a real container (srinit as PID 1, the same isolation as `run`),
// COPY/ADD/WORKDIR through an overlay of the layers so far, steps reused from a cache, and the
// result reproducible to the digest. See build.cpp for the steps, build_fs.hpp for COPY and ADD,
// images/layer_store.hpp for where layers live.
#pragma once

#include <string>
#include <vector>

#include "fetch/pull.hpp"
#include "launcher/container.hpp"

namespace srl {

struct BuildOptions {
    std::string tag;      // NAME[:TAG]
    std::string file;     // -f; empty: CONTEXT/Dockerfile, else CONTEXT/Containerfile
    std::string context;  // CONTEXT_DIR
    std::vector<std::string> build_args;  // KEY=VALUE, or KEY for the caller's own value
    std::string network = "none";         // RUN steps' network: none or host
    bool no_cache = false;
    std::string pull_policy = "missing";  // for FROM, as `run --pull`
    PullOptions pull;
};

// Builds the image and tags it. Returns 0, or the exit status of a RUN step that failed (after
// one line on stderr saying which). Any other failure throws srl::Error (exit 125). Either way a
// failed build tags nothing and leaves no container, mount or temporary directory behind; the
// layers of the steps that succeeded stay in the cache.
int build_image(const BuildOptions& opts, const StorePaths& paths);

}  // namespace srl
