#include "launcher/container.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <fstream>
#include <vector>

#include <linux/close_range.h>

#include "launcher/cgroup.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/fd_passing.hpp"
#include "launcher/idmap.hpp"
#include "launcher/network.hpp"
#include "launcher/port_proxy.hpp"
#include "launcher/rootfs.hpp"
#include "launcher/rootless.hpp"
#include "launcher/srinit_config.hpp"
#include "launcher/state.hpp"
#include "launcher/supervisor.hpp"
#include "launcher/terminal.hpp"
#include "launcher/units.hpp"

namespace srl {

namespace fs = std::filesystem;

StorePaths StorePaths::resolve(const std::string& root_flag) {
    if (!root_flag.empty()) return {fs::absolute(root_flag)};
    if (const char* env = std::getenv("SRLAUNCH_ROOT"); env && *env) return {fs::absolute(env)};
    if (geteuid() == 0) return {"/var/lib/srlaunch"};
    const char* data = std::getenv("XDG_DATA_HOME");
    const char* home = std::getenv("HOME");
    if (data && *data) return {fs::path(data) / "srlaunch"};
    if (home && *home) return {fs::path(home) / ".local/share/srlaunch"};
    throw Error("cannot find a place for the store: set --root, SRLAUNCH_ROOT or HOME");
}

std::string new_container_id() {
    unsigned char bytes[32];
    if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) throw_errno("getrandom");
    static const char hex[] = "0123456789abcdef";
    std::string id;
    for (unsigned char b : bytes) {
        id += hex[b >> 4];
        id += hex[b & 15];
    }
    return id;
}

fs::path find_srinit() {
    if (const char* env = std::getenv("SRLAUNCH_INIT"); env && *env) return env;
    fs::path beside = fs::read_symlink("/proc/self/exe").parent_path() / "srinit";
    if (fs::exists(beside)) return beside;
    return "/usr/libexec/srlaunch/srinit";
}

namespace {

// A sealed in-memory copy of a file. srinit runs from one: as PID 1 its /proc/1/exe is
// visible to the container, and a container root that opened the host's binary for
// writing could replace the init of every later container (runc's CVE-2019-5736).
Fd sealed_copy(const fs::path& path, const char* name) {
    Fd src(check(open(path.c_str(), O_RDONLY | O_CLOEXEC), "open " + path.string()));
    Fd mem(check(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), "memfd_create"));
    struct stat st {};
    check(fstat(src.get(), &st), "stat " + path.string());
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = sendfile(mem.get(), src.get(), nullptr, static_cast<size_t>(st.st_size - off));
        if (n <= 0) throw_errno("copy " + path.string());
        off += n;
    }
    check(fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
          "seal the copy of " + path.string());
    return mem;
}

}  // namespace

Fd sealed_srinit() { return sealed_copy(find_srinit(), "srinit"); }

namespace {

// Marks every fd from `first` up close-on-exec. Whatever the caller of srlaunch had open
// without O_CLOEXEC (a directory, a pipe, a socket) would otherwise cross execve into the
// container's PID 1, whose /proc/1/fd a process with CAP_SYS_PTRACE can open: a way out to
// the host (the CVE-2024-21626 class). CLOSE_RANGE_CLOEXEC (Linux 5.11) marks them all in
// one call; before it, each open fd is marked by hand.
void cloexec_from(int first) {
    if (syscall(SYS_close_range, first, ~0u, CLOSE_RANGE_CLOEXEC) == 0) return;
    std::vector<int> fds;  // listed first: marking while the listing's own fd is open is fine
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
        int fd = std::atoi(e.path().filename().c_str());
        if (fd >= first) fds.push_back(fd);
    }
    for (int fd : fds) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

}  // namespace

void close_inherited_fds_except(int keep) {
    int first = 3;
    if (keep >= first) {
        if (keep > first) syscall(SYS_close_range, first, keep - 1, 0);
        first = keep + 1;
    }
    if (syscall(SYS_close_range, first, ~0u, 0) == 0) return;
    for (int fd = first; fd < 65536; ++fd) close(fd);
}

void exec_srinit(int srinit_fd, int config_fd) {
    // Move both fds clear of 3 first: either may be 3 now, and dup2 onto itself would keep
    // close-on-exec set.
    int config = check(fcntl(config_fd, F_DUPFD_CLOEXEC, 10), "dup config");
    int init = check(fcntl(srinit_fd, F_DUPFD_CLOEXEC, 10), "dup srinit");
    check(dup2(config, 3), "pass srinit its config");
    // Only 0, 1, 2 and the config fd cross into the container (srinit closes the config once
    // read). The fd srinit runs from is close-on-exec too: execveat needs it only until the
    // new image is loaded.
    cloexec_from(4);
    const char* argv[] = {"srinit", "--config-fd", "3", nullptr};
    const char* envp[] = {nullptr};
    syscall(SYS_execveat, init, "", argv, envp, AT_EMPTY_PATH);
    throw_errno("exec srinit");
}

Fd memfd_with(const std::string& content, const char* name) {
    Fd mem(check(memfd_create(name, MFD_CLOEXEC), "memfd_create"));
    if (write(mem.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        throw_errno("write config");
    check(lseek(mem.get(), 0, SEEK_SET), "seek config");
    return mem;
}

namespace {

// The child's process: SIGKILLed and reaped if we leave before it is waited for.
class ChildProcess {
public:
    explicit ChildProcess(pid_t pid) : pid_(pid) {}
    ~ChildProcess() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    pid_t pid() const { return pid_; }
    // Records that the caller reaped it.
    int reaped(int status) {
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_;
};

// Removes what a container left in the store, unless it is to be kept.
class ContainerDir {
public:
    ContainerDir(fs::path dir, bool keep) : dir_(std::move(dir)), keep_(keep) {}
    ~ContainerDir() {
        if (keep_) return;
        if (userns_) {
            remove_in_user_namespace(userns_, dir_);
            return;
        }
        try {
            remove_container_files(dir_);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "srlaunch: %s\n", e.what());
        }
    }
    // Rootless: removed from inside the container's user namespace (see rootless.hpp).
    void remove_within(Fd userns) { userns_ = std::move(userns); }
    ContainerDir(const ContainerDir&) = delete;
    ContainerDir& operator=(const ContainerDir&) = delete;
    const fs::path& path() const { return dir_; }
    void keep(bool k) { keep_ = k; }

private:
    fs::path dir_;
    bool keep_;
    Fd userns_;
};

// A container name held as a symlink names/NAME -> id: symlink() is atomic, so two
// containers can never take one name.
class NameClaim {
public:
    NameClaim(const fs::path& names, const std::string& name, const std::string& id) {
        if (name.empty()) return;
        fs::create_directories(names);
        path_ = names / name;
        if (symlink(id.c_str(), path_.c_str()) < 0) {
            if (errno == EEXIST) {
                path_.clear();
                throw Error("the container name \"" + name + "\" is already in use");
            }
            throw_errno("claim name " + name);
        }
    }
    ~NameClaim() {
        if (!path_.empty() && release_) unlink(path_.c_str());
    }
    NameClaim(const NameClaim&) = delete;
    NameClaim& operator=(const NameClaim&) = delete;
    void keep() { release_ = false; }

private:
    fs::path path_;
    bool release_ = true;
};

// A new network namespace has only `lo`, and it is down.
void bring_up_loopback() {
    Fd sock(check(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket"));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    check(ioctl(sock.get(), SIOCGIFFLAGS, &ifr), "get flags of lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    check(ioctl(sock.get(), SIOCSIFFLAGS, &ifr), "bring up lo");
}

void write_identity_files(const ContainerSpec& spec, const fs::path& dir) {
    write_text_file(dir / "hostname", spec.hostname + "\n");
    write_text_file(dir / "hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" +
                                       spec.hostname + "\n");
    std::string resolv = "# no network (--net none)\n";
    if (spec.net == NetMode::Host) {
        std::ifstream host("/etc/resolv.conf");
        resolv.assign(std::istreambuf_iterator<char>(host), std::istreambuf_iterator<char>());
    }
    write_text_file(dir / "resolv.conf", resolv);
}

struct ChildContext {
    const ContainerSpec* spec;
    const fs::path* dir;
    int sock;
    int srinit_fd;
    int config_fd;
    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;  // -1: as inherited
    std::optional<winsize> console_size;                // -t
};

// The parent-death signal fires only for a death after it was set: one that came before
// shows as the hang-up of the parent's end of our socket, which it holds until we exec.
void exit_if_parent_gone(int sock) {
    pollfd p{sock, POLLIN, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) _exit(125);
}

[[noreturn]] void child_main(const ChildContext& ctx) {
    const ContainerSpec& spec = *ctx.spec;
    try {
        // The container dies with its supervisor, from its first instruction on: a launcher
        // or monitor SIGKILLed at any moment leaves no container behind that nobody waits
        // for. A parent that died before this call closed its end of the socket, so the
        // receive below fails instead of going on unsupervised.
        check(prctl(PR_SET_PDEATHSIG, SIGKILL), "set the parent-death signal");
        Fd rootfs = receive_fd(ctx.sock);
        // Only now, inside its own cgroups (the parent attached us before "go"), so that
        // the namespace's root is the container's cgroup, not the launcher's.
        check(unshare(CLONE_NEWCGROUP), "create the cgroup namespace");
        HostPaths host = HostPaths::open(spec, *ctx.dir);
        if (spec.user_namespace) {
            // Until now we were the unmapped overflow id; become the container's root.
            check(setresgid(0, 0, 0), "setresgid 0 in the user namespace");
            check(setresuid(0, 0, 0), "setresuid 0 in the user namespace");
            // A change of credentials clears the parent-death signal: set it again.
            check(prctl(PR_SET_PDEATHSIG, SIGKILL), "set the parent-death signal");
            exit_if_parent_gone(ctx.sock);
        }
        // Rootless, only we can mount in the new namespaces (launcher/rootless.hpp).
        if (spec.rootless) rootfs = make_rootless_rootfs(spec, *ctx.dir);
        if (!rootfs) throw Error("no root filesystem received");
        check(sethostname(spec.hostname.data(), spec.hostname.size()), "sethostname");
        if (spec.net == NetMode::None) bring_up_loopback();
        enter_rootfs(spec, std::move(rootfs), host);
        if (spec.process.terminal) {
            // The pty comes from the container's own devpts, now mounted; its master goes
            // to the supervisor, which is the other end of the container's console.
            Fd master = make_container_console(ctx.console_size);
            send_fd(ctx.sock, master.get());
        } else {
            if (ctx.stdin_fd >= 0) check(dup2(ctx.stdin_fd, STDIN_FILENO), "attach stdin");
            if (ctx.stdout_fd >= 0) check(dup2(ctx.stdout_fd, STDOUT_FILENO), "attach stdout");
            if (ctx.stderr_fd >= 0) check(dup2(ctx.stderr_fd, STDERR_FILENO), "attach stderr");
            if (!spec.process.open_stdin) {
                // The container's own /dev/null, now that its /dev is in place.
                Fd null(check(open("/dev/null", O_RDONLY | O_CLOEXEC), "open /dev/null for stdin"));
                check(dup2(null.get(), STDIN_FILENO), "attach /dev/null to stdin");
            }
        }
        if (spec.rootless && spec.time_namespace) enter_time_namespace_at_exec(spec.boot_offset_s);
        // Again last, in case anything above changed credentials; srinit is no set-id
        // program, so exec keeps it.
        check(prctl(PR_SET_PDEATHSIG, SIGKILL), "set the parent-death signal");
        exit_if_parent_gone(ctx.sock);
        exec_srinit(ctx.srinit_fd, ctx.config_fd);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        send(ctx.sock, msg.data(), msg.size(), MSG_NOSIGNAL);
    }
    _exit(125);
}

void write_time_offsets(int64_t seconds) {
    // Offsets can be set only before the first process enters the namespace.
    std::string text = "monotonic " + std::to_string(seconds) + " 0\nboottime " + std::to_string(seconds) + " 0\n";
    Fd fd(check(open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC), "open timens_offsets"));
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw_errno("set time namespace offsets");
}


// `srlaunch attach` clients connect to <dir>/attach.sock. Bound through /proc/self/fd, as a
// store path can be longer than a socket address holds (108 bytes).
Fd listen_for_attach(const fs::path& dir) {
    Fd dirfd(check(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open " + dir.string()));
    Fd sock(check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach.sock", dirfd.get());
    check(bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), "bind the attach socket");
    check(listen(sock.get(), 16), "listen on the attach socket");
    return sock;
}

struct LaunchMode {
    bool detached = false;
    Fd* notify = nullptr;  // -d: "ok" or the error goes here once the container runs
};

ContainerState initial_state(const ContainerSpec& spec, const LaunchMode& mode) {
    ContainerState state;
    state.id = spec.id;
    state.name = spec.name;
    state.image = spec.image.empty() ? spec.image_rootfs.string() : spec.image;
    state.command = spec.process.args;
    state.created_ms = now_ms();
    state.detached = mode.detached;
    state.tty = spec.process.terminal;
    state.open_stdin = spec.process.open_stdin;
    state.auto_remove = spec.remove_on_exit;
    state.stop_timeout_s = spec.stop_timeout_s;
    state.monitor_pid = getpid();
    state.network = {{"mode", spec_to_json(spec)["linux"]["network"]}};
    for (const auto& p : spec.ports) state.network["ports"].push_back(format_port_mapping(p));
    return state;
}

int launch(ContainerSpec& spec, const StorePaths& store, const LaunchMode& mode) {
    fs::path dir = store.containers() / spec.id;
    fs::create_directories(store.containers());
    check(mkdir(dir.c_str(), 0700), "create " + dir.string());
    // Declared first, so released last: `wait` and `rm` take its release to mean that
    // the container is gone and everything below is cleaned up.
    SupervisorLock lock = SupervisorLock::acquire(dir);
    ContainerDir guard(dir, false);
    // An automatic user-namespace range goes back to the pool with the container.
    struct UsernsRelease {
        const StorePaths& store;
        const ContainerSpec& spec;
        bool keep = false;
        ~UsernsRelease() {
            if (!keep && spec.userns_auto) UsernsRanges(store.userns()).release(spec.id);
        }
    } userns_release{store, spec};
    if (spec.userns_auto) {
        uint32_t base = UsernsRanges(store.userns()).allocate(spec.id);
        for (auto* maps : {&spec.uid_mappings, &spec.gid_mappings}) *maps = {{0, base, UsernsRanges::kSize}};
    }
    // Recorded before anything else is made, and again before each resource is: a start
    // killed at any moment leaves a container that `ps -a` lists and `rm` removes whole.
    write_text_file(dir / "config.json", spec_to_json(spec).dump(2) + "\n");
    ContainerState state = initial_state(spec, mode);
    if (mode.detached) state.log_path = (dir / "container.log").string();
    write_state(dir, state);
    NameClaim name(store.names(), spec.name, spec.id);
    for (const char* sub : {"upper", "work", "merged"}) fs::create_directory(dir / sub);
    if (spec.user_namespace && !spec.rootfs_is_plain_dir) {
        // The writable layer's root is the container's "/": it must belong to its root.
        struct stat lower {};
        check(stat(spec.image_rootfs.c_str(), &lower), "stat " + spec.image_rootfs.string());
        uid_t uid = *map_to_host(spec.uid_mappings, 0);
        gid_t gid = *map_to_host(spec.gid_mappings, 0);
        for (const char* sub : {"upper", "work"}) check(chown((dir / sub).c_str(), uid, gid), "chown " + std::string(sub));
        check(chmod((dir / "upper").c_str(), lower.st_mode & 07777), "chmod upper");
    }
    write_identity_files(spec, dir);
    // `srlaunch exec` installs the same filter on what it runs.
    if (!spec.seccomp_bpf.empty()) write_text_file(dir / "seccomp.bpf", spec.seccomp_bpf);

    // -d: the container's output goes to a log (without -t straight from its stdio, so it
    // survives its monitor), and the monitor's own stderr too, so its last words are there.
    Fd log, attach, stdin_read, stdin_write;
    if (mode.detached) {
        log = Fd(check(open(state.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640), "create the log"));
        dup2(log.get(), STDERR_FILENO);
        attach = listen_for_attach(dir);
        if (spec.process.open_stdin && !spec.process.terminal) {
            int p[2];
            check(pipe2(p, O_CLOEXEC), "pipe");
            stdin_read = Fd(p[0]);
            stdin_write = Fd(p[1]);
        }
    }

    // Published ports are bound here, before the child exists; destroyed after the child is
    // reaped and before the dir goes: veth, lease and proxy go with it (launcher/network.hpp).
    ContainerNetwork network(spec, store, dir);

    // Created before the child exists, so it is in its cgroups before it execs anything;
    // declared before the child so the child is reaped before the cgroups are removed.
    auto record = [&](const std::vector<fs::path>& dirs) {
        for (const auto& p : dirs) state.cgroups.push_back(p.string());
        write_state(dir, state);
    };
    std::unique_ptr<Cgroup> cgroup = spec.rootless ? create_rootless_cgroup(spec, record)
                                                   : create_cgroup(spec.id, spec.resources, record);
    Fd srinit = sealed_srinit();
    Fd config = memfd_with(srinit_config_stream(spec), "srinit-config");
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), "socketpair");
    Fd parent_sock(pair[0]), child_sock(pair[1]);

    // Blocked before the clone so no signal is lost between it and the wait loop; srinit
    // sets its own mask, the workload gets a clean one.
    sigset_t forwarded, old_mask;
    sigemptyset(&forwarded);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGWINCH}) sigaddset(&forwarded, s);
    sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
    struct RestoreMask {
        sigset_t mask;
        ~RestoreMask() { sigprocmask(SIG_SETMASK, &mask, nullptr); }
    } restore{old_mask};

    // -it on a terminal: the caller's terminal talks to the container's pty.
    bool caller_terminal = spec.process.terminal && !mode.detached;
    std::optional<winsize> size;
    if (caller_terminal) size = terminal_size(isatty(STDIN_FILENO) ? STDIN_FILENO : STDOUT_FILENO);

    if (spec.time_namespace && !spec.rootless) {  // rootless: the child makes it, see child_main
        check(unshare(CLONE_NEWTIME), "create a time namespace");
        write_time_offsets(spec.boot_offset_s);
    }
    long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;  // cgroup: see child_main
    flags |= network.clone_flags();
    if (spec.user_namespace) flags |= CLONE_NEWUSER;
    // Raw clone with fork semantics: one call creates the child inside every namespace, so
    // it is PID 1 of its PID namespace and can mount that namespace's /proc itself.
    auto joined = network.enter_for_clone();  // --net container:X: the child is born in X's netns
    pid_t pid = static_cast<pid_t>(syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
    if (pid < 0) throw_errno("create the container's namespaces");
    if (pid == 0) {
        parent_sock.reset();
        ChildContext ctx{&spec, &dir, child_sock.get(), srinit.get(), config.get(), -1, -1, -1, std::nullopt};
        if (mode.detached && !spec.process.terminal) {
            ctx.stdout_fd = ctx.stderr_fd = log.get();
            ctx.stdin_fd = stdin_read.get();
        }
        ctx.console_size = size;
        child_main(ctx);
    }
    joined.reset();
    ChildProcess child(pid);
    child_sock.reset();
    stdin_read.reset();
    state.pid = pid;
    state.pid_start = process_start_time(pid);

    cgroup->attach(pid);
    Fd userns;
    if (spec.user_namespace) {
        if (spec.rootless)
            write_rootless_id_maps(pid, spec);
        else
            write_id_maps(pid, spec.uid_mappings, spec.gid_mappings);
        std::string ns = "/proc/" + std::to_string(pid) + "/ns/user";
        userns = Fd(check(open(ns.c_str(), O_RDONLY | O_CLOEXEC), "open " + ns));
        if (spec.rootless) guard.remove_within(Fd(check(fcntl(userns.get(), F_DUPFD_CLOEXEC, 0), "dup userns")));
    }
    network.attach(pid);  // --net bridge: veth, address, routes, /etc/hosts
    // Rootless, the child mounts the root itself: we have no CAP_SYS_ADMIN to do it here.
    Fd rootfs = spec.rootless ? Fd() : make_rootfs_mount(spec, dir, userns);
    send_fd(parent_sock.get(), rootfs.get());
    rootfs.reset();
    Fd console = wait_for_exec(parent_sock.get());
    parent_sock.reset();
    if (spec.process.terminal && !console) throw Error("the container's console did not arrive");
    network.start();  // -p: forwarding from now on
    if (auto address = network.address()) {
        char text[INET_ADDRSTRLEN];
        state.network["address"] = inet_ntop(AF_INET, &*address, text, sizeof text);
    }

    state.status = ContainerState::Status::Running;
    state.started_ms = now_ms();
    write_state(dir, state);
    guard.keep(!spec.remove_on_exit);
    if (!spec.remove_on_exit) {
        name.keep();
        userns_release.keep = true;
    }
    if (mode.notify) {
        (void)!write(mode.notify->get(), "ok", 2);
        mode.notify->reset();
    }

    SupervisorIo io;
    io.pty_master = console.get();
    io.attach_listener = attach.get();
    io.stdin_pipe = stdin_write.get();
    if (spec.process.terminal) {
        if (mode.detached) {
            io.log = log.get();
        } else {
            io.output = STDOUT_FILENO;
            if (spec.process.open_stdin) io.input = STDIN_FILENO;
        }
    }
    int status;
    {
        // Raw only while attached; restored on every way out of this block.
        std::optional<RawTerminal> raw;
        if (caller_terminal && spec.process.open_stdin) raw.emplace(STDIN_FILENO);
        status = child.reaped(supervise(child.pid(), spec.stop_timeout_s, forwarded, io));
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 125;
    state.oom_killed = cgroup->oom_killed();
    state.status = ContainerState::Status::Exited;
    state.exit_code = code;
    state.finished_ms = now_ms();
    // The status outlives a store that cannot take the state any more (a full disk), and
    // the directory itself with --rm: `wait` reads it from the lock it holds open.
    lock.record_exit(code);
    try {
        write_state(dir, state);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "srlaunch: %s\n", e.what());
    }
    if (state.oom_killed) {
        // Told from the cgroup's own OOM count, not guessed from a SIGKILL.
        std::string limit = spec.resources.memory ? " (limit " + format_mib(*spec.resources.memory) + ")" : "";
        if (code == 137)
            std::fprintf(stderr, "srlaunch: killed: out of memory%s\n", limit.c_str());
        else
            std::fprintf(stderr, "srlaunch: a process of the container was killed: out of memory%s\n", limit.c_str());
    }
    return code;
}

}  // namespace

int run_container(ContainerSpec& spec, const StorePaths& store) { return launch(spec, store, {}); }

std::string start_detached(ContainerSpec& spec, const StorePaths& store) {
    int p[2];
    check(pipe2(p, O_CLOEXEC), "pipe");
    Fd report_read(p[0]), report_write(p[1]);
    std::fflush(nullptr);
    pid_t middle = fork();
    if (middle < 0) throw_errno("fork the monitor");
    if (middle == 0) {
        // Twice forked in a session of its own: the monitor is nobody's child but init's
        // (or the nearest subreaper's) and has no terminal to lose.
        report_read.reset();
        close_inherited_fds_except(report_write.get());
        setsid();
        pid_t monitor = fork();
        if (monitor != 0) _exit(monitor < 0 ? 125 : 0);
        int code = 125;
        try {
            if (chdir("/") < 0) throw_errno("chdir /");
            Fd null(check(open("/dev/null", O_RDWR | O_CLOEXEC), "open /dev/null"));
            for (int fd : {STDIN_FILENO, STDOUT_FILENO}) dup2(null.get(), fd);
            code = launch(spec, store, {true, &report_write});
        } catch (const std::exception& e) {
            std::string msg = e.what();
            if (report_write) (void)!write(report_write.get(), msg.data(), msg.size());
            else std::fprintf(stderr, "srlaunch: %s\n", msg.c_str());
        }
        _exit(code);
    }
    report_write.reset();
    int status;
    while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
    }
    std::string report;
    char buf[1024];
    for (ssize_t n; (n = read(report_read.get(), buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read the monitor's report");
        report.append(buf, static_cast<size_t>(n));
    }
    if (report == "ok") return spec.id;
    throw Error(report.empty() ? "the container's monitor ended before the container started" : report);
}

}  // namespace srl
