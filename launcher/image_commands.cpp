#include "launcher/image_commands.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "images/layer_store.hpp"
#include "images/oci_archive.hpp"
#include "launcher/error.hpp"
#include "launcher/units.hpp"

namespace srl {
namespace fs = std::filesystem;

namespace {

std::string format_time(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&tt));
    return buf;
}

// Images that a kept (stopped) container still uses cannot be removed.
bool image_in_use(const StorePaths& paths, const ImageRef& ref) {
    if (!fs::exists(paths.containers())) return false;
    for (const auto& c : fs::directory_iterator(paths.containers())) {
        std::ifstream in(c.path() / "config.json");
        if (!in) continue;
        auto j = nlohmann::json::parse(in, nullptr, false);
        if (!j.is_discarded() && j.value("image", "") == ref.str()) return true;
    }
    return false;
}

std::string short_digest(const std::string& d) { return d.empty() ? "-" : d.substr(0, std::min<std::size_t>(d.size(), 19)); }

// The LAYERS column: each layer's size as stored and saved (compressed), bottom first.
std::string layer_sizes(const Image& img) {
    std::string out;
    for (const auto& l : img.layers) out += (out.empty() ? "" : " ") + human_size(l.size);
    return out.empty() ? "-" : out;
}

}  // namespace

void add_source_options(CLI::App* cmd, PullOptions& o) {
    const char* g = "Image sources";
    cmd->add_option("--mirror", o.alpine_mirror, "Alpine mirror for alpine[:TAG] (env SRLAUNCH_ALPINE_MIRROR; default https://dl-cdn.alpinelinux.org)")->group(g);
    cmd->add_option("--registry-mirror", o.registry_mirror, "registry that serves docker.io images instead of Docker Hub (env SRLAUNCH_REGISTRY_MIRROR)")->group(g);
    cmd->add_option("--tls-verify", o.tls_verify, "verify registries' TLS certificates (default true)")->group(g);
}

ImageCommands::ImageCommands(CLI::App& app) : build_(app) {
    pull_ = app.add_subcommand("pull", "pull an image from the Alpine mirror or an OCI registry");
    pull_->add_option("REFERENCE", pull_ref_, "alpine[:latest|edge|X.Y], or [REGISTRY/]NAME[:TAG|@sha256:DIGEST]")->required();
    pull_->add_flag("-q,--quiet", pull_opts_.quiet, "print only the image name");
    add_source_options(pull_, pull_opts_);

    import_ = app.add_subcommand("import", "make an image from a rootfs tarball or directory");
    import_->add_option("SOURCE", import_source_, "tarball (gzip, xz, zstd, bzip2 or plain) or directory")->required();
    import_->add_option("NAME", import_target_, "NAME[:TAG]")->required();

    images_ = app.add_subcommand("images", "list images");
    rmi_ = app.add_subcommand("rmi", "remove images no container uses");
    rmi_->add_option("IMAGE", rmi_refs_, "NAME[:TAG]")->required();

    save_ = app.add_subcommand("save", "write an image to a file: an OCI image layout archive, or a rootfs tarball");
    save_->add_option("IMAGE", save_image_, "NAME[:TAG]")->required();
    save_->add_option("-o,--output", save_output_, "the file to write (FILE.tar)")->required();
    save_->add_option("--format", save_format_, "oci (default): OCI image layout as a tar; rootfs: the flattened rootfs as a tar.gz")
        ->check(CLI::IsMember({"oci", "rootfs"}));
    load_ = app.add_subcommand("load", "store an image from an OCI layout archive or a docker save archive");
    load_->add_option("-i,--input", load_input_, "the archive to read")->required();
    load_->add_option("NAME", load_name_, "NAME[:TAG], for an archive that names no image");
}

std::optional<int> ImageCommands::dispatch(const StorePaths& paths) {
    ImageStore store(paths.images());
    if (*pull_) {
        Image img = pull_image(store, pull_ref_, pull_opts_);
        if (pull_opts_.quiet) std::printf("%s\n", img.ref.str().c_str());
        else std::printf("%s: %s\n", img.ref.str().c_str(), img.digest.c_str());
        return 0;
    }
    if (*import_) {
        Image img = store.import(import_source_, ImageRef::parse(import_target_));
        std::printf("%s\n", img.ref.str().c_str());
        return 0;
    }
    if (*images_) {
        const auto images = store.list();
        int width = 6;
        for (const auto& img : images) width = std::max(width, static_cast<int>(layer_sizes(img).size()));
        std::printf("%-30s %-16s %8s  %-19s  %-19s  %-*s  %s\n", "NAME", "TAG", "SIZE", "CREATED", "DIGEST", width, "LAYERS", "SOURCE");
        for (const auto& img : images)
            std::printf("%-30s %-16s %8s  %-19s  %-19s  %-*s  %s\n", img.ref.name.c_str(), img.ref.tag.c_str(),
                        human_size(img.size_bytes).c_str(), format_time(img.created).c_str(),
                        short_digest(img.digest).c_str(), width, layer_sizes(img).c_str(),
                        img.source.empty() ? "-" : img.source.c_str());
        return 0;
    }
    if (*rmi_) {
        for (const auto& r : rmi_refs_) {
            ImageRef ref = local_name(r);
            store.get(ref);
            if (image_in_use(paths, ref)) throw Error("image " + ref.str() + " is used by a container");
            store.remove(ref);
            std::printf("removed %s\n", ref.str().c_str());
        }
        return 0;
    }
    if (*save_) {
        Image img = store.get(local_name(save_image_));
        save_image(img, save_output_, save_format_ == "rootfs" ? SaveFormat::rootfs : SaveFormat::oci,
                   LayerStore(store.layers_root()));
        return 0;
    }
    if (*load_) {
        LayerStore layers(store.layers_root());
        Image img = load_image(store, load_input_, load_name_, layers);
        std::printf("Loaded image: %s\n", img.ref.str().c_str());
        return 0;
    }
    return build_.dispatch(paths);
}

Image image_for_run(const StorePaths& paths, const std::string& reference, const PullOptions& opts,
                    const std::string& policy) {
    if (policy != "missing" && policy != "always" && policy != "never")
        throw Error("--pull " + shown(policy) + ": use missing, always or never");
    ImageStore store(paths.images());
    const ImageRef local = local_name(reference);
    if (policy != "always")
        if (auto img = store.find(local)) return *img;
    if (policy == "never") throw Error("no such image: " + local.str() + " (and --pull never)");
    if (policy == "missing" && !opts.quiet) std::fprintf(stderr, "Unable to find image '%s' locally\n", local.str().c_str());
    return pull_image(store, reference, opts);
}

}  // namespace srl
