#include "launcher/rootless.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "launcher/error.hpp"
#include "launcher/state.hpp"

extern char** environ;

namespace srl {

namespace fs = std::filesystem;

namespace {

// The kernel's limit on lines in a uid_map/gid_map (since Linux 4.15).
constexpr size_t kMaxMapLines = 340;

std::string user_name(uid_t uid) {
    if (const passwd* pw = getpwuid(uid)) return pw->pw_name;
    return std::to_string(uid);
}

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// newuidmap/newgidmap on PATH, else where Debian puts them; "" when missing.
std::string find_helper(const std::string& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path += ":/usr/bin:/bin";
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/" + name;
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

// A map the kernel lets an unprivileged process write itself: its own id, once.
bool is_own_id_only(const std::vector<IdMapping>& maps, uint32_t own) {
    return maps.size() == 1 && maps[0].count == 1 && maps[0].host == own;
}

std::string describe(const std::vector<SubordinateRange>& ranges) {
    std::string out;
    for (const auto& r : ranges)
        out += ", " + std::to_string(r.start) + "-" + std::to_string(uint64_t(r.start) + r.count - 1);
    return out;
}

// Runs newuidmap/newgidmap PID C H N [C H N...] and waits for it; its message, if it fails,
// becomes the error.
void run_map_helper(const std::string& name, pid_t pid, const std::vector<IdMapping>& maps) {
    std::string helper = find_helper(name);
    if (helper.empty()) throw Error(name + " not found: install Debian's uidmap package");
    std::vector<std::string> args{name, std::to_string(pid)};
    for (const auto& m : maps)
        for (uint32_t v : {m.container, m.host, m.count}) args.push_back(std::to_string(v));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int pipe_fds[2];
    check(pipe2(pipe_fds, O_CLOEXEC), "pipe");
    Fd out_r(pipe_fds[0]), out_w(pipe_fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDERR_FILENO);
    // The launcher blocks the signals it forwards; the helper starts with a clean mask.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t helper_pid = -1;
    int err = posix_spawn(&helper_pid, helper.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) throw Error("run " + helper, err);
    out_w.reset();
    std::string output;
    char buf[512];
    for (ssize_t n; (n = read(out_r.get(), buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        output.append(buf, static_cast<size_t>(n));
    }
    int status = 0;
    while (waitpid(helper_pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    if (output.rfind(name + ": ", 0) == 0) output.erase(0, name.size() + 2);
    throw Error(name + " failed" + (output.empty() ? "" : ": " + output));
}

void write_proc_file(pid_t pid, const char* name, const std::string& text) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + name;
    Fd fd(check(open(path.c_str(), O_WRONLY | O_CLOEXEC), "open " + path));
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) throw_errno("write " + path);
}

// Does nothing: a rootless run without resource flags has no cgroup of its own and stays
// in the caller's (its cgroup namespace is rooted there).
class NoCgroup final : public Cgroup {
public:
    void attach(pid_t) override {}
    bool oom_killed() const override { return false; }
    CgroupStats stats() const override { return {}; }
    std::vector<fs::path> paths() const override { return {}; }
};

// Which controller each resource flag needs, in the order the flags are listed in --help.
std::vector<std::pair<const char*, const char*>> needed_controllers(const Resources& r) {
    std::vector<std::pair<const char*, const char*>> out;  // (flag, v2 controller)
    if (r.memory) out.emplace_back("--memory", "memory");
    if (r.memory_swap) out.emplace_back("--memory-swap", "memory");
    if (r.cpu_shares) out.emplace_back("--cpu-shares", "cpu");
    if (r.cpu_quota_us) out.emplace_back("--cpus", "cpu");
    if (!r.cpuset_cpus.empty()) out.emplace_back("--cpuset-cpus", "cpuset");
    if (!r.cpuset_mems.empty()) out.emplace_back("--cpuset-mems", "cpuset");
    if (r.pids_limit) out.emplace_back("--pids-limit", "pids");
    if (r.blkio_weight) out.emplace_back("--blkio-weight", "io");
    if (!r.read_bps.empty()) out.emplace_back("--device-read-bps", "io");
    if (!r.write_bps.empty()) out.emplace_back("--device-write-bps", "io");
    if (!r.read_iops.empty()) out.emplace_back("--device-read-iops", "io");
    if (!r.write_iops.empty()) out.emplace_back("--device-write-iops", "io");
    return out;
}

// Delegated the way systemd (Delegate=yes) and admins delegate: the directory and the files
// a manager writes, cgroup.procs and cgroup.subtree_control, belong to the user.
bool delegated_to(const fs::path& dir, uid_t uid) {
    for (const fs::path& p : {dir, dir / "cgroup.procs", dir / "cgroup.subtree_control"}) {
        struct stat st {};
        if (stat(p.c_str(), &st) < 0 || st.st_uid != uid) return false;
    }
    return true;
}

}  // namespace

std::vector<SubordinateRange> parse_subordinate_ids(const std::string& text, const std::string& user, uint32_t id) {
    std::vector<SubordinateRange> out;
    const std::string id_text = std::to_string(id);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
        auto a = line.find(':');
        if (line.empty() || line[0] == '#' || a == std::string::npos) continue;
        auto b = line.find(':', a + 1);
        if (b == std::string::npos) continue;
        std::string owner = line.substr(0, a);
        if (owner != user && owner != id_text) continue;
        SubordinateRange r;
        const char* end = line.data() + line.size();
        auto s = std::from_chars(line.data() + a + 1, line.data() + b, r.start);
        auto c = std::from_chars(line.data() + b + 1, end, r.count);
        // shadow skips what it cannot parse; so do we (newuidmap would refuse it anyway).
        if (s.ec != std::errc() || s.ptr != line.data() + b || c.ec != std::errc() || c.ptr != end || r.count == 0 ||
            uint64_t(r.start) + r.count > 0xffffffffull)
            continue;
        out.push_back(r);
    }
    return out;
}

std::vector<IdMapping> rootless_id_map(uint32_t own, const std::vector<SubordinateRange>& ranges) {
    std::vector<IdMapping> maps{{0, own, 1}};
    uint64_t next = 1;
    for (const auto& r : ranges) {
        if (maps.size() == kMaxMapLines || next + r.count > 0xffffffffull) break;
        // The kernel refuses host ranges that overlap (a subuid range holding the user's own
        // id is a misconfiguration, not worth failing every run for): skip such a range.
        bool overlaps = false;
        for (const auto& m : maps)
            overlaps = overlaps || (r.start < uint64_t(m.host) + m.count && m.host < uint64_t(r.start) + r.count);
        if (overlaps) continue;
        maps.push_back({static_cast<uint32_t>(next), r.start, r.count});
        next += r.count;
    }
    return maps;
}

void check_rootless_id_map(const std::vector<IdMapping>& maps, uint32_t own,
                           const std::vector<SubordinateRange>& ranges, const char* flag, const char* file) {
    // The image's files belong to the caller, and without an idmapped mount (which takes
    // privilege over the file system's own namespace) they show as their owner's id: only
    // if that is 0 are they root's, with the writable layer the container's root can use.
    if (map_to_host(maps, 0) != own)
        throw Error(std::string(flag) + " must map container id 0 to your own id " + std::to_string(own) +
                    " in a rootless container: the image's files are yours, and their owner is its root");
    for (const auto& m : maps) {
        if (m.count == 1 && m.host == own) continue;
        // Covered by the ranges, adjacent ones joining, as newuidmap accepts.
        uint64_t at = m.host, end = uint64_t(m.host) + m.count;
        for (bool moved = true; at < end && moved;) {
            moved = false;
            for (const auto& r : ranges)
                if (at >= r.start && at < uint64_t(r.start) + r.count) {
                    at = uint64_t(r.start) + r.count;
                    moved = true;
                }
        }
        if (at < end)
            throw Error(std::string(flag) + " " + std::to_string(m.container) + ":" + std::to_string(m.host) + ":" +
                        std::to_string(m.count) + ": host ids " + std::to_string(m.host) + "-" +
                        std::to_string(end - 1) + " are not yours to map (yours: " + std::to_string(own) +
                        describe(ranges) + " from " + file + ")");
    }
}

void set_rootless_id_maps(ContainerSpec& spec, const std::vector<IdMapping>& uidmap_flags,
                          const std::vector<IdMapping>& gidmap_flags) {
    const uid_t uid = getuid();
    const gid_t gid = getgid();
    const std::string user = user_name(uid);
    // Without the setuid helpers only the caller's own ids can be mapped, ranges or not.
    const bool helpers = !find_helper("newuidmap").empty() && !find_helper("newgidmap").empty();
    std::vector<SubordinateRange> subuids, subgids;
    if (helpers) {
        subuids = parse_subordinate_ids(read_text("/etc/subuid"), user, uid);
        subgids = parse_subordinate_ids(read_text("/etc/subgid"), user, uid);  // keyed by user, too
    }
    if (!uidmap_flags.empty() || !gidmap_flags.empty()) {
        check_rootless_id_map(uidmap_flags, uid, subuids, "--uidmap", "/etc/subuid");
        check_rootless_id_map(gidmap_flags, gid, subgids, "--gidmap", "/etc/subgid");
        spec.uid_mappings = uidmap_flags;
        spec.gid_mappings = gidmap_flags;
    } else {
        spec.uid_mappings = rootless_id_map(uid, subuids);
        spec.gid_mappings = rootless_id_map(gid, subgids);
        bool single_uid = spec.uid_mappings.size() == 1, single_gid = spec.gid_mappings.size() == 1;
        // A single-id map still runs most images (everything in them belongs to root), so it
        // is a notice, not an error, as podman does; said on every run, since the run's
        // output is where the user will look when `chown` or `apt-get` then fails.
        if (single_uid || single_gid) {
            std::string why = !helpers ? "newuidmap/newgidmap not found (Debian package uidmap)"
                              : single_uid && single_gid ? "no /etc/subuid and /etc/subgid ranges for user " + user
                              : single_uid ? "no /etc/subuid range for user " + user
                                           : "no /etc/subgid range for user " + user;
            std::fprintf(stderr,
                         "srlaunch: %s: the container maps only your own id, as root; other ids show as "
                         "nobody and cannot be chowned to\n",
                         why.c_str());
        }
    }
    validate_id_mappings(spec.uid_mappings, "--uidmap");
    validate_id_mappings(spec.gid_mappings, "--gidmap");
    spec.user_namespace = true;
}

bool rootless_setgroups_denied(const ContainerSpec& spec) {
    return spec.rootless && is_own_id_only(spec.gid_mappings, getgid());
}

void write_rootless_id_maps(pid_t pid, const ContainerSpec& spec) {
    // The kernel lets an unprivileged process (one without CAP_SETUID/CAP_SETGID over the
    // parent namespace) write a map only of its own euid/egid, count 1. Anything more goes
    // through the setuid helpers, which check the map against /etc/subuid and /etc/subgid.
    if (is_own_id_only(spec.uid_mappings, getuid()))
        write_proc_file(pid, "uid_map", format_id_map(spec.uid_mappings));
    else
        run_map_helper("newuidmap", pid, spec.uid_mappings);
    if (is_own_id_only(spec.gid_mappings, getgid())) {
        // And such a gid map only once setgroups(2) is denied in the namespace for good:
        // otherwise its root could drop the caller's supplementary groups with setgroups
        // and pass a "negative" group permission (a file mode 0707 that shuts out one
        // group), which those groups exist to enforce (CVE-2014-8989). newgidmap denies it
        // itself when it maps no subgid range.
        write_proc_file(pid, "setgroups", "deny");
        write_proc_file(pid, "gid_map", format_id_map(spec.gid_mappings));
    } else {
        run_map_helper("newgidmap", pid, spec.gid_mappings);
    }
}

Fd make_rootless_rootfs(const ContainerSpec& spec, const fs::path& container_dir) {
    // We hold CAP_SYS_ADMIN only in our new user namespace, which owns the new mount
    // namespace: enough for open_tree clones and for the filesystems that allow mounting
    // there (FS_USERNS_MOUNT), overlayfs among them since 5.11.
    if (spec.rootfs_is_plain_dir)
        return Fd(check(open_tree(AT_FDCWD, spec.image_rootfs.c_str(),
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
                        "clone mount of " + spec.image_rootfs.string()));
    auto dir_fd = [](const fs::path& p) {
        return Fd(check(open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open " + p.string()));
    };
    // By fd: the option parser would split a path holding ':' or ','.
    Fd lower = dir_fd(spec.image_rootfs), upper = dir_fd(container_dir / "upper"), work = dir_fd(container_dir / "work");
    auto fd_path = [](const Fd& fd) { return "/proc/self/fd/" + std::to_string(fd.get()); };
    Fd fsfd(check(fsopen("overlay", FSOPEN_CLOEXEC), "fsopen overlay"));
    auto set = [&](const char* key, const std::string& value) {
        if (fsconfig(fsfd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0)
            throw_errno(std::string("overlay option ") + key);
    };
    set("lowerdir", fd_path(lower));
    set("upperdir", fd_path(upper));
    set("workdir", fd_path(work));
    // Whiteouts and opaque directories as user.overlay.* xattrs: trusted.* ones need
    // CAP_SYS_ADMIN in the initial user namespace, which a rootless overlay never has.
    if (fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) < 0)
        throw_errno("overlay option userxattr (kernel too old for rootless overlay?)");
    if (fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
        throw_errno("create overlay over " + spec.image_rootfs.string() + " in the user namespace");
    return Fd(check(fsmount(fsfd.get(), FSMOUNT_CLOEXEC, 0), "fsmount overlay"));
}

void enter_time_namespace_at_exec(int64_t seconds) {
    // unshare(CLONE_NEWTIME) moves only later children into the namespace, and execve:
    // since Linux 6.0 an exec (a new mm) enters time_for_children, so srinit starts inside.
    // Offsets can be written only until a process is in it, and take CAP_SYS_TIME in the
    // user namespace that owns it, ours.
    check(unshare(CLONE_NEWTIME), "create a time namespace");
    std::string text = "monotonic " + std::to_string(seconds) + " 0\nboottime " + std::to_string(seconds) + " 0\n";
    Fd fd(check(open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC), "open timens_offsets"));
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw_errno("set time namespace offsets");
}

RootlessCgroupHost RootlessCgroupHost::current() {
    RootlessCgroupHost h;
    h.layout = detect_cgroup_layout(h.mount);
    std::ifstream self("/proc/self/cgroup");
    for (std::string line; std::getline(self, line);)
        if (line.rfind("0::", 0) == 0) h.own = line.substr(3);
    h.uid = getuid();
    h.user = user_name(h.uid);
    return h;
}

std::optional<fs::path> rootless_cgroup_parent(const Resources& res, const RootlessCgroupHost& host) {
    auto needed = needed_controllers(res);
    if (needed.empty()) return std::nullopt;
    const std::string flag = needed.front().first;
    const std::string prefix = flag + " needs a cgroup, and this host does not delegate cgroups to user " + host.user;
    // v1 has no safe delegation to unprivileged users; a hybrid host keeps every controller
    // on v1 and its unified tree has none to hand out.
    if (host.layout != CgroupLayout::V2) throw Error(prefix + " (cgroup v1)");
    // The container's cgroup goes beside the launcher's, under their common parent: moving a
    // process takes write access to cgroup.procs of the common ancestor of both cgroups, and
    // cgroup v2 lets a cgroup hand controllers down only while it has no processes of its
    // own, which the launcher's own cgroup (holding the launcher) never is.
    fs::path own = host.own.empty() ? fs::path("/") : host.own;
    if (own == "/" || own.parent_path() == own)
        throw Error(prefix + " (cgroup v2: the launcher runs in the root cgroup)");
    fs::path parent = own.parent_path();
    fs::path dir = host.mount / parent.relative_path();
    if (!delegated_to(dir, host.uid))
        throw Error(prefix + " (cgroup v2: " + parent.string() + " is not delegated; run srlaunch in a " +
                    "delegated scope, e.g. `systemd-run --user --scope srlaunch ...`)");
    // " cpu memory pids " from a controller list file, so " memory " finds a whole word.
    auto words = [](const fs::path& file) {
        std::istringstream in(cgroupfs::read(file));
        std::string out = " ";
        for (std::string w; in >> w;) out += w + " ";
        return out;
    };
    const std::string available = words(dir / "cgroup.controllers"), enabled = words(dir / "cgroup.subtree_control");
    bool all_enabled = true;
    for (const auto& [f, controller] : needed) {
        const std::string word = " " + std::string(controller) + " ";
        if (available.find(word) == std::string::npos)
            throw Error(std::string(f) + " needs the " + controller +
                        " controller, which this host does not delegate to user " + host.user + " (cgroup v2: " +
                        parent.string() + " offers" +
                        (available == " " ? std::string(" none") : available.substr(0, available.size() - 1)) + ")");
        all_enabled = all_enabled && enabled.find(word) != std::string::npos;
    }
    if (!all_enabled && !cgroupfs::read(dir / "cgroup.procs").empty())
        throw Error(prefix + " (cgroup v2: " + parent.string() +
                    " has processes of its own, and only a cgroup without them can hand controllers down)");
    return parent;
}

std::unique_ptr<Cgroup> create_rootless_cgroup(const ContainerSpec& spec, const RecordCgroups& record) {
    auto parent = rootless_cgroup_parent(spec.resources, RootlessCgroupHost::current());
    if (!parent) return std::make_unique<NoCgroup>();
    // No device program: loading and attaching BPF takes privileges the user lacks. Nothing
    // is lost, as inside a user namespace mknod is refused and the only nodes are the host's
    // own, bind-mounted, which keep the host's permissions.
    Resources res = spec.resources;
    res.device_rules.clear();
    return create_cgroup_v2("/sys/fs/cgroup", *parent, spec.id, res, record);
}

void make_private_store(const fs::path& root) {
    // Missing components from the top down, each 0700 whatever the umask; existing ones are
    // left as their owner made them.
    std::vector<fs::path> missing;
    for (fs::path p = root; !p.empty() && !fs::exists(p) && p != p.parent_path(); p = p.parent_path())
        missing.push_back(p);
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (mkdir(it->c_str(), 0700) < 0 && errno != EEXIST) throw_errno("create " + it->string());
        chmod(it->c_str(), 0700);
    }
}

void remove_in_user_namespace(const Fd& userns, const fs::path& dir) noexcept {
    pid_t pid = fork();
    if (pid == 0) {
        // setns into a user namespace takes CAP_SYS_ADMIN in it, which its creator's euid
        // holds; it needs a single-threaded caller too, which a fresh child is. Inside, the
        // caller is root with CAP_DAC_OVERRIDE over every file whose owner is mapped there:
        // all the container could create.
        try {
            if (setns(userns.get(), CLONE_NEWUSER) == 0) remove_container_files(dir);
        } catch (...) {
        }
        _exit(0);
    }
    if (pid > 0)
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    try {
        remove_container_files(dir);  // what is left (nothing, unless the namespace was out of reach)
    } catch (...) {
    }
}

Fd user_namespace_like(const ContainerSpec& spec) {
    int p[2];
    check(pipe2(p, O_CLOEXEC), "pipe");
    Fd go_read(p[0]), go_write(p[1]);
    pid_t pid = fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        // The namespace lives while the parent holds its fd; we only have to make it.
        go_write.reset();
        if (unshare(CLONE_NEWUSER) < 0) _exit(1);
        char c;
        (void)!read(go_read.get(), &c, 1);
        _exit(0);
    }
    go_read.reset();
    struct Reap {
        pid_t pid;
        ~Reap() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } reap{pid};
    // The child may not have unshared yet: wait until its user namespace differs from ours.
    std::string own = fs::read_symlink("/proc/self/ns/user").string();
    std::string ns = "/proc/" + std::to_string(pid) + "/ns/user";
    for (int i = 0; i < 1000 && fs::read_symlink(ns).string() == own; ++i) usleep(1000);
    write_rootless_id_maps(pid, spec);
    return Fd(check(open(ns.c_str(), O_RDONLY | O_CLOEXEC), "open " + ns));
}

}  // namespace srl
