#include "launcher/exec.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "launcher/error.hpp"
#include "launcher/fd_passing.hpp"
#include "launcher/srinit_config.hpp"
#include "launcher/supervisor.hpp"
#include "launcher/terminal.hpp"
#include "launcher/users.hpp"

namespace srl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The part of the container's spec an exec'd process shares: its privileges, its user
// namespace's maps (whether setgroups is allowed), its environment.
ContainerSpec exec_spec(const fs::path& dir, const ContainerState& state, const ExecOptions& opts) {
    std::ifstream in(dir / "config.json");
    ContainerSpec spec = spec_from_json(json::parse(in, nullptr, false));
    if (!opts.workdir.empty()) spec.process.cwd = opts.workdir;
    spec.process.terminal = opts.tty;
    spec.process.open_stdin = opts.interactive;
    if (!opts.user.empty()) {
        // The container's /etc/passwd as it is now, seen through its root.
        ResolvedUser who = resolve_user("/proc/" + std::to_string(state.pid) + "/root", opts.user);
        spec.process.uid = who.uid;
        spec.process.gid = who.gid;
        spec.process.additional_gids = who.additional_gids;
    }
    for (const auto& e : opts.env) {
        std::string key = e.substr(0, e.find('='));
        bool replaced = false;
        for (auto& have : spec.process.env)
            if (have.substr(0, have.find('=')) == key) have = e, replaced = true;
        if (!replaced) spec.process.env.push_back(e);
    }
    spec.process.args = opts.args;
    std::ifstream bpf(dir / "seccomp.bpf", std::ios::binary);
    std::stringstream ss;
    ss << bpf.rdbuf();
    spec.seccomp_bpf = ss.str();
    return spec;
}

struct Joiner {
    int init_pidfd, sock, report, srinit, config;
    const ContainerState* state;
    const ContainerSpec* spec;
};

// The process in the container: made by the joiner with CLONE_PARENT, so it is the exec
// command's own child and its exit status comes straight back.
[[noreturn]] void exec_process(const Joiner& j) {
    try {
        if (j.spec->process.terminal) {
            Fd master(check(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), "open the container's /dev/ptmx"));
            int unlock = 0;
            check(ioctl(master.get(), TIOCSPTLCK, &unlock), "unlock the pty");
            Fd slave(check(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), "open the pty's slave"));
            if (auto size = terminal_size(STDIN_FILENO)) ioctl(slave.get(), TIOCSWINSZ, &*size);
            send_fd(j.sock, master.get());
            check(setsid(), "setsid");
            check(ioctl(slave.get(), TIOCSCTTY, 0), "make the pty the controlling terminal");
            for (int fd : {0, 1, 2}) check(dup2(slave.get(), fd), "attach the pty");
        } else if (!j.spec->process.open_stdin) {
            Fd null(check(open("/dev/null", O_RDONLY | O_CLOEXEC), "open /dev/null"));
            check(dup2(null.get(), STDIN_FILENO), "attach /dev/null to stdin");
        }
        exec_srinit(j.srinit, j.config);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        send(j.sock, msg.data(), msg.size(), MSG_NOSIGNAL);
    }
    _exit(125);
}

// The joiner: enters the container's cgroups and namespaces, then starts the process in
// them. Joining a PID namespace only affects children, hence the second process.
[[noreturn]] void joiner(const Joiner& j) {
    try {
        // Before the cgroup namespace: the paths are the host's.
        for (const auto& dir : j.state->cgroups) {
            std::ofstream procs(fs::path(dir) / "cgroup.procs");
            procs << getpid() << std::flush;
            if (!procs && !j.spec->rootless) throw Error("join the cgroup " + dir);
        }
        // One call joins them all, the user namespace first, as the kernel orders it.
        int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP;
        if (j.spec->user_namespace) flags |= CLONE_NEWUSER;
        std::string own_time = fs::read_symlink("/proc/self/ns/time").string();
        std::string their_time = fs::read_symlink("/proc/" + std::to_string(j.state->pid) + "/ns/time").string();
        if (own_time != their_time) flags |= CLONE_NEWTIME;
        check(setns(j.init_pidfd, flags), "join the container's namespaces");
        if (j.spec->user_namespace) {
            check(setresgid(0, 0, 0), "setresgid 0 in the user namespace");
            check(setresuid(0, 0, 0), "setresuid 0 in the user namespace");
        }
        pid_t pid = static_cast<pid_t>(syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
        if (pid < 0) throw_errno("start the process in the container");
        if (pid == 0) exec_process(j);
        (void)!write(j.report, &pid, sizeof pid);
        _exit(0);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        send(j.sock, msg.data(), msg.size(), MSG_NOSIGNAL);
    }
    _exit(125);
}

}  // namespace

int exec_in_container(const ContainerRef& c, const ExecOptions& opts) {
    if (opts.args.empty()) throw Error("exec needs a command");
    if (opts.tty && opts.interactive && !isatty(STDIN_FILENO)) throw Error("the input device is not a TTY (-t)");
    ContainerState state = read_state(c.dir);
    if (state.status != ContainerState::Status::Running || !SupervisorLock::held_by_someone(c.dir))
        throw Error("container " + c.id.substr(0, 12) + " is not running");
    Fd init = open_container_init(state);
    if (!init) throw Error("container " + c.id.substr(0, 12) + " is not running");
    ContainerSpec spec = exec_spec(c.dir, state, opts);
    std::string stream = srinit_config_stream(spec) + "exec 1\n1\n";
    Fd config = memfd_with(stream, "srinit-config");
    // Run from a sealed in-memory copy, as the container's PID 1 is (container.cpp says why).
    Fd srinit = sealed_srinit();

    int pair[2], report[2];
    check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), "socketpair");
    Fd parent_sock(pair[0]), child_sock(pair[1]);
    check(pipe2(report, O_CLOEXEC), "pipe");
    Fd report_read(report[0]), report_write(report[1]);

    sigset_t forwarded, old_mask;
    sigemptyset(&forwarded);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGWINCH}) sigaddset(&forwarded, s);
    sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
    struct RestoreMask {
        sigset_t mask;
        ~RestoreMask() { sigprocmask(SIG_SETMASK, &mask, nullptr); }
    } restore{old_mask};

    pid_t joiner_pid = fork();
    if (joiner_pid < 0) throw_errno("fork");
    if (joiner_pid == 0) {
        parent_sock.reset();
        report_read.reset();
        joiner({init.get(), child_sock.get(), report_write.get(), srinit.get(), config.get(), &state, &spec});
    }
    child_sock.reset();
    report_write.reset();
    int status;
    while (waitpid(joiner_pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid_t pid = 0;
    ssize_t n = read(report_read.get(), &pid, sizeof pid);
    if (n != sizeof pid) {
        wait_for_exec(parent_sock.get());  // throws the joiner's error, if it sent one
        throw Error("could not enter container " + c.id.substr(0, 12));
    }
    // Reaped if we fail from here on: the process must not outlive us unwaited.
    struct Reap {
        pid_t pid;
        bool done = false;
        ~Reap() {
            if (!done) {
                kill(pid, SIGKILL);
                waitpid(pid, nullptr, 0);
            }
        }
    } reap{pid};
    Fd console = wait_for_exec(parent_sock.get());
    SupervisorIo io;
    io.pty_master = console.get();
    if (console) {
        io.output = STDOUT_FILENO;
        if (opts.interactive) io.input = STDIN_FILENO;
    }
    std::optional<RawTerminal> raw;
    if (console && opts.interactive) raw.emplace(STDIN_FILENO);
    status = supervise(pid, 10, forwarded, io);
    reap.done = true;
    raw.reset();
    return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 125;
}

}  // namespace srl
