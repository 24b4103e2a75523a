// `srlaunch save`: the OCI layout around an image's layers. An image with layers of its own in
// the layer store (built, or loaded from an OCI archive) is written as those layers with its
// stored manifest and config, byte for byte; a flattened one (pulled, imported) as one
// reproducible layer made from its rootfs.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "fetch/digest.hpp"
#include "images/archive.hpp"
#include "images/extract.hpp"
#include "images/layer_store.hpp"
#include "images/oci_archive.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

void write_all(int fd, const void* data, std::size_t n, const std::string& what) {
    for (auto* p = static_cast<const char*>(data); n > 0;) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw_errno("cannot write " + what);
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// The output file, written unnamed (O_TMPFILE) in FILE's directory and linked in as FILE only
// once complete: a save that fails, or is killed even with SIGKILL, leaves nothing behind, as
// an unnamed file goes with its last fd. On a file system without O_TMPFILE it is a named
// FILE.tmp-PID instead, removed on error (but left by a SIGKILL).
class TempOutput {
public:
    explicit TempOutput(const fs::path& out) : out_(out) {
        const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
        dir_ = Fd(check(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "cannot create " + out.string()));
        int fd = ::openat(dir_.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
        // EISDIR: a kernel that predates O_TMPFILE sees only its O_DIRECTORY bit.
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) fd = named_temp();
        fd_ = Fd(check(fd, "cannot create " + out.string()));
    }
    ~TempOutput() {
        if (!tmp_name_.empty()) ::unlinkat(dir_.get(), tmp_name_.c_str(), 0);
    }
    int fd() const { return fd_.get(); }
    void commit() {
        check(::fsync(fd_.get()), "cannot sync " + out_.string());
        const std::string name = out_.filename().string();
        if (tmp_name_.empty()) link_into_place(name);
        else check(::renameat(dir_.get(), tmp_name_.c_str(), dir_.get(), name.c_str()), "cannot rename " + tmp_name_ + " to " + out_.string());
        tmp_name_.clear();
        fd_.reset();
    }

private:
    int named_temp() {
        const std::string base = out_.filename().string() + ".tmp-" + std::to_string(::getpid());
        for (int i = 0;; ++i) {
            std::string name = i ? base + "-" + std::to_string(i) : base;
            const int fd = ::openat(dir_.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd >= 0) tmp_name_ = std::move(name);
            if (fd >= 0 || errno != EEXIST || i == 100) return fd;
        }
    }
    // linkat() makes a name for an unnamed file, but never replaces one: an existing FILE is
    // replaced by linking to a fresh name beside it and renaming that over FILE (a SIGKILL
    // between the two, a few microseconds, would leave the fresh name).
    void link_into_place(const std::string& name) {
        if (link_as(name) == 0) return;
        if (errno != EEXIST) throw_errno("cannot create " + out_.string());
        const std::string tmp = name + ".tmp-" + std::to_string(::getpid());
        ::unlinkat(dir_.get(), tmp.c_str(), 0);
        check(link_as(tmp), "cannot create " + out_.string());
        if (::renameat(dir_.get(), tmp.c_str(), dir_.get(), name.c_str()) < 0) {
            const int err = errno;
            ::unlinkat(dir_.get(), tmp.c_str(), 0);
            throw Error("cannot replace " + out_.string(), err);
        }
    }
    // linkat(AT_EMPTY_PATH) may need CAP_DAC_READ_SEARCH (kernels differ); linking the
    // /proc/self/fd/N magic link works for anyone who could open the file.
    int link_as(const std::string& name) {
        if (::linkat(fd_.get(), "", dir_.get(), name.c_str(), AT_EMPTY_PATH) == 0) return 0;
        if (errno != ENOENT && errno != EPERM) return -1;
        const std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
        return ::linkat(AT_FDCWD, self.c_str(), dir_.get(), name.c_str(), AT_SYMLINK_FOLLOW);
    }

    fs::path out_;
    Fd dir_;
    std::string tmp_name_;  // the named fallback's, until it is renamed into place
    Fd fd_;
};

// The OCI layout's tar: a few small files and one big blob, all with fixed owners and times.
class LayoutTar {
public:
    explicit LayoutTar(int fd) : fd_(fd), epoch_(source_date_epoch().value_or(0)) {
        archive* a = tar_.get();
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_open2(a, this, nullptr, &LayoutTar::write, nullptr, nullptr) != ARCHIVE_OK)
            throw Error("cannot start tar: " + message(a));
    }
    void dir(const std::string& path) { header(path, AE_IFDIR | 0755, 0); }
    void file(const std::string& path, const std::string& data) {
        header(path, AE_IFREG | 0644, data.size());
        data_(data.data(), data.size());
    }
    // Returns the sha256 of what was copied.
    std::string file_from(const std::string& path, int src_fd, std::uint64_t size) {
        header(path, AE_IFREG | 0644, size);
        check(::lseek(src_fd, 0, SEEK_SET), "cannot rewind the layer");
        Digester sha;
        static thread_local char buf[256 * 1024];
        for (std::uint64_t left = size; left > 0;) {
            ssize_t r = ::read(src_fd, buf, std::min<std::uint64_t>(left, sizeof buf));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) throw Error("cannot read back the layer");
            data_(buf, static_cast<size_t>(r));
            sha.update(buf, static_cast<size_t>(r));
            left -= static_cast<std::uint64_t>(r);
        }
        return sha.digest();
    }
    void finish() {
        if (archive_write_close(tar_.get()) != ARCHIVE_OK) throw Error("cannot finish tar: " + message(tar_.get()));
    }

private:
    static la_ssize_t write(archive* a, void* self, const void* buf, size_t n) {
        try {
            write_all(static_cast<LayoutTar*>(self)->fd_, buf, n, "the archive");
        } catch (const Error& e) {
            archive_set_error(a, e.code() ? e.code() : EIO, "%s", e.what());
            return -1;
        }
        return static_cast<la_ssize_t>(n);
    }
    void header(const std::string& path, int mode, std::uint64_t size) {
        ArchiveEntry e(archive_entry_new());
        archive_entry_set_pathname(e.get(), path.c_str());
        archive_entry_set_mode(e.get(), static_cast<mode_t>(mode));
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
        archive_entry_set_mtime(e.get(), epoch_, 0);
        if (archive_write_header(tar_.get(), e.get()) != ARCHIVE_OK) throw Error("cannot add " + path + ": " + message(tar_.get()));
    }
    void data_(const void* p, size_t n) {
        if (archive_write_data(tar_.get(), p, n) < 0) throw Error("cannot write the archive: " + message(tar_.get()));
    }
    int fd_;
    std::int64_t epoch_;
    ArchiveWriter tar_{archive_write_new()};
};

json descriptor(const std::string& media_type, const std::string& digest, std::uint64_t size) {
    return {{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

json string_array(const std::vector<std::string>& v) { return v.empty() ? json(nullptr) : json(v); }

// A blob of the layout: JSON in memory, or a layer in a file (checked against its digest as it
// is copied, so a damaged layer store cannot produce an archive that lies).
struct Blob {
    std::string data;
    Fd file;
    std::uint64_t size = 0;
    std::string digest;
};

void write_layout(int out_fd, const ImageRef& ref, const std::string& manifest, std::map<std::string, Blob> blobs) {
    const std::string manifest_digest = sha256_digest(manifest);
    json m = descriptor("application/vnd.oci.image.manifest.v1+json", manifest_digest, manifest.size());
    m["annotations"] = {{"org.opencontainers.image.ref.name", ref.tag}, {"io.containerd.image.name", ref.str()}};
    const std::string index =
        json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array({m})}}.dump();
    blobs[manifest_digest.substr(7)] = Blob{manifest, {}, manifest.size(), manifest_digest};
    // Sorted by path (the map's order), like the layers' own entries.
    LayoutTar tar(out_fd);
    tar.dir("blobs/");
    tar.dir("blobs/sha256/");
    for (const auto& [hex, blob] : blobs) {
        if (!blob.file) {
            tar.file("blobs/sha256/" + hex, blob.data);
            continue;
        }
        const std::string got = tar.file_from("blobs/sha256/" + hex, blob.file.get(), blob.size);
        if (got != blob.digest) throw Error("layer " + blob.digest + " in the layer store is damaged (its content has digest " + got + ")");
    }
    tar.file("index.json", index);
    tar.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    tar.finish();
}

// The stored manifest and config of an image with layers, and its layers from the store.
void write_layered(int out_fd, const Image& img, const std::string& manifest, const std::string& config, const LayerStore& layers) {
    const std::string what = "image " + img.ref.str();
    if (sha256_digest(manifest) != img.digest) throw Error(what + ": its stored manifest does not match its digest " + img.digest);
    const json m = json::parse(manifest, nullptr, false);
    if (!m.is_object() || !m.contains("config") || !m.contains("layers") || !m["layers"].is_array())
        throw Error(what + ": its stored manifest is not an image manifest");
    const std::string config_digest = m["config"].value("digest", "");
    if (sha256_digest(config) != config_digest) throw Error(what + ": its stored config does not match its manifest");
    std::map<std::string, Blob> blobs;
    blobs[config_digest.substr(7)] = Blob{config, {}, config.size(), config_digest};
    for (const auto& desc : m["layers"]) {
        const StoredLayer l = layers.get(desc.value("digest", ""));
        if (l.size != desc.value("size", std::uint64_t{0})) throw Error(what + ": layer " + l.digest + " in the layer store has the wrong size");
        Fd fd(check(::open(l.blob().c_str(), O_RDONLY | O_CLOEXEC), "cannot open " + l.blob().string()));
        blobs[l.digest.substr(7)] = Blob{{}, std::move(fd), l.size, l.digest};
    }
    write_layout(out_fd, img.ref, manifest, std::move(blobs));
}

}  // namespace

TarDigests write_rootfs_tar_gz(int root_fd, int out_fd) {
    return write_tree_tar_gz(root_fd, out_fd, {.overlay_diff = false, .epoch = source_date_epoch()});
}

void save_image(const Image& img, const fs::path& out, SaveFormat format, const LayerStore& layers) {
    const auto stored_manifest = read_image_file(img, kOciManifestFile);
    const auto stored_config = read_image_file(img, kOciConfigFile);
    if (format == SaveFormat::oci && stored_manifest && stored_config) {
        TempOutput output(out);
        write_layered(output.fd(), img, *stored_manifest, *stored_config, layers);
        return output.commit();
    }
    Fd root(check(::open(img.rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "cannot open " + img.rootfs.string()));
    TempOutput output(out);
    if (format == SaveFormat::rootfs) {
        write_rootfs_tar_gz(root.get(), output.fd());
        return output.commit();
    }
    // The layer's name in the layout is its digest, known only once it is written: it goes
    // to an unnamed file in the output's directory first.
    const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
    Fd layer(check(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), "cannot create a temporary file in " + dir.string()));
    const TarDigests l = write_rootfs_tar_gz(root.get(), layer.get());

    const ImageConfig& c = img.config;
    json run_config = {{"Cmd", string_array(c.cmd)}, {"Entrypoint", string_array(c.entrypoint)},
                       {"Env", string_array(c.env)}, {"WorkingDir", c.workdir}, {"User", c.user}};
    const std::string config = json{{"architecture", "amd64"}, {"os", "linux"}, {"config", run_config},
                                    {"rootfs", {{"type", "layers"}, {"diff_ids", json::array({l.diff_id})}}}}.dump();
    const std::string config_digest = sha256_digest(config);
    const std::string manifest =
        json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
             {"config", descriptor("application/vnd.oci.image.config.v1+json", config_digest, config.size())},
             {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l.digest, l.size)})}}.dump();
    std::map<std::string, Blob> blobs;
    blobs[config_digest.substr(7)] = Blob{config, {}, config.size(), config_digest};
    blobs[l.digest.substr(7)] = Blob{{}, std::move(layer), l.size, l.digest};
    write_layout(output.fd(), img.ref, manifest, std::move(blobs));
    output.commit();
}

}  // namespace srl
