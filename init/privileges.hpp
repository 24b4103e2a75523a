// Dropping privileges in the workload before exec: capability sets through raw
// prctl/capset (srinit links no libcap), the user and groups, no_new_privs.
#pragma once

#include "config.hpp"

namespace srinit {

// Returns nullptr, or what failed (errno is set). Order matters and is explained inside.
const char* drop_privileges(const Config& cfg);

}  // namespace srinit
