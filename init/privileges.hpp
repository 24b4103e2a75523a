// Dropping privileges in the workload before exec: capability sets through raw
// prctl/capset (srinit links no libcap), the user and groups, no_new_privs; and the
// seccomp filter srinit puts on itself.
#pragma once

#include "config.hpp"

namespace srinit {

// Returns nullptr, or what failed (errno is set). Order matters and is explained inside.
const char* drop_privileges(const Config& cfg);

// Installs the launcher's seccomp filter (cfg.seccomp) on the calling process, if there is
// one. srinit calls it on itself, so srinit and everything it forks live under the filter.
// Returns nullptr, or what failed (errno is set).
const char* install_seccomp(const Config& cfg);

}  // namespace srinit
