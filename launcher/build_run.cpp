#include "launcher/build_run.hpp"

#include <cstdio>

#include "launcher/build_fs.hpp"
#include "launcher/capabilities.hpp"
#include "launcher/devices.hpp"
#include "launcher/error.hpp"
#include "launcher/seccomp.hpp"
#include "launcher/users.hpp"

namespace srl {
namespace fs = std::filesystem;

namespace {

void set_env(std::vector<std::string>& env, const std::string& entry) {
    const std::string key = entry.substr(0, entry.find('='));
    for (auto& e : env)
        if (e.substr(0, e.find('=')) == key) return void(e = entry);
    env.push_back(entry);
}

// The container's directory, removed when the step is over, whether it ran or failed.
struct ContainerLeftover {
    fs::path dir;
    ~ContainerLeftover() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

}  // namespace

std::optional<StoredLayer> run_in_container(const RunStep& r, const StorePaths& paths, LayerStore& layers,
                                            std::int64_t epoch) {
    if (r.network != "none" && r.network != "host") throw Error("--network " + r.network + ": use none or host");
    ContainerSpec spec;
    spec.id = new_container_id();
    spec.image = r.image;
    spec.image_rootfs = r.lowers.back();
    spec.extra_lowers.assign(r.lowers.begin(), r.lowers.end() - 1);
    spec.diff_upper = true;
    spec.hostname = spec.id.substr(0, 12);
    spec.net = r.network == "host" ? NetMode::Host : NetMode::None;

    // USER is looked up in the image as it is at this step (a RUN before may have added it).
    ResolvedUser who;
    if (r.lowers.size() == 1) {
        who = resolve_user(r.lowers[0], r.user);
    } else {
        Fd view = build::mount_layers(r.lowers);
        who = resolve_user("/proc/self/fd/" + std::to_string(view.get()), r.user);
    }
    spec.process.args = r.args;
    spec.process.uid = who.uid;
    spec.process.gid = who.gid;
    spec.process.additional_gids = who.additional_gids;
    spec.process.cwd = r.cwd;
    spec.process.env = {"HOSTNAME=" + spec.hostname, "HOME=" + who.home};
    for (const auto& e : r.env) set_env(spec.process.env, e);

    // The defaults of `run` without flags.
    spec.process.capabilities = resolve_capabilities({}, {});
    spec.resources.device_rules = device_rules({}, false);
    spec.masked_paths = default_masked_paths();
    spec.readonly_paths = default_readonly_paths();
    spec.seccomp_bpf = compile_seccomp_cached(default_seccomp_profile(), spec.process.capabilities,
                                              paths.root / "cache" / "seccomp");
    spec.remove_on_exit = false;  // its upper directory is the layer: taken below, then removed

    LayerStore::Pending pending = layers.begin();
    const ContainerLeftover leftover{paths.containers() / spec.id};
    const int status = run_container(spec, paths);
    if (status != 0) throw RunFailed(status, "the command exited with status " + std::to_string(status));
    // The empty diff/ is replaced by the container's upper directory (same file system).
    const fs::path upper = leftover.dir / "upper";
    check(::rename(upper.c_str(), pending.diff().c_str()), "cannot move " + upper.string() + " into the layer store");
    build::remove_mount_stubs(pending.diff(), r.lowers);
    return layers.commit_diff(std::move(pending), epoch);
}

}  // namespace srl
