// The command line: flags in, ContainerSpec (or an image-store call) out. Nothing past this
// file reads flags.
#include "launcher/cli.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <charconv>
#include <iostream>
#include <sstream>

#include "images/reference.hpp"
#include "images/store.hpp"
#include "launcher/capabilities.hpp"
#include "launcher/container.hpp"
#include "launcher/devices.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/image_commands.hpp"
#include "launcher/lifecycle_commands.hpp"
#include "launcher/port_proxy.hpp"
#include "launcher/rootless.hpp"
#include "launcher/seccomp.hpp"
#include "launcher/units.hpp"
#include "launcher/users.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

struct ResourceFlags {
    std::string memory, memory_swap, cpus, cpuset_cpus, cpuset_mems;
    std::optional<uint64_t> cpu_shares;
    std::optional<int64_t> pids_limit;
    std::optional<uint16_t> blkio_weight;
    std::vector<std::string> read_bps, write_bps, read_iops, write_iops, devices;
};

struct RunFlags {
    ResourceFlags res;
    std::vector<std::string> cap_add, cap_drop, security_opts;
    std::string name, hostname, workdir, user, userns = "host", net = "none", rootfs, cidfile;
    std::string pull_policy = "missing";
    PullOptions pull;
    bool rm = false, detach = false, read_only = false, timens = false, interactive = false, tty = false, privileged = false;
    std::vector<std::string> env, env_files, volumes, tmpfs, uidmaps, gidmaps, publish;
    int stop_timeout = 10;
    int64_t boot_offset = 0;
};

constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Later entries for a key replace earlier ones, as with docker's layered env.
void set_env(std::vector<std::string>& env, const std::string& entry) {
    std::string key = entry.substr(0, entry.find('='));
    for (auto& e : env)
        if (e.substr(0, e.find('=')) == key) {
            e = entry;
            return;
        }
    env.push_back(entry);
}

// `-e KEY=VALUE`, or `-e KEY` to pass the host's value (skipped when the host has none).
void add_env_flag(std::vector<std::string>& env, const std::string& flag) {
    if (flag.empty() || flag[0] == '=') throw Error("invalid environment variable: \"" + flag + "\"");
    if (flag.find('=') != std::string::npos) return set_env(env, flag);
    if (const char* v = std::getenv(flag.c_str())) set_env(env, flag + "=" + v);
}

Mount parse_volume(const std::string& v) {
    Mount m;
    auto first = v.find(':');
    if (first == std::string::npos) throw Error("invalid volume \"" + v + "\": expected HOST:CONTAINER[:ro|rw]");
    auto second = v.find(':', first + 1);
    m.source = v.substr(0, first);
    m.destination = v.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (second != std::string::npos) {
        std::string mode = v.substr(second + 1);
        if (mode != "ro" && mode != "rw") throw Error("invalid volume \"" + v + "\": mode must be ro or rw");
        m.read_only = mode == "ro";
    }
    if (m.source.empty() || m.source[0] != '/')
        throw Error("invalid volume \"" + v + "\": the host path must be absolute (named volumes are not supported)");
    if (!fs::exists(m.source)) throw Error("invalid volume \"" + v + "\": " + m.source + " does not exist");
    if (m.destination.empty() || m.destination[0] != '/')
        throw Error("invalid volume \"" + v + "\": the container path must be absolute");
    return m;
}

void validate_container_path(const std::string& p, const char* what) {
    if (p.empty() || p[0] != '/') throw Error(std::string(what) + " must be an absolute path: \"" + p + "\"");
}

// A block device for the throttle flags: PATH:VALUE, major:minor from stat.
DeviceLimit parse_device_limit(const std::string& text, const char* flag, bool is_rate) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0)
        throw Error(std::string("invalid ") + flag + " \"" + text + "\": expected PATH:" + (is_rate ? "RATE" : "IOPS"));
    DeviceLimit d;
    d.path = text.substr(0, colon);
    std::string value = text.substr(colon + 1);
    struct stat st {};
    if (stat(d.path.c_str(), &st) < 0) throw Error(std::string(flag) + ": " + d.path, errno);
    if (!S_ISBLK(st.st_mode)) throw Error(std::string(flag) + ": " + d.path + " is not a block device");
    d.major = major(st.st_rdev);
    d.minor = minor(st.st_rdev);
    if (is_rate) {
        d.value = static_cast<uint64_t>(parse_size(value, flag));
    } else {
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), d.value);
        if (ec != std::errc() || p != value.data() + value.size() || value.empty())
            throw Error(std::string("invalid ") + flag + " \"" + text + "\": IOPS must be a number");
    }
    return d;
}

// --device HOST[:CTR][:rwm]
Device parse_device(const std::string& text) {
    Device d;
    std::vector<std::string> parts;
    std::istringstream in(text);
    for (std::string p; std::getline(in, p, ':');) parts.push_back(p);
    if (parts.empty() || parts.size() > 3) throw Error("invalid --device \"" + text + "\": expected HOST[:CONTAINER][:rwm]");
    d.host_path = parts[0];
    d.container_path = parts[0];
    auto is_access = [](const std::string& s) {
        return !s.empty() && s.find_first_not_of("rwm") == std::string::npos;
    };
    if (parts.size() == 2) {
        if (is_access(parts[1])) d.access = parts[1];
        else d.container_path = parts[1];
    } else if (parts.size() == 3) {
        d.container_path = parts[1];
        if (!is_access(parts[2])) throw Error("invalid --device \"" + text + "\": access must be of r, w, m");
        d.access = parts[2];
    }
    validate_container_path(d.container_path, "--device");
    struct stat st {};
    if (stat(d.host_path.c_str(), &st) < 0) throw Error("--device " + d.host_path, errno);
    if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) throw Error("--device " + d.host_path + " is not a device node");
    d.type = S_ISBLK(st.st_mode) ? 'b' : 'c';
    d.major = major(st.st_rdev);
    d.minor = minor(st.st_rdev);
    d.mode = st.st_mode & 07777;
    return d;
}

Resources build_resources(const ResourceFlags& f) {
    Resources r;
    if (!f.memory.empty()) {
        r.memory = parse_size(f.memory, "--memory");
        if (*r.memory < 6 * 1024 * 1024) throw Error("--memory: the minimum is 6m");
    }
    if (!f.memory_swap.empty()) {
        r.memory_swap = f.memory_swap == "-1" ? -1 : parse_size(f.memory_swap, "--memory-swap");
        if (!r.memory) throw Error("--memory-swap needs --memory");
        if (*r.memory_swap >= 0 && *r.memory_swap < *r.memory) throw Error("--memory-swap must be at least --memory");
    }
    if (f.cpu_shares) {
        if (*f.cpu_shares < 2 || *f.cpu_shares > 262'144) throw Error("--cpu-shares must be between 2 and 262144");
        r.cpu_shares = f.cpu_shares;
    }
    if (!f.cpus.empty()) r.cpu_quota_us = parse_cpus_quota(f.cpus, r.cpu_period_us, "--cpus");
    if (!f.cpuset_cpus.empty()) validate_cpu_list(f.cpuset_cpus, "--cpuset-cpus");
    if (!f.cpuset_mems.empty()) validate_cpu_list(f.cpuset_mems, "--cpuset-mems");
    r.cpuset_cpus = f.cpuset_cpus;
    r.cpuset_mems = f.cpuset_mems;
    if (f.pids_limit) r.pids_limit = *f.pids_limit <= 0 ? -1 : *f.pids_limit;
    if (f.blkio_weight) {
        if (*f.blkio_weight < 10 || *f.blkio_weight > 1000) throw Error("--blkio-weight must be between 10 and 1000");
        r.blkio_weight = f.blkio_weight;
    }
    for (const auto& t : f.read_bps) r.read_bps.push_back(parse_device_limit(t, "--device-read-bps", true));
    for (const auto& t : f.write_bps) r.write_bps.push_back(parse_device_limit(t, "--device-write-bps", true));
    for (const auto& t : f.read_iops) r.read_iops.push_back(parse_device_limit(t, "--device-read-iops", false));
    for (const auto& t : f.write_iops) r.write_iops.push_back(parse_device_limit(t, "--device-write-iops", false));
    return r;
}

std::vector<IdMapping> parse_maps(const std::vector<std::string>& flags, const char* which) {
    std::vector<IdMapping> maps;
    for (const auto& f : flags) {
        try {
            maps.push_back(parse_id_mapping(f));
        } catch (const Error& e) {
            throw Error(std::string(which) + ": " + e.what());
        }
    }
    validate_id_mappings(maps, which);
    if (!map_to_host(maps, 0))
        throw Error(std::string(which) + " must map container id 0 (the container's root)");
    return maps;
}

ContainerSpec build_spec(const RunFlags& f, std::vector<std::string> rest, const StorePaths& paths) {
    // Checked before an image is pulled or anything is created, as docker does.
    // -it copies the caller's terminal into the container's: it must be one. (-t alone, or
    // -d, gives the container a terminal of its own that the caller need not have.)
    if (f.tty && f.interactive && !f.detach && !isatty(STDIN_FILENO)) throw Error("the input device is not a TTY (-it)");
    ContainerSpec spec;
    spec.rootless = geteuid() != 0;
    // So too whether a rootless run can have the limits it asks for (launcher/rootless.hpp).
    if (spec.rootless) rootless_cgroup_parent(build_resources(f.res), RootlessCgroupHost::current());
    // So too the network flags (-p syntax, modes).
    if (f.net == "none") spec.net = NetMode::None;
    else if (f.net == "host") spec.net = NetMode::Host;
    else if (f.net == "bridge") spec.net = NetMode::Bridge;
    else if (f.net.rfind("container:", 0) == 0 && f.net.size() > 10) {
        spec.net = NetMode::Container;
        spec.net_container = f.net.substr(10);
    }
    else throw Error("unsupported --net \"" + f.net + "\": use none, host, bridge or container:ID|NAME");
    spec.ports = parse_port_mappings(f.publish);
    if (!spec.ports.empty() && spec.net != NetMode::Bridge) throw Error("-p/--publish needs --net bridge");
    if (spec.rootless && (spec.net == NetMode::Bridge || spec.net == NetMode::Container))
        throw Error("--net " + f.net + " needs root (rootless containers have --net none or host)");
    spec.id = new_container_id();
    spec.name = f.name;
    if (!f.name.empty()) {
        bool ok = std::isalnum(static_cast<unsigned char>(f.name[0]));
        for (char c : f.name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
        if (!ok) throw Error("invalid container name \"" + f.name + "\": use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    }
    ImageConfig image_config;
    if (!f.rootfs.empty()) {
        if (!fs::is_directory(f.rootfs)) throw Error("--rootfs " + f.rootfs + " is not a directory");
        spec.image_rootfs = fs::canonical(f.rootfs);
        spec.rootfs_is_plain_dir = true;
    } else {
        if (rest.empty()) throw Error("\"run\" requires an image (or --rootfs DIR)");
        Image image = image_for_run(paths, rest.front(), f.pull, f.pull_policy);
        rest.erase(rest.begin());
        spec.image = image.ref.str();
        spec.image_rootfs = image.rootfs;
        image_config = image.config;
    }
    spec.process.args = image_config.entrypoint;
    if (!rest.empty())
        spec.process.args.insert(spec.process.args.end(), rest.begin(), rest.end());
    else if (!image_config.cmd.empty())
        spec.process.args.insert(spec.process.args.end(), image_config.cmd.begin(), image_config.cmd.end());
    if (spec.process.args.empty()) spec.process.args = {"/bin/sh"};

    spec.hostname = f.hostname.empty() ? spec.id.substr(0, 12) : f.hostname;
    if (spec.hostname.size() > 64) throw Error("hostname longer than 64 characters");

    std::string user = f.user.empty() ? image_config.user : f.user;
    ResolvedUser who = resolve_user(spec.image_rootfs, user);
    spec.process.uid = who.uid;
    spec.process.gid = who.gid;
    spec.process.additional_gids = who.additional_gids;
    spec.process.cwd = !f.workdir.empty() ? f.workdir : !image_config.workdir.empty() ? image_config.workdir : "/";
    validate_container_path(spec.process.cwd, "--workdir");

    spec.process.terminal = f.tty;
    spec.process.open_stdin = f.interactive;

    auto& env = spec.process.env;
    env = {kDefaultPath, "HOSTNAME=" + spec.hostname, "HOME=" + who.home};
    if (f.tty) env.push_back("TERM=xterm");
    for (const auto& e : image_config.env) set_env(env, e);
    for (const auto& file : f.env_files) {
        std::ifstream in(file);
        if (!in) throw Error("cannot read --env-file " + file);
        for (std::string line; std::getline(in, line);) {
            auto start = line.find_first_not_of(" \t");
            if (start == std::string::npos || line[start] == '#') continue;
            add_env_flag(env, line.substr(start));
        }
    }
    for (const auto& e : f.env) add_env_flag(env, e);

    for (const auto& v : f.volumes) spec.mounts.push_back(parse_volume(v));
    for (const auto& t : f.tmpfs) {
        validate_container_path(t, "--tmpfs");
        spec.mounts.push_back({Mount::Kind::Tmpfs, "", t, false});
    }
    spec.read_only_root = f.read_only;
    spec.remove_on_exit = f.rm;
    spec.stop_timeout_s = f.stop_timeout;

    if (spec.rootless) {
        // Always a user namespace, from the caller's own ids and subordinate ranges; maps
        // given by flags must stay inside those (launcher/rootless.hpp).
        if (f.userns == "auto")
            throw Error("--userns auto needs root; a rootless container maps your /etc/subuid and /etc/subgid "
                        "ranges (choose within them with --uidmap/--gidmap)");
        if (f.userns != "host") throw Error("unsupported --userns \"" + f.userns + "\": use host or auto");
        std::vector<IdMapping> uids, gids;
        if (!f.uidmaps.empty() || !f.gidmaps.empty()) {
            uids = parse_maps(f.uidmaps.empty() ? f.gidmaps : f.uidmaps, "--uidmap");
            gids = parse_maps(f.gidmaps.empty() ? f.uidmaps : f.gidmaps, "--gidmap");
        }
        set_rootless_id_maps(spec, uids, gids);
        // A map of the caller's gid alone comes with setgroups(2) denied: the user's groups
        // cannot be set inside, and srinit will not try.
        if (rootless_setgroups_denied(spec)) spec.process.additional_gids.clear();
    } else if (f.userns == "auto") {
        if (!f.uidmaps.empty() || !f.gidmaps.empty()) throw Error("--userns auto excludes --uidmap/--gidmap");
        uint32_t base = UsernsRanges(paths.userns()).allocate(spec.id);
        spec.uid_mappings = spec.gid_mappings = {{0, base, UsernsRanges::kSize}};
    } else if (f.userns != "host") {
        throw Error("unsupported --userns \"" + f.userns + "\": use host or auto");
    } else if (!f.uidmaps.empty() || !f.gidmaps.empty()) {
        // As podman: one of the two alone maps groups like users.
        spec.uid_mappings = parse_maps(f.uidmaps.empty() ? f.gidmaps : f.uidmaps, "--uidmap");
        spec.gid_mappings = parse_maps(f.gidmaps.empty() ? f.uidmaps : f.gidmaps, "--gidmap");
    }
    spec.user_namespace = !spec.uid_mappings.empty();
    if (spec.user_namespace) {
        if (!map_to_host(spec.uid_mappings, spec.process.uid) || !map_to_host(spec.gid_mappings, spec.process.gid))
            throw Error("the user " + std::to_string(spec.process.uid) + ":" + std::to_string(spec.process.gid) +
                        " is not mapped into the user namespace");
    }
    // --privileged: every capability srlaunch holds; --cap-add/--cap-drop are ignored then,
    // as docker does.
    spec.privileged = f.privileged;
    spec.process.capabilities = f.privileged ? all_capabilities() : resolve_capabilities(f.cap_add, f.cap_drop);
    std::optional<SeccompProfile> seccomp_profile;  // --security-opt seccomp=FILE; else the built-in one
    bool seccomp_unconfined = false;
    for (const auto& opt : f.security_opts) {
        if (opt == "no-new-privileges" || opt == "no-new-privileges:true" || opt == "no-new-privileges=true") {
            spec.process.no_new_privileges = true;
        } else if (opt == "no-new-privileges:false" || opt == "no-new-privileges=false") {
            spec.process.no_new_privileges = false;
        } else if (opt.rfind("seccomp=", 0) == 0 || opt.rfind("seccomp:", 0) == 0) {
            // Parsed now, so a bad profile fails before anything is created; the last one wins.
            std::string value = opt.substr(8);
            if (value.empty()) throw Error("--security-opt seccomp= needs unconfined or a profile file");
            seccomp_unconfined = value == "unconfined";
            seccomp_profile.reset();
            if (!seccomp_unconfined && value != "builtin") seccomp_profile = load_seccomp_profile(value);
        } else {
            throw Error("unsupported --security-opt \"" + opt +
                        "\" (supported: no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json)");
        }
    }
    spec.resources = build_resources(f.res);
    for (const auto& d : f.res.devices) spec.devices.push_back(parse_device(d));
    if (spec.privileged) {
        // Every host device node too, as docker does; a --device at the same path stays.
        for (auto& d : host_devices()) {
            auto same = [&](const Device& o) { return o.container_path == d.container_path; };
            if (std::none_of(spec.devices.begin(), spec.devices.end(), same)) spec.devices.push_back(std::move(d));
        }
    }
    spec.resources.device_rules = device_rules(spec.devices, spec.privileged);
    spec.time_namespace = f.timens || f.boot_offset != 0;
    spec.boot_offset_s = f.boot_offset;
    if (!spec.privileged) {  // --privileged sees /proc as the host's root does
        spec.masked_paths = default_masked_paths();
        spec.readonly_paths = default_readonly_paths();
    }
    // Compiled last, against the final capabilities (the default profile allows more to a
    // container granted CAP_SYS_ADMIN, CAP_SYS_PTRACE...). --privileged runs unfiltered, as
    // with docker.
    if (!spec.privileged && !seccomp_unconfined)
        spec.seccomp_bpf = compile_seccomp_cached(seccomp_profile ? *seccomp_profile : default_seccomp_profile(),
                                                  spec.process.capabilities, paths.root / "cache" / "seccomp");
    return spec;
}

}  // namespace

int main_cli(int argc, char** argv) {
    CLI::App app{"srlaunch: a small, honest Linux container runtime", "srlaunch"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "srlaunch 0.1.0");
    std::string root;
    app.add_option("--root", root, "store directory (default /var/lib/srlaunch as root; env SRLAUNCH_ROOT)");

    RunFlags f;
    auto* run = app.add_subcommand("run", "run a command in a new container");
    run->add_option("--name", f.name, "name of the container (unique)");
    run->add_option("--hostname", f.hostname, "hostname inside (default: the id's first 12 characters)");
    run->add_flag("--rm", f.rm, "remove the container when it exits");
    run->add_flag("-i,--interactive", f.interactive, "keep stdin attached (otherwise it is /dev/null)");
    run->add_flag("-t,--tty", f.tty, "give the container a terminal (a pty, its /dev/console); with -i the caller's terminal drives it");
    run->add_flag("-d,--detach", f.detach, "run in the background under a monitor; print the container's id");
    run->add_option("--cidfile", f.cidfile, "write the container id to this file (which must not exist)");
    run->add_option("-e,--env", f.env, "set KEY=VALUE (or pass the host's KEY)")->allow_extra_args(false);
    run->add_option("--env-file", f.env_files, "read KEY=VALUE lines from a file")->allow_extra_args(false);
    run->add_option("-w,--workdir", f.workdir, "working directory inside");
    run->add_option("-u,--user", f.user, "NAME|UID[:GROUP|GID] from the image's /etc/passwd and /etc/group");
    run->add_option("-v,--volume", f.volumes, "bind mount HOST:CONTAINER[:ro|rw]")->allow_extra_args(false);
    run->add_option("--tmpfs", f.tmpfs, "mount a tmpfs at PATH")->allow_extra_args(false);
    run->add_flag("--read-only", f.read_only, "mount the root filesystem read-only");
    run->add_option("--uidmap", f.uidmaps, "CONTAINER_UID:HOST_UID:COUNT (repeatable; user namespace)")->allow_extra_args(false);
    run->add_option("--gidmap", f.gidmaps, "CONTAINER_GID:HOST_GID:COUNT (repeatable; user namespace)")->allow_extra_args(false);
    run->add_option("--userns", f.userns, "host (default) or auto: a free 65536-id range (root only; rootless runs map /etc/subuid)");
    run->add_option("--net,--network", f.net,
                    "none (own network namespace, lo up; default), host, bridge (veth on srl0; see network.json) "
                    "or container:ID|NAME (another container's)");
    run->add_option("-p,--publish", f.publish, "[HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] publish a port (host ip default 127.0.0.1; --net bridge)")
        ->allow_extra_args(false);
    run->add_option("--stop-timeout", f.stop_timeout, "seconds from SIGTERM to SIGKILL (default 10)")
        ->check(CLI::NonNegativeNumber);
    run->add_option("--rootfs", f.rootfs, "run this directory as the root filesystem, no image");
    run->add_flag("--timens", f.timens, "give the container its own time namespace");
    run->add_option("--boot-offset", f.boot_offset, "seconds added to CLOCK_BOOTTIME/MONOTONIC (implies --timens)");
    auto& rf = f.res;
    const char* limits = "Resource limits";
    run->add_option("-m,--memory", rf.memory, "memory limit (e.g. 32m, 1g)")->group(limits);
    run->add_option("--memory-swap", rf.memory_swap, "memory plus swap limit (-1: unlimited swap)")->group(limits);
    run->add_option("--cpu-shares", rf.cpu_shares, "relative CPU weight (v1 shares, 2-262144; default 1024)")->group(limits);
    run->add_option("--cpus", rf.cpus, "CPU bandwidth in CPUs (e.g. 0.5)")->group(limits);
    run->add_option("--cpuset-cpus", rf.cpuset_cpus, "CPUs allowed (e.g. 0-1,3)")->group(limits);
    run->add_option("--cpuset-mems", rf.cpuset_mems, "memory nodes allowed")->group(limits);
    run->add_option("--pids-limit", rf.pids_limit, "maximum number of processes (<= 0: unlimited)")->group(limits);
    run->add_option("--blkio-weight", rf.blkio_weight, "relative block I/O weight (10-1000) where the kernel has it")->group(limits);
    run->add_option("--device-read-bps", rf.read_bps, "PATH:RATE read limit of a block device (e.g. /dev/loop0:4mb)")
        ->allow_extra_args(false)->group(limits);
    run->add_option("--device-write-bps", rf.write_bps, "PATH:RATE write limit of a block device")
        ->allow_extra_args(false)->group(limits);
    run->add_option("--device-read-iops", rf.read_iops, "PATH:N read operations per second")
        ->allow_extra_args(false)->group(limits);
    run->add_option("--device-write-iops", rf.write_iops, "PATH:N write operations per second")
        ->allow_extra_args(false)->group(limits);
    run->add_option("--device", rf.devices, "HOST[:CONTAINER][:rwm] give the container a device node")
        ->allow_extra_args(false);
    const char* security = "Security";
    run->add_option("--cap-add", f.cap_add, "add a capability (NAME, CAP_NAME or ALL)")->allow_extra_args(false)->group(security);
    run->add_option("--cap-drop", f.cap_drop, "drop a capability (NAME, CAP_NAME or ALL)")->allow_extra_args(false)->group(security);
    run->add_flag("--privileged", f.privileged,
                  "all capabilities and host devices, no seccomp filter, no masked or read-only /proc paths, /sys writable")
        ->group(security);
    run->add_option("--security-opt", f.security_opts,
                    "no-new-privileges; seccomp=unconfined or seccomp=PROFILE.json (default: the built-in profile)")->allow_extra_args(false)->group(security);
    run->add_option("--pull", f.pull_policy, "missing (default): pull the image when it is not in the store; always; never")
        ->group("Image sources");
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
        std::string msg = e.what();
        std::fprintf(stderr, "srlaunch: %s (see srlaunch --help)\n", msg.c_str());
        return 125;
    }

    StorePaths paths = StorePaths::resolve(root);
    if (geteuid() != 0) make_private_store(paths.root);
    sweep_store(paths.images());  // what killed imports, pulls and builds left (images/store.hpp)
    if (*run) {
        ContainerSpec spec = build_spec(f, run->remaining(), paths);
        if (!f.cidfile.empty()) {
            // As docker: refuse to overwrite, so two runs never claim one file.
            Fd fd(open(f.cidfile.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
            if (!fd) throw Error("--cidfile " + f.cidfile, errno);
            if (write(fd.get(), spec.id.data(), spec.id.size()) != static_cast<ssize_t>(spec.id.size()))
                throw Error("write --cidfile " + f.cidfile, errno);
        }
        if (f.detach) {
            std::printf("%s\n", start_detached(spec, paths).c_str());
            return 0;
        }
        return run_container(spec, paths);
    }
    if (auto status = image_commands.dispatch(paths)) return *status;
    if (auto status = lifecycle_commands.dispatch(paths)) return *status;
    return 125;
}

}  // namespace srl
