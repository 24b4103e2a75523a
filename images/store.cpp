#include "images/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

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

// Removes a temporary tree on every way out, which is what makes a failed import leave nothing.
class TempTree {
public:
    explicit TempTree(fs::path p) : path_(std::move(p)) {}
    ~TempTree() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempTree(const TempTree&) = delete;
    TempTree& operator=(const TempTree&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Dot-names never collide with images: names and tags cannot start with '.'.
fs::path make_temp_dir(const fs::path& root, const std::string& kind) {
    std::string tmpl = (root / ("." + kind + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw_errno("cannot create a temporary directory in " + root.string());
    return tmpl;
}

// Serialises the renames that change which images exist, across srlaunch processes.
Fd lock_store(const fs::path& root) {
    Fd fd(check(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "cannot open " + root.string()));
    check(::flock(fd.get(), LOCK_EX), "cannot lock " + root.string());
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
    return {{"name", img.ref.name},
            {"tag", img.ref.tag},
            {"created", img.created},
            {"size", img.size_bytes},
            {"config",
             {{"entrypoint", c.entrypoint}, {"cmd", c.cmd}, {"env", c.env}, {"workdir", c.workdir}, {"user", c.user}}}};
}

Image read_image(const ImageRef& ref, const fs::path& dir) {
    const fs::path file = dir / kMetadata;
    std::ifstream in(file);
    if (!in) throw Error("cannot read " + file.string());
    try {
        const json j = json::parse(in);
        Image img{ref, dir, dir / "rootfs", j.at("size").get<std::uint64_t>(), j.at("created").get<std::int64_t>(), {}};
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

Image ImageStore::import(const fs::path& source, const ImageRef& ref) {
    const fs::path dest = dir_of(ref);
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

    TempTree tmp(make_temp_dir(root_, "tmp"));
    const fs::path rootfs_path = tmp.path() / "rootfs";
    check(::mkdir(rootfs_path.c_str(), 0755), "cannot create " + rootfs_path.string());
    Fd rootfs(check(::open(rootfs_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                    "cannot open " + rootfs_path.string()));
    // Not left to the umask; an archive's "./" entry still overrides it.
    check(::fchmod(rootfs.get(), 0755), "cannot set mode of " + rootfs_path.string());

    const UnpackStats stats = from_dir ? copy_directory(source, rootfs.get()) : unpack_archive(source, rootfs.get());
    if (stats.entries == 0) throw Error("cannot import " + source.string() + ": it contains no files");

    Image img{ref, dest, dest / "rootfs", stats.regular_bytes, static_cast<std::int64_t>(::time(nullptr)), {}};
    write_new_file(tmp.path() / kMetadata, to_json(img).dump(2) + "\n");
    // Durable before visible: after a crash the name must not lead to half-written files.
    check(::syncfs(rootfs.get()), "cannot sync " + root_.string());
    // mkdtemp made it 0700, which kept the unfinished image private.
    check(::chmod(tmp.path().c_str(), 0755), "cannot set mode of " + tmp.path().string());

    Fd lock = lock_store(root_);
    try {
        fs::create_directories(dest.parent_path(), ec);
        if (ec) throw Error("cannot create " + dest.parent_path().string(), ec.value());
        if (::rename(tmp.path().c_str(), dest.c_str()) < 0) {
            if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("cannot store image " + ref.str());
            // Swap in one step, so NAME:TAG never goes missing; the old image lands at the
            // temporary path, which `tmp` removes on the way out.
            if (::renameat2(AT_FDCWD, tmp.path().c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) < 0) {
                if (errno != EINVAL) throw_errno("cannot replace image " + ref.str());
                // A file system without RENAME_EXCHANGE: old one aside, new one in, old one gone.
                TempTree old(make_temp_dir(root_, "old"));
                const fs::path aside = old.path() / "image";
                check(::rename(dest.c_str(), aside.c_str()), "cannot replace image " + ref.str());
                if (::rename(tmp.path().c_str(), dest.c_str()) < 0) {
                    const int err = errno;
                    ::rename(aside.c_str(), dest.c_str());  // put the old one back; the error is err
                    throw Error("cannot replace image " + ref.str(), err);
                }
            }
        }
    } catch (...) {
        prune_empty_parents(ref);
        throw;
    }
    return img;
}

void ImageStore::remove(const ImageRef& ref) {
    const fs::path dir = dir_of(ref);
    std::error_code ec;
    if (!fs::is_regular_file(dir / kMetadata, ec)) throw Error("no such image: " + ref.str());
    // Out of sight in one rename, deleted after the lock is released (`gone` outlives `lock`):
    // a crash half-way leaves a stray dot-directory, never half an image under its name.
    TempTree gone(make_temp_dir(root_, "rm"));
    Fd lock = lock_store(root_);
    if (::rename(dir.c_str(), (gone.path() / "image").c_str()) < 0) {
        if (errno == ENOENT) throw Error("no such image: " + ref.str());
        throw_errno("cannot remove image " + ref.str());
    }
    prune_empty_parents(ref);
}

}  // namespace srl
