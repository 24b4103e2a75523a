#include "launcher/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "launcher/error.hpp"

namespace srl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const char* status_name(ContainerState::Status s) {
    switch (s) {
        case ContainerState::Status::Created: return "created";
        case ContainerState::Status::Running: return "running";
        case ContainerState::Status::Exited: return "exited";
    }
    return "?";
}
}  // namespace

json ContainerState::to_json() const {
    return {{"id", id},
            {"name", name},
            {"image", image},
            {"command", command},
            {"status", status_name(status)},
            {"exitCode", exit_code},
            {"oomKilled", oom_killed},
            {"pid", pid},
            {"pidStart", pid_start},
            {"monitorPid", monitor_pid},
            {"created", created_ms},
            {"started", started_ms},
            {"finished", finished_ms},
            {"detached", detached},
            {"tty", tty},
            {"openStdin", open_stdin},
            {"autoRemove", auto_remove},
            {"stopTimeout", stop_timeout_s},
            {"cgroups", cgroups},
            {"network", network},
            {"logPath", log_path}};
}

ContainerState ContainerState::from_json(const json& j) {
    ContainerState s;
    s.id = j.at("id");
    s.name = j.value("name", "");
    s.image = j.value("image", "");
    s.command = j.value("command", std::vector<std::string>{});
    std::string st = j.value("status", "created");
    s.status = st == "running" ? Status::Running : st == "exited" ? Status::Exited : Status::Created;
    s.exit_code = j.value("exitCode", -1);
    s.oom_killed = j.value("oomKilled", false);
    s.pid = j.value("pid", 0);
    s.pid_start = j.value("pidStart", uint64_t{0});
    s.monitor_pid = j.value("monitorPid", 0);
    s.created_ms = j.value("created", int64_t{0});
    s.started_ms = j.value("started", int64_t{0});
    s.finished_ms = j.value("finished", int64_t{0});
    s.detached = j.value("detached", false);
    s.tty = j.value("tty", false);
    s.open_stdin = j.value("openStdin", false);
    s.auto_remove = j.value("autoRemove", false);
    s.stop_timeout_s = j.value("stopTimeout", 10);
    s.cgroups = j.value("cgroups", std::vector<std::string>{});
    s.network = j.value("network", json::object());
    s.log_path = j.value("logPath", "");
    return s;
}

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

uint64_t process_start_time(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i)
        if (i == 22) return std::stoull(field);
    return 0;
}

void write_state(const fs::path& dir, const ContainerState& state) {
    fs::path tmp = dir / ".state.json.tmp", final = dir / "state.json";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << state.to_json().dump(2) << "\n";
        if (!out.flush()) throw Error("write " + tmp.string());
    }
    check(rename(tmp.c_str(), final.c_str()), "record the state of " + state.id.substr(0, 12));
}

ContainerState read_state(const fs::path& dir) {
    std::ifstream in(dir / "state.json");
    if (!in) throw Error("no state for container " + dir.filename().string());
    try {
        return ContainerState::from_json(json::parse(in));
    } catch (const json::exception& e) {
        throw Error("corrupt state of container " + dir.filename().string() + ": " + e.what());
    }
}

SupervisorLock SupervisorLock::acquire(const fs::path& dir) {
    SupervisorLock lock;
    lock.fd_ = Fd(check(open((dir / "supervisor.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600),
                        "create the supervisor lock"));
    while (flock(lock.fd_.get(), LOCK_EX) < 0)
        if (errno != EINTR) throw_errno("lock the container");
    return lock;
}

bool SupervisorLock::held_by_someone(const fs::path& dir) { return !wait_released(dir, 0); }

bool SupervisorLock::wait_released(const fs::path& dir, int timeout_ms) {
    Fd fd(open((dir / "supervisor.lock").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return true;  // never supervised, or removed with the container
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return true;
        if (errno != EWOULDBLOCK && errno != EINTR) return true;
        if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::string display_status(const ContainerState& s, bool alive) {
    if (s.status == ContainerState::Status::Exited) {
        if (s.oom_killed) return "oom-killed";
        return "exited (" + std::to_string(s.exit_code) + ")";
    }
    if (!alive) return "exited (unknown)";
    return s.status == ContainerState::Status::Running ? "running" : "created";
}

std::vector<ContainerRef> list_containers(const StorePaths& store) {
    std::vector<ContainerRef> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(store.containers(), ec)) {
        std::string id = e.path().filename().string();
        if (id.size() != 64 || !fs::exists(e.path() / "state.json")) continue;
        out.push_back({id, e.path()});
    }
    return out;
}

ContainerRef find_container(const StorePaths& store, const std::string& arg) {
    if (arg.empty()) throw Error("no container given");
    // A name first, as docker does: names/NAME -> id.
    std::error_code ec;
    fs::path target = fs::read_symlink(store.names() / arg, ec);
    if (!ec && arg.find('/') == std::string::npos) {
        fs::path dir = store.containers() / target;
        if (fs::exists(dir / "state.json")) return {target.string(), dir};
    }
    std::vector<ContainerRef> matches;
    for (auto& c : list_containers(store))
        if (c.id.compare(0, arg.size(), arg) == 0) matches.push_back(c);
    if (matches.empty()) throw Error("no such container: " + arg);
    if (matches.size() > 1) throw Error("the id prefix \"" + arg + "\" matches " + std::to_string(matches.size()) + " containers");
    return matches.front();
}

Fd open_container_init(const ContainerState& s) {
    if (s.pid <= 0) return Fd();
    Fd fd(static_cast<int>(syscall(SYS_pidfd_open, s.pid, 0)));
    // Checked after opening: from now on the fd names this process even if the pid is reused.
    if (!fd || process_start_time(s.pid) != s.pid_start) return Fd();
    return fd;
}

}  // namespace srl
