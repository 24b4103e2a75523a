// Alpine's own distribution of its minirootfs, which is what "alpine" means to srlaunch:
// <mirror>/alpine/<branch>/releases/x86_64/latest-releases.yaml lists the current release of
// each flavour with its file name, size, sha256 and sha512.
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <ctime>
#include <future>

#include "fetch/digest.hpp"
#include "fetch/layer_stream.hpp"
#include "fetch/pull.hpp"

namespace srl {
namespace {

constexpr const char* kDefaultMirror = "https://dl-cdn.alpinelinux.org";
constexpr const char* kArch = "x86_64";

struct Release {
    std::string version, file, sha256, sha512;
    std::uint64_t size = 0;
};

// "latest" follows latest-stable; "3.20" is the v3.20 branch; "3.20.3" must be that
// branch's current release (the mirror keeps only the latest one in its index).
std::string branch_for(const std::string& tag, const std::string& reference) {
    if (tag == "latest") return "latest-stable";
    if (tag == "edge") return "edge";
    int major = 0, minor = 0, patch = 0, used = 0;
    if (std::sscanf(tag.c_str(), "%d.%d%n", &major, &minor, &used) == 2 &&
        (static_cast<std::size_t>(used) == tag.size() ||
         (std::sscanf(tag.c_str(), "%d.%d.%d%n", &major, &minor, &patch, &used) == 3 &&
          static_cast<std::size_t>(used) == tag.size())))
        return "v" + std::to_string(major) + "." + std::to_string(minor);
    throw Error("cannot pull " + reference + ": Alpine tags are latest, edge, X.Y or X.Y.Z");
}

std::string mirror_base(const PullOptions& opts) {
    std::string m = opts.alpine_mirror;
    if (m.empty())
        if (const char* env = std::getenv("SRLAUNCH_ALPINE_MIRROR"); env && *env) m = env;
    if (m.empty()) m = kDefaultMirror;
    while (m.ends_with('/')) m.pop_back();
    return m;
}

Release parse_index(const std::string& yaml, const std::string& url) {
    YAML::Node doc;
    try {
        doc = YAML::Load(yaml);
    } catch (const YAML::Exception& e) {
        throw Error("cannot parse " + url + ": " + e.what());
    }
    if (!doc.IsSequence()) throw Error("cannot parse " + url + ": not a list of releases");
    try {
        for (const auto& entry : doc) {
            if (!entry.IsMap() || !entry["flavor"] || entry["flavor"].as<std::string>() != "alpine-minirootfs") continue;
            if (entry["arch"] && entry["arch"].as<std::string>() != kArch) continue;
            Release r{entry["version"].as<std::string>(), entry["file"].as<std::string>(),
                      entry["sha256"].as<std::string>(), entry["sha512"].as<std::string>(),
                      entry["size"].as<std::uint64_t>()};
            // The file name becomes part of a URL and nothing else, but it must stay in this directory.
            if (r.file.empty() || r.file.find('/') != std::string::npos || r.file.starts_with('.'))
                throw Error("cannot use " + url + ": bad file name \"" + r.file + "\"");
            return r;
        }
    } catch (const YAML::Exception& e) {
        throw Error("cannot parse " + url + ": the alpine-minirootfs entry lacks a field (" + e.what() + ")");
    }
    throw Error(url + " lists no alpine-minirootfs for " + kArch);
}

}  // namespace

Image pull_from_alpine_mirror(PullContext& ctx, const std::string& reference) {
    const ImageRef local = ImageRef::parse(reference);
    const std::string dir = mirror_base(ctx.opts) + "/alpine/" + branch_for(local.tag, reference) + "/releases/" + kArch + "/";
    const std::string index_url = dir + "latest-releases.yaml";

    const Release rel = parse_index(http_get(ctx.http, {index_url, {}}, 1 << 20, "latest-releases.yaml").body, index_url);
    if (local.tag.find('.') != local.tag.rfind('.') && rel.version != local.tag)
        throw Error("cannot pull " + reference + ": the mirror's current release of that branch is " + rel.version);
    const std::string file_url = dir + rel.file;
    const std::string digest = "sha256:" + rel.sha256;

    Fd lock = ctx.store.lock_reference(local);
    if (auto have = ctx.store.find(local); have && have->digest == digest) {
        ctx.progress.note(reference + ": image is up to date (Alpine " + rel.version + ")");
        return *have;
    }
    ctx.progress.note(reference + ": Alpine " + rel.version + " from " + file_url);

    // The .sha256 file beside the tarball is a second, independent statement of the sum. It
    // is fetched while the tarball streams (a round trip saved) and checked before the commit.
    auto sums = std::async(std::launch::async, [&] {
        return http_get(ctx.http, {file_url + ".sha256", {}}, 64 * 1024, rel.file + ".sha256").body;
    });
    ImageStore::Staging staging = ctx.store.stage(local);
    HttpBody body(ctx.http, {file_url, {}});
    const std::size_t bar = ctx.progress.start(rel.file, rel.size);
    LayerExpectation expect{rel.file + " from " + dir, LayerCompression::gzip, digest, rel.size, "", true};
    LayerResult got = apply_streamed_layer(body, staging.rootfs_fd(), expect,
                                           [&](std::uint64_t n) { ctx.progress.advance(bar, n, rel.size); });
    if (got.sha512_hex != rel.sha512)
        throw Error(expect.what + ": sha512 is " + got.sha512_hex + ", latest-releases.yaml says " + rel.sha512);
    const std::string sum_file = sums.get();
    if (sum_file.substr(0, sum_file.find_first_of(" \t\n")) != rel.sha256)
        throw Error("cannot pull " + reference + ": " + rel.file + ".sha256 does not match latest-releases.yaml");
    ctx.progress.finish(bar, "verified");

    Image meta;
    meta.ref = local;
    meta.size_bytes = got.unpacked.regular_bytes;  // one layer: nothing was overwritten
    meta.config.cmd = {"/bin/sh"};
    meta.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    meta.source = file_url;
    meta.digest = digest;
    meta.layers = {{digest, got.size, {}, 0}};
    return staging.commit(meta);
}

}  // namespace srl
