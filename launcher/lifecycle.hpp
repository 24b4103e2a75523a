// What can be done to a container after `run` started it: signal it, stop it, wait for it,
// remove it. Each works from the recorded state (launcher/state.hpp) and so from any
// process, whether the container's supervisor still lives or was killed.
#pragma once

#include <string>

#include "launcher/container.hpp"
#include "launcher/state.hpp"

namespace srl {

// Sends `sig` to the container's PID 1, srinit, which forwards it to the workload (SIGKILL
// ends the whole container). Throws if it is not running.
void kill_container(const ContainerRef& c, int sig);

// SIGTERM, then SIGKILL if it still runs `timeout_s` seconds later; returns when its
// supervisor has recorded the end and cleaned up. A container that is not running is left
// as it is.
void stop_container(const ContainerRef& c, int timeout_s);

// Blocks until the container has ended; returns its exit status (-1 when unknown).
int wait_container(const ContainerRef& c);

// Removes a container that has ended: its cgroups (killing anything still in them), its
// name, its user-namespace range, its network and its directory. A running one is refused
// unless `force`, which kills it first.
void remove_container(const StorePaths& store, const ContainerRef& c, bool force);

// A signal by name or number: "TERM", "SIGTERM", "15".
int parse_signal(const std::string& text);

}  // namespace srl
