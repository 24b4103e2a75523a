// The command line of `build` and `history` (registered by ImageCommands, beside the other
// image commands).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "launcher/build.hpp"

namespace srl {

class BuildCommands {
public:
    explicit BuildCommands(CLI::App& app);
    // Runs `build` or `history` if one was parsed; returns its exit status.
    std::optional<int> dispatch(const StorePaths& paths);

private:
    CLI::App *build_, *history_;
    BuildOptions opts_;
    std::string history_image_;
    bool no_trunc_ = false;
};

}  // namespace srl
