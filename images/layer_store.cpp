#include "images/layer_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "images/archive.hpp"
#include "images/extract.hpp"
#include "images/layer.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kLayerMeta = "layer.json";
constexpr const char* kRootfsLayerNote = "rootfs-layer.json";

// The 64 hex digits of a "sha256:<hex>" digest: the layer's directory name. Anything else is
// refused, as it would become a path.
std::string hex_of(const std::string& digest) {
    const std::string hex = digest.starts_with("sha256:") ? digest.substr(7) : "";
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw Error("invalid layer digest \"" + digest + "\"");
    return hex;
}

void write_file_at(int dir_fd, const std::string& name, const std::string& content, const std::string& shown) {
    Fd fd(check(::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644), "cannot create " + shown));
    for (std::size_t done = 0; done < content.size();) {
        ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot write " + shown);
        done += static_cast<std::size_t>(n);
    }
}

// No timestamp in the tree later than `epoch`, as reproducible builds want (and no sub-second
// part on those that were). Atime follows mtime: nothing should depend on when a build ran.
void clamp_times(int dir_fd, const std::string& shown, std::int64_t epoch) {
    for (const std::string& name : list_directory(dir_fd, shown)) {
        struct stat st {};
        const std::string path = shown + "/" + name;
        check(::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW), "cannot stat " + path);
        if (S_ISDIR(st.st_mode)) {
            Fd sub(check(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + path));
            clamp_times(sub.get(), path, epoch);
        }
        timespec t = st.st_mtim;
        if (t.tv_sec >= epoch) t = {static_cast<time_t>(epoch), 0};
        const timespec times[2] = {t, t};
        check(::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW), "cannot set times of " + path);
    }
}

StoredLayer read_layer(const fs::path& dir) {
    std::ifstream in(dir / kLayerMeta);
    if (!in) throw Error("cannot read " + (dir / kLayerMeta).string());
    const json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error("corrupt layer metadata " + (dir / kLayerMeta).string());
    StoredLayer l;
    l.digest = j.value("digest", "");
    l.diff_id = j.value("diff_id", "");
    l.size = j.value("size", std::uint64_t{0});
    l.content_bytes = j.value("content_size", std::uint64_t{0});
    l.dir = dir;
    return l;
}

}  // namespace

LayerStore::LayerStore(fs::path root) : root_(std::move(root)) {}

std::optional<StoredLayer> LayerStore::find(const std::string& digest) const {
    const fs::path dir = root_ / hex_of(digest);
    std::error_code ec;
    if (!fs::is_regular_file(dir / kLayerMeta, ec)) return std::nullopt;
    StoredLayer l = read_layer(dir);
    if (l.digest != digest) throw Error("corrupt layer store: " + dir.string() + " holds " + l.digest);
    return l;
}

StoredLayer LayerStore::get(const std::string& digest) const {
    if (auto l = find(digest)) return *l;
    throw Error("layer " + digest + " is missing from the layer store " + root_.string());
}

LayerStore::Pending::Pending(const fs::path& root) : dir_(root, "tmp") {
    for (const char* sub : {"diff", "work"}) {
        check(::mkdirat(dir_.fd(), sub, 0755), "cannot create " + (dir_.path() / sub).string());
        check(::fchmodat(dir_.fd(), sub, 0755, 0), "cannot set mode of " + (dir_.path() / sub).string());
    }
}

LayerStore::Pending LayerStore::begin() {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) throw Error("cannot create " + root_.string(), ec.value());
    sweep_stale_dirs(root_);
    return Pending(root_);
}

StoredLayer LayerStore::place(Pending&& pending, const TarDigests& d) {
    const json meta = {{"digest", d.digest}, {"diff_id", d.diff_id}, {"size", d.size}, {"content_size", d.content_bytes}};
    write_file_at(pending.dir_.fd(), kLayerMeta, meta.dump() + "\n", (pending.dir_.path() / kLayerMeta).string());
    const fs::path dest = root_ / hex_of(d.digest);
    if (::rename(pending.dir_.path().c_str(), dest.c_str()) == 0) {
        pending.dir_.release();
    } else if (errno == EEXIST || errno == ENOTEMPTY) {
        // The same layer is there already (content addressed, so equal), perhaps loaded from an
        // archive and so without the diff/ a build needs as a lower layer: it gets ours.
        const fs::path diff = pending.diff(), theirs = dest / "diff";
        std::error_code ec;
        if (fs::is_directory(diff, ec) && !fs::exists(theirs, ec) && ::rename(diff.c_str(), theirs.c_str()) < 0 &&
            errno != EEXIST && errno != ENOTEMPTY)
            throw_errno("cannot store layer " + d.digest);
        pending.dir_.remove();
    } else {
        throw_errno("cannot store layer " + d.digest);
    }
    return get(d.digest);
}

std::optional<StoredLayer> LayerStore::commit_diff(Pending&& pending, std::int64_t epoch) {
    remove_tree_at(pending.dir_.fd(), "work", pending.work().string());
    Fd diff(check(::openat(pending.dir_.fd(), "diff", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                  "cannot open " + pending.diff().string()));
    if (list_directory(diff.get(), pending.diff().string()).empty()) return std::nullopt;
    clamp_times(diff.get(), pending.diff().string(), epoch);
    Fd blob(check(::openat(pending.dir_.fd(), "layer.tar.gz", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644),
                  "cannot create " + pending.blob().string()));
    const TarDigests d = write_tree_tar_gz(diff.get(), blob.get(), {.overlay_diff = true, .epoch = epoch});
    if (d.entries == 0) return std::nullopt;  // only sockets: nothing a layer can hold
    return place(std::move(pending), d);
}

StoredLayer LayerStore::add_tree(int root_fd, const std::optional<std::int64_t>& epoch) {
    Pending pending = begin();
    Fd blob(check(::openat(pending.dir_.fd(), "layer.tar.gz", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644),
                  "cannot create " + pending.blob().string()));
    const TarDigests d = write_tree_tar_gz(root_fd, blob.get(), {.overlay_diff = false, .epoch = epoch});
    remove_tree_at(pending.dir_.fd(), "diff", pending.diff().string());
    remove_tree_at(pending.dir_.fd(), "work", pending.work().string());
    return place(std::move(pending), d);
}

StoredLayer LayerStore::add_blob(Pending&& pending, const TarDigests& digests) {
    remove_tree_at(pending.dir_.fd(), "diff", pending.diff().string());
    remove_tree_at(pending.dir_.fd(), "work", pending.work().string());
    return place(std::move(pending), digests);
}

StoredLayer image_rootfs_layer(LayerStore& layers, const Image& img, const std::optional<std::int64_t>& epoch) {
    const json epoch_json = epoch ? json(*epoch) : json(nullptr);
    {
        std::ifstream in(img.dir / kRootfsLayerNote);
        const json note = in ? json::parse(in, nullptr, false) : json();
        if (note.is_object() && note.value("epoch", json()) == epoch_json) {
            try {
                if (auto l = layers.find(note.value("digest", ""))) return *l;
            } catch (const Error&) {
                // A note that makes no sense is as good as none.
            }
        }
    }
    Fd root(check(::open(img.rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "cannot open " + img.rootfs.string()));
    StoredLayer l = layers.add_tree(root.get(), epoch);
    // Best effort: without the note the layer is only made again next time.
    const fs::path tmp = img.dir / (std::string(".") + kRootfsLayerNote + ".tmp");
    try {
        Fd dir(check(::open(img.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "cannot open " + img.dir.string()));
        write_file_at(dir.get(), tmp.filename(), json{{"epoch", epoch_json}, {"digest", l.digest}}.dump() + "\n", tmp.string());
        check(::rename(tmp.c_str(), (img.dir / kRootfsLayerNote).c_str()), "cannot rename " + tmp.string());
    } catch (const Error&) {
        ::unlink(tmp.c_str());
    }
    return l;
}

std::optional<std::optional<std::string>> BuildCache::lookup(const std::string& key) const {
    std::ifstream in(dir_ / (key + ".json"));
    if (!in) return std::nullopt;
    const json j = json::parse(in, nullptr, false);
    if (!j.is_object() || !j.contains("layer")) return std::nullopt;
    if (j["layer"].is_null()) return std::optional<std::string>();
    if (!j["layer"].is_string()) return std::nullopt;
    return std::optional<std::string>(j["layer"].get<std::string>());
}

void BuildCache::store(const std::string& key, const std::optional<std::string>& layer) const {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    const fs::path tmp = dir_ / ("." + key + "." + std::to_string(::getpid())), file = dir_ / (key + ".json");
    {
        std::ofstream out(tmp);
        out << json{{"layer", layer ? json(*layer) : json(nullptr)}}.dump() << "\n";
        if (!out) return;
    }
    if (::rename(tmp.c_str(), file.c_str()) < 0) ::unlink(tmp.c_str());
}

void link_tree(int src_fd, int dst_fd, const std::string& shown) {
    for (const std::string& name : list_directory(src_fd, shown)) {
        const std::string path = shown + "/" + name;
        struct stat st {};
        check(::fstatat(src_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW), "cannot stat " + path);
        if (!S_ISDIR(st.st_mode)) {
            // Flags 0: a symlink is linked itself, never followed.
            check(::linkat(src_fd, name.c_str(), dst_fd, name.c_str(), 0), "cannot link " + path);
            continue;
        }
        check(::mkdirat(dst_fd, name.c_str(), 0700), "cannot create " + path);
        Fd from(check(::openat(src_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + path));
        Fd to(check(::openat(dst_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + path));
        link_tree(from.get(), to.get(), path);
    }
    // The directory itself, once its entries are in: xattrs, owner (which clears set-id bits),
    // mode, and times last, as adding entries changed them.
    struct stat st {};
    check(::fstat(src_fd, &st), "cannot stat " + shown);
    char keys[4096];
    const ssize_t n = ::flistxattr(src_fd, keys, sizeof keys);
    for (const char* k = keys; n > 0 && k < keys + n; k += std::strlen(k) + 1) {
        if (std::strncmp(k, "user.", 5) != 0) continue;  // what a layer tar keeps of a directory's
        char value[65536];
        const ssize_t v = ::fgetxattr(src_fd, k, value, sizeof value);
        if (v >= 0) check(::fsetxattr(dst_fd, k, value, static_cast<std::size_t>(v), 0), "cannot copy " + std::string(k) + " of " + shown);
    }
    check(::fchown(dst_fd, st.st_uid, st.st_gid), "cannot set owner of " + shown);
    check(::fchmod(dst_fd, st.st_mode & 07777), "cannot set mode of " + shown);
    const timespec times[2] = {st.st_atim, st.st_mtim};
    check(::futimens(dst_fd, times), "cannot set times of " + shown);
}

UnpackStats apply_stored_layer(const StoredLayer& layer, int root_fd) {
    ArchiveReader a(archive_read_new());
    archive_read_support_filter_gzip(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), layer.blob().c_str(), 256 * 1024) != ARCHIVE_OK)
        throw Error("cannot read layer " + layer.blob().string() + ": " + archive_error_string(a.get()));
    try {
        return apply_layer(a.get(), root_fd);
    } catch (const Error& e) {
        throw Error("layer " + layer.digest + ": " + e.what());
    }
}

}  // namespace srl
