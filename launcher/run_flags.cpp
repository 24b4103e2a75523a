// `run`'s flags into a ContainerSpec. The order matters: first everything the flags alone
// decide (so a bad flag fails before an image is pulled), then what needs the image (user,
// working directory, environment), and last what records something in the store (an
// automatic user-namespace range), once nothing else can fail.
#include "launcher/run_flags.hpp"

#include <sched.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

#include "launcher/capabilities.hpp"
#include "launcher/container.hpp"
#include "launcher/devices.hpp"
#include "launcher/error.hpp"
#include "launcher/port_proxy.hpp"
#include "launcher/rootfs.hpp"
#include "launcher/rootless.hpp"
#include "launcher/seccomp.hpp"
#include "launcher/units.hpp"
#include "launcher/users.hpp"
#include "launcher/validate.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// The memory+swap limit is twice --memory unless --memory-swap says otherwise (cgroup.hpp):
// both must fit an int64_t, as the kernel's and docker's byte counts do.
constexpr int64_t kMaxMemory = INT64_MAX / 2;
// The kernel's PID_MAX_LIMIT on 64-bit: pids.max refuses more (EINVAL).
constexpr int64_t kMaxPids = 4 * 1024 * 1024;

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    for (size_t start = 0;;) {
        size_t at = text.find(sep, start);
        out.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
        if (at == std::string::npos) return out;
        start = at + 1;
    }
}

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
    if (flag.empty() || flag[0] == '=') throw Error("invalid environment variable: \"" + shown(flag) + "\"");
    if (flag.find('=') != std::string::npos) return set_env(env, flag);
    if (const char* v = std::getenv(flag.c_str())) set_env(env, flag + "=" + v);
}

// A host path a flag names: it must exist. Never std::filesystem's throwing calls, whose
// messages repeat the whole path.
void check_host_path_exists(const std::string& path, const std::string& what) {
    struct stat st {};
    if (stat(path.c_str(), &st) < 0) throw Error(what + ": " + shown(path), errno);
}

// A host path shared by -v or --device: absolute (as docker: a relative one would be a named
// volume) and there.
void check_host_source(const std::string& text, const std::string& source, const char* flag) {
    if (source.empty() || source[0] != '/')
        throw Error(std::string("invalid ") + flag + " \"" + shown(text) +
                    "\": the host path must be absolute (named volumes are not supported)");
    check_host_path_exists(source, std::string(flag) + " host path");
}

[[noreturn]] void too_many_colons(const std::string& text, const char* flag, const char* format) {
    throw Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": ':' separates " + format +
                ", so a path containing ':' cannot be given");
}

// A block device for the throttle flags: PATH:VALUE, major:minor from stat.
DeviceLimit parse_device_limit(const std::string& text, const char* flag, bool is_rate) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0)
        throw Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": expected PATH:" + (is_rate ? "RATE" : "IOPS"));
    DeviceLimit d;
    d.path = text.substr(0, colon);
    std::string value = text.substr(colon + 1);
    struct stat st {};
    if (stat(d.path.c_str(), &st) < 0) throw Error(std::string(flag) + ": " + shown(d.path), errno);
    if (!S_ISBLK(st.st_mode)) throw Error(std::string(flag) + ": " + shown(d.path) + " is not a block device");
    d.major = major(st.st_rdev);
    d.minor = minor(st.st_rdev);
    if (is_rate) {
        d.value = static_cast<uint64_t>(parse_size(value, flag));
    } else {
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), d.value);
        if (ec != std::errc() || p != value.data() + value.size() || value.empty())
            throw Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": IOPS must be a number");
    }
    return d;
}

// --device HOST[:CTR][:rwm]
Device parse_device(const std::string& text) {
    Device d;
    std::vector<std::string> parts = split(text, ':');
    if (parts.size() > 3) too_many_colons(text, "--device", "HOST[:CONTAINER][:rwm]");
    d.host_path = parts[0];
    std::string container = parts[0];
    auto is_access = [](const std::string& s) {
        return !s.empty() && s.find_first_not_of("rwm") == std::string::npos;
    };
    if (parts.size() == 2) {
        if (is_access(parts[1])) d.access = parts[1];
        else container = parts[1];
    } else if (parts.size() == 3) {
        container = parts[1];
        if (!is_access(parts[2]))
            throw Error("invalid --device \"" + shown(text) + "\": access must be of r, w, m, not \"" + shown(parts[2]) + "\"");
        d.access = parts[2];
    }
    check_host_source(text, d.host_path, "--device");
    d.container_path = container_path(container, "--device");
    check_mount_destination(d.container_path, "--device");
    struct stat st {};
    if (stat(d.host_path.c_str(), &st) < 0) throw Error("--device " + shown(d.host_path), errno);
    if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
        throw Error("--device " + shown(d.host_path) + " is not a device node");
    d.type = S_ISBLK(st.st_mode) ? 'b' : 'c';
    d.major = major(st.st_rdev);
    d.minor = minor(st.st_rdev);
    d.mode = st.st_mode & 07777;
    return d;
}

// The CPUs this process may run on, as docker counts them for --cpus.
unsigned available_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1;
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

// An argument CLI11 could not place: `run` stops reading flags at the first one it does not
// know (the image or the command follows), so an unknown flag arrives here as the "image".
void check_no_unknown_flag(const std::vector<std::string>& rest) {
    if (!rest.empty() && rest.front().size() > 1 && rest.front()[0] == '-')
        throw Error("unknown flag " + shown(rest.front()) + " for run (see srlaunch run --help)");
}

void network_flags(const RunFlags& f, ContainerSpec& spec) {
    if (f.net == "none") spec.net = NetMode::None;
    else if (f.net == "host") spec.net = NetMode::Host;
    else if (f.net == "bridge") spec.net = NetMode::Bridge;
    else if (f.net.rfind("container:", 0) == 0 && f.net.size() > 10) {
        spec.net = NetMode::Container;
        spec.net_container = f.net.substr(10);
    } else {
        throw Error("unsupported --net \"" + shown(f.net) + "\": use none, host, bridge or container:ID|NAME");
    }
    spec.ports = parse_port_mappings(f.publish);
    if (!spec.ports.empty() && spec.net != NetMode::Bridge) throw Error("-p/--publish needs --net bridge");
    if (spec.rootless && (spec.net == NetMode::Bridge || spec.net == NetMode::Container))
        throw Error("--net " + shown(f.net) + " needs root (rootless containers have --net none or host)");
}

void mount_flags(const RunFlags& f, ContainerSpec& spec) {
    for (const auto& v : f.volumes) spec.mounts.push_back(parse_volume(v));
    for (const auto& t : f.tmpfs) {
        if (t.find(':') != std::string::npos)
            throw Error("invalid --tmpfs \"" + shown(t) + "\": options (PATH:OPTIONS) are not supported");
        std::string path = container_path(t, "--tmpfs");
        check_mount_destination(path, "--tmpfs");
        spec.mounts.push_back({Mount::Kind::Tmpfs, "", path, false});
    }
    // As docker: two mounts on one path would leave only the last one visible.
    for (size_t i = 0; i < spec.mounts.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (spec.mounts[i].destination == spec.mounts[j].destination)
                throw Error("duplicate mount point " + shown(spec.mounts[i].destination));
}

void device_flags(const RunFlags& f, ContainerSpec& spec) {
    for (const auto& d : f.res.devices) spec.devices.push_back(parse_device(d));
    if (spec.privileged) {
        // Every host device node too, as docker does; a --device at the same path stays.
        for (auto& d : host_devices()) {
            auto same = [&](const Device& o) { return o.container_path == d.container_path; };
            if (std::none_of(spec.devices.begin(), spec.devices.end(), same)) spec.devices.push_back(std::move(d));
        }
    }
    spec.resources.device_rules = device_rules(spec.devices, spec.privileged);
}

// --security-opt: no-new-privileges, seccomp=unconfined|builtin|PROFILE.json (the last wins).
std::optional<SeccompProfile> security_flags(const RunFlags& f, ContainerSpec& spec, bool& unconfined) {
    std::optional<SeccompProfile> profile;
    for (const auto& opt : f.security_opts) {
        if (opt == "no-new-privileges" || opt == "no-new-privileges:true" || opt == "no-new-privileges=true") {
            spec.process.no_new_privileges = true;
        } else if (opt == "no-new-privileges:false" || opt == "no-new-privileges=false") {
            spec.process.no_new_privileges = false;
        } else if (opt.rfind("seccomp=", 0) == 0 || opt.rfind("seccomp:", 0) == 0) {
            // Parsed now, so a bad profile fails before anything is created.
            std::string value = opt.substr(8);
            if (value.empty()) throw Error("--security-opt seccomp= needs unconfined or a profile file");
            unconfined = value == "unconfined";
            profile.reset();
            if (!unconfined && value != "builtin") profile = load_seccomp_profile(value);
        } else {
            throw Error("unsupported --security-opt \"" + shown(opt) +
                        "\" (supported: no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json)");
        }
    }
    return profile;
}

// The user namespace's maps from --userns/--uidmap/--gidmap. --userns auto gets its range's
// base from launch() once the container's directory records it: here it is 0, enough to
// check which ids are mapped.
void userns_flags(const RunFlags& f, ContainerSpec& spec) {
    if (spec.rootless) {
        // Always a user namespace, from the caller's own ids and subordinate ranges; maps
        // given by flags must stay inside those (launcher/rootless.hpp).
        if (f.userns == "auto")
            throw Error("--userns auto needs root; a rootless container maps your /etc/subuid and /etc/subgid "
                        "ranges (choose within them with --uidmap/--gidmap)");
        if (f.userns != "host") throw Error("unsupported --userns \"" + shown(f.userns) + "\": use host or auto");
        std::vector<IdMapping> uids, gids;
        if (!f.uidmaps.empty() || !f.gidmaps.empty()) {
            uids = parse_maps(f.uidmaps.empty() ? f.gidmaps : f.uidmaps, "--uidmap");
            gids = parse_maps(f.gidmaps.empty() ? f.uidmaps : f.gidmaps, "--gidmap");
        }
        set_rootless_id_maps(spec, uids, gids);
    } else if (f.userns == "auto") {
        if (!f.uidmaps.empty() || !f.gidmaps.empty()) throw Error("--userns auto excludes --uidmap/--gidmap");
        spec.userns_auto = true;
        spec.uid_mappings = spec.gid_mappings = {{0, 0, UsernsRanges::kSize}};
    } else if (f.userns != "host") {
        throw Error("unsupported --userns \"" + shown(f.userns) + "\": use host or auto");
    } else if (!f.uidmaps.empty() || !f.gidmaps.empty()) {
        // As podman: one of the two alone maps groups like users.
        spec.uid_mappings = parse_maps(f.uidmaps.empty() ? f.gidmaps : f.uidmaps, "--uidmap");
        spec.gid_mappings = parse_maps(f.gidmaps.empty() ? f.uidmaps : f.gidmaps, "--gidmap");
    }
    spec.user_namespace = !spec.uid_mappings.empty();
}

// --boot-offset: the kernel takes a time namespace's offset only if every clock it moves stays
// within 0 to KTIME_SEC_MAX / 2 seconds (timens_set_offset), checked here rather than once the
// container is being made.
void check_boot_offset(int64_t offset) {
    constexpr int64_t kMaxSeconds = 4'611'686'018;  // KTIME_SEC_MAX / 2, about 146 years
    for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_BOOTTIME}) {
        timespec now {};
        clock_gettime(clock, &now);
        if (offset < -now.tv_sec || offset > kMaxSeconds - now.tv_sec)
            throw Error("invalid --boot-offset " + std::to_string(offset) + ": the range is -" +
                        std::to_string(now.tv_sec) + " (the host's uptime) to " + std::to_string(kMaxSeconds - now.tv_sec) +
                        " seconds (the kernel's limit on a clock's value)");
    }
}

// Everything the flags alone decide, checked before the image is looked up (and maybe pulled).
std::optional<SeccompProfile> flag_only_parts(const RunFlags& f, ContainerSpec& spec, bool& unconfined) {
    spec.resources = build_resources(f.res);
    // So too whether a rootless run can have the limits it asks for (launcher/rootless.hpp).
    if (spec.rootless) rootless_cgroup_parent(spec.resources, RootlessCgroupHost::current());
    network_flags(f, spec);
    spec.name = f.name;
    if (!f.name.empty()) check_container_name(f.name);
    if (!f.hostname.empty()) check_hostname(f.hostname);
    mount_flags(f, spec);
    spec.read_only_root = f.read_only;
    spec.remove_on_exit = f.rm;
    if (f.stop_timeout < 0) throw Error("invalid --stop-timeout " + std::to_string(f.stop_timeout) + ": seconds, 0 or more");
    spec.stop_timeout_s = f.stop_timeout;
    check_boot_offset(f.boot_offset);
    spec.time_namespace = f.timens || f.boot_offset != 0;
    spec.boot_offset_s = f.boot_offset;
    userns_flags(f, spec);
    // --privileged: every capability srlaunch holds; --cap-add/--cap-drop are ignored then,
    // as docker does.
    spec.privileged = f.privileged;
    spec.process.capabilities = f.privileged ? all_capabilities() : resolve_capabilities(f.cap_add, f.cap_drop);
    auto profile = security_flags(f, spec, unconfined);
    device_flags(f, spec);
    if (!spec.privileged) {  // --privileged sees /proc as the host's root does
        spec.masked_paths = default_masked_paths();
        spec.readonly_paths = default_readonly_paths();
    }
    return profile;
}

void process_env(const RunFlags& f, const ImageConfig& image, const ResolvedUser& who, ContainerSpec& spec) {
    auto& env = spec.process.env;
    env = {kDefaultPath, "HOSTNAME=" + spec.hostname, "HOME=" + who.home};
    if (f.tty) env.push_back("TERM=xterm");
    for (const auto& e : image.env) set_env(env, e);
    for (const auto& file : f.env_files) {
        std::ifstream in(file);
        if (!in) throw Error("cannot read --env-file " + shown(file));
        for (std::string line; std::getline(in, line);) {
            auto start = line.find_first_not_of(" \t");
            if (start == std::string::npos || line[start] == '#') continue;
            add_env_flag(env, line.substr(start));
        }
    }
    for (const auto& e : f.env) add_env_flag(env, e);
}

// The root filesystem and the command: --rootfs DIR CMD..., or IMAGE [CMD...].
ImageConfig root_and_command(const RunFlags& f, std::vector<std::string> rest, const StorePaths& paths,
                             ContainerSpec& spec) {
    ImageConfig config;
    if (!f.rootfs.empty()) {
        struct stat st {};
        if (stat(f.rootfs.c_str(), &st) < 0) throw Error("--rootfs " + shown(f.rootfs), errno);
        if (!S_ISDIR(st.st_mode)) throw Error("--rootfs " + shown(f.rootfs) + " is not a directory");
        spec.image_rootfs = fs::canonical(f.rootfs);
        spec.rootfs_is_plain_dir = true;
    } else {
        if (rest.empty()) throw Error("\"run\" requires an image (or --rootfs DIR)");
        Image image = image_for_run(paths, rest.front(), f.pull, f.pull_policy);
        rest.erase(rest.begin());
        spec.image = image.ref.str();
        spec.image_rootfs = image.rootfs;
        config = image.config;
    }
    spec.process.args = config.entrypoint;
    if (!rest.empty())
        spec.process.args.insert(spec.process.args.end(), rest.begin(), rest.end());
    else if (!config.cmd.empty())
        spec.process.args.insert(spec.process.args.end(), config.cmd.begin(), config.cmd.end());
    if (spec.process.args.empty()) spec.process.args = {"/bin/sh"};
    return config;
}

// The user and working directory, from the flags or the image.
ResolvedUser process_user(const RunFlags& f, const ImageConfig& image, ContainerSpec& spec) {
    ResolvedUser who = resolve_user(spec.image_rootfs, f.user.empty() ? image.user : f.user);
    spec.process.uid = who.uid;
    spec.process.gid = who.gid;
    spec.process.additional_gids = who.additional_gids;
    spec.process.cwd = !f.workdir.empty()       ? container_path(f.workdir, "--workdir")
                       : !image.workdir.empty() ? container_path(image.workdir, "the image's WORKDIR")
                                                : "/";
    // A map of the caller's gid alone comes with setgroups(2) denied: the user's groups
    // cannot be set inside, and srinit will not try.
    if (spec.rootless && rootless_setgroups_denied(spec)) spec.process.additional_gids.clear();
    if (spec.user_namespace &&
        (!map_to_host(spec.uid_mappings, spec.process.uid) || !map_to_host(spec.gid_mappings, spec.process.gid)))
        throw Error("the user " + std::to_string(spec.process.uid) + ":" + std::to_string(spec.process.gid) +
                    " is not mapped into the user namespace");
    return who;
}

}  // namespace

Mount parse_volume(const std::string& text) {
    std::vector<std::string> fields = split(text, ':');
    if (fields.size() < 2) throw Error("invalid -v \"" + shown(text) + "\": expected HOST:CONTAINER[:ro|rw]");
    if (fields.size() > 3 || (fields.size() == 3 && fields[2].find('/') != std::string::npos))
        too_many_colons(text, "-v", "HOST:CONTAINER[:ro|rw]");
    Mount m;
    m.source = fields[0];
    if (fields.size() == 3) {
        if (fields[2] != "ro" && fields[2] != "rw")
            throw Error("invalid -v \"" + shown(text) + "\": the mode must be ro or rw, not \"" + shown(fields[2]) + "\"");
        m.read_only = fields[2] == "ro";
    }
    check_host_source(text, m.source, "-v");
    m.destination = container_path(fields[1], "-v");
    check_mount_destination(m.destination, "-v");
    return m;
}

Resources build_resources(const ResourceFlags& f) {
    Resources r;
    if (!f.memory.empty()) {
        r.memory = parse_size(f.memory, "--memory");
        if (*r.memory < 6 * 1024 * 1024 || *r.memory > kMaxMemory)
            throw Error("invalid --memory \"" + shown(f.memory) + "\": the range is 6m to " + std::to_string(kMaxMemory) +
                        " bytes (twice it, the default memory+swap limit, must fit in 63 bits)");
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
    if (!f.cpus.empty()) r.cpu_quota_us = parse_cpus_quota(f.cpus, r.cpu_period_us, "--cpus", available_cpus());
    if (!f.cpuset_cpus.empty()) validate_cpu_list(f.cpuset_cpus, "--cpuset-cpus");
    if (!f.cpuset_mems.empty()) validate_cpu_list(f.cpuset_mems, "--cpuset-mems");
    r.cpuset_cpus = f.cpuset_cpus;
    r.cpuset_mems = f.cpuset_mems;
    if (f.pids_limit) {
        if (*f.pids_limit > kMaxPids)
            throw Error("invalid --pids-limit " + std::to_string(*f.pids_limit) + ": at most " + std::to_string(kMaxPids) +
                        " (the kernel's PID_MAX_LIMIT; 0 or less: unlimited)");
        r.pids_limit = *f.pids_limit <= 0 ? -1 : *f.pids_limit;
    }
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

ContainerSpec build_spec(const RunFlags& f, std::vector<std::string> rest, const StorePaths& paths) {
    check_no_unknown_flag(rest);
    // -it copies the caller's terminal into the container's: it must be one. (-t alone, or
    // -d, gives the container a terminal of its own that the caller need not have.)
    if (f.tty && f.interactive && !f.detach && !isatty(STDIN_FILENO)) throw Error("the input device is not a TTY (-it)");
    ContainerSpec spec;
    spec.rootless = geteuid() != 0;
    spec.id = new_container_id();
    bool seccomp_unconfined = false;
    std::optional<SeccompProfile> seccomp_profile = flag_only_parts(f, spec, seccomp_unconfined);

    ImageConfig image = root_and_command(f, std::move(rest), paths, spec);
    spec.hostname = f.hostname.empty() ? spec.id.substr(0, 12) : f.hostname;
    spec.process.terminal = f.tty;
    spec.process.open_stdin = f.interactive;
    ResolvedUser who = process_user(f, image, spec);
    process_env(f, image, who, spec);
    // Compiled last, against the final capabilities (the default profile allows more to a
    // container granted CAP_SYS_ADMIN, CAP_SYS_PTRACE...). --privileged runs unfiltered, as
    // with docker.
    if (!spec.privileged && !seccomp_unconfined)
        spec.seccomp_bpf = compile_seccomp_cached(seccomp_profile ? *seccomp_profile : default_seccomp_profile(),
                                                  spec.process.capabilities, paths.root / "cache" / "seccomp");
    return spec;
}

}  // namespace srl
