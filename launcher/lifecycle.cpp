#include "launcher/lifecycle.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <thread>

#include "launcher/cgroup.hpp"
#include "launcher/error.hpp"
#include "launcher/idmap.hpp"
#include "launcher/network.hpp"
#include "launcher/rootless.hpp"

#include <fstream>

namespace srl {

namespace fs = std::filesystem;

namespace {

bool is_running(const ContainerState& s, const fs::path& dir) {
    return s.status != ContainerState::Status::Exited && SupervisorLock::held_by_someone(dir);
}

void signal_init(const ContainerState& s, int sig) {
    Fd init = open_container_init(s);
    if (!init) return;  // gone already
    if (syscall(SYS_pidfd_send_signal, init.get(), sig, nullptr, 0) < 0 && errno != ESRCH)
        throw_errno("signal container " + s.id.substr(0, 12));
}

}  // namespace

int parse_signal(const std::string& text) {
    std::string t = text;
    int n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec == std::errc() && p == t.data() + t.size() && n > 0 && n < NSIG) return n;
    if (t.rfind("SIG", 0) == 0) t = t.substr(3);
    for (int sig = 1; sig < NSIG; ++sig)
        if (const char* abbrev = sigabbrev_np(sig); abbrev && t == abbrev) return sig;
    throw Error("invalid signal \"" + text + "\"");
}

void kill_container(const ContainerRef& c, int sig) {
    ContainerState s = read_state(c.dir);
    if (!is_running(s, c.dir)) throw Error("container " + c.id.substr(0, 12) + " is not running");
    signal_init(s, sig);
}

void stop_container(const ContainerRef& c, int timeout_s) {
    ContainerState s = read_state(c.dir);
    if (!is_running(s, c.dir)) return;
    signal_init(s, SIGTERM);
    if (SupervisorLock::wait_released(c.dir, timeout_s * 1000)) return;
    signal_init(s, SIGKILL);
    // The supervisor reaps, records and cleans up; that takes moments, not seconds.
    if (!SupervisorLock::wait_released(c.dir, 30'000))
        throw Error("container " + c.id.substr(0, 12) + " was killed but its monitor has not finished");
}

int wait_container(const ContainerRef& c) {
    if (auto code = SupervisorLock::wait_for_exit(c.dir)) return *code;
    // Its supervisor died before the end (and the container with it): what was recorded.
    std::error_code ec;
    if (!fs::exists(c.dir / "state.json", ec)) return -1;
    ContainerState s = read_state(c.dir);
    return s.status == ContainerState::Status::Exited ? s.exit_code : -1;
}

namespace {

// The cgroups of a container whose supervisor did not remove them (it was SIGKILLed, or a
// start was killed right after recording them): whatever still runs there is killed first.
void remove_cgroups(const std::vector<std::string>& dirs) {
    for (const auto& dir : dirs) {
        std::error_code ec;
        if (!fs::exists(dir, ec)) continue;
        for (int round = 0; round < 50; ++round) {
            std::string procs = cgroupfs::read(fs::path(dir) / "cgroup.procs");
            if (procs.empty()) break;
            for (size_t pos = 0; pos < procs.size();) {
                size_t end = procs.find('\n', pos);
                kill(std::stoi(procs.substr(pos, end - pos)), SIGKILL);
                pos = end == std::string::npos ? procs.size() : end + 1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        cgroupfs::remove_dir(dir);
    }
}

// Every names/ entry that points at the container (the state may be gone, the link not).
void release_names(const StorePaths& store, const std::string& id) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(store.names(), ec)) {
        std::error_code rl;
        if (fs::read_symlink(e.path(), rl) == fs::path(id)) fs::remove(e.path(), rl);
    }
}

}  // namespace

void remove_container(const StorePaths& store, const ContainerRef& c, bool force) {
    ContainerState s = read_state(c.dir);
    if (is_running(s, c.dir)) {
        if (!force)
            throw Error("container " + c.id.substr(0, 12) + " is running: stop it first, or use rm -f");
        signal_init(s, SIGKILL);
    }
    if (!SupervisorLock::wait_released(c.dir, 30'000))
        throw Error("container " + c.id.substr(0, 12) + " is still being cleaned up by its monitor");
    // Ours now: no second `rm` and no late monitor works on it at the same time. Gone
    // meanwhile (a --rm container's monitor removed it, or another rm did): done.
    std::optional<SupervisorLock> lock = SupervisorLock::acquire_existing(c.dir);
    if (!lock) return;
    s = read_state(c.dir);  // as its supervisor left it
    std::ifstream config_file(c.dir / "config.json");
    auto config = nlohmann::json::parse(config_file, nullptr, false);
    bool have_config = !config.is_discarded() && config.contains("linux");
    // Each resource is released whatever the others do; each release is idempotent, so an
    // `rm` killed halfway is finished by the next one.
    remove_cgroups(s.cgroups);
    UsernsRanges(store.userns()).release(c.id);
    std::string net_mode = s.network.value("mode", have_config ? config["linux"].value("network", "") : "");
    if (net_mode == "bridge") release_network(store, c.id);
    release_names(store, c.id);
    if (have_config && config.value("rootless", false) && config.at("linux").value("userNamespace", false)) {
        // Its files belong to subordinate ids the caller cannot delete as itself.
        remove_in_user_namespace(user_namespace_like(spec_from_json(config)), c.dir);
        if (fs::exists(c.dir)) throw Error("could not remove " + c.dir.string());
        return;
    }
    remove_container_files(c.dir);
}

}  // namespace srl
