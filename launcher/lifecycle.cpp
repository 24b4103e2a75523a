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
    SupervisorLock::wait_released(c.dir, -1);
    std::error_code ec;
    if (!fs::exists(c.dir / "state.json", ec)) return -1;  // --rm took it with it
    ContainerState s = read_state(c.dir);
    return s.status == ContainerState::Status::Exited ? s.exit_code : -1;
}

void remove_container(const StorePaths& store, const ContainerRef& c, bool force) {
    ContainerState s = read_state(c.dir);
    if (is_running(s, c.dir)) {
        if (!force)
            throw Error("container " + c.id.substr(0, 12) + " is running: stop it first, or use rm -f");
        signal_init(s, SIGKILL);
    }
    if (!SupervisorLock::wait_released(c.dir, 30'000))
        throw Error("container " + c.id.substr(0, 12) + " is still being cleaned up by its monitor");
    // Ours now: no second `rm` and no late monitor works on it at the same time.
    SupervisorLock lock = SupervisorLock::acquire(c.dir);
    if (!fs::exists(c.dir / "state.json")) return;  // another rm was first
    // The supervisor normally removed the cgroups; one killed with SIGKILL did not. Its
    // container died with it (PR_SET_PDEATHSIG), but make sure before removing.
    for (const auto& dir : s.cgroups) {
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
    UsernsRanges(store.userns()).release(s.id);
    // The veth and address of a container whose supervisor was killed.
    if (s.network.value("mode", "") == "bridge") release_network(store, s.id);
    if (!s.name.empty()) {
        std::error_code ec;
        fs::path link = store.names() / s.name;
        if (fs::read_symlink(link, ec) == fs::path(s.id)) fs::remove(link, ec);
    }
    std::error_code ec;
    std::ifstream config(c.dir / "config.json");
    auto j = nlohmann::json::parse(config, nullptr, false);
    if (!j.is_discarded() && j.value("rootless", false) && j.at("linux").value("userNamespace", false)) {
        // Its files belong to subordinate ids the caller cannot delete as itself.
        remove_in_user_namespace(user_namespace_like(spec_from_json(j)), c.dir);
        if (fs::exists(c.dir)) throw Error("could not remove " + c.dir.string());
        return;
    }
    fs::remove_all(c.dir, ec);
    if (ec) throw Error("remove " + c.dir.string() + ": " + ec.message());
}

}  // namespace srl
