// `srlaunch build`: the steps of a Dockerfile, in order, over a stack of layers.
//
// The stack: the base image's flattened rootfs at the bottom, then one layer per step that
// changed files, each a diff directory in the layer store. A RUN step is a container whose root
// is an overlay of that stack with a fresh upper directory; COPY, ADD and WORKDIR write through
// the same kind of overlay mounted detached. Either way the upper directory is the step's layer
// (layer_store.hpp). Metadata steps (ENV, ARG, USER, CMD, ...) only change the image config.
//
// The cache: a step that changes files is keyed by everything its result depends on: the
// layers below it, the config it runs with (env, workdir, user), the build args in scope, its
// text and, for COPY/ADD, the content of what it copies. A hit reuses the layer; a miss runs
// the step and records the layer (or that it changed nothing) under the key, in
// <store>/cache/build/. Layers and cache entries outlive `rmi`.
//
// Reproducible: layer mtimes are clamped to SOURCE_DATE_EPOCH (default 0), tars are sorted
// with numeric owners, the config's dates are that epoch, and JSON keys are sorted, so the
// same Dockerfile and context (and the same results of RUN) give the same image digest.
#include "launcher/build.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <functional>

#include "fetch/digest.hpp"
#include "fetch/pull.hpp"
#include "images/dockerfile.hpp"
#include "images/layer_store.hpp"
#include "launcher/build_fs.hpp"
#include "launcher/build_run.hpp"
#include "launcher/error.hpp"
#include "launcher/image_commands.hpp"
#include "launcher/users.hpp"

namespace srl {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace df = dockerfile;

namespace {

constexpr const char* kLayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string rfc3339(std::int64_t t) {
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string short_id(const std::string& digest) { return digest.substr(7, 12); }

std::optional<std::string> env_value(const std::vector<std::string>& env, const std::string& key) {
    for (const auto& e : env)
        if (e.compare(0, key.size() + 1, key + "=") == 0) return e.substr(key.size() + 1);
    return std::nullopt;
}

void set_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
    for (auto& e : env)
        if (e.compare(0, key.size() + 1, key + "=") == 0) return void(e = key + "=" + value);
    env.push_back(key + "=" + value);
}

class Builder {
public:
    Builder(const BuildOptions& o, const StorePaths& p)
        : opts_(o), paths_(p), store_(p.images()), layers_(store_.layers_root()), cache_(p.root / "cache" / "build"),
          epoch_(source_date_epoch().value_or(0)) {}

    int run();

private:
    using Step = df::Instruction;
    std::string where(const Step& s) const { return file_name_ + ":" + std::to_string(s.line); }
    df::Lookup vars() const;
    void history(const std::string& created_by, bool empty);
    std::vector<fs::path> lowers() const;
    std::vector<std::string> run_env() const;

    void from(const Step& s);
    void metadata(const Step& s);
    void layer_step(const Step& s, const json& key_parts, const std::string& created_by,
                    const std::function<std::optional<StoredLayer>()>& make);
    void run_step(const Step& s);
    void copy_step(const Step& s);
    void workdir_step(const Step& s);
    Image commit();

    const BuildOptions& opts_;
    const StorePaths& paths_;
    ImageStore store_;
    LayerStore layers_;
    BuildCache cache_;
    std::int64_t epoch_;
    std::string file_name_;
    fs::path context_;
    Fd context_fd_;
    std::map<std::string, std::string> build_args_;  // --build-arg
    std::set<std::string> used_args_;
    std::map<std::string, std::optional<std::string>> global_args_;  // ARG before FROM
    std::map<std::string, std::string> args_;                        // ARG in scope, with a value

    bool have_from_ = false;
    std::string base_name_;  // as FROM says, expanded
    std::optional<Image> base_;  // none for scratch
    std::optional<LayerStore::Pending> scratch_;  // an empty bottom layer for FROM scratch
    std::vector<json> layer_descs_;  // manifest descriptors, base layers first
    std::vector<std::string> diff_ids_;
    std::vector<LayerRecord> records_;
    std::vector<StoredLayer> built_;  // this build's layers, bottom first
    json history_ = json::array();
    ImageConfig config_;
    bool cmd_from_base_ = false;
    json labels_ = json::object(), ports_ = json::object();
};

df::Lookup Builder::vars() const {
    return [this](const std::string& name) -> std::optional<std::string> {
        if (auto v = env_value(config_.env, name)) return v;  // ENV wins over ARG, as with Docker
        if (auto it = args_.find(name); it != args_.end()) return it->second;
        return std::nullopt;
    };
}

void Builder::history(const std::string& created_by, bool empty) {
    json h = {{"created", rfc3339(epoch_)}, {"created_by", created_by}};
    if (empty) h["empty_layer"] = true;
    history_.push_back(h);
}

std::vector<fs::path> Builder::lowers() const {
    std::vector<fs::path> out;
    for (auto it = built_.rbegin(); it != built_.rend(); ++it) out.push_back(it->diff());
    out.push_back(base_ ? base_->rootfs : scratch_->diff());
    return out;
}

void Builder::from(const Step& s) {
    if (have_from_) throw Error(where(s) + ": a second FROM: multi-stage builds are not supported");
    have_from_ = true;
    if (auto p = s.flag("platform"); p && *p != "linux/amd64")
        throw Error(where(s) + ": FROM --platform=" + *p + ": only linux/amd64 is built");
    std::map<std::string, std::string> globals;
    for (const auto& [k, v] : global_args_)
        if (v) globals[k] = *v;
    const auto words = df::expand_words(s.args, df::lookup_in(globals));
    if (words.size() == 3 && (words[1] == "AS" || words[1] == "as"))
        throw Error(where(s) + ": FROM ... AS " + words[2] + ": multi-stage builds are not supported");
    if (words.size() != 1) throw Error(where(s) + ": FROM takes one image");
    base_name_ = words[0];
    if (base_name_ == "scratch") {
        scratch_.emplace(layers_.begin());
        config_.env = {kDefaultPath};
        return;
    }
    base_ = image_for_run(paths_, base_name_, opts_.pull, opts_.pull_policy);
    config_ = base_->config;
    cmd_from_base_ = !config_.cmd.empty();
    if (!env_value(config_.env, "PATH")) config_.env.insert(config_.env.begin(), kDefaultPath);
    // A base with layers of its own (built, loaded) lends them and its history; any other is
    // one layer, its flattened rootfs.
    const auto manifest = read_image_file(*base_, kOciManifestFile);
    const auto config = read_image_file(*base_, kOciConfigFile);
    if (manifest && config) {
        try {
            const json m = json::parse(*manifest), c = json::parse(*config);
            for (const auto& d : m.at("layers")) records_.push_back(layers_.get(d.at("digest")).record());
            layer_descs_ = m.at("layers").get<std::vector<json>>();
            diff_ids_ = c.at("rootfs").at("diff_ids").get<std::vector<std::string>>();
            history_ = c.value("history", json::array());
            const json& rc = c.value("config", json::object());
            labels_ = rc.value("Labels", json::object());
            ports_ = rc.value("ExposedPorts", json::object());
            if (labels_.is_null()) labels_ = json::object();
            if (ports_.is_null()) ports_ = json::object();
            return;
        } catch (const std::exception&) {
            records_.clear();  // layers gone from the store, or metadata not understood: flattened
            layer_descs_.clear();
            diff_ids_.clear();
            history_ = json::array();
        }
    }
    const StoredLayer l = image_rootfs_layer(layers_, *base_, source_date_epoch());
    records_.push_back(l.record());
    layer_descs_.push_back({{"mediaType", kLayerMediaType}, {"digest", l.digest}, {"size", l.size}});
    diff_ids_.push_back(l.diff_id);
    history_.push_back({{"created", rfc3339(epoch_)}, {"created_by", "FROM " + base_name_}, {"comment", "base image, flattened"}});
}

void Builder::metadata(const Step& s) {
    const std::string& k = s.keyword;
    const auto v = vars();
    if (k == "ENV") {
        for (const auto& [name, value] : df::name_values(s.args, v, where(s))) set_env(config_.env, name, value);
    } else if (k == "LABEL") {
        for (const auto& [name, value] : df::name_values(s.args, v, where(s))) labels_[name] = value;
    } else if (k == "EXPOSE") {
        for (std::string p : df::expand_words(s.args, v)) {
            if (p.find('/') == std::string::npos) p += "/tcp";
            const std::string port = p.substr(0, p.find('/')), proto = p.substr(p.find('/') + 1);
            if (port.empty() || port.find_first_not_of("0123456789-") != std::string::npos ||
                (proto != "tcp" && proto != "udp" && proto != "sctp"))
                throw Error(where(s) + ": EXPOSE " + p + ": expected PORT[/tcp|udp|sctp]");
            ports_[p] = json::object();
        }
    } else if (k == "USER") {
        config_.user = df::expand(s.args, v);
        if (config_.user.empty()) throw Error(where(s) + ": USER needs a user");
    } else if (k == "CMD" || k == "ENTRYPOINT") {
        std::vector<std::string> cmd = s.exec ? *s.exec : std::vector<std::string>{"/bin/sh", "-c", s.args};
        if (k == "CMD") {
            config_.cmd = std::move(cmd);
            cmd_from_base_ = false;
        } else {
            config_.entrypoint = std::move(cmd);
            if (cmd_from_base_) config_.cmd.clear();  // as Docker: a new ENTRYPOINT drops an inherited CMD
        }
    } else if (k == "ARG") {
        for (const auto& [name, dflt] : df::arg_declarations(s.args, v, where(s))) {
            std::optional<std::string> value = dflt;
            if (auto it = build_args_.find(name); it != build_args_.end()) {
                value = it->second;
                used_args_.insert(name);
            } else if (!value) {
                if (auto g = global_args_.find(name); g != global_args_.end()) value = g->second;
            }
            if (value) args_[name] = *value;
        }
    }
    history(s.text(), true);
}

void Builder::layer_step(const Step& s, const json& key_parts, const std::string& created_by,
                         const std::function<std::optional<StoredLayer>()>& make) {
    json parents = json::array();
    for (const auto& r : records_) parents.push_back(r.digest);
    const json key_json = {{"v", 1},         {"parents", parents},           {"step", s.text()},
                           {"env", config_.env}, {"workdir", config_.workdir}, {"user", config_.user},
                           {"args", args_},   {"epoch", epoch_},              {"more", key_parts}};
    const std::string key = sha256_digest(key_json.dump()).substr(7);
    std::optional<StoredLayer> layer;
    bool cached = false;
    if (!opts_.no_cache) {
        if (auto hit = cache_.lookup(key)) {
            if (!*hit) {
                cached = true;
            } else if (auto l = layers_.find(**hit); l && fs::is_directory(l->diff())) {
                layer = l;
                cached = true;
            }
        }
    }
    if (!cached) {
        layer = make();
        cache_.store(key, layer ? std::optional<std::string>(layer->digest) : std::nullopt);
    }
    std::printf("--> %s%s\n", cached ? "Using cache " : "", layer ? short_id(layer->digest).c_str() : "(no changes)");
    history(created_by, !layer);
    if (!layer) return;
    if (built_.size() >= 100) throw Error(where(s) + ": more than 100 layers");
    built_.push_back(*layer);
    records_.push_back(layer->record());
    layer_descs_.push_back({{"mediaType", kLayerMediaType}, {"digest", layer->digest}, {"size", layer->size}});
    diff_ids_.push_back(layer->diff_id);
}

void Builder::run_step(const Step& s) {
    RunStep r;
    r.args = s.exec ? *s.exec : std::vector<std::string>{"/bin/sh", "-c", s.args};
    r.image = base_ ? base_->ref.str() : "";
    r.lowers = lowers();
    r.env = run_env();
    r.cwd = config_.workdir.empty() ? "/" : config_.workdir;
    r.user = config_.user;
    r.network = opts_.network;
    // As Docker's history shows it: the build args the step saw, then the command.
    std::string created_by = "RUN ";
    if (!args_.empty()) {
        created_by += "|" + std::to_string(args_.size());
        for (const auto& [k, v] : args_) created_by += " " + k + "=" + v;
        created_by += " ";
    }
    created_by += s.exec ? json(*s.exec).dump() : "/bin/sh -c " + s.args;
    layer_step(s, json::object(), created_by, [&] {
        std::fflush(stdout);
        try {
            return run_in_container(r, paths_, layers_, epoch_);
        } catch (const RunFailed& f) {
            throw RunFailed{f.status, where(s) + ": " + s.text() + ": " + f.what()};
        }
    });
}

std::vector<std::string> Builder::run_env() const {
    std::vector<std::string> env = config_.env;
    for (const auto& [k, v] : args_)
        if (!env_value(env, k)) env.push_back(k + "=" + v);
    return env;
}

void Builder::copy_step(const Step& s) {
    const bool add = s.keyword == "ADD";
    if (s.flag("from")) throw Error(where(s) + ": COPY --from: multi-stage builds are not supported");
    const auto v = vars();
    std::vector<std::string> words;
    if (s.exec) for (const auto& w : *s.exec) words.push_back(df::expand(w, v));
    else words = df::expand_words(s.args, v);
    if (words.size() < 2) throw Error(where(s) + ": " + s.keyword + " needs a source and a destination");
    std::string dest = words.back();
    words.pop_back();
    for (const auto& w : words)
        if (w.find("://") != std::string::npos)
            throw Error(where(s) + ": ADD " + w + ": URLs are not supported (builds are offline; use COPY, or RUN with --network host)");
    // Relative destinations are relative to WORKDIR; a trailing '/' means "into this directory".
    if (!dest.starts_with('/')) dest = (config_.workdir.empty() ? std::string("/") : config_.workdir + "/") + dest;
    build::CopyOptions copy;
    copy.dest = dest;
    copy.extract_archives = add;
    if (auto m = s.flag("chmod")) {
        char* end = nullptr;
        const long mode = std::strtol(m->c_str(), &end, 8);
        if (m->empty() || *end || mode < 0 || mode > 07777) throw Error(where(s) + ": --chmod=" + *m + ": expected an octal mode");
        copy.chmod = static_cast<mode_t>(mode);
    }
    const std::optional<std::string> chown = s.flag("chown") ? std::optional(df::expand(*s.flag("chown"), v)) : std::nullopt;
    std::vector<build::Source> sources;
    try {
        sources = build::resolve_sources(context_fd_.get(), context_, words, s.keyword);
    } catch (const Error& e) {
        throw Error(where(s) + ": " + e.what());
    }
    const json key = {{"content", build::hash_sources(sources)}, {"dest", dest}, {"chown", chown ? json(*chown) : json()}};
    layer_step(s, key, s.text(), [&]() -> std::optional<StoredLayer> {
        LayerStore::Pending pending = layers_.begin();
        {
            Fd root = build::mount_layers(lowers(), pending.diff(), pending.work());
            if (chown) {
                // Names are looked up in the image as it is at this step; a number alone is
                // also the group, as Docker's --chown has it.
                try {
                    const ResolvedUser u = resolve_user("/proc/self/fd/" + std::to_string(root.get()), *chown);
                    const bool numeric = chown->find_first_not_of("0123456789") == std::string::npos;
                    copy.owner = {u.uid, numeric ? u.uid : u.gid};
                } catch (const Error& e) {
                    throw Error(where(s) + ": --chown=" + *chown + ": " + e.what());
                }
            }
            try {
                build::copy_sources(root.get(), sources, copy);
            } catch (const Error& e) {
                throw Error(where(s) + ": " + s.keyword + ": " + e.what());
            }
        }  // unmounted here, before the upper directory is read
        return layers_.commit_diff(std::move(pending), epoch_);
    });
}

void Builder::workdir_step(const Step& s) {
    std::string dir = df::expand(s.args, vars());
    if (!dir.starts_with('/')) dir = (config_.workdir.empty() ? std::string("/") : config_.workdir + "/") + dir;
    dir = fs::path(dir).lexically_normal().string();
    if (dir.size() > 1 && dir.ends_with('/')) dir.pop_back();
    config_.workdir = dir;
    // The directory is made (root's, 0755) when the image does not have it: then it is a layer.
    layer_step(s, json::object(), s.text(), [&]() -> std::optional<StoredLayer> {
        LayerStore::Pending pending = layers_.begin();
        {
            Fd root = build::mount_layers(lowers(), pending.diff(), pending.work());
            build::open_dir_in_image(root.get(), dir, true);
        }
        return layers_.commit_diff(std::move(pending), epoch_);
    });
}

Image Builder::commit() {
    if (layer_descs_.empty()) throw Error("the image has no layers: FROM scratch needs a COPY, ADD or RUN that adds files");
    json rc = json::object();
    if (!config_.env.empty()) rc["Env"] = config_.env;
    if (!config_.cmd.empty()) rc["Cmd"] = config_.cmd;
    if (!config_.entrypoint.empty()) rc["Entrypoint"] = config_.entrypoint;
    if (!config_.workdir.empty()) rc["WorkingDir"] = config_.workdir;
    if (!config_.user.empty()) rc["User"] = config_.user;
    if (!labels_.empty()) rc["Labels"] = labels_;
    if (!ports_.empty()) rc["ExposedPorts"] = ports_;
    const std::string config = json{{"architecture", "amd64"}, {"os", "linux"}, {"created", rfc3339(epoch_)}, {"config", rc},
                                    {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids_}}}, {"history", history_}}.dump();
    const std::string config_digest = sha256_digest(config);
    const std::string manifest =
        json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
             {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config_digest}, {"size", config.size()}}},
             {"layers", layer_descs_}}.dump();
    const std::string digest = sha256_digest(manifest);
    const ImageRef ref = ImageRef::parse(opts_.tag);
    // Built before, to the digest: nothing to store (this is what makes a cached rebuild cheap).
    if (auto old = store_.find(ref); old && old->digest == digest && read_image_file(*old, kOciManifestFile) == manifest)
        return *old;
    Fd lock = store_.lock_reference(ref);
    ImageStore::Staging staging = store_.stage(ref);
    // The flattened tree `run` uses: the base's files hard-linked (images never change a file in
    // place), then each layer's blob applied, so what runs is exactly what `save` writes.
    if (base_) {
        Fd base(check(::open(base_->rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "cannot open " + base_->rootfs.string()));
        link_tree(base.get(), staging.rootfs_fd(), base_->rootfs.string());
    }
    for (const auto& l : built_) apply_stored_layer(l, staging.rootfs_fd());
    staging.write_file(kOciManifestFile, manifest);
    staging.write_file(kOciConfigFile, config);
    Image meta;
    meta.ref = ref;
    meta.config = config_;
    meta.digest = digest;
    meta.layers = records_;
    meta.source = "build:" + context_.string();
    meta.size_bytes = tree_size(staging.rootfs_fd());
    return staging.commit(meta);
}

int Builder::run() {
    if (::geteuid() != 0)
        throw Error("build needs root: its steps run in containers over overlay mounts of the layer store");
    const ImageRef ref = ImageRef::parse(opts_.tag);  // a bad tag fails before any work
    std::error_code ec;
    context_ = fs::canonical(opts_.context, ec);
    if (ec || !fs::is_directory(context_)) throw Error("build context " + opts_.context + " is not a directory");
    context_fd_ = Fd(check(::open(context_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "cannot open " + context_.string()));
    fs::path file = opts_.file;
    if (file.empty()) file = fs::exists(context_ / "Dockerfile") || !fs::exists(context_ / "Containerfile") ? context_ / "Dockerfile" : context_ / "Containerfile";
    file_name_ = opts_.file.empty() ? file.filename().string() : opts_.file;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot read " + file.string(), errno);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    for (const auto& a : opts_.build_args) {
        const auto eq = a.find('=');
        if (eq == 0) throw Error("--build-arg " + a + ": expected KEY=VALUE or KEY");
        if (eq != std::string::npos) build_args_[a.substr(0, eq)] = a.substr(eq + 1);
        else if (const char* v = std::getenv(a.c_str())) build_args_[a] = v;
    }
    const std::vector<Step> steps = df::parse(text, file_name_);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const Step& s = steps[i];
        std::printf("STEP %zu/%zu: %s\n", i + 1, steps.size(), s.text().c_str());
        try {
            if (!have_from_ && s.keyword == "ARG") {
                for (auto [name, value] : df::arg_declarations(s.args, df::lookup_in({}), where(s))) {
                    if (auto it = build_args_.find(name); it != build_args_.end()) {
                        value = it->second;
                        used_args_.insert(name);
                    }
                    global_args_[name] = value;
                }
            } else if (!have_from_ && s.keyword != "FROM") {
                throw Error(where(s) + ": " + s.keyword + " before FROM (only ARG may come first)");
            } else if (s.keyword == "FROM") {
                from(s);
            } else if (s.keyword == "RUN") {
                run_step(s);
            } else if (s.keyword == "COPY" || s.keyword == "ADD") {
                copy_step(s);
            } else if (s.keyword == "WORKDIR") {
                workdir_step(s);
            } else {
                metadata(s);
            }
        } catch (const Error& e) {
            // Messages from word processing and user lookups do not know their line yet.
            const std::string msg = e.what();
            if (msg.starts_with(file_name_ + ":")) throw;
            throw Error(where(s) + ": " + msg);
        }
    }
    for (const auto& [name, value] : build_args_)
        if (!used_args_.contains(name)) std::fprintf(stderr, "srlaunch: warning: --build-arg %s was not used by any ARG\n", name.c_str());
    std::printf("COMMIT %s\n", ref.str().c_str());
    std::fflush(stdout);
    const Image img = commit();
    std::printf("--> %s\nSuccessfully tagged %s\n%s\n", short_id(img.digest).c_str(), img.ref.str().c_str(), img.digest.c_str());
    return 0;
}

}  // namespace

int build_image(const BuildOptions& opts, const StorePaths& paths) {
    Builder b(opts, paths);
    try {
        return b.run();
    } catch (const RunFailed& f) {
        std::fflush(stdout);
        std::fprintf(stderr, "srlaunch: %s; nothing was tagged\n", f.what());
        return f.status;
    }
}

}  // namespace srl
