// `srlaunch exec`: a new process in a running container.
#pragma once

#include <string>
#include <vector>

#include "launcher/container.hpp"
#include "launcher/state.hpp"

namespace srl {

struct ExecOptions {
    std::vector<std::string> args;
    std::vector<std::string> env;  // KEY=VALUE, over the container's environment
    std::string user;              // "": the container's user
    std::string workdir;           // "": the container's working directory
    bool interactive = false, tty = false;
};

// Joins every namespace of the container (its user namespace first, when it has one), its
// cgroups, and its capabilities, seccomp filter and no_new_privs; returns the command's exit
// status as `docker exec` does (126/127 when it cannot run, 128+N for signal N).
int exec_in_container(const ContainerRef& c, const ExecOptions& opts);

}  // namespace srl
