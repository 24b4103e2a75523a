// A container's recorded state: what `ps`, `inspect`, `stop`, `exec` and `rm` read, written
// by the process that supervises the container (the launcher in the foreground, the monitor
// with -d). It lives in the container's directory, <root>/containers/<id>/state.json, so it
// outlives the supervisor: a monitor killed with SIGKILL leaves its last word behind, and
// whether it still lives is told by a lock it holds, not by the file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher/container.hpp"
#include "launcher/fd.hpp"

namespace srl {

struct ContainerState {
    // Dead: a directory without a state, left by a start or an `rm` killed halfway.
    enum class Status { Created, Running, Exited, Dead };
    std::string id, name, image;
    std::vector<std::string> command;
    Status status = Status::Created;
    int exit_code = -1;
    bool oom_killed = false;
    pid_t pid = 0;               // srinit, the container's PID 1, as the host sees it
    uint64_t pid_start = 0;      // its start time (clock ticks after boot): tells a reused pid
    pid_t monitor_pid = 0;       // the process supervising it (the launcher or the monitor)
    int64_t created_ms = 0, started_ms = 0, finished_ms = 0;  // unix milliseconds
    bool detached = false, tty = false, open_stdin = false, auto_remove = false;
    int stop_timeout_s = 10;
    std::vector<std::string> cgroups;  // the container's cgroup directories
    nlohmann::json network = nlohmann::json::object();  // mode, address, ports, ...
    std::string log_path;        // -d: where stdout/stderr go

    nlohmann::json to_json() const;
    static ContainerState from_json(const nlohmann::json& j);
};

int64_t now_ms();
// Field 22 of /proc/PID/stat; 0 when the process is gone.
uint64_t process_start_time(pid_t pid);

// Writes state.json in `dir` atomically (a temporary file renamed over it), so a reader
// never sees half a state.
void write_state(const std::filesystem::path& dir, const ContainerState& state);
// Writes (creates or truncates) a file, each failure with its errno text.
// (mode before the umask; the container's /etc/hosts and friends must be readable to all).
void write_text_file(const std::filesystem::path& path, const std::string& text, mode_t mode = 0644);
// Throws Error when the directory is gone; a directory without a readable state.json reads
// as a Dead container.
ContainerState read_state(const std::filesystem::path& dir);

// Held (flock, exclusive) by the supervising process for as long as it lives. Others probe
// it: free means nobody supervises the container any more. Never inherited by the
// container: the fd is close-on-exec, and srinit is exec'd.
class SupervisorLock {
public:
    SupervisorLock() = default;
    static SupervisorLock acquire(const std::filesystem::path& container_dir);  // blocks
    // The same for a container that may have been removed meanwhile: nullopt then.
    static std::optional<SupervisorLock> acquire_existing(const std::filesystem::path& container_dir);
    static bool held_by_someone(const std::filesystem::path& container_dir);
    // Waits up to `timeout_ms` (-1: for ever) for the supervisor to finish; true when it has.
    static bool wait_released(const std::filesystem::path& container_dir, int timeout_ms);
    // The container's exit status, written into the lock file itself: a waiter holding the
    // file open reads it even after `--rm` removed the directory.
    void record_exit(int code) noexcept;
    // Waits for the supervisor to finish and returns the status it recorded (nullopt: it
    // died before recording one). The lock file is opened first, so a --rm that removes the
    // directory meanwhile takes nothing from us.
    static std::optional<int> wait_for_exit(const std::filesystem::path& container_dir);

private:
    Fd fd_;
};

// "running", "exited (0)", "oom-killed", "exited (unknown)" (its supervisor died without
// recording an end), "created", "dead" (partly created or removed).
std::string display_status(const ContainerState& state, bool supervisor_alive);

// The container an argument names: a full id, a unique id prefix, or a name.
struct ContainerRef {
    std::string id;
    std::filesystem::path dir;
};
ContainerRef find_container(const StorePaths& store, const std::string& id_or_name);
std::vector<ContainerRef> list_containers(const StorePaths& store);  // every container directory

// Removes a container's directory in an order that a kill at any moment cannot turn into a
// directory nobody recognizes: everything else first, then state.json and config.json (what
// says which resources to release), then the directory. Throws Error when it stays.
void remove_container_files(const std::filesystem::path& dir);

// An fd on the container's PID 1 that is checked against the recorded start time, so a
// signal never reaches a process that merely reuses the pid. Invalid when it is gone.
Fd open_container_init(const ContainerState& state);

}  // namespace srl
