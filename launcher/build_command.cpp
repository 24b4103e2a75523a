#include "launcher/build_command.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "fetch/pull.hpp"
#include "images/store.hpp"
#include "launcher/error.hpp"
#include "launcher/image_commands.hpp"
#include "launcher/units.hpp"

namespace srl {
using json = nlohmann::json;

namespace {

struct Row {
    std::string layer, size, created_by;
};

// One row per step, newest first, as `docker history`: the config's history, its non-empty
// entries matched to the layers in order.
std::vector<Row> history_rows(const Image& img) {
    const auto config_text = read_image_file(img, kOciConfigFile);
    std::vector<Row> rows;
    if (!config_text) {
        // Pulled or imported: the store keeps the tree, not how it was made.
        rows.push_back({img.layers.size() == 1 ? img.layers[0].digest.substr(7, 12) : "-", human_size(img.size_bytes),
                        (img.digest.empty() ? "import " : "pull ") + img.source});
        return rows;
    }
    const json config = json::parse(*config_text, nullptr, false);
    if (!config.is_object()) throw Error("image " + img.ref.str() + ": its stored config is not JSON");
    std::size_t layer = 0;
    for (const json& h : config.value("history", json::array())) {
        const bool empty = h.value("empty_layer", false);
        Row r{"-", "0B", h.value("created_by", "")};
        if (const std::string c = h.value("comment", ""); !c.empty()) r.created_by += "  # " + c;
        if (!empty && layer < img.layers.size()) {
            const LayerRecord& l = img.layers[layer++];
            r.layer = l.digest.substr(7, 12);
            r.size = human_size(l.content_bytes);
        }
        rows.push_back(std::move(r));
    }
    std::reverse(rows.begin(), rows.end());
    return rows;
}

}  // namespace

BuildCommands::BuildCommands(CLI::App& app) {
    build_ = app.add_subcommand("build", "build an image from a Dockerfile (or Containerfile) and a context directory");
    build_->add_option("-t,--tag", opts_.tag, "NAME[:TAG] of the image")->required();
    build_->add_option("-f,--file", opts_.file, "the Dockerfile (default: CONTEXT_DIR/Dockerfile, else CONTEXT_DIR/Containerfile)");
    build_->add_option("--build-arg", opts_.build_args, "KEY=VALUE for an ARG (KEY alone: the caller's own value)")
        ->allow_extra_args(false);
    build_->add_option("--network", opts_.network, "network of RUN steps: none (default) or host")
        ->check(CLI::IsMember({"none", "host"}));
    build_->add_flag("--no-cache", opts_.no_cache, "run every step, using no cached layer");
    build_->add_option("--pull", opts_.pull_policy, "pull the FROM image: missing (default), always or never")
        ->check(CLI::IsMember({"missing", "always", "never"}))
        ->group("Image sources");
    add_source_options(build_, opts_.pull);
    build_->add_option("CONTEXT_DIR", opts_.context, "the directory COPY and ADD read from")->required();

    history_ = app.add_subcommand("history", "list the steps that made an image, newest first");
    history_->add_option("IMAGE", history_image_, "NAME[:TAG]")->required();
    history_->add_flag("--no-trunc", no_trunc_, "do not shorten the CREATED BY column");
}

std::optional<int> BuildCommands::dispatch(const StorePaths& paths) {
    if (*build_) return build_image(opts_, paths);
    if (*history_) {
        const Image img = ImageStore(paths.images()).get(local_name(history_image_));
        std::printf("%-14s %9s  %s\n", "LAYER", "SIZE", "CREATED BY");
        for (auto& r : history_rows(img)) {
            if (!no_trunc_ && r.created_by.size() > 70) r.created_by = r.created_by.substr(0, 67) + "...";
            std::printf("%-14s %9s  %s\n", r.layer.c_str(), r.size.c_str(), r.created_by.c_str());
        }
        return 0;
    }
    return std::nullopt;
}

}  // namespace srl
