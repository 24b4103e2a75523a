// Image references: what `srlaunch import/run/rmi` accept as NAME[:TAG]. They become store
// paths, so everything that could climb out of the store must be refused here.
#include <catch2/catch.hpp>
#include <string>

#include "images/reference.hpp"
#include "launcher/error.hpp"

using srl::ImageRef;

TEST_CASE("images: a reference without a tag means latest", "[images]") {
    auto r = ImageRef::parse("alpine");
    CHECK(r.name == "alpine");
    CHECK(r.tag == "latest");
    CHECK(r.str() == "alpine:latest");
}

TEST_CASE("images: references with tags and path components parse", "[images]") {
    CHECK(ImageRef::parse("alpine:3.20").str() == "alpine:3.20");
    auto r = ImageRef::parse("lab/os:1");
    CHECK(r.name == "lab/os");
    CHECK(r.tag == "1");
    CHECK(ImageRef::parse("a-b_c.d/e_f/g0:V1_x.y-z").name == "a-b_c.d/e_f/g0");
    CHECK(ImageRef::parse("x:_tag").tag == "_tag");
    CHECK(ImageRef::parse("x:" + std::string(128, 'a')).tag.size() == 128);
    CHECK(ImageRef::parse("0:0").str() == "0:0");
}

TEST_CASE("images: a first component may be a registry host with a port", "[images]") {
    auto r = ImageRef::parse("localhost:5000/foo/bar:1");
    CHECK(r.name == "localhost:5000/foo/bar");
    CHECK(r.tag == "1");
    CHECK(r.registry_host() == "localhost:5000");
    r = ImageRef::parse("127.0.0.1:5000/lab/os");
    CHECK(r.name == "127.0.0.1:5000/lab/os");
    CHECK(r.tag == "latest");
    CHECK(r.registry_host() == "127.0.0.1:5000");
    r = ImageRef::parse("registry.example.com/x:y");
    CHECK(r.str() == "registry.example.com/x:y");
    CHECK(r.registry_host() == "registry.example.com");
    CHECK(ImageRef::parse("localhost/x").registry_host() == "localhost");
    CHECK(ImageRef::parse("xn--bcher-kva.example:443/a").registry_host() == "xn--bcher-kva.example:443");
    CHECK(ImageRef::parse("my-registry.local:65535/a/b/c:V1.0").str() == "my-registry.local:65535/a/b/c:V1.0");
    // Without a '/', "host:port" is a name and a tag, as in Docker.
    r = ImageRef::parse("localhost:5000");
    CHECK(r.name == "localhost");
    CHECK(r.tag == "5000");
    CHECK(r.registry_host().empty());
    CHECK(ImageRef::parse("debian.org").registry_host().empty());
    CHECK(ImageRef::parse("user/repo:tag").registry_host().empty());
    // A name component with a dot that is no valid host name is still a plain name.
    CHECK(ImageRef::parse("a-b_c.d/e").registry_host().empty());
}

TEST_CASE("images: Docker Hub names are stored as Docker shows them", "[images]") {
    CHECK(ImageRef::parse("docker.io/library/debian:bookworm").str() == "debian:bookworm");
    CHECK(ImageRef::parse("index.docker.io/library/debian").str() == "debian:latest");
    CHECK(ImageRef::parse("library/debian:12").str() == "debian:12");
    CHECK(ImageRef::parse("docker.io/user/repo:tag").str() == "user/repo:tag");
    CHECK(ImageRef::parse("docker.io/library/a/b").str() == "library/a/b:latest");
    CHECK(ImageRef::parse("docker.io/debian").str() == "debian:latest");
    CHECK(ImageRef::parse("docker.io:1").str() == "docker.io:1");
    CHECK(ImageRef::parse("localhost:5000/library/x").str() == "localhost:5000/library/x:latest");
}

TEST_CASE("images: references compare by name, then tag", "[images]") {
    CHECK(ImageRef::parse("a:2") < ImageRef::parse("b:1"));
    CHECK(ImageRef::parse("a:1") < ImageRef::parse("a:2"));
    CHECK(ImageRef::parse("a") == ImageRef{"a", "latest"});
}

TEST_CASE("images: bad references are refused with a one-line reason", "[images]") {
    struct Case {
        const char* ref;
        const char* reason;
    };
    const Case cases[] = {
        {"", "empty"},
        {":1", "empty name"},
        {"alpine:", "empty tag"},
        {"Alpine", "lowercase"},
        {"lab/OS:1", "lowercase"},
        {"..", "\"..\" is not allowed"},
        {"../etc:1", "\"..\" is not allowed"},
        {"a/../b", "\"..\" is not allowed"},
        {"./a", "\".\" is not allowed"},
        {"/alpine", "empty name component"},
        {"alpine/", "empty name component"},
        {"a//b", "empty name component"},
        {"-a", "start and end"},
        {"a-", "start and end"},
        {"a..b", "start and end"},
        {"a__b", "start and end"},
        {".hidden", "start and end"},
        {"al pine", "invalid character ' '"},
        {"a@b", "invalid character '@'"},
        {"alpine@sha256:abc", "invalid character '@'"},
        {"myhost:5000/alpine", "invalid character ':' in name"},
        {"localhost:/x", "invalid port \"\""},
        {"host:abc/x", "invalid character ':' in name"},
        {"localhost:abc/x", "invalid port \"abc\""},
        {"a:1:2/x", "invalid character ':' in name"},
        {"localhost:1:2/x", "invalid port \"1:2\""},
        {"localhost:65536/x", "invalid port"},
        {"localhost:123456/x", "invalid port"},
        {"localhost:0/x", "invalid port"},
        {"a/localhost:5000/x", "invalid character ':' in name"},
        {"a.b:5000/c:d/e", "invalid character ':' in name"},
        {"Registry.example.com:5000/x", "lowercase"},
        {".example.com:5000/x", "invalid character ':' in name"},
        {"-a.com:5000/x", "invalid character ':' in name"},
        {"a..b:5000/x", "invalid character ':' in name"},
        {"a_b.com:5000/x", "invalid character ':' in name"},
        {":5000/x", "invalid character ':' in name"},
        {"localhost:5000/", "empty name component"},
        {"localhost:5000/../x", "\"..\" is not allowed"},
        {"localhost:5000/.x", "start and end"},
        {"localhost:5000/X", "lowercase"},
        {"a:b:c", "invalid character ':' in tag"},
        {"a:..", "tag must start with"},
        {"a:.", "tag must start with"},
        {"a:-x", "tag must start with"},
        {"a:t/x", "invalid character"},
        {"a:t$", "invalid character '$' in tag"},
    };
    for (const auto& c : cases) {
        INFO("reference \"" << c.ref << "\"");
        REQUIRE_THROWS_AS(ImageRef::parse(c.ref), srl::Error);
        try {
            ImageRef::parse(c.ref);
        } catch (const srl::Error& e) {
            const std::string msg = e.what();
            CHECK(msg.find(c.reason) != std::string::npos);
            CHECK(msg.find("invalid image reference") == 0);
            CHECK(msg.find('\n') == std::string::npos);
        }
    }
    CHECK_THROWS_WITH(ImageRef::parse("x:" + std::string(129, 'a')), Catch::Contains("longer than 128"));
    CHECK_THROWS_WITH(ImageRef::parse(std::string(256, 'a')), Catch::Contains("longer than 255"));
}
