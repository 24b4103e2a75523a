#include "launcher/srinit_config.hpp"

#include <cstdio>

#include "launcher/rootless.hpp"

namespace srl {

namespace {
void record(std::string& out, const char* key, const std::string& value) {
    out += key;
    out += ' ';
    out += std::to_string(value.size());
    out += '\n';
    out += value;
    out += '\n';
}
}  // namespace

std::string srinit_config_stream(const ContainerSpec& spec) {
    std::string out;
    for (const auto& a : spec.process.args) record(out, "arg", a);
    for (const auto& e : spec.process.env) record(out, "env", e);
    record(out, "cwd", spec.process.cwd);
    record(out, "uid", std::to_string(spec.process.uid));
    record(out, "gid", std::to_string(spec.process.gid));
    std::string groups;
    for (auto g : spec.process.additional_gids) groups += (groups.empty() ? "" : ",") + std::to_string(g);
    // Without the record srinit leaves the groups alone: in a rootless container whose gid
    // map is the caller's gid alone, setgroups(2) is denied (launcher/rootless.cpp says why).
    if (!rootless_setgroups_denied(spec)) record(out, "groups", groups);
    record(out, "grace_ms", std::to_string(spec.stop_timeout_s * 1000));
    char caps[17];
    std::snprintf(caps, sizeof caps, "%llx", static_cast<unsigned long long>(spec.process.capabilities));
    record(out, "caps", caps);
    record(out, "no_new_privs", spec.process.no_new_privileges ? "1" : "0");
    // Binary: the record's length prefix carries it as is.
    if (!spec.seccomp_bpf.empty()) record(out, "seccomp", spec.seccomp_bpf);
    return out;
}

}  // namespace srl
