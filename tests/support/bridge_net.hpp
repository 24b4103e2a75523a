// A store with Alpine, a bridge of its own and a /24 of its own, for the tests that start
// containers with --net bridge (claimed under /tmp/srlaunch-net-tests so parallel tests
// never share one).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "alpine_store.hpp"
#include "proc.hpp"

namespace test {

inline std::string sh(const std::string& cmd) {
    auto r = run({"sh", "-c", cmd});
    return r.out;
}

// Host links named like srlaunch's host-side veths: "srl" + 12 hex digits.
inline std::set<std::string> srl_veths() {
    std::set<std::string> out;
    std::istringstream in(sh("ip -o link show"));
    std::regex veth(R"(^\d+: (srl[0-9a-f]{12})[@:])");
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, veth)) out.insert(m[1]);
    }
    return out;
}

// 10.213.N.0/24 on "srltN".
class BridgeNet {
public:
    BridgeNet() {
        require_program("ip");
        require_program("busybox");
        std::filesystem::create_directories(claims_);
        for (int k = 0; k < 250 && n_ < 0; ++k) {
            int n = static_cast<int>((getpid() + k) % 250) + 1;
            std::filesystem::path claim = claims_ / std::to_string(n);
            int fd = open(claim.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) {
                // A claim of a test that died: take it over.
                std::ifstream in(claim);
                pid_t owner = 0;
                if (in >> owner && owner > 0 && kill(owner, 0) < 0 && errno == ESRCH) std::filesystem::remove(claim);
                continue;
            }
            std::string pid = std::to_string(getpid());
            ::write(fd, pid.data(), pid.size());
            close(fd);
            n_ = n;
        }
        REQUIRE(n_ > 0);
        bridge = "srlt" + std::to_string(n_);
        net = "10.213." + std::to_string(n_) + ".";
        run({"ip", "link", "del", bridge});  // left by a test that died
        write_file(s.path("network.json"), nlohmann::json{{"bridge", bridge}, {"subnet", net + "0/24"}}.dump());
        veths_before_ = srl_veths();
    }
    ~BridgeNet() {
        run({"ip", "link", "del", bridge});
        std::filesystem::remove(claims_ / std::to_string(n_));
    }

    nlohmann::json leases() const {
        std::ifstream in(s.path("network/leases.json"));
        if (!in) return nlohmann::json::array();
        return nlohmann::json::parse(in).at("leases");
    }
    // The address leased to the container named `name`; waits for it.
    std::string address_of(const std::string& name, std::chrono::milliseconds timeout = 60s) const {
        auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            try {
                for (const auto& l : leases())
                    if (l.value("name", "") == name) return l.at("address");
            } catch (const nlohmann::json::exception&) {
            }
            std::this_thread::sleep_for(50ms);
        }
        FAIL("no lease for " << name);
        return "";
    }
    // Nothing of any container left: no new veth, no lease, no container dir, nothing
    // enslaved to the bridge.
    void expect_clean() const {
        // Other tests' containers come and go meanwhile (ctest -j): only veths that were
        // here before or belong to no container of this store may remain.
        auto ours = [&] {
            std::set<std::string> left;
            for (const auto& v : srl_veths())
                if (!veths_before_.count(v) && sh("ip -o link show " + v + " 2>/dev/null").find("master " + bridge) != std::string::npos)
                    left.insert(v);
            return left;
        };
        auto deadline = Clock::now() + 60s;
        while (!ours().empty() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
        CHECK(ours().empty());
        CHECK(leases().empty());
        CHECK(count_entries(s.path("containers")) == 0);
        CHECK(sh("ip -o link show master " + bridge + " 2>/dev/null") == "");
    }

    std::vector<std::string> run_argv(std::vector<std::string> flags, std::vector<std::string> cmd) const {
        std::vector<std::string> args{"--net", "bridge"};
        args.insert(args.end(), flags.begin(), flags.end());
        return s.alpine_argv(args, cmd);
    }

    AlpineStore s;
    std::string bridge, net;

private:
    std::filesystem::path claims_ = "/tmp/srlaunch-net-tests";
    int n_ = -1;
    std::set<std::string> veths_before_;
};

}  // namespace test
