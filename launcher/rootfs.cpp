#include "launcher/rootfs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "launcher/error.hpp"
#include "launcher/validate.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

void do_mount(const char* src, const std::string& target, const char* type, unsigned long flags,
              const std::string& data = {}) {
    if (mount(src, target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) < 0)
        throw_errno(std::string(flags & MS_REMOUNT ? "remount " : "mount ") + (type ? type : src ? src : "") +
                    " on " + target);
}

std::string fd_path(const Fd& fd) { return "/proc/self/fd/" + std::to_string(fd.get()); }

// Opens `path` inside the tree at `root` the way the container will see it: absolute
// symlinks and ".." resolve against `root`, never the host, so an image cannot point a
// mount target at a host directory. Missing components are created (as directories, and the
// last one as `last_is_file` says) when `create` is set.
Fd open_in_root(const Fd& root, const std::string& path, bool create, bool last_is_file = false) {
    fs::path rel = fs::path(path).relative_path();
    std::string walked;
    Fd dir(check(dup(root.get()), "dup"));
    auto parts = std::vector<fs::path>(rel.begin(), rel.end());
    for (size_t i = 0; i < parts.size(); ++i) {
        std::string part = parts[i].string();
        if (part.empty() || part == ".") continue;
        // RESOLVE_IN_ROOT takes each component's directory as the root, so ".." would stay
        // where it is ("/lib/../x" opening /lib/x): paths here never have one (container_path).
        if (part == "..") throw Error("\"..\" in the path " + shown(path) + " in the container");
        bool last = i + 1 == parts.size();
        open_how how{};
        how.flags = O_PATH | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        walked += "/" + part;
        long fd = syscall(SYS_openat2, dir.get(), part.c_str(), &how, sizeof how);
        if (fd < 0 && errno == ENOENT && create) {
            if (last && last_is_file) {
                Fd f(check(openat(dir.get(), part.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644),
                           "create mount point " + walked));
            } else if (mkdirat(dir.get(), part.c_str(), 0755) < 0 && errno != EEXIST) {
                throw_errno("create mount point " + walked);
            }
            fd = syscall(SYS_openat2, dir.get(), part.c_str(), &how, sizeof how);
        }
        if (fd < 0) throw_errno("open " + walked + " in the container");
        dir.reset(static_cast<int>(fd));
    }
    return dir;
}

// Binds src onto `path` inside root (creating the mount point when asked). A read-only
// bind needs a second step, since MS_RDONLY is ignored with the first MS_BIND; that remount
// must name the new mount, so the path is resolved again: an fd opened before the mount
// still points at the directory it now covers.
void bind_mount(const std::string& src, const Fd& root, const std::string& path, bool read_only,
                bool recursive = false, bool create = false, bool create_file = false) {
    unsigned long rec = recursive ? MS_REC : 0;
    do_mount(src.c_str(), fd_path(open_in_root(root, path, create, create_file)), nullptr, MS_BIND | rec);
    if (!read_only) return;
    Fd mounted = open_in_root(root, path, false);  // the new mount, not what it covers
    std::string target = fd_path(mounted);
    if (mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | rec, nullptr) == 0) return;
    if (errno != EPERM) throw_errno("remount " + path + " read-only");
    // In a user namespace (rootless) the flags a host mount had when the namespace was made
    // are locked (nosuid, nodev, noexec, the atime mode): a remount that would clear one
    // is refused. Keep the ones the mount has, as runc does.
    struct statvfs sv {};
    check(statvfs(target.c_str(), &sv), "statvfs " + path);
    unsigned long keep = 0;
    const std::pair<unsigned long, unsigned long> flags[] = {{ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV},
                                                             {ST_NOEXEC, MS_NOEXEC}, {ST_NOATIME, MS_NOATIME},
                                                             {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
    for (const auto& [st, ms] : flags)
        if (sv.f_flag & st) keep |= ms;
    do_mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | rec | keep);
}

// Device nodes the container gets in its private /dev. Inside a user namespace mknod is
// refused, so the host's nodes are bind-mounted instead, as crun and runc do.
struct DeviceNode {
    const char* name;
    unsigned major, minor;
};
constexpr DeviceNode kDevices[] = {{"null", 1, 3},    {"zero", 1, 5},    {"full", 1, 7},
                                   {"random", 1, 8},  {"urandom", 1, 9}, {"tty", 5, 0}};

void mount_dev(const ContainerSpec& spec, const Fd& root) {
    Fd dev = open_in_root(root, "/dev", true);
    do_mount("tmpfs", fd_path(dev), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    dev = open_in_root(root, "/dev", false);  // the fresh tmpfs, not the directory below it
    for (const auto& d : kDevices) {
        std::string host = std::string("/dev/") + d.name;
        if (!spec.user_namespace) {
            if (mknodat(dev.get(), d.name, S_IFCHR | 0666, makedev(d.major, d.minor)) < 0)
                throw_errno("mknod /dev/" + std::string(d.name));
            fchmodat(dev.get(), d.name, 0666, 0);  // umask must not narrow the mode
        } else {
            Fd f(check(openat(dev.get(), d.name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666),
                       "create /dev/" + std::string(d.name)));
            bind_mount(host, root, "/dev/" + std::string(d.name), false);
        }
    }
    // --device nodes, wherever the container wants them (and with --privileged every host
    // node). One already there is kept: the standard nodes above come first.
    for (const auto& d : spec.devices) {
        fs::path where(d.container_path);
        Fd parent = open_in_root(root, where.parent_path().string(), true);
        std::string name = where.filename().string();
        struct stat existing {};
        if (fstatat(parent.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) continue;
        if (!spec.user_namespace) {
            mode_t type = d.type == 'b' ? S_IFBLK : S_IFCHR;
            if (mknodat(parent.get(), name.c_str(), type | d.mode, makedev(d.major, d.minor)) < 0 && errno != EEXIST)
                throw_errno("mknod " + d.container_path);
            fchmodat(parent.get(), name.c_str(), d.mode, 0);
        } else {
            Fd f(check(openat(parent.get(), name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666),
                       "create " + d.container_path));
            bind_mount(d.host_path, root, d.container_path, false);
        }
    }
    for (const char* dir : {"pts", "shm", "mqueue"})
        check(mkdirat(dev.get(), dir, 0755), std::string("mkdir /dev/") + dir);
    // -t: the place the container's pty is bound to once its devpts exists
    // (make_container_console, launcher/terminal.hpp).
    if (spec.process.terminal)
        Fd(check(openat(dev.get(), "console", O_CREAT | O_WRONLY | O_CLOEXEC, 0600), "create /dev/console"));
    // newinstance: the container's ptys are its own, not the host's. gid 5 (tty) only when
    // it exists in the container's id space.
    std::string pts_opts = "newinstance,ptmxmode=0666,mode=0620";
    if (!spec.user_namespace || map_to_host(spec.gid_mappings, 5)) pts_opts += ",gid=5";
    do_mount("devpts", fd_path(open_in_root(root, "/dev/pts", false)), "devpts",
             MS_NOSUID | MS_NOEXEC, pts_opts);
    do_mount("shm", fd_path(open_in_root(root, "/dev/shm", false)), "tmpfs",
             MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    do_mount("mqueue", fd_path(open_in_root(root, "/dev/mqueue", false)), "mqueue",
             MS_NOSUID | MS_NODEV | MS_NOEXEC);
    const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                         {"/proc/self/fd/0", "stdin"},
                                                         {"/proc/self/fd/1", "stdout"},
                                                         {"/proc/self/fd/2", "stderr"},
                                                         {"pts/ptmx", "ptmx"},
                                                         {"/proc/kcore", "core"}};
    for (const auto& [target, name] : links)
        check(symlinkat(target, dev.get(), name), std::string("symlink /dev/") + name);
}

// The container's view of its cgroups: its cgroup namespace makes each hierarchy's root its
// own cgroup. Mounted per hierarchy, as the host has them (v1, v2 or hybrid), read-only
// unless --privileged (as docker).
void mount_cgroups(const Fd& root, bool read_only, bool best_effort = false) {
    const unsigned long ro = read_only ? MS_RDONLY : 0;
    // Rootless: each hierarchy the kernel lets a user namespace mount, and no failure for
    // one it refuses (a view of the cgroups is not worth failing a run over).
    auto attempt = [best_effort](auto&& step) {
        try {
            step();
            return true;
        } catch (const Error&) {
            if (!best_effort) throw;
            return false;
        }
    };
    Fd dir = open_in_root(root, "/sys/fs/cgroup", true);
    std::ifstream self("/proc/self/cgroup");
    std::vector<std::pair<std::string, std::string>> hierarchies;  // (controllers, mount name)
    bool v2_only = true;
    for (std::string line; std::getline(self, line);) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        std::string ctrls = line.substr(a + 1, b - a - 1);
        if (!ctrls.empty()) v2_only = false;
        hierarchies.emplace_back(ctrls, ctrls.rfind("name=", 0) == 0 ? ctrls.substr(5) : ctrls);
    }
    if (v2_only) {
        attempt([&] { do_mount("cgroup2", fd_path(dir), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro); });
        return;
    }
    if (!attempt([&] { do_mount("tmpfs", fd_path(dir), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755"); }))
        return;
    for (const auto& [ctrls, name] : hierarchies) {
        attempt([&] {
            std::string mountpoint = "/sys/fs/cgroup/" + (ctrls.empty() ? std::string("unified") : name);
            Fd target = open_in_root(root, mountpoint, true);
            if (ctrls.empty())
                do_mount("cgroup2", fd_path(target), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro);
            else
                do_mount("cgroup", fd_path(target), "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro,
                         ctrls.rfind("name=", 0) == 0 ? "none," + ctrls : ctrls);
        });
    }
    attempt([&] {
        do_mount(nullptr, fd_path(open_in_root(root, "/sys/fs/cgroup", false)), nullptr,
                 MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "mode=755");
    });
}

bool exists_in_root(const Fd& root, const std::string& path, struct stat* st) {
    try {
        Fd target = open_in_root(root, path, false);
        return fstat(target.get(), st) == 0;
    } catch (const Error&) {
        return false;
    }
}

void mask(const Fd& root, const std::string& path) {
    struct stat st {};
    if (!exists_in_root(root, path, &st)) return;  // nothing there to hide
    if (S_ISDIR(st.st_mode))
        do_mount("tmpfs", fd_path(open_in_root(root, path, false)), "tmpfs", MS_RDONLY, "size=0");
    else
        bind_mount("/dev/null", root, path, false);
}

void make_read_only(const Fd& root, const std::string& path) {
    struct stat st {};
    if (!exists_in_root(root, path, &st)) return;
    bind_mount(fd_path(open_in_root(root, path, false)), root, path, true, true);
}

}  // namespace

namespace {

// An overlay mount (detached) with `lower` (a path, /proc/self/fd/N) as its lower layer.
// diff_upper: the upper dir must be a plain diff of the layers (a build step's layer), so no
// redirects and no metadata-only copies, which only this overlay could read back.
Fd create_overlay(const std::string& lower, const fs::path& upper, const fs::path& work, const fs::path& image,
                  bool diff_upper) {
    Fd fsfd(check(fsopen("overlay", FSOPEN_CLOEXEC), "fsopen overlay"));
    auto set = [&](const char* key, const std::string& value) {
        if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0)
            throw_errno(std::string("overlay option ") + key + "=" + value);
    };
    set("lowerdir", lower);
    set("upperdir", upper.string());
    set("workdir", work.string());
    if (diff_upper) {
        set("redirect_dir", "off");
        set("metacopy", "off");
    }
    if (fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
        throw_errno("create overlay over " + image.string());
    // Read-only comes last, in enter_rootfs: mount points must be created first.
    return Fd(check(fsmount(fsfd.get(), FSMOUNT_CLOEXEC, 0), "fsmount overlay"));
}

// Overlayfs before Linux 6.15 refuses a detached mount (our idmapped clone of the image) as a
// layer: it takes a private clone of each layer, which had to be a mount of the caller's mount
// namespace ("failed to clone lowerpath" in the kernel log, EINVAL). There, a child attaches
// the tree in a mount namespace of its own, private so that nothing reaches the host's,
// creates the overlay and hands its mount back over a socket: that mount holds its own clones
// of the layers and outlives the namespace. (The launcher has no other threads to fork beside.)
Fd overlay_via_private_namespace(const Fd& tree, const fs::path& container_dir, const fs::path& upper,
                                 const fs::path& work, const fs::path& image) {
    const fs::path at = container_dir / "lower";
    if (mkdir(at.c_str(), 0700) < 0 && errno != EEXIST) throw_errno("create " + at.string());
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair");
    Fd ours(sv[0]), theirs(sv[1]);
    pid_t pid = check(fork(), "fork");
    if (pid == 0) {
        ours.reset();
        std::string reply = "ok";
        Fd overlay;
        try {
            check(unshare(CLONE_NEWNS), "create a mount namespace");
            do_mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE);
            check(move_mount(tree.get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH),
                  "attach the image layer at " + at.string());
            Fd dir(check(open(at.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open " + at.string()));
            overlay = create_overlay(fd_path(dir), upper, work, image, false);
        } catch (const std::exception& e) {
            reply = e.what();
        }
        iovec iov{reply.data(), reply.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (overlay) {
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            int fd = overlay.get();
            std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        _exit(sendmsg(theirs.get(), &msg, MSG_NOSIGNAL) < 0 ? 1 : 0);
    }
    theirs.reset();
    char text[1024];
    iovec iov{text, sizeof text};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    while ((n = recvmsg(ours.get(), &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    rmdir(at.c_str());  // its mount went with the child's namespace
    cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        return Fd(fd);
    }
    throw Error(n > 0 ? std::string(text, static_cast<size_t>(n)) : "create overlay over " + image.string() +
                                                                      ": the helper process failed");
}

}  // namespace

void check_mount_destination(const std::string& path, const char* flag) {
    // runc's list (libcontainer/rootfs_linux.go, checkProcMount): files tools like LXCFS cover.
    static const char* const kProcFiles[] = {"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo",
                                             "/proc/stat",    "/proc/swaps",     "/proc/uptime",
                                             "/proc/loadavg", "/proc/slabinfo",  "/proc/net/dev",
                                             "/proc/sys/kernel/ns_last_pid"};
    auto bad = [&](const std::string& why) {
        return Error(std::string("invalid ") + flag + " destination \"" + shown(path) + "\": " + why);
    };
    if (path == "/") throw bad("the container's root cannot be covered");
    for (const char* fs_root : {"/proc", "/sys"}) {
        std::string root = fs_root;
        if (path != root && path.rfind(root + "/", 0) != 0) continue;
        for (const char* file : kProcFiles)
            if (path == file) return;
        throw bad("mounts on or under " + root + " are refused (the container's own " +
                  (root == "/proc" ? "procfs" : "sysfs") + " is there)");
    }
}

Fd make_rootfs_mount(const ContainerSpec& spec, const fs::path& container_dir, const Fd& userns_fd) {
    auto idmapped = [&](const fs::path& dir) {
        Fd tree(check(open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
                      "clone mount of " + dir.string()));
        if (userns_fd) {
            mount_attr attr{};
            attr.attr_set = MOUNT_ATTR_IDMAP;
            attr.userns_fd = static_cast<uint64_t>(userns_fd.get());
            check(mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr),
                  "idmap " + dir.string());
        }
        return tree;
    };
    if (spec.rootfs_is_plain_dir) return idmapped(spec.image_rootfs);

    fs::path upper = container_dir / "upper", work = container_dir / "work";
    if (!userns_fd) {
        // By fd: the option parser would split a path holding ':' or ','. Directory fds,
        // not clones of their mounts: overlayfs of every kernel takes those. A build step's
        // layers so far go over the image, top-most first, as overlayfs lists them.
        auto dir_fd = [](const fs::path& p) {
            return Fd(check(open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open " + p.string()));
        };
        std::vector<Fd> layers;
        std::string lowerdir;
        for (const auto& dir : spec.extra_lowers) {
            layers.push_back(dir_fd(dir));
            lowerdir += fd_path(layers.back()) + ":";
        }
        layers.push_back(dir_fd(spec.image_rootfs));
        lowerdir += fd_path(layers.back());
        return create_overlay(lowerdir, upper, work, spec.image_rootfs, spec.diff_upper);
    }
    // Build steps run without a user namespace; only the image is idmapped.
    if (!spec.extra_lowers.empty()) throw Error("layered roots are not supported with a user namespace");
    Fd lower = idmapped(spec.image_rootfs);
    try {
        return create_overlay(fd_path(lower), upper, work, spec.image_rootfs, false);
    } catch (const Error& e) {
        if (e.code() != EINVAL) throw;
    }
    return overlay_via_private_namespace(lower, container_dir, upper, work, spec.image_rootfs);
}

HostPaths HostPaths::open(const ContainerSpec& spec, const fs::path& container_dir) {
    auto path_fd = [](const fs::path& p) {
        return Fd(check(::open(p.c_str(), O_PATH | O_CLOEXEC), "open " + p.string()));
    };
    HostPaths h{path_fd(container_dir / "merged"), path_fd(container_dir / "hostname"),
                path_fd(container_dir / "hosts"), path_fd(container_dir / "resolv.conf"), {}};
    for (const auto& m : spec.mounts) h.mount_sources.push_back(m.kind == Mount::Kind::Bind ? path_fd(m.source) : Fd());
    return h;
}

void enter_rootfs(const ContainerSpec& spec, Fd rootfs, const HostPaths& host) {
    // Nothing mounted from here on may propagate back to the host.
    do_mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE);
    check(move_mount(rootfs.get(), "", host.mountpoint.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
          "attach the root filesystem");
    // The detached mount's fd now names the root of the attached mount.
    const Fd& root = rootfs;

    do_mount("proc", fd_path(open_in_root(root, "/proc", true)), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (spec.net == NetMode::None || spec.net == NetMode::Bridge || !spec.user_namespace) {
        // Writable only with --privileged, as docker.
        do_mount("sysfs", fd_path(open_in_root(root, "/sys", true)), "sysfs",
                 MS_NOSUID | MS_NODEV | MS_NOEXEC | (spec.privileged ? 0 : MS_RDONLY));
    } else {
        // sysfs shows the network namespace of its mounter and a user namespace may only
        // mount it for a netns it owns; with the host's network (or another container's), borrow
        // the host's /sys.
        bind_mount("/sys", root, "/sys", !spec.privileged, true, true);
    }
    mount_cgroups(root, !spec.privileged, spec.rootless);
    mount_dev(spec, root);

    for (size_t i = 0; i < spec.mounts.size(); ++i) {
        const Mount& m = spec.mounts[i];
        // `run` checked these; so does this, for any other way a spec is made.
        check_mount_destination(container_path(m.destination, "mount"), "mount");
        if (m.kind == Mount::Kind::Tmpfs) {
            do_mount("tmpfs", fd_path(open_in_root(root, m.destination, true)), "tmpfs",
                     MS_NOSUID | MS_NODEV, "mode=1777");
            continue;
        }
        struct stat st {};
        check(fstat(host.mount_sources[i].get(), &st), "stat " + m.source);
        bind_mount(fd_path(host.mount_sources[i]), root, m.destination, m.read_only, true, true, !S_ISDIR(st.st_mode));
    }
    // Files the container sees as its own identity, written per container on the host.
    const std::pair<const Fd*, const char*> files[] = {
        {&host.hostname, "/etc/hostname"}, {&host.hosts, "/etc/hosts"}, {&host.resolv_conf, "/etc/resolv.conf"}};
    for (const auto& [fd, path] : files) bind_mount(fd_path(*fd), root, path, false, false, true, true);

    for (const auto& p : spec.masked_paths) mask(root, p);
    for (const auto& p : spec.readonly_paths) make_read_only(root, p);
    if (spec.read_only_root) do_mount(nullptr, fd_path(root), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY);

    // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves the
    // container with no path back to the host's tree.
    check(fchdir(root.get()), "enter the root filesystem");
    check(static_cast<int>(syscall(SYS_pivot_root, ".", ".")), "pivot_root");
    check(umount2(".", MNT_DETACH), "detach the old root");
    check(chdir("/"), "chdir /");
}

}  // namespace srl
