#include "launcher/capabilities.hpp"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cctype>

#include "launcher/error.hpp"

namespace srl {

uint64_t all_capabilities() {
    // cap_max_bits() asks the running kernel, not the headers we were built with. As docker
    // does, ALL is what srlaunch's own bounding set still holds: a capability missing there
    // (a launcher started inside a restricted sandbox) cannot be granted, and asking for it
    // would only make srinit's capset fail.
    unsigned bits = std::min(static_cast<unsigned>(cap_max_bits()), 64u);
    uint64_t mask = 0;
    for (unsigned c = 0; c < bits; ++c)
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) mask |= uint64_t(1) << c;
    return mask;
}

int capability_number(const std::string& name) {
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (n.rfind("cap_", 0) != 0) n = "cap_" + n;
    cap_value_t v;
    if (cap_from_name(n.c_str(), &v) != 0 || v < 0 || v >= static_cast<cap_value_t>(cap_max_bits()))
        throw Error("unknown capability \"" + shown(name) + "\"");
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
    const uint64_t grantable = all_capabilities();
    for (const auto& a : add) {
        if (is_all(a)) {
            caps |= grantable;
            continue;
        }
        uint64_t bit = uint64_t(1) << capability_number(a);
        // Said here rather than as srinit's failing capset.
        if (!(grantable & bit)) throw Error("cannot add capability \"" + a + "\": srlaunch's own bounding set lacks it");
        caps |= bit;
    }
    return caps & grantable;
}

}  // namespace srl
