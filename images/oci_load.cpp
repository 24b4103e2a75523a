// `srlaunch load`: an OCI layout archive or a `docker save` archive into the store.
//
// A tar is a stream: its blobs can come in any order and cannot be looked up by name. So a
// first pass reads every entry once, hashing it and keeping the small ones (the JSON) in
// memory; then each layer is streamed from a fresh read of the archive, straight into the
// staging tree. Every blob is checked against its digest before anything is unpacked from it,
// and every layer's tar against its diff_id; the staging tree is discarded on any error.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "fetch/digest.hpp"
#include "fetch/oci_image.hpp"
#include "fetch/pull.hpp"
#include "images/archive.hpp"
#include "images/layer.hpp"
#include "images/layer_store.hpp"
#include "images/oci_archive.hpp"
#include "launcher/error.hpp"

namespace srl {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::uint64_t kSmall = 8 << 20;  // entries kept in memory: manifests and configs
constexpr std::size_t kChunk = 256 * 1024;

std::string message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

// "./blobs/sha256/x" and "blobs/sha256/x" are the same entry.
std::string normal_name(std::string n) {
    while (n.starts_with("./")) n.erase(0, 2);
    while (n.starts_with("/")) n.erase(0, 1);
    return n;
}

ArchiveReader open_archive(const fs::path& file) {
    ArchiveReader a(archive_read_new());
    archive_read_support_format_tar(a.get());
    archive_read_support_filter_all(a.get());  // `docker save | gzip` is common
    if (archive_read_open_filename(a.get(), file.c_str(), kChunk) != ARCHIVE_OK)
        throw Error("cannot read " + file.string() + " as a tar archive: " + message(a.get()));
    return a;
}

struct Entry {
    std::uint64_t size = 0;
    std::string digest;               // sha256 of the content
    std::optional<std::string> data;  // small entries only
};

class ArchiveIndex {
public:
    explicit ArchiveIndex(const fs::path& file) : file_(file) {
        ArchiveReader a = open_archive(file);
        std::unique_ptr<char[]> buf = std::make_unique<char[]>(kChunk);
        for (;;) {
            archive_entry* e;
            const int r = archive_read_next_header(a.get(), &e);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN) throw Error("cannot read " + file.string() + " as a tar archive: " + message(a.get()));
            if (archive_entry_filetype(e) != AE_IFREG) continue;
            Entry& entry = entries_[normal_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "")];
            entry = {};
            const bool keep = archive_entry_size(e) <= static_cast<la_int64_t>(kSmall);
            if (keep) entry.data.emplace();
            Digester sha;
            for (;;) {
                la_ssize_t n = archive_read_data(a.get(), buf.get(), kChunk);
                if (n == 0) break;
                if (n < 0) throw Error("cannot read " + file.string() + ": " + message(a.get()));
                sha.update(buf.get(), static_cast<std::size_t>(n));
                entry.size += static_cast<std::uint64_t>(n);
                if (keep) entry.data->append(buf.get(), static_cast<std::size_t>(n));
            }
            entry.digest = sha.digest();
        }
    }
    const fs::path& file() const { return file_; }
    const Entry* find(const std::string& name) const {
        auto it = entries_.find(name);
        return it == entries_.end() ? nullptr : &it->second;
    }
    const Entry& get(const std::string& name, const std::string& what) const {
        const Entry* e = find(name);
        if (!e) throw Error(file_.string() + ": " + what + " (" + name + ") is missing from the archive");
        return *e;
    }
    // An OCI blob, checked against its descriptor's digest and size.
    const Entry& blob(const json& desc, const std::string& what) const {
        const std::string digest = desc.is_object() ? desc.value("digest", "") : "";
        check_sha256_digest(digest, what);
        const Entry& e = get("blobs/sha256/" + digest.substr(7), what + " " + digest.substr(0, 19));
        if (e.digest != digest)
            throw Error(file_.string() + ": " + what + " has digest " + e.digest + ", expected " + digest + " (the archive is corrupted)");
        if (desc.contains("size") && desc["size"].is_number_unsigned() && desc["size"].get<std::uint64_t>() != e.size)
            throw Error(file_.string() + ": " + what + " " + digest.substr(0, 19) + " is " + std::to_string(e.size) + " bytes, expected " + desc["size"].dump());
        return e;
    }
    json parse(const Entry& e, const std::string& what) const {
        if (!e.data) throw Error(file_.string() + ": " + what + " is too large");
        json j = json::parse(*e.data, nullptr, false);
        if (j.is_discarded()) throw Error(file_.string() + ": " + what + " is not valid JSON");
        return j;
    }

private:
    fs::path file_;
    std::map<std::string, Entry> entries_;
};


struct LayerPlan {
    std::string entry;        // name in the archive
    std::optional<LayerCompression> compression;  // what the media type says; none given in docker save archives
    std::string diff_id;      // sha256 of the uncompressed tar
    LayerRecord record;
};

struct Plan {
    std::optional<ImageRef> ref;  // from the archive
    std::string digest;
    json config;
    std::vector<LayerPlan> layers;
    // OCI archives: the manifest and config as they are, kept with the image when every layer
    // is tar+gzip (then the layer blobs go to the layer store as they are too).
    std::string manifest_text, config_text;
};

std::vector<std::string> diff_ids_of(const json& config, std::size_t layers, const std::string& what) {
    const json& ids = config.contains("rootfs") && config["rootfs"].is_object() ? config["rootfs"].value("diff_ids", json::array()) : json::array();
    if (!ids.is_array() || ids.size() != layers)
        throw Error(what + " lists " + std::to_string(ids.is_array() ? ids.size() : 0) + " diff_ids for " + std::to_string(layers) + " layers");
    std::vector<std::string> out;
    for (const auto& d : ids) {
        const std::string s = d.is_string() ? d.get<std::string>() : "";
        check_sha256_digest(s, what);
        out.push_back(s);
    }
    return out;
}

Plan plan_oci(const ArchiveIndex& ix) {
    const std::string f = ix.file().string();
    const json index = ix.parse(ix.get("index.json", "index.json"), "index.json");
    const json& manifests = index.is_object() ? index.value("manifests", json::array()) : json::array();
    if (!manifests.is_array() || manifests.size() != 1)
        throw Error(f + ": index.json lists " + std::to_string(manifests.is_array() ? manifests.size() : 0) + " manifests; srlaunch loads archives of exactly one image");
    const json& desc = manifests[0];
    const std::string mt = desc.is_object() ? desc.value("mediaType", "") : "";
    if (mt != "application/vnd.oci.image.manifest.v1+json" && mt != "application/vnd.docker.distribution.manifest.v2+json")
        throw Error(f + ": index.json points to a \"" + mt + "\", not an image manifest (multi-platform archives are not supported)");
    Plan plan;
    if (desc.contains("annotations") && desc["annotations"].is_object()) {
        const json& a = desc["annotations"];
        const std::string full = a.value("io.containerd.image.name", "");
        const std::string ref_name = a.value("org.opencontainers.image.ref.name", "");
        if (!full.empty()) plan.ref = local_name(full);
        // ref.name is usually just a tag; a whole reference is taken as a name too.
        else if (ref_name.find_first_of("/:") != std::string::npos) plan.ref = local_name(ref_name);
    }
    const Entry& m = ix.blob(desc, "the manifest");
    plan.digest = m.digest;
    const json manifest = ix.parse(m, "the manifest");
    if (!manifest.is_object()) throw Error(f + ": the manifest is not a JSON object");
    const Entry& c = ix.blob(manifest.value("config", json::object()), "the image config");
    plan.config = ix.parse(c, "the image config");
    plan.manifest_text = *m.data;
    plan.config_text = *c.data;
    const json& layers = manifest.value("layers", json::array());
    if (!layers.is_array() || layers.empty()) throw Error(f + ": the manifest lists no layers");
    const auto diff_ids = diff_ids_of(plan.config, layers.size(), f + ": the image config");
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const std::string what = "layer " + std::to_string(i + 1);
        const Entry& e = ix.blob(layers[i], what);
        plan.layers.push_back({"blobs/sha256/" + e.digest.substr(7), layer_compression(layers[i].value("mediaType", ""), f + ": " + what),
                               diff_ids[i], {e.digest, e.size, {}, 0}});
    }
    return plan;
}

// A name that is a sha256 ("<hex>.json", "blobs/sha256/<hex>", "<hex>/layer.tar") must match.
void check_named_digest(const ArchiveIndex& ix, const std::string& name, const Entry& e, const std::string& what) {
    static const std::regex named(R"((?:^|/)([0-9a-f]{64})(?:\.json)?$)");
    std::smatch m;
    if (std::regex_search(name, m, named) && name.find("/layer.tar") == std::string::npos && e.digest != "sha256:" + m[1].str())
        throw Error(ix.file().string() + ": " + what + " " + name + " has digest " + e.digest + " (the archive is corrupted)");
}

Plan plan_docker(const ArchiveIndex& ix) {
    const std::string f = ix.file().string();
    const json manifest = ix.parse(ix.get("manifest.json", "manifest.json"), "manifest.json");
    if (!manifest.is_array() || manifest.size() != 1)
        throw Error(f + ": manifest.json must list exactly one image");
    const json& img = manifest[0];
    if (!img.is_object()) throw Error(f + ": manifest.json must list exactly one image");
    Plan plan;
    if (img.contains("RepoTags") && img["RepoTags"].is_array() && !img["RepoTags"].empty() && img["RepoTags"][0].is_string())
        plan.ref = local_name(img["RepoTags"][0].get<std::string>());
    const std::string config_name = normal_name(img.value("Config", ""));
    const Entry& c = ix.get(config_name, "the image config");
    check_named_digest(ix, config_name, c, "the image config");
    plan.config = ix.parse(c, "the image config");
    plan.digest = c.digest;  // docker's image ID
    const json& layers = img.value("Layers", json::array());
    if (!layers.is_array() || layers.empty()) throw Error(f + ": manifest.json lists no layers");
    const auto diff_ids = diff_ids_of(plan.config, layers.size(), f + ": the image config");
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const std::string name = normal_name(layers[i].is_string() ? layers[i].get<std::string>() : "");
        const std::string what = "layer " + std::to_string(i + 1);
        const Entry& e = ix.get(name, what);
        check_named_digest(ix, name, e, what);
        plan.layers.push_back({name, std::nullopt, diff_ids[i], {e.digest, e.size, {}, 0}});
    }
    return plan;
}

// Callback chain, all pulled by the tar reader: archive entry -> (sha256) -> decompression ->
// (sha256 = diff_id) -> tar. A failing callback returns -1 with the error set on its reader.
// The decompressor above reports that as its own error ("truncated gzip input"), so a failure to
// keep the blob (a full disk) is also remembered here, to be the error the load reports.
struct EntrySource {
    archive* outer;
    int copy_fd = -1;  // where the blob's bytes are kept as they pass, if anywhere
    std::string copy_shown;
    std::optional<Error> copy_failed;
    Digester sha{Digester::Algorithm::sha256};
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kChunk);
    static la_ssize_t read(archive* a, void* self, const void** out) {
        auto* s = static_cast<EntrySource*>(self);
        la_ssize_t n = archive_read_data(s->outer, s->buf.get(), kChunk);
        if (n < 0) {
            archive_set_error(a, EIO, "%s", message(s->outer).c_str());
            return -1;
        }
        for (la_ssize_t done = 0; s->copy_fd >= 0 && done < n;) {
            const ssize_t w = ::write(s->copy_fd, s->buf.get() + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                s->copy_failed.emplace("cannot write " + s->copy_shown, errno);
                archive_set_error(a, errno, "%s", s->copy_failed->what());
                return -1;
            }
            done += w;
        }
        s->sha.update(s->buf.get(), static_cast<std::size_t>(n));
        *out = s->buf.get();
        return n;
    }
};
struct Decompressed {
    archive* raw;
    Digester sha{Digester::Algorithm::sha256};
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kChunk);
    static la_ssize_t read(archive* a, void* self, const void** out) {
        auto* s = static_cast<Decompressed*>(self);
        la_ssize_t n = archive_read_data(s->raw, s->buf.get(), kChunk);
        if (n < 0) {
            archive_set_error(a, EIO, "%s", message(s->raw).c_str());
            return -1;
        }
        s->sha.update(s->buf.get(), static_cast<std::size_t>(n));
        *out = s->buf.get();
        return n;
    }
};

// Moves `outer` to the layer's entry.
void seek_entry(archive* outer, const fs::path& file, const LayerPlan& l, const std::string& what) {
    archive_entry* e = nullptr;
    for (;;) {
        const int r = archive_read_next_header(outer, &e);
        if (r == ARCHIVE_EOF) throw Error(file.string() + ": " + what + " disappeared from the archive");
        if (r < ARCHIVE_WARN) throw Error("cannot read " + file.string() + ": " + message(outer));
        if (archive_entry_filetype(e) == AE_IFREG && normal_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "") == l.entry) return;
    }
}

struct Unpacked {
    std::uint64_t regular_bytes;
    std::string diff_id;  // the uncompressed tar's digest
};

// Decompresses the blob `source` yields and applies it to root_fd.
Unpacked unpack_blob(EntrySource& source, const fs::path& file, const LayerPlan& l, const std::string& what, int root_fd) {
    ArchiveReader raw(archive_read_new());
    if (l.compression.value_or(LayerCompression::gzip) == LayerCompression::gzip) archive_read_support_filter_gzip(raw.get());
    if (!l.compression || l.compression == LayerCompression::zstd) archive_read_support_filter_zstd(raw.get());
    archive_read_support_format_raw(raw.get());
    archive_entry* re;
    if (archive_read_open2(raw.get(), &source, nullptr, &EntrySource::read, nullptr, nullptr) != ARCHIVE_OK ||
        archive_read_next_header(raw.get(), &re) != ARCHIVE_OK)
        throw Error(file.string() + ": cannot read " + what + ": " + message(raw.get()));
    if (l.compression && l.compression != LayerCompression::none && archive_filter_count(raw.get()) < 2)
        throw Error(file.string() + ": " + what + " is not compressed as its media type says");
    Decompressed tar_bytes{raw.get()};
    ArchiveReader tar(archive_read_new());
    archive_read_support_format_tar(tar.get());
    if (archive_read_open2(tar.get(), &tar_bytes, nullptr, &Decompressed::read, nullptr, nullptr) != ARCHIVE_OK)
        throw Error(file.string() + ": cannot read " + what + ": " + message(tar.get()));
    const UnpackStats stats = apply_layer(tar.get(), root_fd);
    // The padding after the tar's end blocks counts for the diff_id, and so does the rest of
    // the blob for its digest: both streams are read to their ends.
    const void* ignored;
    while (Decompressed::read(tar.get(), &tar_bytes, &ignored) > 0) {}
    while (EntrySource::read(raw.get(), &source, &ignored) > 0) {}
    return {stats.regular_bytes, tar_bytes.sha.digest()};
}

// Returns the regular file bytes the layer wrote. With copy_fd >= 0 the blob is copied there too
// (to copy_shown).
std::uint64_t apply_planned_layer(const fs::path& file, const LayerPlan& l, const std::string& what, int root_fd, int copy_fd,
                                  const std::string& copy_shown) {
    ArchiveReader outer = open_archive(file);
    seek_entry(outer.get(), file, l, what);
    EntrySource source{outer.get(), copy_fd, copy_shown, {}};
    Unpacked unpacked;
    try {
        unpacked = unpack_blob(source, file, l, what, root_fd);
    } catch (const Error&) {
        // Writing the copy failed first; what came after is the decompressor's account of it.
        if (source.copy_failed) throw *source.copy_failed;
        throw;
    }
    if (source.copy_failed) throw *source.copy_failed;  // in the reads to the end, which stop quietly
    if (const std::string d = source.sha.digest(); d != l.record.digest)
        throw Error(file.string() + ": " + what + " changed while it was being loaded (" + d + ")");
    if (unpacked.diff_id != l.diff_id)
        throw Error(file.string() + ": " + what + ": uncompressed digest is " + unpacked.diff_id + ", the image config says " + l.diff_id);
    return unpacked.regular_bytes;
}

}  // namespace

Image load_image(ImageStore& store, const fs::path& file, const std::string& name, LayerStore& layers) {
    if (!fs::exists(file)) throw Error("cannot load " + file.string(), ENOENT);
    if (!fs::is_regular_file(file)) throw Error("cannot load " + file.string() + ": not a file");
    const ArchiveIndex ix(file);
    Plan plan;
    if (ix.find("index.json")) plan = plan_oci(ix);
    else if (ix.find("manifest.json")) plan = plan_docker(ix);
    else throw Error(file.string() + " is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)");
    if (!plan.ref && name.empty()) throw Error(file.string() + " names no image: give NAME[:TAG]");
    const ImageRef ref = plan.ref ? *plan.ref : ImageRef::parse(name);

    const bool keep_layers = !plan.manifest_text.empty() &&
                             std::all_of(plan.layers.begin(), plan.layers.end(),
                                         [](const LayerPlan& l) { return l.compression == LayerCompression::gzip; });

    Fd lock = store.lock_reference(ref);
    ImageStore::Staging staging = store.stage(ref);
    Image meta;
    // Kept layers are placed in the layer store only once every one of them has been verified.
    std::vector<std::pair<LayerStore::Pending, TarDigests>> kept;
    for (std::size_t i = 0; i < plan.layers.size(); ++i) {
        const LayerPlan& l = plan.layers[i];
        std::optional<LayerStore::Pending> pending;
        Fd copy;
        if (keep_layers) {
            pending.emplace(layers.begin());
            copy = Fd(check(::open(pending->blob().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644),
                            "cannot create " + pending->blob().string()));
        }
        const std::uint64_t bytes = apply_planned_layer(file, l, "layer " + std::to_string(i + 1), staging.rootfs_fd(), copy.get(),
                                                        pending ? pending->blob().string() : "");
        meta.layers.push_back(l.record);
        if (keep_layers) {
            meta.layers.back().diff_id = l.diff_id;
            meta.layers.back().content_bytes = bytes;
            kept.emplace_back(std::move(*pending), TarDigests{l.record.digest, l.record.size, l.diff_id, bytes, 0});
        }
    }
    for (auto& [pending, digests] : kept) layers.add_blob(std::move(pending), digests);
    if (keep_layers) {
        staging.write_file(kOciManifestFile, plan.manifest_text);
        staging.write_file(kOciConfigFile, plan.config_text);
    }
    meta.ref = ref;
    meta.config = runtime_config(plan.config);
    meta.size_bytes = tree_size(staging.rootfs_fd());
    meta.source = "load:" + fs::absolute(file).string();
    meta.digest = plan.digest;
    return staging.commit(meta);
}

}  // namespace srl
