// A temporary srlaunch store with the real Alpine fixture imported as alpine:3.20, for the
// integration tests that start containers.
#pragma once

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "dir_watch.hpp"
#include "proc.hpp"

namespace test {

// ../shared/fixtures' Alpine minirootfs; a missing fixture skips, or fails under CI=true.
inline std::string alpine_fixture() {
    std::string path = std::string(FIXTURES_DIR) + "/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz";
    if (!std::filesystem::exists(path)) {
        const char* ci = std::getenv("CI");
        if (ci && std::string(ci) == "true") FAIL("fixture missing: " << path);
        std::fprintf(stderr, "SKIPPED: fixture missing: %s\n", path.c_str());
        std::exit(77);
    }
    return path;
}

class AlpineStore {
public:
    AlpineStore() {
        require_root();
        auto r = srl({"import", alpine_fixture(), "alpine:3.20"});
        REQUIRE(r.status == 0);
    }
    // `srlaunch --root STORE ARGS...`
    std::vector<std::string> argv(std::vector<std::string> args) const {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", dir.path()});
        return args;
    }
    Result srl(std::vector<std::string> args, const SpawnOptions& o = {}) const { return run(argv(std::move(args)), o); }
    // `run --rm FLAGS... alpine:3.20 CMD...`
    std::vector<std::string> alpine_argv(std::vector<std::string> flags, std::vector<std::string> cmd) const {
        std::vector<std::string> args{"run", "--rm"};
        args.insert(args.end(), flags.begin(), flags.end());
        args.emplace_back("alpine:3.20");
        args.insert(args.end(), cmd.begin(), cmd.end());
        return argv(args);
    }
    Result in_alpine(std::vector<std::string> flags, std::vector<std::string> cmd) const {
        return run(alpine_argv(std::move(flags), std::move(cmd)));
    }
    std::string path(const std::string& sub) const { return dir / sub; }
    // The ids of every container this store has had, removed or not (a container's
    // directory is containers/<id> from its start).
    std::set<std::string> container_ids() { return containers_seen.created(); }
    TempDir dir;
    DirWatch containers_seen{dir / "containers"};
};

inline std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

inline size_t count_entries(const std::string& dir) {
    namespace fs = std::filesystem;
    if (!fs::exists(dir)) return 0;
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace test
