// A build's RUN step: a container over the layers so far, whose writable layer becomes the
// step's layer. Same isolation as `run` (namespaces, srinit as PID 1, default capabilities,
// Docker's seccomp profile and device list, masked /proc paths), no network unless the build
// was given --network host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "images/layer_store.hpp"
#include "launcher/container.hpp"

namespace srl {

struct RunStep {
    std::vector<std::string> args;  // the command, shell form already as /bin/sh -c
    std::vector<std::string> env;   // the image's env and the build args in scope
    std::string image;              // the base image's name (recorded in the container's config)
    std::vector<std::filesystem::path> lowers;  // the layers, top-most first, the base rootfs last
    std::string cwd = "/", user;
    std::string network = "none";   // none or host
};

// The step's command exited with a status other than 0 (which is `status`).
class RunFailed : public std::runtime_error {
public:
    RunFailed(int s, const std::string& what) : std::runtime_error(what), status(s) {}
    int status;
};

// Runs the step and returns its layer (nullopt when it changed no file). The container's
// directory is gone afterwards, whatever happens.
std::optional<StoredLayer> run_in_container(const RunStep& step, const StorePaths& paths, LayerStore& layers,
                                            std::int64_t epoch);

}  // namespace srl
