// The OCI distribution API, anonymously: challenge, bearer token, manifest (or index, then
// the linux/amd64 manifest), config, layers. Everything fetched is checked against the
// digest that named it before it is used or kept.
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "fetch/digest.hpp"
#include "fetch/layer_stream.hpp"
#include "fetch/oci_image.hpp"
#include "fetch/pull.hpp"
#include "fetch/remote_ref.hpp"

namespace srl {
namespace {
using nlohmann::json;

// Docker's limit: no legitimate manifest or config comes close; a huge one is an attack.
constexpr std::size_t kMaxManifest = 4 << 20;
constexpr std::size_t kMaxConfig = 8 << 20;

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

std::string url_encode(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."`
std::map<std::string, std::string> parse_challenge(const std::string& h, std::string& scheme) {
    std::map<std::string, std::string> params;
    std::size_t i = h.find(' ');
    scheme = h.substr(0, i);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (i != std::string::npos && i < h.size()) {
        while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
        const auto eq = h.find('=', i);
        if (eq == std::string::npos) break;
        std::string key = h.substr(i, eq - i);
        std::string value;
        i = eq + 1;
        if (i < h.size() && h[i] == '"') {
            for (++i; i < h.size() && h[i] != '"'; ++i) {
                if (h[i] == '\\' && i + 1 < h.size()) ++i;
                value += h[i];
            }
            ++i;
        } else {
            const auto end = h.find(',', i);
            value = h.substr(i, end == std::string::npos ? std::string::npos : end - i);
            i = end;
        }
        params[key] = value;
    }
    return params;
}

// The registry's own words for a failure ({"errors":[{"code","message"}]}), when it gave any.
std::string registry_errors(const std::string& body) {
    const json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.contains("errors") || !j["errors"].is_array()) return "";
    std::string out;
    for (const auto& e : j["errors"]) {
        if (!out.empty()) out += "; ";
        out += e.value("message", e.value("code", std::string("error")));
    }
    return out;
}

std::string endpoint_for(const RemoteRef& ref, const PullOptions& opts) {
    std::string host = ref.registry;
    if (ref.registry == "docker.io") {
        std::string mirror = opts.registry_mirror;
        if (mirror.empty())
            if (const char* env = std::getenv("SRLAUNCH_REGISTRY_MIRROR"); env && *env) mirror = env;
        if (mirror.empty()) return "https://registry-1.docker.io";
        while (mirror.ends_with('/')) mirror.pop_back();
        if (mirror.find("://") != std::string::npos) return mirror;
        host = mirror;
    }
    // Plain HTTP only to loopback, as Docker allows without an "insecure registry" setting.
    const std::string name = host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
    return (is_loopback_host(name) ? "http://" : "https://") + host;
}

class Registry {
public:
    Registry(const RemoteRef& ref, const PullOptions& opts, const HttpOptions& http)
        : ref_(ref), base_(endpoint_for(ref, opts) + "/v2/" + ref.repository), http_(http) {}

    HttpDocument manifest(const std::string& reference) {
        const std::string accept = std::string("Accept: ") + kOciIndex + ", " + kDockerList + ", " + kOciManifest + ", " + kDockerManifest;
        return authorised([&] { return http_get(http_, request("/manifests/" + reference, {accept}), kMaxManifest, "manifest"); });
    }

    HttpDocument blob(const std::string& digest, std::size_t max, const std::string& what) {
        return authorised([&] { return http_get(http_, request("/blobs/" + digest, {}), max, what); });
    }

    // Streams are opened after the manifest, so the token (if one is needed) is in hand.
    HttpRequest blob_request(const std::string& digest) { return request("/blobs/" + digest, {}); }
    const HttpOptions& http() const { return http_; }

private:
    HttpRequest request(const std::string& path, std::vector<std::string> headers) const {
        if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
        return {base_ + path, std::move(headers)};
    }

    template <class F>
    HttpDocument authorised(F&& get) {
        try {
            return get();
        } catch (const HttpStatusError& e) {
            if (e.status != 401 || !token_.empty()) throw explain(e);
            obtain_token(e);
            try {
                return get();
            } catch (const HttpStatusError& again) {
                if (again.status == 401 || again.status == 403)
                    throw Error("pull access denied for " + ref_.str() + ": the registry refused the token it issued (" +
                                (registry_errors(again.body).empty() ? again.what() : registry_errors(again.body)) + ")");
                throw explain(again);
            }
        }
    }

    // An anonymous bearer token for "repository:NAME:pull", from the challenge's realm.
    void obtain_token(const HttpStatusError& challenge) {
        std::string scheme;
        auto params = parse_challenge(challenge.header("www-authenticate"), scheme);
        if (scheme != "bearer" || params["realm"].empty())
            throw Error("registry " + ref_.registry + " asks for credentials (" +
                        (scheme.empty() ? "no challenge" : scheme) + "); srlaunch pulls anonymously only");
        std::string url = params["realm"] + (params["realm"].find('?') == std::string::npos ? "?" : "&");
        if (!params["service"].empty()) url += "service=" + url_encode(params["service"]) + "&";
        url += "scope=" + url_encode(params["scope"].empty() ? "repository:" + ref_.repository + ":pull" : params["scope"]);
        HttpDocument doc;
        try {
            doc = http_get(http_, {url, {}}, 1 << 20, "token");
        } catch (const HttpStatusError& e) {
            throw Error("cannot get a token for " + ref_.str() + " from " + params["realm"] + ": " + e.what());
        }
        const json j = json::parse(doc.body, nullptr, false);
        if (j.is_object() && j.contains("token") && j["token"].is_string()) token_ = j["token"];
        else if (j.is_object() && j.contains("access_token") && j["access_token"].is_string()) token_ = j["access_token"];
        if (token_.empty()) throw Error("the token service " + params["realm"] + " answered without a token");
    }

    Error explain(const HttpStatusError& e) const {
        std::string said = registry_errors(e.body);
        if (e.status == 404) return Error("not found: " + ref_.str() + (said.empty() ? "" : " (" + said + ")"));
        if (e.status == 401 || e.status == 403)
            return Error("pull access denied for " + ref_.str() + (said.empty() ? "" : " (" + said + ")"));
        return Error(std::string(e.what()) + (said.empty() ? "" : " (" + said + ")"));
    }

    RemoteRef ref_;
    std::string base_;
    HttpOptions http_;
    std::string token_;
};

std::string media_type(const json& j, const HttpDocument& doc) {
    if (j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"];
    std::string ct = doc.header("content-type");
    return ct.substr(0, ct.find(';'));
}

void verify_document(const std::string& body, const std::string& digest, const std::string& what) {
    if (const std::string got = sha256_digest(body); got != digest)
        throw Error(what + " has digest " + got + ", expected " + digest);
}

json parse_json(const std::string& body, const std::string& what) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(what + " is not a JSON object");
    return j;
}

bool is_attestation(const json& m) {
    if (m.contains("annotations") && m["annotations"].value("vnd.docker.reference.type", "") == "attestation-manifest") return true;
    const json p = m.value("platform", json::object());
    return p.value("os", "") == "unknown";
}

// From an index: the linux/amd64 image, or an error listing what there is.
std::string pick_amd64(const json& index, const std::string& what) {
    std::vector<std::string> seen;
    for (const auto& m : index.value("manifests", json::array())) {
        if (is_attestation(m)) continue;
        const json p = m.value("platform", json::object());
        const std::string os = p.value("os", ""), arch = p.value("architecture", "");
        if (os == "linux" && arch == "amd64") {
            const std::string d = m.value("digest", "");
            check_sha256_digest(d, what);
            return d;
        }
        seen.push_back(os + "/" + arch + (p.contains("variant") ? "/" + p.value("variant", "") : ""));
    }
    std::string list;
    for (const auto& s : seen) list += (list.empty() ? "" : ", ") + s;
    throw Error("no linux/amd64 image in " + what + (list.empty() ? "" : " (it has " + list + ")"));
}

Image pull_manifest_image(PullContext& ctx, const std::string& reference);

}  // namespace

Image pull_from_registry(PullContext& ctx, const std::string& reference) {
    try {
        return pull_manifest_image(ctx, reference);
    } catch (const json::exception& e) {
        throw Error("cannot pull " + reference + ": malformed JSON from the registry (" + e.what() + ")");
    }
}

namespace {

Image pull_manifest_image(PullContext& ctx, const std::string& reference) {
    const RemoteRef ref = RemoteRef::parse(reference);
    const ImageRef local = ref.local();
    Registry reg(ref, ctx.opts, ctx.http);
    const std::string name = ref.str();

    // 1. The manifest the reference names, and its digest (what the image is recorded as).
    HttpDocument top = reg.manifest(ref.reference());
    const std::string top_digest = sha256_digest(top.body);
    if (!ref.digest.empty() && top_digest != ref.digest)
        throw Error("manifest of " + name + " has digest " + top_digest + ", expected " + ref.digest);
    json manifest = parse_json(top.body, "manifest of " + name);
    std::string type = media_type(manifest, top);
    if (type == kOciIndex || type == kDockerList || (type.empty() && manifest.contains("manifests"))) {
        const std::string digest = pick_amd64(manifest, name);
        HttpDocument doc = reg.manifest(digest);
        verify_document(doc.body, digest, "linux/amd64 manifest of " + name);
        manifest = parse_json(doc.body, "linux/amd64 manifest of " + name);
        type = media_type(manifest, doc);
    }
    if (type != kOciManifest && type != kDockerManifest && !(type.empty() && manifest.contains("layers")))
        throw Error("manifest of " + name + " has media type \"" + type + "\", which srlaunch does not support");

    Fd lock = ctx.store.lock_reference(local);
    if (auto have = ctx.store.find(local); have && have->digest == top_digest) {
        ctx.progress.note(name + ": image is up to date (" + top_digest + ")");
        return *have;
    }
    ctx.progress.note(name + ": " + top_digest);

    // 2. The config: defaults for `run`, and the diff_ids the layers must unpack to.
    const json cfg_desc = manifest.value("config", json::object());
    const std::string cfg_digest = cfg_desc.value("digest", "");
    check_sha256_digest(cfg_digest, "the manifest of " + name);
    HttpDocument cfg_doc = reg.blob(cfg_digest, kMaxConfig, "image config");
    verify_document(cfg_doc.body, cfg_digest, "config of " + name);
    const json cfg = parse_json(cfg_doc.body, "config of " + name);
    if (cfg.value("os", "linux") != "linux" || cfg.value("architecture", "amd64") != "amd64")
        throw Error(name + " is an image for " + cfg.value("os", "") + "/" + cfg.value("architecture", "") + ", not linux/amd64");
    const json diff_ids = cfg.contains("rootfs") ? cfg["rootfs"].value("diff_ids", json::array()) : json::array();
    const json layers = manifest.value("layers", json::array());
    if (!layers.is_array() || !diff_ids.is_array() || layers.size() != diff_ids.size())
        throw Error("config of " + name + " lists " + std::to_string(diff_ids.size()) + " diff_ids for " +
                    std::to_string(layers.size()) + " layers");

    // 3. The layers, in order, each streamed straight into the staging tree.
    ImageStore::Staging staging = ctx.store.stage(local);
    Image meta;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const json& l = layers[i];
        const std::string digest = l.value("digest", "");
        const std::string what = "layer " + digest.substr(0, 19) + " of " + name;
        check_sha256_digest(digest, what);
        const std::string diff_id = diff_ids[i].is_string() ? diff_ids[i].get<std::string>() : "";
        check_sha256_digest(diff_id, "the config of " + name);
        std::optional<std::uint64_t> size;
        if (l.contains("size") && l["size"].is_number_unsigned()) size = l["size"].get<std::uint64_t>();
        LayerExpectation expect{what, layer_compression(l.value("mediaType", ""), what), digest, size, diff_id, false};

        HttpBody body(reg.http(), reg.blob_request(digest));
        const std::size_t bar = ctx.progress.start(digest.substr(7, 12), size);
        LayerResult got = apply_streamed_layer(body, staging.rootfs_fd(), expect,
                                               [&](std::uint64_t n) { ctx.progress.advance(bar, n, size); });
        ctx.progress.finish(bar, "verified");
        meta.layers.push_back({digest, got.size, {}, 0});
    }

    meta.ref = local;
    meta.config = runtime_config(cfg);
    meta.size_bytes = tree_size(staging.rootfs_fd());
    meta.source = name;
    meta.digest = top_digest;
    return staging.commit(meta);
}

}  // namespace
}  // namespace srl
