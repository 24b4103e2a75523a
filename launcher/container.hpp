// Running one container from a ContainerSpec: namespaces, ID maps, the root filesystem,
// srinit as PID 1, waiting, signal forwarding and cleanup.
#pragma once

#include <filesystem>
#include <string>

#include "launcher/fd.hpp"
#include "launcher/spec.hpp"

namespace srl {

// Where srlaunch keeps things: as root /var/lib/srlaunch, as a user $XDG_DATA_HOME/srlaunch;
// --root DIR or SRLAUNCH_ROOT puts everything under DIR.
struct StorePaths {
    std::filesystem::path root;
    std::filesystem::path images() const { return root / "images"; }
    std::filesystem::path containers() const { return root / "containers"; }
    std::filesystem::path names() const { return root / "names"; }
    std::filesystem::path userns() const { return root / "userns"; }
    static StorePaths resolve(const std::string& root_flag);
};

// A fresh random container id (64 hex digits).
std::string new_container_id();

// The srinit binary to inject: $SRLAUNCH_INIT, else `srinit` beside the srlaunch binary,
// else /usr/libexec/srlaunch/srinit.
std::filesystem::path find_srinit();
// A sealed in-memory copy of it, to run from (container.cpp says why).
Fd sealed_srinit();
// Child side, last: execs srinit (an fd from sealed_srinit) with its config stream (a memfd)
// as fd 3; every other fd but 0, 1, 2 is closed by the exec, whoever opened it. Returns only
// by throwing Error.
[[noreturn]] void exec_srinit(int srinit_fd, int config_fd);
// Closes every fd above 2 except `keep` (-1: none): what a monitor does with what its caller
// had open, so that no pipe or socket of the caller's is held for the container's lifetime.
void close_inherited_fds_except(int keep);
// An in-memory file holding `content`, positioned at its start (srinit's config stream).
Fd memfd_with(const std::string& content, const char* name);

// Runs the container to completion and returns its exit status as `docker run` does
// (the workload's, 126/127 from srinit, 128+N for a signal). Throws Error for failures of
// srlaunch itself, after cleaning up.
int run_container(ContainerSpec& spec, const StorePaths& store);

// -d: starts the container under a monitor process of its own (twice forked, own session)
// that supervises it, logs its output and records its end, and returns its id once srinit
// runs. Errors up to that point are thrown here, as for run_container.
std::string start_detached(ContainerSpec& spec, const StorePaths& store);

}  // namespace srl
