#include "launcher/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "images/extract.hpp"
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
        case ContainerState::Status::Dead: return "dead";
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
    s.status = st == "running" ? Status::Running
               : st == "exited" ? Status::Exited
               : st == "dead"   ? Status::Dead
                                : Status::Created;
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

void write_text_file(const fs::path& path, const std::string& text, mode_t mode) {
    Fd fd(check(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode), "create " + path.string()));
    for (size_t done = 0; done < text.size();) {
        ssize_t n = write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("write " + path.string());
        done += static_cast<size_t>(n);
    }
    // Some filesystems report a full disk only when the file is closed.
    if (close(fd.release()) < 0) throw_errno("write " + path.string());
}

void write_state(const fs::path& dir, const ContainerState& state) {
    fs::path tmp = dir / ".state.json.tmp", final = dir / "state.json";
    write_text_file(tmp, state.to_json().dump(2) + "\n");
    check(rename(tmp.c_str(), final.c_str()), "record the state of " + state.id.substr(0, 12));
}

ContainerState read_state(const fs::path& dir) {
    std::ifstream in(dir / "state.json");
    if (in) {
        try {
            return ContainerState::from_json(json::parse(in));
        } catch (const json::exception&) {
            // Only a crash of the filesystem itself: state.json is replaced atomically.
        }
    }
    struct stat st {};
    if (stat(dir.c_str(), &st) < 0) throw Error("no such container: " + dir.filename().string().substr(0, 12));
    // A directory without a (readable) state: a start or an `rm` killed halfway. Listed
    // and removable like any other container.
    ContainerState dead;
    dead.id = dir.filename().string();
    dead.status = ContainerState::Status::Dead;
    dead.created_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    return dead;
}

SupervisorLock SupervisorLock::acquire(const fs::path& dir) {
    SupervisorLock lock;
    lock.fd_ = Fd(check(open((dir / "supervisor.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600),
                        "create the supervisor lock"));
    while (flock(lock.fd_.get(), LOCK_EX) < 0)
        if (errno != EINTR) throw_errno("lock the container");
    return lock;
}

void SupervisorLock::record_exit(int code) noexcept {
    std::string text = std::to_string(code) + "\n";
    (void)!pwrite(fd_.get(), text.data(), text.size(), 0);
}

std::optional<int> SupervisorLock::wait_for_exit(const fs::path& dir) {
    Fd fd(open((dir / "supervisor.lock").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;  // never supervised, or removed already
    while (flock(fd.get(), LOCK_SH) < 0)
        if (errno != EINTR) throw_errno("wait for the container");
    char buf[16] = {};
    ssize_t n = pread(fd.get(), buf, sizeof buf - 1, 0);
    int code = 0;
    if (n <= 0 || std::from_chars(buf, buf + n, code).ec != std::errc()) return std::nullopt;
    return code;
}

std::optional<SupervisorLock> SupervisorLock::acquire_existing(const fs::path& dir) {
    SupervisorLock lock;
    lock.fd_ = Fd(open((dir / "supervisor.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock.fd_ && errno == ENOENT) return std::nullopt;
    if (!lock.fd_) throw_errno("create the supervisor lock");
    while (flock(lock.fd_.get(), LOCK_EX) < 0)
        if (errno != EINTR) throw_errno("lock the container");
    // Removed while we waited: the lock file we hold is unlinked.
    struct stat st {};
    if (fstat(lock.fd_.get(), &st) == 0 && st.st_nlink == 0) return std::nullopt;
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
    if (s.status == ContainerState::Status::Dead) return alive ? "created" : "dead";
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
        if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
        out.push_back({id, e.path()});
    }
    return out;
}

void remove_container_files(const fs::path& dir) {
    static const char* const kLast[] = {"state.json", "config.json", "supervisor.lock"};
    Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd && errno == ENOENT) return;  // removed already
    if (!fd) throw_errno("open " + dir.string());
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::string name = e.path().filename().string();
        if (std::find(std::begin(kLast), std::end(kLast), name) != std::end(kLast)) continue;
        // Through fds, so a tree the container made deeper than PATH_MAX goes too.
        remove_tree_at(fd.get(), name, e.path().string());
    }
    if (ec) throw Error("read " + dir.string() + ": " + ec.message());
    for (const char* name : kLast)
        if (unlink((dir / name).c_str()) < 0 && errno != ENOENT) throw_errno("remove " + (dir / name).string());
    if (rmdir(dir.c_str()) < 0 && errno != ENOENT) throw_errno("remove " + dir.string());
}

ContainerRef find_container(const StorePaths& store, const std::string& arg) {
    if (arg.empty()) throw Error("no container given");
    // A name first, as docker does: names/NAME -> id.
    std::error_code ec;
    fs::path target = fs::read_symlink(store.names() / arg, ec);
    if (!ec && arg.find('/') == std::string::npos) {
        fs::path dir = store.containers() / target;
        if (fs::exists(dir)) return {target.string(), dir};
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
