#include "launcher/lifecycle_commands.hpp"

#include <fcntl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "launcher/cgroup.hpp"
#include "launcher/error.hpp"
#include "launcher/lifecycle.hpp"
#include "launcher/state.hpp"
#include "launcher/units.hpp"

namespace srl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string ago(int64_t ms) {
    if (ms <= 0) return "-";
    int64_t s = (now_ms() - ms) / 1000;
    if (s < 60) return std::to_string(std::max<int64_t>(s, 0)) + " seconds ago";
    if (s < 3600) return std::to_string(s / 60) + " minutes ago";
    if (s < 86400) return std::to_string(s / 3600) + " hours ago";
    return std::to_string(s / 86400) + " days ago";
}

std::string iso_time(int64_t ms) {
    if (ms <= 0) return "";
    std::time_t t = static_cast<std::time_t>(ms / 1000);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
    return out;
}

std::string joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

std::string ports_text(const json& network) {
    std::string out;
    for (const auto& p : network.value("ports", json::array()))
        out += (out.empty() ? "" : ", ") + p.get<std::string>();
    return out;
}

struct Listed {
    ContainerRef ref;
    ContainerState state;
    bool alive;
};

std::vector<Listed> listed(const StorePaths& paths) {
    std::vector<Listed> out;
    for (auto& c : list_containers(paths)) {
        try {
            ContainerState s = read_state(c.dir);
            bool alive = SupervisorLock::held_by_someone(c.dir);
            out.push_back({c, s, alive});
        } catch (const Error&) {
            // Removed between the listing and the read: not there any more.
        }
    }
    std::sort(out.begin(), out.end(), [](const Listed& a, const Listed& b) { return a.state.created_ms > b.state.created_ms; });
    return out;
}

bool running(const Listed& l) { return l.alive && l.state.status == ContainerState::Status::Running; }

// One sample of a container's counters and when it was taken.
struct Sample {
    CgroupStats stats;
    std::chrono::steady_clock::time_point at;
};
Sample sample(const ContainerState& s) {
    std::vector<fs::path> dirs(s.cgroups.begin(), s.cgroups.end());
    return {read_cgroup_stats(dirs), std::chrono::steady_clock::now()};
}

}  // namespace

LifecycleCommands::LifecycleCommands(CLI::App& app) {
    ps_ = app.add_subcommand("ps", "list containers (running ones; -a: all)");
    ps_->add_flag("-a,--all", ps_all_, "also those that have exited");
    ps_->add_option("--format", ps_format_, "json: one JSON object per container and line");

    logs_ = app.add_subcommand("logs", "print the output of a container started with -d");
    logs_->add_flag("-f,--follow", logs_follow_, "keep printing new output until the container ends");
    logs_->add_option("--tail", logs_tail_, "only the last N lines");
    logs_->add_option("container", target_, "id, id prefix or name")->required();

    stop_ = app.add_subcommand("stop", "stop containers: SIGTERM, then SIGKILL after the grace period");
    stop_->add_option("-t,--time", stop_timeout_, "seconds to wait before SIGKILL (default: the container's --stop-timeout)");
    stop_->add_option("containers", targets_, "ids, id prefixes or names")->required();

    kill_ = app.add_subcommand("kill", "send a signal to containers (default SIGKILL)");
    kill_->add_option("-s,--signal", kill_signal_, "signal name or number");
    kill_->add_option("containers", targets_, "ids, id prefixes or names")->required();

    rm_ = app.add_subcommand("rm", "remove containers that have ended (-f: kill running ones first)");
    rm_->add_flag("-f,--force", rm_force_, "kill a running container, then remove it");
    rm_->add_option("containers", targets_, "ids, id prefixes or names")->required();

    wait_ = app.add_subcommand("wait", "wait for containers to end and print their exit statuses");
    wait_->add_option("containers", targets_, "ids, id prefixes or names")->required();

    inspect_ = app.add_subcommand("inspect", "print a container's spec and state as JSON");
    inspect_->add_option("containers", targets_, "ids, id prefixes or names")->required();

    stats_ = app.add_subcommand("stats", "memory, CPU, pids and block I/O of running containers");
    stats_->add_flag("--no-stream", stats_no_stream_, "print once instead of refreshing every second");
    stats_->add_option("containers", targets_, "ids, id prefixes or names (default: all running)");

    exec_ = app.add_subcommand("exec", "run a command in a running container");
    exec_->add_flag("-i,--interactive", exec_opts_.interactive, "keep stdin attached");
    exec_->add_flag("-t,--tty", exec_opts_.tty, "give the command a terminal of its own");
    exec_->add_option("-u,--user", exec_opts_.user, "NAME|UID[:GROUP|GID] from the container's /etc/passwd");
    exec_->add_option("-w,--workdir", exec_opts_.workdir, "working directory inside");
    exec_->add_option("-e,--env", exec_opts_.env, "set KEY=VALUE")->allow_extra_args(false);
    exec_->add_option("container", target_, "id, id prefix or name")->required();
    exec_->prefix_command();

    attach_ = app.add_subcommand("attach", "attach to a detached container's console (Ctrl-P Ctrl-Q detaches)");
    attach_->add_option("container", target_, "id, id prefix or name")->required();
}

std::optional<int> LifecycleCommands::dispatch(const StorePaths& paths) {
    if (*ps_) return ps(paths);
    if (*logs_) return logs(paths);
    if (*inspect_) return inspect(paths);
    if (*stats_) return stats(paths);
    if (*exec_) {
        exec_opts_.args = exec_->remaining();
        for (const auto& e : exec_opts_.env)
            if (e.empty() || e.find('=') == std::string::npos || e[0] == '=')
                throw Error("invalid -e \"" + e + "\": expected KEY=VALUE");
        return exec_in_container(find_container(paths, target_), exec_opts_);
    }
    if (*attach_) return attach_container(find_container(paths, target_));
    if (*kill_) {
        int sig = parse_signal(kill_signal_);
        for (const auto& t : targets_) {
            kill_container(find_container(paths, t), sig);
            std::printf("%s\n", t.c_str());
        }
        return 0;
    }
    if (*stop_ || *rm_ || *wait_) {
        // Each named container is handled even when one fails, as docker does; the first
        // error decides the exit status.
        int status = 0;
        for (const auto& t : targets_) {
            try {
                ContainerRef c = find_container(paths, t);
                if (*stop_) {
                    int timeout = stop_timeout_ >= 0 ? stop_timeout_ : read_state(c.dir).stop_timeout_s;
                    stop_container(c, timeout);
                    std::printf("%s\n", t.c_str());
                } else if (*rm_) {
                    remove_container(paths, c, rm_force_);
                    std::printf("%s\n", t.c_str());
                } else {
                    std::printf("%d\n", wait_container(c));
                }
                std::fflush(stdout);
            } catch (const Error& e) {
                std::fprintf(stderr, "srlaunch: %s\n", e.what());
                status = 125;
            }
        }
        return status;
    }
    return std::nullopt;
}

int LifecycleCommands::ps(const StorePaths& paths) {
    auto all = listed(paths);
    if (ps_format_ == "json") {
        for (const auto& l : all) {
            if (!ps_all_ && !running(l)) continue;
            json j = {{"ID", l.state.id}, {"Names", l.state.name}, {"Image", l.state.image},
                      {"Command", joined(l.state.command)}, {"Status", display_status(l.state, l.alive)},
                      {"Created", iso_time(l.state.created_ms)}, {"Started", iso_time(l.state.started_ms)},
                      {"Ports", ports_text(l.state.network)}, {"ExitCode", l.state.exit_code},
                      {"Pid", running(l) ? l.state.pid : 0}};
            std::printf("%s\n", j.dump().c_str());
        }
        return 0;
    }
    if (!ps_format_.empty()) throw Error("unsupported --format \"" + ps_format_ + "\": use json");
    std::printf("%-12s  %-20s  %-22s  %-16s  %-16s  %-22s  %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "STARTED", "STATUS",
                "PORTS", "NAMES");
    for (const auto& l : all) {
        if (!ps_all_ && !running(l)) continue;
        std::string cmd = "\"" + joined(l.state.command) + "\"";
        if (cmd.size() > 22) cmd = cmd.substr(0, 20) + "…\"";
        std::printf("%-12s  %-20s  %-22s  %-16s  %-16s  %-22s  %s\n", l.state.id.substr(0, 12).c_str(),
                    l.state.image.substr(0, 20).c_str(), cmd.c_str(), ago(l.state.started_ms).c_str(),
                    display_status(l.state, l.alive).c_str(), ports_text(l.state.network).c_str(), l.state.name.c_str());
    }
    return 0;
}

int LifecycleCommands::logs(const StorePaths& paths) {
    ContainerRef c = find_container(paths, target_);
    ContainerState s = read_state(c.dir);
    if (s.log_path.empty()) throw Error("container " + c.id.substr(0, 12) + " has no log: only containers started with -d keep one");
    std::ifstream in(s.log_path, std::ios::binary);
    if (!in) throw Error("cannot read the log of " + c.id.substr(0, 12), errno);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t start = 0;
    if (logs_tail_ >= 0) {
        // The last N lines: walk back over N newlines (a final one does not start a line).
        size_t pos = content.size();
        if (pos > 0 && content[pos - 1] == '\n') --pos;
        int lines = 0;
        while (pos > 0 && lines < logs_tail_) {
            if (content[pos - 1] == '\n' && ++lines == logs_tail_) break;
            --pos;
        }
        start = logs_tail_ == 0 ? content.size() : pos;
    }
    std::fwrite(content.data() + start, 1, content.size() - start, stdout);
    std::fflush(stdout);
    if (!logs_follow_) return 0;
    // Follows the file until the container's supervisor is gone, then prints what is left.
    Fd fd(check(open(s.log_path.c_str(), O_RDONLY | O_CLOEXEC), "open " + s.log_path));
    check(lseek(fd.get(), static_cast<off_t>(content.size()), SEEK_SET), "seek the log");
    for (;;) {
        bool done = !SupervisorLock::held_by_someone(c.dir);
        char buf[16384];
        ssize_t n;
        while ((n = read(fd.get(), buf, sizeof buf)) > 0) {
            if (fwrite(buf, 1, static_cast<size_t>(n), stdout) != static_cast<size_t>(n)) return 0;
        }
        std::fflush(stdout);
        if (done) return 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

int LifecycleCommands::inspect(const StorePaths& paths) {
    json out = json::array();
    for (const auto& t : targets_) {
        ContainerRef c = find_container(paths, t);
        ContainerState s = read_state(c.dir);
        bool alive = SupervisorLock::held_by_someone(c.dir);
        std::ifstream in(c.dir / "config.json");
        json config = json::parse(in, nullptr, false);
        bool is_running = alive && s.status == ContainerState::Status::Running;
        out.push_back({{"Id", s.id},
                       {"Name", s.name},
                       {"Image", s.image},
                       {"Created", iso_time(s.created_ms)},
                       {"State",
                        {{"Status", display_status(s, alive)},
                         {"Running", is_running},
                         {"Pid", is_running ? s.pid : 0},
                         {"MonitorPid", alive ? s.monitor_pid : 0},
                         {"ExitCode", s.exit_code},
                         {"OOMKilled", s.oom_killed},
                         {"StartedAt", iso_time(s.started_ms)},
                         {"FinishedAt", iso_time(s.finished_ms)}}},
                       {"Config", config},
                       {"Cgroups", s.cgroups},
                       {"NetworkSettings", s.network},
                       {"Mounts", config.is_object() ? config.value("mounts", json::array()) : json::array()},
                       {"Detached", s.detached},
                       {"Tty", s.tty},
                       {"LogPath", s.log_path},
                       {"Dir", c.dir.string()}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
}

int LifecycleCommands::stats(const StorePaths& paths) {
    bool on_terminal = isatty(STDOUT_FILENO);
    uint64_t host_memory = 0;
    if (struct sysinfo si {}; sysinfo(&si) == 0) host_memory = static_cast<uint64_t>(si.totalram) * si.mem_unit;
    std::map<std::string, Sample> previous;
    for (int round = 0;; ++round) {
        std::vector<Listed> chosen;
        if (targets_.empty()) {
            for (auto& l : listed(paths))
                if (running(l)) chosen.push_back(l);
        } else {
            for (const auto& t : targets_) {
                ContainerRef c = find_container(paths, t);
                chosen.push_back({c, read_state(c.dir), SupervisorLock::held_by_someone(c.dir)});
            }
        }
        // CPU % needs two samples: the first round takes one and, for --no-stream, a
        // second half a second later, as docker's first figure also spans an interval.
        if (round == 0) {
            for (const auto& l : chosen) previous[l.state.id] = sample(l.state);
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        std::string table;
        char line[256];
        std::snprintf(line, sizeof line, "%-12s  %-16s  %7s  %-22s  %6s  %5s  %-16s\n", "CONTAINER ID", "NAME", "CPU %",
                      "MEM USAGE / LIMIT", "MEM %", "PIDS", "BLOCK I/O");
        table += line;
        for (const auto& l : chosen) {
            bool up = running(l);
            Sample now = up ? sample(l.state) : Sample{};
            double cpu = 0;
            if (auto it = previous.find(l.state.id); up && it != previous.end()) {
                double wall_ns = std::chrono::duration<double, std::nano>(now.at - it->second.at).count();
                if (wall_ns > 0 && now.stats.cpu_usage_ns >= it->second.stats.cpu_usage_ns)
                    cpu = 100.0 * static_cast<double>(now.stats.cpu_usage_ns - it->second.stats.cpu_usage_ns) / wall_ns;
            }
            previous[l.state.id] = now;
            uint64_t limit = now.stats.memory_limit ? std::min(now.stats.memory_limit, host_memory) : host_memory;
            double mem_pct = limit ? 100.0 * static_cast<double>(now.stats.memory_current) / static_cast<double>(limit) : 0;
            std::string mem = human_size(now.stats.memory_current) + " / " + human_size(limit);
            std::string io = human_size(now.stats.io_read_bytes) + " / " + human_size(now.stats.io_write_bytes);
            std::snprintf(line, sizeof line, "%-12s  %-16s  %6.2f%%  %-22s  %5.2f%%  %5llu  %-16s\n",
                          l.state.id.substr(0, 12).c_str(), (l.state.name.empty() ? "-" : l.state.name).substr(0, 16).c_str(),
                          cpu, mem.c_str(), mem_pct, static_cast<unsigned long long>(now.stats.pids_current), io.c_str());
            table += line;
        }
        // On a terminal the table is redrawn in place; otherwise each round is printed.
        if (on_terminal && !stats_no_stream_) std::fputs("\033[2J\033[H", stdout);
        std::fputs(table.c_str(), stdout);
        std::fflush(stdout);
        if (stats_no_stream_) return 0;
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}

}  // namespace srl
