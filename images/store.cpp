#include "images/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "images/extract.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kTagPrefix = '@';
constexpr const char* kMetadata = "image.json";

// A ref built field by field rather than parsed must be just as valid: it becomes a path.
const ImageRef& checked(const ImageRef& ref) {
    if (ImageRef::parse(ref.str()) != ref) throw Error("invalid image reference \"" + ref.str() + "\"");
    return ref;
}

constexpr const char* kLocks = ".locks";
// Trees being built (.tmp-), removed (.rm-) or swapped out (.old-), each flocked by its owner.
constexpr std::string_view kTempKinds[] = {".tmp-", ".rm-", ".old-"};

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

void flock_retrying(int fd, int op, const std::string& what) {
    while (::flock(fd, op) < 0)
        if (errno != EINTR) throw_errno("cannot lock " + what);
}

// '/' becomes '+' and the tag follows an '@', neither of which a reference can contain, so
// distinct references get distinct files. Names too long for one path component are hashed.
std::string lock_file_name(const ImageRef& ref) {
    std::string name = ref.name;
    std::replace(name.begin(), name.end(), '/', '+');
    name += "@" + ref.tag;
    if (name.size() <= 200) return name;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    const std::string full = ref.str();
    if (EVP_Digest(full.data(), full.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw Error("cannot hash image reference " + full);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256-";
    for (unsigned i = 0; i < len; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
    return out;
}

// Serialises the renames that change which images exist, across srlaunch processes.
Fd lock_store(const fs::path& root) {
    Fd fd(check(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "cannot open " + root.string()));
    flock_retrying(fd.get(), LOCK_EX, root.string());
    return fd;
}

void write_new_file(const fs::path& path, const std::string& content) {
    Fd fd(check(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), "cannot create " + path.string()));
    for (std::size_t done = 0; done < content.size();) {
        ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot write " + path.string());
        done += static_cast<std::size_t>(n);
    }
}

json to_json(const Image& img) {
    const ImageConfig& c = img.config;
    json layers = json::array();
    for (const LayerRecord& l : img.layers) {
        json layer = {{"digest", l.digest}, {"size", l.size}};
        if (!l.diff_id.empty()) layer.update({{"diff_id", l.diff_id}, {"content_size", l.content_bytes}});
        layers.push_back(layer);
    }
    return {{"name", img.ref.name},
            {"tag", img.ref.tag},
            {"created", img.created},
            {"size", img.size_bytes},
            {"source", img.source},
            {"digest", img.digest},
            {"layers", layers},
            {"config",
             {{"entrypoint", c.entrypoint}, {"cmd", c.cmd}, {"env", c.env}, {"workdir", c.workdir}, {"user", c.user}}}};
}

Image read_image(const ImageRef& ref, const fs::path& dir) {
    const fs::path file = dir / kMetadata;
    std::ifstream in(file);
    if (!in) throw Error("cannot read " + file.string());
    try {
        const json j = json::parse(in);
        Image img;
        img.ref = ref;
        img.dir = dir;
        img.rootfs = dir / "rootfs";
        img.size_bytes = j.at("size").get<std::uint64_t>();
        img.created = j.at("created").get<std::int64_t>();
        img.source = j.value("source", "");
        img.digest = j.value("digest", "");
        for (const json& l : j.value("layers", json::array()))
            img.layers.push_back({l.at("digest").get<std::string>(), l.at("size").get<std::uint64_t>(),
                                  l.value("diff_id", ""), l.value("content_size", std::uint64_t{0})});
        const json& c = j.at("config");
        img.config.entrypoint = c.value("entrypoint", std::vector<std::string>{});
        img.config.cmd = c.value("cmd", std::vector<std::string>{});
        img.config.env = c.value("env", std::vector<std::string>{});
        img.config.workdir = c.value("workdir", "");
        img.config.user = c.value("user", "");
        return img;
    } catch (const json::exception& e) {
        throw Error("corrupt metadata of image " + ref.str() + " (" + file.string() + "): " + e.what());
    }
}

}  // namespace

ImageStore::ImageStore(fs::path images_root) : root_(std::move(images_root)) {}

fs::path ImageStore::dir_of(const ImageRef& ref) const {
    return root_ / checked(ref).name / (kTagPrefix + ref.tag);
}

// Name directories exist only while they hold a tag: rmdir stops at the first non-empty one.
void ImageStore::prune_empty_parents(const ImageRef& ref) const {
    fs::path dir = root_ / ref.name;
    for (auto n = std::count(ref.name.begin(), ref.name.end(), '/') + 1; n > 0; --n, dir = dir.parent_path())
        if (::rmdir(dir.c_str()) < 0) break;
}

std::optional<Image> ImageStore::find(const ImageRef& ref) const {
    const fs::path dir = dir_of(ref);
    std::error_code ec;
    if (!fs::is_regular_file(dir / kMetadata, ec)) return std::nullopt;
    return read_image(ref, dir);
}

Image ImageStore::get(const ImageRef& ref) const {
    if (auto img = find(ref)) return *img;
    throw Error("no such image: " + ref.str());
}

std::vector<Image> ImageStore::list() const {
    std::vector<Image> images;
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) return images;
    // Depth first over name components; an '@' directory is a tag of the name above it.
    auto scan = [&](auto& self, const fs::path& dir, const std::string& name) -> void {
        for (const auto& entry : fs::directory_iterator(dir)) {
            const std::string leaf = entry.path().filename().string();
            if (leaf.starts_with('.') || !fs::is_directory(entry.symlink_status())) continue;
            if (leaf.front() != kTagPrefix) {
                self(self, entry.path(), name.empty() ? leaf : name + "/" + leaf);
            } else if (!name.empty() && fs::is_regular_file(entry.path() / kMetadata)) {
                images.push_back(read_image({name, leaf.substr(1)}, entry.path()));
            }
        }
    };
    try {
        scan(scan, root_, "");
    } catch (const fs::filesystem_error& e) {
        throw Error("cannot list images in " + root_.string() + ": " + e.code().message());
    }
    std::sort(images.begin(), images.end(), [](const Image& a, const Image& b) { return a.ref < b.ref; });
    return images;
}

OwnedDir::OwnedDir(const fs::path& store_root, const std::string& kind)
    : store_fd_(check(::open(store_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "cannot open " + store_root.string())) {
    // A sweep may take the new directory for a dead process's between mkdtemp() and flock():
    // then it is gone once we hold the lock, and we make another.
    for (;;) {
        // Dot-names never collide with images: names and tags cannot start with '.'.
        std::string tmpl = (store_root / ("." + kind + "-XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw_errno("cannot create a temporary directory in " + store_root.string());
        path_ = tmpl;
        name_ = path_.filename().string();
        int fd = ::openat(store_fd_.get(), name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) continue;
        Fd dir(check(fd, "cannot open " + path_.string()));
        flock_retrying(dir.get(), LOCK_EX, path_.string());
        struct stat locked, named;
        check(::fstat(dir.get(), &locked), "cannot open " + path_.string());
        if (::fstatat(store_fd_.get(), name_.c_str(), &named, AT_SYMLINK_NOFOLLOW) == 0 && same_file(locked, named)) {
            lock_ = std::move(dir);
            return;
        }
    }
}

OwnedDir& OwnedDir::operator=(OwnedDir&& o) noexcept {
    if (this != &o) {
        remove();
        store_fd_ = std::move(o.store_fd_);
        name_ = std::move(o.name_);
        path_ = std::move(o.path_);
        lock_ = std::move(o.lock_);
    }
    return *this;
}

void OwnedDir::remove() noexcept {
    if (!lock_) return;
    try {
        remove_tree_at(store_fd_.get(), name_, path_.string());
    } catch (const std::exception&) {
        // Still unlocked garbage with a dot-name once we let go: the next sweep_stale() retries.
    }
    release();
}

void OwnedDir::release() noexcept {
    lock_.reset();
    store_fd_.reset();
}

ImageStore::Staging::Staging(const ImageStore& store, const ImageRef& ref)
    : store_root_(store.root()), ref_(ref), dir_(store.root(), "tmp"), rootfs_(dir_.path() / "rootfs") {
    check(::mkdirat(dir_.fd(), "rootfs", 0755), "cannot create " + rootfs_.string());
    rootfs_fd_ = Fd(check(::openat(dir_.fd(), "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                          "cannot open " + rootfs_.string()));
    // Not left to the umask; a layer's or an archive's "./" entry still overrides it.
    check(::fchmod(rootfs_fd_.get(), 0755), "cannot set mode of " + rootfs_.string());
}

Image ImageStore::Staging::commit(const Image& meta) {
    if (!dir_.owned()) throw Error("cannot commit image " + ref_.str() + ": it was committed already");
    if (meta.ref != ref_)
        throw Error("cannot commit image " + meta.ref.str() + ": the staged image is " + ref_.str());
    const ImageStore store(store_root_);
    const fs::path dest = store.dir_of(ref_);
    Image img = meta;
    img.dir = dest;
    img.rootfs = dest / "rootfs";
    img.created = static_cast<std::int64_t>(::time(nullptr));
    write_new_file(dir_.path() / kMetadata, to_json(img).dump(2) + "\n");
    // Visible only when complete, but not synced: like Docker and containerd, image files are
    // left to normal writeback. syncfs() would also flush every other process's dirty data on
    // the file system, which on a shared disk made a pull cost anywhere from 10 to 100 ms more.
    // After a power failure an image pulled just before may hold truncated files: pull again.
    // mkdtemp made it 0700, which kept the unfinished image private.
    check(::fchmod(dir_.fd(), 0755), "cannot set mode of " + dir_.path().string());
    const bool swapped = store.put_in_place(dir_.path(), ref_);
    rootfs_fd_.reset();
    // After a swap the old image sits at our temporary path; the lock on the store is released
    // by now, so deleting it holds up nobody.
    if (swapped)
        dir_.remove();
    else
        dir_.release();
    return img;
}

void ImageStore::Staging::write_file(const std::string& name, const std::string& content) {
    if (!dir_.owned()) throw Error("cannot add " + name + " to image " + ref_.str() + ": it was committed already");
    if (name.empty() || name.find('/') != std::string::npos || name == kMetadata || name == "rootfs")
        throw Error("cannot add " + name + " to image " + ref_.str() + ": not a name for a metadata file");
    write_new_file(dir_.path() / name, content);
}

std::optional<std::string> read_image_file(const Image& img, const char* name) {
    std::ifstream in(img.dir / name, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

ImageStore::Staging ImageStore::stage(const ImageRef& ref) {
    checked(ref);
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) throw Error("cannot create " + root_.string(), ec.value());
    sweep_stale();
    return Staging(*this, ref);
}

bool ImageStore::put_in_place(const fs::path& from, const ImageRef& ref) const {
    const fs::path dest = dir_of(ref);
    OwnedDir old;  // only for a file system without RENAME_EXCHANGE; emptied after the lock is released
    Fd lock = lock_store(root_);
    try {
        std::error_code ec;
        fs::create_directories(dest.parent_path(), ec);
        if (ec) throw Error("cannot create " + dest.parent_path().string(), ec.value());
        if (::rename(from.c_str(), dest.c_str()) == 0) return false;
        if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("cannot store image " + ref.str());
        // Swap in one step, so NAME:TAG never goes missing; the old image lands at `from`.
        if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) == 0) return true;
        if (errno != EINVAL) throw_errno("cannot replace image " + ref.str());
        // Old one aside, new one in, old one gone.
        old = OwnedDir(root_, "old");
        const fs::path aside = old.path() / "image";
        check(::rename(dest.c_str(), aside.c_str()), "cannot replace image " + ref.str());
        if (::rename(from.c_str(), dest.c_str()) < 0) {
            const int err = errno;
            ::rename(aside.c_str(), dest.c_str());  // put the old one back; the error is err
            throw Error("cannot replace image " + ref.str(), err);
        }
        return false;
    } catch (...) {
        prune_empty_parents(ref);
        throw;
    }
}

Image ImageStore::import(const fs::path& source, const ImageRef& ref) {
    dir_of(ref);  // an invalid reference fails before anything else
    struct stat st;
    check(::stat(source.c_str(), &st), "cannot import " + source.string());
    const bool from_dir = S_ISDIR(st.st_mode);

    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) throw Error("cannot create " + root_.string(), ec.value());
    if (from_dir) {
        // Copying a tree that holds the store would copy the image being written, forever.
        const fs::path store = fs::canonical(root_, ec);
        if (ec) throw Error("cannot open " + root_.string(), ec.value());
        const fs::path src = fs::canonical(source, ec);
        if (ec) throw Error("cannot import " + source.string(), ec.value());
        const fs::path rel = store.lexically_relative(src);
        if (!rel.empty() && *rel.begin() != "..")
            throw Error("cannot import " + source.string() + ": it contains the image store " + root_.string());
    }

    Staging staging = stage(ref);
    const UnpackStats stats =
        from_dir ? copy_directory(source, staging.rootfs_fd()) : unpack_archive(source, staging.rootfs_fd());
    if (stats.entries == 0) throw Error("cannot import " + source.string() + ": it contains no files");

    Image meta;
    meta.ref = ref;
    meta.size_bytes = stats.regular_bytes;
    meta.source = fs::absolute(source, ec).lexically_normal().string();
    return staging.commit(meta);
}

void ImageStore::remove(const ImageRef& ref) {
    const fs::path dir = dir_of(ref);
    std::error_code ec;
    if (!fs::is_regular_file(dir / kMetadata, ec)) throw Error("no such image: " + ref.str());
    // Out of sight in one rename, deleted after the lock is released (`gone` outlives `lock`):
    // a crash half-way leaves a stray dot-directory, never half an image under its name.
    OwnedDir gone(root_, "rm");
    Fd lock = lock_store(root_);
    if (::rename(dir.c_str(), (gone.path() / "image").c_str()) < 0) {
        if (errno == ENOENT) throw Error("no such image: " + ref.str());
        throw_errno("cannot remove image " + ref.str());
    }
    prune_empty_parents(ref);
}

Fd ImageStore::lock_reference(const ImageRef& ref) {
    const fs::path dir = root_ / kLocks;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir.string(), ec.value());
    const fs::path file = dir / lock_file_name(checked(ref));
    Fd fd(check(::open(file.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644), "cannot open " + file.string()));
    flock_retrying(fd.get(), LOCK_EX, file.string());
    return fd;
}

void sweep_stale_dirs(const fs::path& dir_path) {
    int raw = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (raw < 0 && errno == ENOENT) return;
    const Fd root(check(raw, "cannot open " + dir_path.string()));
    for (const std::string& name : list_directory(root.get(), dir_path.string())) {
        if (std::none_of(std::begin(kTempKinds), std::end(kTempKinds), [&](auto kind) { return name.starts_with(kind); }))
            continue;
        int fd = ::openat(root.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;  // gone meanwhile, or not a directory: not ours to judge
        const Fd dir(fd);
        // Held: its owner is alive. Got it: the owner died, as flocks die with their process.
        if (::flock(dir.get(), LOCK_EX | LOCK_NB) < 0) continue;
        // Another sweep may have removed it and a new one been made under the same name.
        struct stat locked, named;
        if (::fstat(dir.get(), &locked) < 0 || ::fstatat(root.get(), name.c_str(), &named, AT_SYMLINK_NOFOLLOW) < 0 ||
            !same_file(locked, named))
            continue;
        try {
            remove_tree_at(root.get(), name, (dir_path / name).string());
        } catch (const Error&) {
            // Housekeeping must not stop an import or a pull; the next sweep tries again.
        }
    }
}

void sweep_store(const fs::path& images_root) noexcept {
    try {
        sweep_stale_dirs(images_root);
        sweep_stale_dirs(ImageStore(images_root).layers_root());
    } catch (const std::exception&) {
        // Housekeeping must not stop the command that happened to run it.
    }
}

}  // namespace srl
