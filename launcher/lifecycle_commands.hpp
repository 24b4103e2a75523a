// The container commands of the command line: ps, logs, stop, kill, rm, wait, inspect,
// stats, exec, attach.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "launcher/container.hpp"
#include "launcher/exec.hpp"

namespace srl {

class LifecycleCommands {
public:
    explicit LifecycleCommands(CLI::App& app);
    // Runs the container command that was parsed, if any; returns its exit status.
    std::optional<int> dispatch(const StorePaths& paths);

private:
    int ps(const StorePaths& paths);
    int logs(const StorePaths& paths);
    int inspect(const StorePaths& paths);
    int stats(const StorePaths& paths);

    CLI::App *ps_, *logs_, *stop_, *kill_, *rm_, *wait_, *inspect_, *stats_, *exec_, *attach_;
    bool ps_all_ = false, logs_follow_ = false, rm_force_ = false, stats_no_stream_ = false;
    std::string ps_format_, kill_signal_ = "KILL";
    int logs_tail_ = -1, stop_timeout_ = -1;
    std::vector<std::string> targets_;
    std::string target_;
    ExecOptions exec_opts_;
};

// `srlaunch attach`: the caller's terminal (or stdio) joined to a detached container's
// console until it ends (its exit status is returned) or Ctrl-P Ctrl-Q detaches (0).
int attach_container(const ContainerRef& c);

}  // namespace srl
