// The command line: flags in, ContainerSpec (or an image-store call) out. Nothing past this
// file reads flags.
#include "launcher/cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "images/store.hpp"
#include "launcher/container.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/image_commands.hpp"
#include "launcher/lifecycle_commands.hpp"
#include "launcher/rootless.hpp"
#include "launcher/run_flags.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

// A value that cannot be empty ("--name ''", "-m ''"): refused while parsing, as CLI11 would
// otherwise store the empty string, which reads as the flag not given.
const CLI::Validator kNonEmpty([](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; },
                               "", "non-empty");

// The cidfile of a run that fails to start goes again, so that only a run's own container
// has one; once the container runs it stays, as docker's does.
class CidFile {
public:
    CidFile(const std::string& path, const std::string& id) : path_(path) {
        if (path_.empty()) return;
        // As docker: refuse to overwrite, so two runs never claim one file.
        Fd fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd) throw Error("--cidfile " + shown(path_), errno);
        if (write(fd.get(), id.data(), id.size()) != static_cast<ssize_t>(id.size())) {
            int err = errno;
            unlink(path_.c_str());
            throw Error("write --cidfile " + shown(path_), err);
        }
    }
    ~CidFile() {
        if (!path_.empty() && !kept_) unlink(path_.c_str());
    }
    CidFile(const CidFile&) = delete;
    CidFile& operator=(const CidFile&) = delete;
    void keep() { kept_ = true; }

private:
    std::string path_;
    bool kept_ = false;
};

}  // namespace

int main_cli(int argc, char** argv) {
    CLI::App app{"srlaunch: a small, honest Linux container runtime", "srlaunch"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "srlaunch 0.1.0");
    std::string root;
    app.add_option("--root", root, "store directory (default /var/lib/srlaunch as root; env SRLAUNCH_ROOT)");

    RunFlags f;
    auto* run = app.add_subcommand("run", "run a command in a new container");
    run->add_option("--name", f.name, "name of the container (unique)")->check(kNonEmpty);
    run->add_option("--hostname", f.hostname, "hostname inside (default: the id's first 12 characters)")->check(kNonEmpty);
    run->add_flag("--rm", f.rm, "remove the container when it exits");
    run->add_flag("-i,--interactive", f.interactive, "keep stdin attached (otherwise it is /dev/null)");
    run->add_flag("-t,--tty", f.tty, "give the container a terminal (a pty, its /dev/console); with -i the caller's terminal drives it");
    run->add_flag("-d,--detach", f.detach, "run in the background under a monitor; print the container's id");
    run->add_option("--cidfile", f.cidfile, "write the container id to this file (which must not exist)")->check(kNonEmpty);
    run->add_option("-e,--env", f.env, "set KEY=VALUE (or pass the host's KEY)")->allow_extra_args(false);
    run->add_option("--env-file", f.env_files, "read KEY=VALUE lines from a file")->allow_extra_args(false)->check(kNonEmpty);
    run->add_option("-w,--workdir", f.workdir, "working directory inside")->check(kNonEmpty);
    run->add_option("-u,--user", f.user, "NAME|UID[:GROUP|GID] from the image's /etc/passwd and /etc/group");
    run->add_option("-v,--volume", f.volumes, "bind mount HOST:CONTAINER[:ro|rw]")->allow_extra_args(false)->check(kNonEmpty);
    run->add_option("--tmpfs", f.tmpfs, "mount a tmpfs at PATH")->allow_extra_args(false)->check(kNonEmpty);
    run->add_flag("--read-only", f.read_only, "mount the root filesystem read-only");
    run->add_option("--uidmap", f.uidmaps, "CONTAINER_UID:HOST_UID:COUNT (repeatable; user namespace)")
        ->allow_extra_args(false)->check(kNonEmpty);
    run->add_option("--gidmap", f.gidmaps, "CONTAINER_GID:HOST_GID:COUNT (repeatable; user namespace)")
        ->allow_extra_args(false)->check(kNonEmpty);
    run->add_option("--userns", f.userns, "host (default) or auto: a free 65536-id range (root only; rootless runs map /etc/subuid)")
        ->check(kNonEmpty);
    run->add_option("--net,--network", f.net,
                    "none (own network namespace, lo up; default), host, bridge (veth on srl0; see network.json) "
                    "or container:ID|NAME (another container's)")
        ->check(kNonEmpty);
    run->add_option("-p,--publish", f.publish, "[HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] publish a port (host ip default 127.0.0.1; --net bridge)")
        ->allow_extra_args(false)->check(kNonEmpty);
    run->add_option("--stop-timeout", f.stop_timeout, "seconds from SIGTERM to SIGKILL (default 10)");
    run->add_option("--rootfs", f.rootfs, "run this directory as the root filesystem, no image")->check(kNonEmpty);
    run->add_flag("--timens", f.timens, "give the container its own time namespace");
    run->add_option("--boot-offset", f.boot_offset, "seconds added to CLOCK_BOOTTIME/MONOTONIC (implies --timens)");
    auto& rf = f.res;
    const char* limits = "Resource limits";
    run->add_option("-m,--memory", rf.memory, "memory limit (e.g. 32m, 1g)")->group(limits)->check(kNonEmpty);
    run->add_option("--memory-swap", rf.memory_swap, "memory plus swap limit (-1: unlimited swap)")->group(limits)->check(kNonEmpty);
    run->add_option("--cpu-shares", rf.cpu_shares, "relative CPU weight (v1 shares, 2-262144; default 1024)")->group(limits);
    run->add_option("--cpus", rf.cpus, "CPU bandwidth in CPUs (e.g. 0.5)")->group(limits)->check(kNonEmpty);
    run->add_option("--cpuset-cpus", rf.cpuset_cpus, "CPUs allowed (e.g. 0-1,3)")->group(limits)->check(kNonEmpty);
    run->add_option("--cpuset-mems", rf.cpuset_mems, "memory nodes allowed")->group(limits)->check(kNonEmpty);
    run->add_option("--pids-limit", rf.pids_limit, "maximum number of processes (<= 0: unlimited)")->group(limits);
    run->add_option("--blkio-weight", rf.blkio_weight, "relative block I/O weight (10-1000) where the kernel has it")->group(limits);
    run->add_option("--device-read-bps", rf.read_bps, "PATH:RATE read limit of a block device (e.g. /dev/loop0:4mb)")
        ->allow_extra_args(false)->group(limits)->check(kNonEmpty);
    run->add_option("--device-write-bps", rf.write_bps, "PATH:RATE write limit of a block device")
        ->allow_extra_args(false)->group(limits)->check(kNonEmpty);
    run->add_option("--device-read-iops", rf.read_iops, "PATH:N read operations per second")
        ->allow_extra_args(false)->group(limits)->check(kNonEmpty);
    run->add_option("--device-write-iops", rf.write_iops, "PATH:N write operations per second")
        ->allow_extra_args(false)->group(limits)->check(kNonEmpty);
    run->add_option("--device", rf.devices, "HOST[:CONTAINER][:rwm] give the container a device node")
        ->allow_extra_args(false)->check(kNonEmpty);
    const char* security = "Security";
    run->add_option("--cap-add", f.cap_add, "add a capability (NAME, CAP_NAME or ALL)")->allow_extra_args(false)->group(security)->check(kNonEmpty);
    run->add_option("--cap-drop", f.cap_drop, "drop a capability (NAME, CAP_NAME or ALL)")->allow_extra_args(false)->group(security)->check(kNonEmpty);
    run->add_flag("--privileged", f.privileged,
                  "all capabilities and host devices, no seccomp filter, no masked or read-only /proc paths, /sys writable")
        ->group(security);
    run->add_option("--security-opt", f.security_opts,
                    "no-new-privileges; seccomp=unconfined or seccomp=PROFILE.json (default: the built-in profile)")
        ->allow_extra_args(false)->group(security)->check(kNonEmpty);
    run->add_option("--pull", f.pull_policy, "missing (default): pull the image when it is not in the store; always; never")
        ->group("Image sources")->check(kNonEmpty);
    add_source_options(run, f.pull);
    run->prefix_command();

    ImageCommands image_commands(app);
    LifecycleCommands lifecycle_commands(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "srlaunch: %s (see srlaunch --help)\n", one_line(e.what()).c_str());
        return 125;
    }

    StorePaths paths = StorePaths::resolve(root);
    if (geteuid() != 0) make_private_store(paths.root);
    sweep_store(paths.images());  // what killed imports, pulls and builds left (images/store.hpp)
    if (*run) {
        ContainerSpec spec = build_spec(f, run->remaining(), paths);
        CidFile cidfile(f.cidfile, spec.id);
        if (f.detach) {
            std::printf("%s\n", start_detached(spec, paths).c_str());
            cidfile.keep();
            return 0;
        }
        // The container ran (whatever its status) unless run_container threw.
        int status = run_container(spec, paths);
        cidfile.keep();
        return status;
    }
    if (auto status = image_commands.dispatch(paths)) return *status;
    if (auto status = lifecycle_commands.dispatch(paths)) return *status;
    return 125;
}

}  // namespace srl
