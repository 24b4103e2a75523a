#include "images/layer_tar.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "fetch/digest.hpp"
#include "images/archive.hpp"
#include "images/extract.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {
namespace {

constexpr const char* kWhiteoutPrefix = ".wh.";
constexpr const char* kOpaqueMarker = ".wh..wh..opq";

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

// O_PATH fds take no xattr calls; /proc/self/fd/N/NAME with l*xattr never follows NAME.
std::string xattr_path(int dir_fd, const std::string& name) { return "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name; }

std::optional<std::string> get_xattr(const std::string& path, const char* key) {
    char value[256];
    ssize_t n = ::lgetxattr(path.c_str(), key, value, sizeof value);
    if (n < 0) return std::nullopt;
    return std::string(value, static_cast<std::size_t>(n));
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
class TreeTar {
public:
    TreeTar(GzipSink& sink, const TreeTarOptions& o) : sink_(sink), opts_(o) {
        archive* a = tar_.get();
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_open2(a, this, nullptr, &TreeTar::write, nullptr, nullptr) != ARCHIVE_OK)
            throw Error("cannot start tar: " + message(a));
    }
    // Every entry beneath dir_fd (shown as `prefix`), directories before their content, names
    // in byte order (of the names as written, whiteouts included), so the same tree always
    // gives the same tar.
    void walk(int dir_fd, const std::string& prefix) {
        struct Child {
            std::string tar_name, name;  // as written; in the directory ("" for the opaque marker)
            struct stat st;
            bool whiteout;
        };
        std::vector<Child> children;
        if (opts_.overlay_diff) {
            char v[8];
            const ssize_t n = ::fgetxattr(dir_fd, "trusted.overlay.opaque", v, sizeof v);
            if (n == 1 && v[0] == 'y') children.push_back({kOpaqueMarker, "", {}, true});
        }
        for (auto& name : list_directory(dir_fd, prefix.empty() ? "/" : prefix)) {
            struct stat st {};
            check(::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW), "cannot stat " + prefix + name);
            if (S_ISSOCK(st.st_mode)) continue;  // a socket is not content: tar cannot hold it either
            bool whiteout = false;
            if (opts_.overlay_diff) {
                const std::string p = xattr_path(dir_fd, name);
                whiteout = (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) ||
                           (S_ISREG(st.st_mode) && st.st_size == 0 && get_xattr(p, "trusted.overlay.whiteout"));
                if (get_xattr(p, "trusted.overlay.redirect") || get_xattr(p, "trusted.overlay.metacopy"))
                    throw Error(prefix + name + " is an overlayfs redirect or metacopy entry, which is not a layer diff");
            }
            children.push_back({whiteout ? kWhiteoutPrefix + name : name, name, st, whiteout});
        }
        std::sort(children.begin(), children.end(), [](const Child& a, const Child& b) { return a.tar_name < b.tar_name; });
        for (const auto& c : children) {
            const std::string path = prefix + c.tar_name;
            if (c.whiteout) {
                add_marker(path);
                continue;
            }
            add(dir_fd, c.name, path, c.st);
            if (S_ISDIR(c.st.st_mode)) {
                Fd sub(check(::openat(dir_fd, c.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + path));
                walk(sub.get(), path + "/");
            }
        }
    }
    TarDigests finish() {
        if (archive_write_close(tar_.get()) != ARCHIVE_OK) throw Error("cannot finish tar: " + message(tar_.get()));
        TarDigests d;
        d.diff_id = diff_id_.digest();
        d.content_bytes = content_bytes_;
        d.entries = entries_;
        return d;
    }

private:
    static la_ssize_t write(archive* a, void* self, const void* buf, size_t n) {
        auto* t = static_cast<TreeTar*>(self);
        t->diff_id_.update(buf, n);
        if (archive_write_data(t->sink_.gz.get(), buf, n) < 0) {
            archive_set_error(a, EIO, "%s", message(t->sink_.gz.get()).c_str());
            return -1;
        }
        return static_cast<la_ssize_t>(n);
    }

    void set_mtime(archive_entry* e, const struct timespec& t) {
        if (opts_.epoch && t.tv_sec >= *opts_.epoch) archive_entry_set_mtime(e, *opts_.epoch, 0);
        else archive_entry_set_mtime(e, t.tv_sec, t.tv_nsec);
    }

    // A whiteout or opaque marker: an empty file owned by root, mode 0, as containerd writes them.
    void add_marker(const std::string& path) {
        ArchiveEntry entry(archive_entry_new());
        archive_entry_set_pathname(entry.get(), path.c_str());
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), 0);
        archive_entry_set_size(entry.get(), 0);
        archive_entry_set_mtime(entry.get(), opts_.epoch.value_or(0), 0);
        header(entry.get(), path);
    }

    void add_xattrs(archive_entry* e, int dir_fd, const std::string& name) {
        const std::string p = xattr_path(dir_fd, name);
        char list[4096];
        ssize_t n = ::llistxattr(p.c_str(), list, sizeof list);
        if (n <= 0) return;
        std::vector<std::string> keys;
        for (const char* k = list; k < list + n; k += std::strlen(k) + 1) keys.emplace_back(k);
        std::sort(keys.begin(), keys.end());
        for (const auto& k : keys) {
            // File capabilities and user attributes are image content; security.selinux and
            // trusted.* (overlayfs's bookkeeping among them) belong to the host that wrote the tree.
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
        set_mtime(e, st.st_mtim);
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
        content_bytes_ += left;
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
        ++entries_;
    }

    GzipSink& sink_;
    TreeTarOptions opts_;
    Digester diff_id_{Digester::Algorithm::sha256};
    std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first path of each multiply-linked file
    std::uint64_t content_bytes_ = 0, entries_ = 0;
    ArchiveWriter tar_{archive_write_new()};
};

}  // namespace

std::optional<std::int64_t> source_date_epoch() {
    const char* s = std::getenv("SOURCE_DATE_EPOCH");
    if (!s || !*s) return std::nullopt;
    char* end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (*end || v < 0) throw Error(std::string("SOURCE_DATE_EPOCH=") + s + ": not a number of seconds");
    return v;
}

TarDigests write_tree_tar_gz(int root_fd, int out_fd, const TreeTarOptions& options) {
    GzipSink sink(out_fd);
    TreeTar tar(sink, options);
    tar.walk(root_fd, "");
    TarDigests d = tar.finish();
    sink.finish();
    d.digest = sink.sha.digest();
    d.size = sink.size;
    return d;
}

}  // namespace srl
