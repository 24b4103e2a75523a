#include "launcher/build_fs.hpp"

#include <fcntl.h>
#include <glob.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>

#include "fetch/digest.hpp"
#include "images/archive.hpp"
#include "images/extract.hpp"
#include "launcher/error.hpp"

namespace srl::build {
namespace fs = std::filesystem;

namespace {

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

long openat2_in_root(int root_fd, const std::string& rel, std::uint64_t flags) {
    open_how how{};
    how.flags = flags | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return ::syscall(SYS_openat2, root_fd, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
}

// The components of an absolute or relative path, "." and empty ones dropped; ".." is kept for
// RESOLVE_IN_ROOT to clamp at the root, as the kernel does inside a container.
std::vector<std::string> components(const std::string& path) {
    std::vector<std::string> out;
    for (const auto& c : fs::path(path)) {
        const std::string s = c.string();
        if (s.empty() || s == "/" || s == ".") continue;
        out.push_back(s);
    }
    return out;
}

Fd reopen(int fd, int flags, const std::string& shown) {
    return Fd(check(::open(fd_path(fd).c_str(), flags | O_CLOEXEC), "cannot open " + shown));
}

void hash_tree(Digester& sha, int parent, const std::string& name, const std::string& rel) {
    struct stat st {};
    const int at = name.empty() ? AT_EMPTY_PATH : 0;
    check(::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW | at), "cannot stat " + rel);
    const std::string perm = std::to_string(st.st_mode & 07777);
    if (S_ISDIR(st.st_mode)) {
        sha.update("d " + rel + " " + perm + "\n");
        Fd dir = name.empty() ? reopen(parent, O_RDONLY | O_DIRECTORY, rel)
                              : Fd(check(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + rel));
        std::vector<std::string> names = list_directory(dir.get(), rel);
        std::sort(names.begin(), names.end());
        for (const auto& n : names) hash_tree(sha, dir.get(), n, rel + "/" + n);
    } else if (S_ISREG(st.st_mode)) {
        sha.update("f " + rel + " " + perm + " " + std::to_string(st.st_size) + "\n");
        Fd f = name.empty() ? reopen(parent, O_RDONLY, rel)
                            : Fd(check(::openat(parent, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + rel));
        char buf[64 * 1024];
        for (ssize_t n; (n = ::read(f.get(), buf, sizeof buf)) != 0;) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("cannot read " + rel);
            sha.update(buf, static_cast<std::size_t>(n));
        }
        sha.update("\n");
    } else if (S_ISLNK(st.st_mode)) {
        char target[4096];
        const ssize_t n = check(::readlinkat(parent, name.c_str(), target, sizeof target), "cannot read link " + rel);
        sha.update("l " + rel + " " + std::string(target, static_cast<std::size_t>(n)) + "\n");
    } else {
        sha.update("o " + rel + " " + std::to_string(st.st_mode) + " " + std::to_string(st.st_rdev) + "\n");
    }
}

// Copies one source (its contents, for a directory, when top_name is empty) beneath dir_fd.
// SafeWriter's root must be a real directory fd (it sets the mode and times of "./" entries).
Fd writable(int dir_fd) { return reopen(dir_fd, O_RDONLY | O_DIRECTORY, "the destination directory"); }

void copy_tree(const Source& s, int path_fd, const std::string& top_name, const CopyOptions& o) {
    const Fd dir = writable(path_fd);
    const int dir_fd = dir.get();
    ArchiveReader a(archive_read_disk_new());
    if (!a) throw Error("out of memory");
    // The top is our /proc/self/fd link to the resolved source: followed; nothing below is.
    archive_read_disk_set_symlink_hybrid(a.get());
    // Context files' ACLs, flags and xattrs are the host's business, not the image's.
    archive_read_disk_set_behavior(a.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_ACL |
                                                ARCHIVE_READDISK_NO_FFLAGS | ARCHIVE_READDISK_NO_XATTR);
    const std::string top = fd_path(s.fd.get());
    if (archive_read_disk_open(a.get(), top.c_str()) != ARCHIVE_OK)
        throw Error("cannot read " + s.written + ": " + archive_error_string(a.get()));
    LinkResolver links(archive_entry_linkresolver_new());
    ArchiveEntry entry(archive_entry_new());
    archive_entry_linkresolver_set_strategy(links.get(), ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    SafeWriter writer(dir_fd, SafeWriter::Mode::layer);
    for (;;) {
        const int r = archive_read_next_header2(a.get(), entry.get());
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) throw Error("cannot read " + s.written + ": " + archive_error_string(a.get()));
        const std::string path = archive_entry_pathname(entry.get());
        std::string rel;
        if (path == top) rel = top_name;
        else if (path.starts_with(top + "/")) rel = (top_name.empty() ? "" : top_name + "/") + path.substr(top.size() + 1);
        else throw Error("cannot read " + s.written + ": unexpected path " + path);
        if (rel.empty()) {  // the source directory itself: its contents go into the destination
            if (archive_read_disk_descend(a.get()) < ARCHIVE_WARN) throw Error("cannot read " + s.written);
            continue;
        }
        archive_entry* e = entry.get();
        archive_entry_copy_pathname(e, rel.c_str());
        archive_entry_set_uid(e, o.owner.uid);
        archive_entry_set_gid(e, o.owner.gid);
        if (o.chmod && archive_entry_filetype(e) != AE_IFLNK) archive_entry_set_perm(e, *o.chmod);
        archive_entry* spare = nullptr;
        archive_entry_linkify(links.get(), &e, &spare);
        writer.write(a.get(), e);
        if (archive_read_disk_descend(a.get()) < ARCHIVE_WARN) throw Error("cannot read " + s.written + ": " + archive_error_string(a.get()));
    }
    writer.finish();
}

// ADD's archives: tar only (as Docker), in any of the compressions Docker unpacks and zstd.
ArchiveReader open_tar(const Source& s) {
    ArchiveReader a(archive_read_new());
    archive_read_support_format_tar(a.get());
    for (auto f : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2, archive_read_support_filter_xz,
                   archive_read_support_filter_zstd})
        f(a.get());
    if (archive_read_open_filename(a.get(), fd_path(s.fd.get()).c_str(), 64 * 1024) != ARCHIVE_OK) return {};
    return a;
}

bool is_tar(const Source& s) {
    if (s.is_dir) return false;
    ArchiveReader a = open_tar(s);
    archive_entry* e;
    return a && archive_read_next_header(a.get(), &e) == ARCHIVE_OK;
}

void extract_tar(const Source& s, int path_fd) {
    const Fd dir = writable(path_fd);
    const int dir_fd = dir.get();
    ArchiveReader a = open_tar(s);
    if (!a) throw Error("cannot read " + s.written + " as a tar archive");
    SafeWriter writer(dir_fd, SafeWriter::Mode::layer);
    for (;;) {
        archive_entry* e;
        const int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) throw Error("cannot read " + s.written + ": " + archive_error_string(a.get()));
        try {
            writer.write(a.get(), e);
        } catch (const Error& err) {
            throw Error("ADD " + s.written + ": " + err.what());
        }
    }
    writer.finish();
}

bool empty_dir_at(int dir_fd, const std::string& name) {
    Fd d(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) return false;
    char v[8];
    if (::fgetxattr(d.get(), "trusted.overlay.opaque", v, sizeof v) > 0) return false;
    return list_directory(d.get(), name).empty();
}

}  // namespace

Fd mount_layers(const std::vector<fs::path>& lowers, const fs::path& upper, const fs::path& work) {
    std::vector<Fd> dirs;
    std::string lowerdir;
    for (const auto& dir : lowers) {
        dirs.emplace_back(check(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "cannot open layer " + dir.string()));
        lowerdir += (lowerdir.empty() ? "" : ":") + fd_path(dirs.back().get());
    }
    Fd fsfd(check(fsopen("overlay", FSOPEN_CLOEXEC), "fsopen overlay"));
    auto set = [&](const char* key, const std::string& value) {
        if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0)
            throw_errno(std::string("overlay option ") + key + "=" + value);
    };
    set("lowerdir", lowerdir);
    if (!upper.empty()) {
        set("upperdir", upper.string());
        set("workdir", work.string());
    }
    set("redirect_dir", "off");
    set("metacopy", "off");
    if (fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) throw_errno("cannot mount the build's layers");
    return Fd(check(fsmount(fsfd.get(), FSMOUNT_CLOEXEC, upper.empty() ? MOUNT_ATTR_RDONLY : 0), "fsmount overlay"));
}

Fd open_dir_in_image(int root_fd, const std::string& path, bool create, Owner owner) {
    Fd cur(check(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0), "dup"));
    std::string sofar;
    for (const auto& c : components(path)) {
        const std::string next = sofar + "/" + c;
        long fd = openat2_in_root(root_fd, next, O_PATH | O_DIRECTORY);
        if (fd < 0 && errno == ENOENT && create && c != "..") {
            if (::mkdirat(cur.get(), c.c_str(), 0755) == 0) {
                check(::fchownat(cur.get(), c.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW), "cannot set owner of " + next);
                check(::fchmodat(cur.get(), c.c_str(), 0755, 0), "cannot set mode of " + next);
            } else if (errno != EEXIST) {
                throw_errno("cannot create directory " + next + " in the image");
            }
            fd = openat2_in_root(root_fd, next, O_PATH | O_DIRECTORY);
        }
        if (fd < 0) throw_errno((create ? "cannot create directory " : "cannot open directory ") + next + " in the image");
        cur = Fd(static_cast<int>(fd));
        sofar = next;
    }
    return cur;
}

std::vector<Source> resolve_sources(int context_fd, const fs::path& context, const std::vector<std::string>& written,
                                    const std::string& what) {
    std::vector<Source> out;
    for (const auto& w : written) {
        std::string p = w;
        while (p.starts_with('/')) p.erase(0, 1);  // "/x" is the context's x, as with Docker
        const fs::path norm = fs::path(p.empty() ? "." : p).lexically_normal();
        if (!norm.empty() && *norm.begin() == "..")
            throw Error(what + " " + w + ": the path is outside the build context");
        std::vector<std::string> rels;
        if (w.find_first_of("*?[") != std::string::npos) {
            // Matched by glob(3) in the context; each match is then opened inside the context like
            // any other source, so a symlink on the way cannot lead out of it.
            glob_t g{};
            const std::string pattern = (context / norm).string();
            const int r = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
            for (std::size_t i = 0; r == 0 && i < g.gl_pathc; ++i)
                rels.push_back(fs::path(g.gl_pathv[i]).lexically_relative(context).string());
            ::globfree(&g);
            if (rels.empty()) throw Error(what + " " + w + ": no file in the build context matches");
            std::sort(rels.begin(), rels.end());
        } else {
            rels.push_back(norm == "." ? "" : norm.string());
        }
        for (const auto& rel : rels) {
            const long fd = openat2_in_root(context_fd, rel, O_PATH);
            if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
                throw Error(what + " " + w + ": no such file or directory in the build context");
            Source s{w, rel, Fd(static_cast<int>(check(fd, "cannot open " + w + " in the build context"))), false, ""};
            struct stat st {};
            check(::fstat(s.fd.get(), &st), "cannot stat " + w);
            s.is_dir = S_ISDIR(st.st_mode);
            s.name = rel.empty() ? "" : fs::path(rel).filename().string();
            out.push_back(std::move(s));
        }
    }
    return out;
}

std::string hash_sources(const std::vector<Source>& sources) {
    Digester sha;
    for (const auto& s : sources) {
        sha.update("source " + s.rel + "\n");
        hash_tree(sha, s.fd.get(), "", s.name.empty() ? "." : s.name);
    }
    return sha.digest();
}

void copy_sources(int root_fd, const std::vector<Source>& sources, const CopyOptions& o) {
    const bool into_dir = o.dest.ends_with('/');
    if (sources.size() > 1 && !into_dir)
        throw Error("with more than one source, the destination must be a directory ending in /: " + o.dest);
    for (const auto& s : sources) {
        if (s.is_dir || (o.extract_archives && is_tar(s))) {
            Fd dir = open_dir_in_image(root_fd, o.dest, true, o.owner);
            if (s.is_dir) copy_tree(s, dir.get(), "", o);
            else extract_tar(s, dir.get());
            continue;
        }
        const long existing = openat2_in_root(root_fd, o.dest, O_PATH | O_DIRECTORY);
        if (existing >= 0) ::close(static_cast<int>(existing));
        const fs::path dest(o.dest);
        if (into_dir || existing >= 0) {
            Fd dir = open_dir_in_image(root_fd, o.dest, true, o.owner);
            copy_tree(s, dir.get(), s.name, o);
        } else {
            const std::string name = dest.filename().string();
            if (name.empty() || name == "..") throw Error("cannot copy " + s.written + " to " + o.dest);
            Fd dir = open_dir_in_image(root_fd, dest.parent_path().string(), true, o.owner);
            copy_tree(s, dir.get(), name, o);
        }
    }
}

void remove_mount_stubs(const fs::path& upper, const std::vector<fs::path>& lowers) {
    Fd top(check(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "cannot open " + upper.string()));
    for (const char* dir : {"proc", "sys", "dev"})
        if (empty_dir_at(top.get(), dir)) ::unlinkat(top.get(), dir, AT_REMOVEDIR);
    Fd etc(::openat(top.get(), "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!etc) return;
    for (const char* file : {"hostname", "hosts", "resolv.conf"}) {
        struct stat st {};
        if (::fstatat(etc.get(), file, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
            ::unlinkat(etc.get(), file, 0);
    }
    if (!empty_dir_at(top.get(), "etc")) return;
    // /etc copied up only to hold those mount points: gone too, unless the step changed its
    // owner or mode. What the layers below have there is the top-most one's (a 0/0 character
    // device is a whiteout: none).
    struct stat mine {}, below {};
    check(::fstat(etc.get(), &mine), "cannot stat " + upper.string() + "/etc");
    bool found = false;
    for (const auto& l : lowers) {
        if (::lstat((l / "etc").c_str(), &below) == 0) {
            found = !(S_ISCHR(below.st_mode) && below.st_rdev == 0);
            break;
        }
    }
    if (!found || ((below.st_mode == mine.st_mode) && below.st_uid == mine.st_uid && below.st_gid == mine.st_gid))
        ::unlinkat(top.get(), "etc", AT_REMOVEDIR);
}

}  // namespace srl::build
