#include <catch2/catch.hpp>

#include "fetch/pull.hpp"
#include "fetch/remote_ref.hpp"
#include "launcher/error.hpp"

using srl::RemoteRef;

TEST_CASE("remote references get Docker's defaults", "[fetch]") {
    RemoteRef r = RemoteRef::parse("debian");
    CHECK(r.registry == "docker.io");
    CHECK(r.repository == "library/debian");
    CHECK(r.tag == "latest");
    CHECK(r.digest.empty());
    CHECK(r.str() == "docker.io/library/debian:latest");
    CHECK(r.local().str() == "debian:latest");

    r = RemoteRef::parse("ubuntu:24.04");
    CHECK(r.repository == "library/ubuntu");
    CHECK(r.tag == "24.04");

    r = RemoteRef::parse("user/app:1.0");
    CHECK(r.registry == "docker.io");
    CHECK(r.repository == "user/app");
    CHECK(r.local().str() == "user/app:1.0");

    r = RemoteRef::parse("docker.io/library/debian:bookworm");
    CHECK(r.local().str() == "debian:bookworm");
    CHECK(RemoteRef::parse("index.docker.io/library/debian").registry == "docker.io");
}

TEST_CASE("a first component with a dot, a port or localhost is a registry", "[fetch]") {
    RemoteRef r = RemoteRef::parse("127.0.0.1:5000/lab/plain:1");
    CHECK(r.registry == "127.0.0.1:5000");
    CHECK(r.repository == "lab/plain");
    CHECK(r.tag == "1");
    CHECK(r.local().str() == "127.0.0.1:5000/lab/plain:1");

    r = RemoteRef::parse("localhost/x");
    CHECK(r.registry == "localhost");
    CHECK(r.repository == "x");  // no "library/" outside Docker Hub

    r = RemoteRef::parse("ghcr.io/owner/tool");
    CHECK(r.registry == "ghcr.io");
    CHECK(r.local().str() == "ghcr.io/owner/tool:latest");
}

TEST_CASE("references by digest keep the digest and get a digest tag locally", "[fetch]") {
    const std::string hex(64, 'a');
    RemoteRef r = RemoteRef::parse("127.0.0.1:5000/lab/plain@sha256:" + hex);
    CHECK(r.tag.empty());
    CHECK(r.digest == "sha256:" + hex);
    CHECK(r.reference() == r.digest);
    CHECK(r.str() == "127.0.0.1:5000/lab/plain@sha256:" + hex);
    CHECK(r.local().str() == "127.0.0.1:5000/lab/plain:sha256-" + hex);
}

TEST_CASE("malformed remote references are refused with the reason", "[fetch]") {
    for (const char* bad : {"", "Debian", "debian:", "debian:-x", "debian@sha256:abc", "debian@md5:" "0123",
                            "a//b", "/debian", "debian/", "bad_host:99x/x", "x/../y", "x:y:z"})
        CHECK_THROWS_WITH(RemoteRef::parse(bad), Catch::Contains("invalid reference format"));
    CHECK_THROWS_WITH(RemoteRef::parse("debian@sha256:" + std::string(64, 'G')), Catch::Contains("sha256"));
}

TEST_CASE("bare alpine references go to the Alpine mirror", "[fetch]") {
    CHECK(srl::is_alpine_mirror_ref("alpine"));
    CHECK(srl::is_alpine_mirror_ref("alpine:3.20"));
    CHECK(srl::is_alpine_mirror_ref("alpine:edge"));
    CHECK_FALSE(srl::is_alpine_mirror_ref("docker.io/library/alpine"));
    CHECK_FALSE(srl::is_alpine_mirror_ref("library/alpine"));
    CHECK_FALSE(srl::is_alpine_mirror_ref("alpinelinux"));
    CHECK(srl::local_name("alpine").str() == "alpine:latest");
    CHECK(srl::local_name("debian:bookworm").str() == "debian:bookworm");
}
