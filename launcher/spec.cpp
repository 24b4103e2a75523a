#include "launcher/spec.hpp"

#include "launcher/error.hpp"

namespace srl {

const std::vector<std::string>& default_masked_paths() {
    static const std::vector<std::string> paths{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                                                "/proc/scsi", "/proc/acpi", "/sys/firmware", "/proc/latency_stats"};
    return paths;
}

const std::vector<std::string>& default_readonly_paths() {
    static const std::vector<std::string> paths{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"};
    return paths;
}

nlohmann::json spec_to_json(const ContainerSpec& s) {
    using nlohmann::json;
    json mounts = json::array();
    for (const auto& m : s.mounts)
        mounts.push_back({{"type", m.kind == Mount::Kind::Bind ? "bind" : "tmpfs"},
                          {"source", m.source},
                          {"destination", m.destination},
                          {"readonly", m.read_only}});
    auto maps = [](const std::vector<IdMapping>& v) {
        json out = json::array();
        for (const auto& m : v) out.push_back({{"containerID", m.container}, {"hostID", m.host}, {"size", m.count}});
        return out;
    };
    // OCI's linux.resources.devices[] shape.
    json device_rules = json::array();
    for (const auto& r : s.resources.device_rules) {
        json rule = {{"allow", r.allow}, {"type", std::string(1, r.type)}, {"access", r.access}};
        if (r.major >= 0) rule["major"] = r.major;
        if (r.minor >= 0) rule["minor"] = r.minor;
        device_rules.push_back(rule);
    }
    static const char* const net_modes[] = {"none", "host", "bridge", "container"};
    std::string network = net_modes[static_cast<int>(s.net)];
    if (s.net == NetMode::Container) network += ":" + s.net_container;
    json ports = json::array();
    for (const auto& p : s.ports)
        ports.push_back({{"hostIP", p.host_ip}, {"hostPort", p.host_port}, {"containerPort", p.container_port},
                         {"protocol", p.proto == PortMapping::Proto::Tcp ? "tcp" : "udp"}});
    return {
        {"id", s.id},
        {"name", s.name},
        {"image", s.image},
        {"process",
         {{"args", s.process.args},
          {"env", s.process.env},
          {"cwd", s.process.cwd},
          {"user", {{"uid", s.process.uid}, {"gid", s.process.gid}, {"additionalGids", s.process.additional_gids}}},
          {"terminal", s.process.terminal},
          {"open_stdin", s.process.open_stdin},
          {"capabilities", s.process.capabilities},
          {"noNewPrivileges", s.process.no_new_privileges}}},
        {"root", {{"path", s.image_rootfs.string()}, {"readonly", s.read_only_root}, {"overlay", !s.rootfs_is_plain_dir},
                  {"extraLowers", s.extra_lowers}}},
        {"hostname", s.hostname},
        {"mounts", mounts},
        {"linux",
         {{"network", network},
          {"ports", ports},
          {"userNamespace", s.user_namespace},
          {"uidMappings", maps(s.uid_mappings)},
          {"gidMappings", maps(s.gid_mappings)},
          {"timeNamespace", s.time_namespace},
          // The filter itself is binary; its size says whether there is one.
          {"seccomp", s.seccomp_bpf.empty() ? json(nullptr) : json{{"instructions", s.seccomp_bpf.size() / 8}}},
          {"maskedPaths", s.masked_paths},
          {"readonlyPaths", s.readonly_paths},
          {"privileged", s.privileged},
          {"resources", {{"devices", device_rules}}}}},
        {"stopTimeout", s.stop_timeout_s},
        {"autoRemove", s.remove_on_exit},
        {"rootless", s.rootless},
    };
}

ContainerSpec spec_from_json(const nlohmann::json& j) try {
    ContainerSpec spec;
    spec.id = j.at("id");
    const auto& p = j.at("process");
    spec.process.args = p.at("args").get<std::vector<std::string>>();
    spec.process.env = p.at("env").get<std::vector<std::string>>();
    spec.process.cwd = p.at("cwd");
    spec.process.uid = p.at("user").at("uid");
    spec.process.gid = p.at("user").at("gid");
    spec.process.additional_gids = p.at("user").at("additionalGids").get<std::vector<uint32_t>>();
    spec.process.capabilities = p.at("capabilities");
    spec.process.no_new_privileges = p.at("noNewPrivileges");
    spec.rootless = j.value("rootless", false);
    const auto& linux = j.at("linux");
    spec.user_namespace = linux.at("userNamespace");
    auto maps = [](const nlohmann::json& v) {
        std::vector<IdMapping> out;
        for (const auto& m : v) out.push_back({m.at("containerID"), m.at("hostID"), m.at("size")});
        return out;
    };
    spec.uid_mappings = maps(linux.at("uidMappings"));
    spec.gid_mappings = maps(linux.at("gidMappings"));
    return spec;
} catch (const nlohmann::json::exception& e) {
    throw Error(std::string("unreadable container config: ") + e.what());
}

}  // namespace srl
