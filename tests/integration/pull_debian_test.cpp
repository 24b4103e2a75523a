// `srlaunch pull debian:bookworm` with --registry-mirror pointing at a loopback docker-registry
// that holds the Debian rootfs fixture (ctest fixture debian_rootfs: debootstrap
// --variant=minbase bookworm, tarred into TEST_CACHE_DIR) as library/debian:bookworm.
#include <catch2/catch.hpp>

#include "../support/proc.hpp"
#include "../support/servers.hpp"

using namespace test;

TEST_CASE("pull debian:bookworm through --registry-mirror and run it", "[pull][registry][debian]") {
    require_root();
    require_servers();
    const std::string tar = std::string(TEST_CACHE_DIR) + "/debian-bookworm-minbase.tar";
    require_fixture(tar);
    Registry reg;
    std::string digest = reg.push_tarball(tar, "library/debian:bookworm", TEST_CACHE_DIR);

    TempDir store;
    auto srl = [&](std::vector<std::string> args, std::vector<std::string> env = {}) {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", store.path()});
        SpawnOptions o;
        o.env = std::move(env);
        return run(args, o, 600s);
    };
    auto r = srl({"pull", "-q", "--registry-mirror", reg.url(), "debian:bookworm"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto images = srl({"images"});
    CHECK(images.out.find("debian") != std::string::npos);
    CHECK(images.out.find(digest.substr(0, 19)) != std::string::npos);

    r = srl({"run", "--rm", "debian:bookworm", "cat", "/etc/debian_version"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out.rfind("12.", 0) == 0);

    // The same through the environment, into a second store, by `run` pulling it.
    TempDir store2;
    SpawnOptions with_env;
    with_env.env = {"SRLAUNCH_REGISTRY_MIRROR=" + reg.url()};
    r = run({SRLAUNCH_PATH, "--root", store2.path(), "run", "--rm", "debian:bookworm", "sh", "-c",
             ". /etc/os-release && echo $VERSION_CODENAME"},
            with_env, 600s);
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "bookworm\n");
}
