#include "images/extract.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "images/archive.hpp"
#include "launcher/error.hpp"

namespace srl {
namespace {

static_assert(AE_IFREG == S_IFREG && AE_IFDIR == S_IFDIR && AE_IFLNK == S_IFLNK &&
                  AE_IFCHR == S_IFCHR && AE_IFBLK == S_IFBLK && AE_IFIFO == S_IFIFO,
              "mknodat() is handed libarchive's file type bits as they are");

std::string message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

struct Times {
    timespec t[2];  // atime, mtime, as utimensat() wants them
};

Times entry_times(archive_entry* e) {
    timespec mtime{0, UTIME_NOW};
    if (archive_entry_mtime_is_set(e)) mtime = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    timespec atime = mtime;
    if (archive_entry_atime_is_set(e)) atime = {archive_entry_atime(e), archive_entry_atime_nsec(e)};
    return {{atime, mtime}};
}

void pwrite_all(int fd, const char* buf, std::size_t len, off_t off, const std::string& shown) {
    while (len > 0) {
        ssize_t n = ::pwrite(fd, buf, len, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot write " + shown);
        buf += n;
        len -= static_cast<std::size_t>(n);
        off += n;
    }
}

// Extended attributes hold file capabilities (security.capability), so they are image content.
void set_xattrs(int fd, archive_entry* e, const std::string& shown) {
    if (archive_entry_xattr_reset(e) == 0) return;
    const char* name;
    const void* value;
    std::size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        // An SELinux label describes the host's policy, not the image.
        if (std::string_view(name) == "security.selinux") continue;
        if (::fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
            throw_errno("cannot set " + std::string(name) + " on " + shown);
    }
}

struct DirClose {
    void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

// Read in full before any is removed: removing entries while readdir() runs may make it skip others.
std::vector<std::string> list_directory(int dirfd, const std::string& shown) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno("cannot read directory " + shown);
    std::unique_ptr<DIR, DirClose> d(::fdopendir(fd));
    if (!d) {
        ::close(fd);
        throw_errno("cannot read directory " + shown);
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* ent = ::readdir(d.get())) {
        const std::string_view n = ent->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
    if (errno) throw_errno("cannot read directory " + shown);
    return names;
}

std::optional<std::vector<std::string>> split_beneath(std::string_view path) {
    if (!path.empty() && path.front() == '/') return std::nullopt;
    std::vector<std::string> parts;
    parts.reserve(static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')) + 1);
    // "./x", "x//y" and "x/./y" are only other spellings of a path beneath the root, and "./"
    // (as in the Alpine tarball) or "." is the root itself.
    while (!path.empty()) {
        auto slash = path.find('/');
        auto part = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") return std::nullopt;
        parts.emplace_back(part);
    }
    return parts;
}

std::string join_path(const std::vector<std::string>& parts, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += (i ? "/" : "") + parts[i];
    return s;
}

SafeWriter::SafeWriter(int root_fd, Mode mode) : root_(root_fd), mode_(mode), chown_(::geteuid() == 0), chain_(root_fd) {}

// Later entries replace what is there, as with tar; only a directory over a directory merges.
// Returns whether a directory was kept.
bool SafeWriter::clear_leaf(int parent, const std::string& name, bool keep_dir, const std::string& shown) {
    struct stat st;
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return false;
        throw_errno("cannot replace " + shown);
    }
    if (S_ISDIR(st.st_mode) && keep_dir) return true;
    if (S_ISDIR(st.st_mode)) {
        // Usually `parent` is where the chain is, and what goes is beneath it; but a hard link's
        // target may have taken the chain below the directory removed here.
        chain_.reset();
        if (mode_ == Mode::layer) {
            remove_tree_at(parent, name, shown);
            return false;
        }
    }
    check(::unlinkat(parent, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0), "cannot replace " + shown);
    return false;
}

namespace {

// A path of thousands of components shown whole would bury the message.
std::string abbreviated(const std::string& path) {
    if (path.size() <= 120) return path;
    return path.substr(0, 60) + "..." + path.substr(path.size() - 40) + " (" + std::to_string(path.size()) + " bytes)";
}

}  // namespace

Fd SafeWriter::open_dir(const Parts& parts, std::size_t n, Lookup lookup, const std::string& unsafe_msg) {
    if (parts.size() > kMaxDepth)
        throw Error("path in archive too deep: " + abbreviated(join_path(parts, parts.size())) + " has " +
                    std::to_string(parts.size()) + " components, srlaunch stores at most " + std::to_string(kMaxDepth));
    chain_.up_to(chain_.common(parts, n));
    for (std::size_t i = chain_.depth(); i < n; ++i) {
        int err = chain_.down(parts[i]);
        if (err == ENOENT && lookup == Lookup::create) {
            create_dir(parts, i);
            continue;
        }
        if (err == 0) continue;
        struct stat st;
        if (::fstatat(chain_.fd(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            if (lookup == Lookup::if_directory) return {};
            throw Error(unsafe_msg + " (goes through symlink " + join_path(parts, i + 1) + ")");
        }
        if ((err == ENOENT || err == ENOTDIR) && (lookup == Lookup::if_present || lookup == Lookup::if_directory))
            return {};
        throw Error("cannot open directory " + join_path(parts, i + 1), err);
    }
    // A copy: the chain moves on with the next call, the caller may still be using this one.
    // (Messages are built only on error: a path is as long as the tree is deep.)
    Fd dir(::fcntl(chain_.fd(), F_DUPFD_CLOEXEC, 0));
    if (!dir) throw_errno("cannot open directory " + join_path(parts, n));
    return dir;
}

// Archives need not list every parent; create them as tar does, 0755 whatever the umask, and
// go down into them. parts[i] is the one to create.
void SafeWriter::create_dir(const Parts& parts, std::size_t i) {
    const char* name = parts[i].c_str();
    if (::mkdirat(chain_.fd(), name, 0755) < 0 && errno != EEXIST) throw_errno("cannot create directory " + join_path(parts, i + 1));
    Fd dir(::openat(chain_.fd(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) throw_errno("cannot open directory " + join_path(parts, i + 1));
    if (::fchmod(dir.get(), 0755) < 0) throw_errno("cannot set mode of " + join_path(parts, i + 1));
    chain_.push(parts[i], std::move(dir));
}

void SafeWriter::chown_at(int dirfd, const std::string& name, archive_entry* e, const std::string& shown) {
    if (!chown_) return;
    la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    // (uid_t)-1 would mean "leave unchanged" to the kernel, so it is no valid owner either.
    if (uid < 0 || gid < 0 || uid >= 0xffffffff || gid >= 0xffffffff)
        throw Error("invalid owner in archive: " + shown);
    check(::fchownat(dirfd, name.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                     AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0)),
          "cannot set owner of " + shown);
}

bool SafeWriter::write(archive* src, archive_entry* e) {
    const char* path = archive_entry_pathname(e);
    if (!path) throw Error("archive entry with a name that cannot be read");
    const std::string shown = path;
    const std::string unsafe_msg = "unsafe path in archive: " + shown;
    auto parts = split_beneath(shown);
    if (!parts) throw Error(unsafe_msg);
    const auto type = archive_entry_filetype(e);
    const bool hardlink = archive_entry_hardlink(e) != nullptr;

    if (parts->empty()) {
        // "./" describes the root itself: only its owner, mode and times can apply.
        if (hardlink || type != AE_IFDIR) throw Error(unsafe_msg + " (the root must be a directory)");
        chown_at(root_, "", e, shown);
        dirs_.push_back({DirChain::kRoot, archive_entry_perm(e), {}});
        std::copy_n(entry_times(e).t, 2, dirs_.back().times);
        return true;
    }
    Fd parent = open_dir(*parts, parts->size() - 1, Lookup::create, unsafe_msg);
    const int dirfd = parent.get();
    const std::string& name = parts->back();
    const Times times = entry_times(e);

    if (hardlink) {
        make_hardlink(dirfd, name, e, shown);
        ++stats_.entries;
        return true;
    }
    switch (type) {
    case AE_IFDIR:
        make_dir(dirfd, name, e, shown);
        break;
    case AE_IFREG:
        make_file(src, dirfd, name, e, shown);
        break;
    case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) throw Error("symlink without a target in archive: " + shown);
        clear_leaf(dirfd, name, false, shown);
        // The target is only stored, never followed by us, so it may point anywhere.
        check(::symlinkat(target, dirfd, name.c_str()), "cannot create symlink " + shown);
        chown_at(dirfd, name, e, shown);
        check(::utimensat(dirfd, name.c_str(), times.t, AT_SYMLINK_NOFOLLOW), "cannot set times of " + shown);
        break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
        clear_leaf(dirfd, name, false, shown);
        check(::mknodat(dirfd, name.c_str(), type | 0600, type == AE_IFIFO ? 0 : archive_entry_rdev(e)),
              "cannot create " + shown);
        chown_at(dirfd, name, e, shown);
        // After chown, which may clear setuid/setgid. The node was just made in our private
        // temporary directory, so nothing can have swapped a symlink in for it.
        check(::fchmodat(dirfd, name.c_str(), archive_entry_perm(e), 0), "cannot set mode of " + shown);
        check(::utimensat(dirfd, name.c_str(), times.t, AT_SYMLINK_NOFOLLOW), "cannot set times of " + shown);
        break;
    case AE_IFSOCK:
        return false;  // a socket is a live endpoint of some process, not image content
    default:
        throw Error("unsupported file type in archive: " + shown);
    }
    ++stats_.entries;
    return true;
}

// `parent` is the chain's directory (write() just went there).
void SafeWriter::make_dir(int parent, const std::string& name, archive_entry* e, const std::string& shown) {
    const DirChain::Node node = chain_.child(chain_.node(), name);
    // 0700 until finish() applies the real mode: the contents still have to be written.
    if (!clear_leaf(parent, name, true, shown))
        check(::mkdirat(parent, name.c_str(), 0700), "cannot create directory " + shown);
    chown_at(parent, name, e, shown);
    if (archive_entry_xattr_count(e) > 0) {
        Fd dir(check(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                     "cannot open directory " + shown));
        set_xattrs(dir.get(), e, shown);
    }
    dirs_.push_back({node, archive_entry_perm(e), {}});
    std::copy_n(entry_times(e).t, 2, dirs_.back().times);
}

void SafeWriter::make_file(archive* src, int parent, const std::string& name, archive_entry* e,
                           const std::string& shown) {
    clear_leaf(parent, name, false, shown);
    Fd fd(check(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600),
                "cannot create " + shown));
    std::uint64_t end = 0;
    for (;;) {
        const void* buf;
        std::size_t len;
        la_int64_t off;
        int r = archive_read_data_block(src, &buf, &len, &off);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) throw Error("cannot read " + shown + ": " + message(src));
        // Offsets, not a stream: sparse files arrive as blocks with holes between them.
        pwrite_all(fd.get(), static_cast<const char*>(buf), len, off, shown);
        end = std::max<std::uint64_t>(end, static_cast<std::uint64_t>(off) + len);
    }
    std::uint64_t size = end;
    if (archive_entry_size_is_set(e)) size = std::max<std::uint64_t>(end, archive_entry_size(e));
    if (size > end) check(::ftruncate(fd.get(), static_cast<off_t>(size)), "cannot write " + shown);
    stats_.regular_bytes += size;

    chown_at(fd.get(), "", e, shown);
    // Mode after chown (which clears setuid/setgid), xattrs after chown (which clears
    // security.capability), times last (writing changed them).
    check(::fchmod(fd.get(), archive_entry_perm(e)), "cannot set mode of " + shown);
    set_xattrs(fd.get(), e, shown);
    const Times times = entry_times(e);
    check(::futimens(fd.get(), times.t), "cannot set times of " + shown);
}

void SafeWriter::make_hardlink(int parent, const std::string& name, archive_entry* e, const std::string& shown) {
    const std::string target_shown = archive_entry_hardlink(e);
    const std::string unsafe_msg = "unsafe hard link in archive: " + shown + " -> " + target_shown;
    auto target = split_beneath(target_shown);
    if (!target || target->empty()) throw Error(unsafe_msg);
    Fd target_dir = open_dir(*target, target->size() - 1, Lookup::existing, unsafe_msg);
    clear_leaf(parent, name, false, shown);
    // Flags 0: a target that is a symlink is linked itself, never followed.
    check(::linkat(target_dir.get(), target->back().c_str(), parent, name.c_str(), 0),
          "cannot create hard link " + shown + " -> " + target_shown);
}

UnpackStats SafeWriter::finish() {
    for (const auto& d : dirs_) {
        Fd dir;
        int fd = root_;
        if (d.dir != DirChain::kRoot) {
            // A later entry replaced this directory, or one above it, with something else:
            // nothing left to apply.
            if (!chain_.go_to(chain_.parent(d.dir))) continue;
            int raw = ::openat(chain_.fd(), chain_.name(d.dir).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (raw < 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)) continue;
            if (raw < 0) throw_errno("cannot open directory " + chain_.path(d.dir));
            dir = Fd(raw);
            fd = dir.get();
        }
        check(::fchmod(fd, d.mode), "cannot set directory mode");
        check(::futimens(fd, d.times), "cannot set directory times");
    }
    dirs_.clear();
    return stats_;
}

UnpackStats unpack_archive(const std::filesystem::path& source, int root_fd) {
    ArchiveReader a(archive_read_new());
    if (!a) throw Error("cannot read " + source.string() + ": out of memory");
    archive_read_support_filter_all(a.get());
    // tar and cpio only, not format_all: that includes mtree, whose entries name files on the
    // host to read content from, which no image should be able to do.
    archive_read_support_format_tar(a.get());
    archive_read_support_format_cpio(a.get());
    if (archive_read_open_filename(a.get(), source.c_str(), 64 * 1024) != ARCHIVE_OK)
        throw Error("cannot read " + source.string() + ": " + message(a.get()));
    SafeWriter writer(root_fd);
    for (;;) {
        archive_entry* e;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) throw Error("cannot read " + source.string() + ": " + message(a.get()));
        writer.write(a.get(), e);
    }
    return writer.finish();
}

UnpackStats copy_directory(const std::filesystem::path& source, int root_fd) {
    std::error_code ec;
    const std::string top = std::filesystem::canonical(source, ec).string();
    if (ec) throw Error("cannot read " + source.string(), ec.value());
    ArchiveReader a(archive_read_disk_new());
    if (!a) throw Error("cannot read " + top + ": out of memory");
    archive_read_disk_set_symlink_physical(a.get());
    // A mounted /proc or /sys inside the tree is not part of it. ACLs and file flags are not
    // carried by images; xattrs are (file capabilities).
    archive_read_disk_set_behavior(a.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_ACL |
                                                ARCHIVE_READDISK_NO_FFLAGS);
    if (archive_read_disk_open(a.get(), top.c_str()) != ARCHIVE_OK)
        throw Error("cannot read " + top + ": " + message(a.get()));

    // Reading a disk yields every name of a hard-linked file as a full file; the resolver turns
    // all but the first into hard link entries, as tar would.
    LinkResolver links(archive_entry_linkresolver_new());
    ArchiveEntry entry(archive_entry_new());
    if (!links || !entry) throw Error("cannot read " + top + ": out of memory");
    archive_entry_linkresolver_set_strategy(links.get(), ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);

    const std::string prefix = top.back() == '/' ? top : top + "/";
    SafeWriter writer(root_fd);
    for (;;) {
        int r = archive_read_next_header2(a.get(), entry.get());
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) throw Error("cannot read " + top + ": " + message(a.get()));
        const std::string path = archive_entry_pathname(entry.get());
        if (path == top) {
            archive_entry_copy_pathname(entry.get(), ".");
        } else if (path.starts_with(prefix)) {
            archive_entry_copy_pathname(entry.get(), path.substr(prefix.size()).c_str());
        } else {
            throw Error("cannot read " + top + ": unexpected path " + path);
        }
        archive_entry* e = entry.get();
        archive_entry* spare = nullptr;  // only used by cpio-style strategies
        archive_entry_linkify(links.get(), &e, &spare);
        writer.write(a.get(), e);
        if (archive_read_disk_descend(a.get()) < ARCHIVE_WARN)
            throw Error("cannot read " + top + ": " + message(a.get()));
    }
    return writer.finish();
}

}  // namespace srl
