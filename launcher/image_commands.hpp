// The image commands of the command line (pull, import, images, rmi, save, load, and through
// BuildCommands build and history) and the image lookup
// of `run`, which pulls what is missing, as `docker run` does.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fetch/pull.hpp"
#include "launcher/build_command.hpp"
#include "launcher/container.hpp"

namespace srl {

// --mirror, --registry-mirror, --tls-verify: where images come from; for pull and run.
void add_source_options(CLI::App* cmd, PullOptions& opts);

class ImageCommands {
public:
    explicit ImageCommands(CLI::App& app);
    // Runs the image command that was parsed, if any; returns its exit status.
    std::optional<int> dispatch(const StorePaths& paths);

private:
    CLI::App *pull_, *import_, *images_, *rmi_, *save_, *load_;
    PullOptions pull_opts_;
    std::string pull_ref_, import_source_, import_target_;
    std::vector<std::string> rmi_refs_;
    std::string save_image_, save_output_, save_format_ = "oci", load_input_, load_name_;
    BuildCommands build_;
};

// The image `run` starts from: from the store, pulled first when missing ("missing", the
// default), always ("always"), or never ("never": missing is an error).
Image image_for_run(const StorePaths& paths, const std::string& reference, const PullOptions& opts,
                    const std::string& policy);

}  // namespace srl
