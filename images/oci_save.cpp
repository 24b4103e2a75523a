// `srlaunch save`: the reproducible rootfs tar and the OCI layout around it.
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

// SOURCE_DATE_EPOCH (reproducible-builds.org): no timestamp in the output is later than it.
std::optional<std::int64_t> source_date_epoch() {
    const char* s = std::getenv("SOURCE_DATE_EPOCH");
    if (!s || !*s) return std::nullopt;
    char* end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (*end || v < 0) throw Error(std::string("SOURCE_DATE_EPOCH=") + s + ": not a number of seconds");
    return v;
}

// The gzip side: libarchive's raw format with the gzip filter, so the compressed bytes come out
// of a callback that hashes and writes them. "!timestamp" keeps time out of the gzip header.
struct GzipSink {
    int fd;
    Digester sha{Digester::Algorithm::sha256};
    std::uint64_t size = 0;
    ArchiveWriter gz{archive_write_new()};

    explicit GzipSink(int out_fd) : fd(out_fd) {
        archive* a = gz.get();
        if (archive_write_set_format_raw(a) != ARCHIVE_OK || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_options(a, "gzip:!timestamp") != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open2(a, this, nullptr, &GzipSink::write, nullptr, nullptr) != ARCHIVE_OK)
            throw Error("cannot start gzip: " + message(a));
        ArchiveEntry e(archive_entry_new());
        archive_entry_set_pathname(e.get(), "layer.tar");
        archive_entry_set_filetype(e.get(), AE_IFREG);
        if (archive_write_header(a, e.get()) != ARCHIVE_OK) throw Error("cannot start gzip: " + message(a));
    }
    static la_ssize_t write(archive*, void* self, const void* buf, size_t n) {
        auto* s = static_cast<GzipSink*>(self);
        try {
            write_all(s->fd, buf, n, "the layer");
        } catch (const Error& e) {
            archive_set_error(s->gz.get(), e.code() ? e.code() : EIO, "%s", e.what());
            return -1;
        }
        s->sha.update(buf, n);
        s->size += n;
        return static_cast<la_ssize_t>(n);
    }
    void finish() {
        if (archive_write_close(gz.get()) != ARCHIVE_OK) throw Error("cannot finish gzip: " + message(gz.get()));
    }
};

// The tar side: pax (restricted: plain ustar headers unless an entry needs more) into GzipSink.
class RootfsTar {
public:
    explicit RootfsTar(GzipSink& sink) : sink_(sink), epoch_(source_date_epoch()) {
        archive* a = tar_.get();
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_open2(a, this, nullptr, &RootfsTar::write, nullptr, nullptr) != ARCHIVE_OK)
            throw Error("cannot start tar: " + message(a));
    }
    // Every entry beneath dir_fd (shown as `prefix`), directories before their content, names
    // in byte order, so the same tree always gives the same tar.
    void walk(int dir_fd, const std::string& prefix) {
        std::vector<std::string> names = list_directory(dir_fd, prefix.empty() ? "/" : prefix);
        std::sort(names.begin(), names.end());
        for (const auto& name : names) {
            const std::string path = prefix + name;
            struct stat st {};
            check(::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW), "cannot stat " + path);
            if (S_ISSOCK(st.st_mode)) continue;  // a socket is not content: tar cannot hold it either
            add(dir_fd, name, path, st);
            if (S_ISDIR(st.st_mode)) {
                Fd sub(check(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + path));
                walk(sub.get(), path + "/");
            }
        }
    }
    std::string finish() {
        if (archive_write_close(tar_.get()) != ARCHIVE_OK) throw Error("cannot finish tar: " + message(tar_.get()));
        return diff_id_.digest();
    }

private:
    static la_ssize_t write(archive* a, void* self, const void* buf, size_t n) {
        auto* t = static_cast<RootfsTar*>(self);
        t->diff_id_.update(buf, n);
        if (archive_write_data(t->sink_.gz.get(), buf, n) < 0) {
            archive_set_error(a, EIO, "%s", message(t->sink_.gz.get()).c_str());
            return -1;
        }
        return static_cast<la_ssize_t>(n);
    }

    void add_xattrs(archive_entry* e, int dir_fd, const std::string& name) {
        // O_PATH fds take no xattr calls; /proc/self/fd/N/NAME with l*xattr never follows NAME.
        const std::string p = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name;
        char list[4096];
        ssize_t n = ::llistxattr(p.c_str(), list, sizeof list);
        if (n <= 0) return;
        std::vector<std::string> keys;
        for (const char* k = list; k < list + n; k += std::strlen(k) + 1) keys.emplace_back(k);
        std::sort(keys.begin(), keys.end());
        for (const auto& k : keys) {
            // File capabilities and user attributes are image content; security.selinux and
            // trusted.* belong to the host that wrote the tree.
            if (k != "security.capability" && !k.starts_with("user.")) continue;
            char value[65536];
            ssize_t v = ::lgetxattr(p.c_str(), k.c_str(), value, sizeof value);
            if (v >= 0) archive_entry_xattr_add_entry(e, k.c_str(), value, static_cast<size_t>(v));
        }
    }

    void add(int dir_fd, const std::string& name, const std::string& path, const struct stat& st) {
        ArchiveEntry entry(archive_entry_new());
        archive_entry* e = entry.get();
        archive_entry_set_pathname(e, path.c_str());
        archive_entry_set_mode(e, st.st_mode);
        archive_entry_set_uid(e, st.st_uid);
        archive_entry_set_gid(e, st.st_gid);
        if (epoch_ && st.st_mtim.tv_sec >= *epoch_) archive_entry_set_mtime(e, *epoch_, 0);
        else archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        add_xattrs(e, dir_fd, name);
        Fd content;
        if (S_ISREG(st.st_mode)) {
            if (st.st_nlink > 1) {
                auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, path);
                if (!first) {
                    archive_entry_set_hardlink(e, it->second.c_str());
                    archive_entry_set_size(e, 0);
                    return header(e, path);
                }
            }
            archive_entry_set_size(e, st.st_size);
            content = Fd(check(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + path));
        } else if (S_ISLNK(st.st_mode)) {
            std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
            ssize_t n = check(::readlinkat(dir_fd, name.c_str(), target.data(), target.size()), "cannot read link " + path);
            target.resize(static_cast<std::size_t>(n));
            archive_entry_set_symlink(e, target.c_str());
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            archive_entry_set_rdevmajor(e, major(st.st_rdev));
            archive_entry_set_rdevminor(e, minor(st.st_rdev));
        }
        header(e, path);
        if (!content) return;
        // Exactly st_size bytes: a file that changed size meanwhile would corrupt the tar.
        std::uint64_t left = static_cast<std::uint64_t>(st.st_size);
        static thread_local char buf[256 * 1024];
        while (left > 0) {
            ssize_t r = ::read(content.get(), buf, std::min<std::uint64_t>(left, sizeof buf));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw_errno("cannot read " + path);
            if (r == 0) throw Error(path + " shrank while it was being saved");
            if (archive_write_data(tar_.get(), buf, static_cast<size_t>(r)) < 0) throw Error("cannot write tar: " + message(tar_.get()));
            left -= static_cast<std::uint64_t>(r);
        }
    }
    void header(archive_entry* e, const std::string& path) {
        if (archive_write_header(tar_.get(), e) < ARCHIVE_WARN) throw Error("cannot add " + path + " to the tar: " + message(tar_.get()));
    }

    GzipSink& sink_;
    std::optional<std::int64_t> epoch_;
    Digester diff_id_{Digester::Algorithm::sha256};
    std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first path of each multiply-linked file
    ArchiveWriter tar_{archive_write_new()};
};

// The output file: written as FILE.tmp, renamed over FILE only when complete.
class TempOutput {
public:
    explicit TempOutput(const fs::path& out) : out_(out), tmp_(out.string() + ".tmp") {
        fd_ = Fd(check(::open(tmp_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "cannot create " + tmp_.string()));
    }
    ~TempOutput() {
        if (fd_) ::unlink(tmp_.c_str());
    }
    int fd() const { return fd_.get(); }
    void commit() {
        check(::fsync(fd_.get()), "cannot sync " + tmp_.string());
        check(::rename(tmp_.c_str(), out_.c_str()), "cannot rename " + tmp_.string() + " to " + out_.string());
        fd_.reset();
    }

private:
    fs::path out_, tmp_;
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
    void file_from(const std::string& path, int src_fd, std::uint64_t size) {
        header(path, AE_IFREG | 0644, size);
        check(::lseek(src_fd, 0, SEEK_SET), "cannot rewind the layer");
        static thread_local char buf[256 * 1024];
        for (std::uint64_t left = size; left > 0;) {
            ssize_t r = ::read(src_fd, buf, std::min<std::uint64_t>(left, sizeof buf));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) throw Error("cannot read back the layer");
            data_(buf, static_cast<size_t>(r));
            left -= static_cast<std::uint64_t>(r);
        }
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

}  // namespace

TarDigests write_rootfs_tar_gz(int root_fd, int out_fd) {
    GzipSink sink(out_fd);
    RootfsTar tar(sink);
    tar.walk(root_fd, "");
    TarDigests d;
    d.diff_id = tar.finish();
    sink.finish();
    d.digest = sink.sha.digest();
    d.size = sink.size;
    return d;
}

void save_image(const Image& img, const fs::path& out, SaveFormat format) {
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
    const std::string manifest_digest = sha256_digest(manifest);
    json m = descriptor("application/vnd.oci.image.manifest.v1+json", manifest_digest, manifest.size());
    m["annotations"] = {{"org.opencontainers.image.ref.name", img.ref.tag}, {"io.containerd.image.name", img.ref.str()}};
    const std::string index =
        json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array({m})}}.dump();

    // Sorted by path, like the layer.
    std::map<std::string, std::string> blobs{{manifest_digest.substr(7), manifest}, {config_digest.substr(7), config}};
    LayoutTar tar(output.fd());
    tar.dir("blobs/");
    tar.dir("blobs/sha256/");
    bool layer_done = false;
    const std::string layer_hex = l.digest.substr(7);
    for (const auto& [hex, data] : blobs) {
        if (!layer_done && layer_hex < hex) {
            tar.file_from("blobs/sha256/" + layer_hex, layer.get(), l.size);
            layer_done = true;
        }
        tar.file("blobs/sha256/" + hex, data);
    }
    if (!layer_done) tar.file_from("blobs/sha256/" + layer_hex, layer.get(), l.size);
    tar.file("index.json", index);
    tar.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    tar.finish();
    output.commit();
}

}  // namespace srl
