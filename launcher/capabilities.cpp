#include "launcher/capabilities.hpp"

#include <sys/capability.h>

#include <algorithm>
#include <cctype>

#include "launcher/error.hpp"

namespace srl {

uint64_t all_capabilities() {
    // cap_max_bits() asks the running kernel, not the headers we were built with.
    unsigned bits = cap_max_bits();
    return bits >= 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1;
}

int capability_number(const std::string& name) {
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (n.rfind("cap_", 0) != 0) n = "cap_" + n;
    cap_value_t v;
    if (cap_from_name(n.c_str(), &v) != 0 || v < 0 || v >= static_cast<cap_value_t>(cap_max_bits()))
        throw Error("unknown capability \"" + name + "\"");
    return v;
}

uint64_t default_capabilities() {
    uint64_t mask = 0;
    for (cap_value_t c : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW, CAP_SETGID,
                          CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,
                          CAP_AUDIT_WRITE})
        mask |= uint64_t(1) << c;
    return mask;
}

static bool is_all(const std::string& s) {
    std::string u = s;
    std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return u == "ALL" || u == "CAP_ALL";
}

uint64_t resolve_capabilities(const std::vector<std::string>& add, const std::vector<std::string>& drop) {
    uint64_t caps = default_capabilities();
    for (const auto& d : drop) caps &= is_all(d) ? 0 : ~(uint64_t(1) << capability_number(d));
    for (const auto& a : add) caps |= is_all(a) ? all_capabilities() : uint64_t(1) << capability_number(a);
    return caps & all_capabilities();
}

}  // namespace srl
