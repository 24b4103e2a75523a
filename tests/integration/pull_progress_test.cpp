// What `srlaunch pull` tells the user: redrawn lines with rate and ETA on a terminal, one
// plain line per event otherwise, only the image name with -q. Progress goes to stderr, so
// the stdout of a `run` that pulled first stays the container's.
#include <catch2/catch.hpp>
#include <string>

#include "../support/proc.hpp"
#include "../support/servers.hpp"

using namespace test;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> srl(const TempDir& store, std::vector<std::string> args) {
    args.insert(args.begin(), {SRLAUNCH_PATH, "--root", store.path()});
    return args;
}

}  // namespace

TEST_CASE("pull progress on a terminal is redrawn in place with bytes, rate and ETA", "[pull][progress]") {
    require_root();
    require_servers();
    TempDir store;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().throttle(tarball, 1'500'000)});  // ~2.3 s
    SpawnOptions o;
    o.pty = true;
    o.env = {"TERM=xterm"};
    Child c(srl(store, {"pull", "--mirror", m.url(), "alpine:3.20"}), o);
    REQUIRE(c.wait(60s) == 0);
    const std::string& out = c.out();  // stdout and stderr share the pty
    INFO(out);
    CHECK(contains(out, "\x1b[K"));    // lines are cleared and rewritten ...
    CHECK(contains(out, "\x1b[1A"));   // ... in place, by moving the cursor back up
    CHECK(contains(out, "MiB / 3.3 MiB"));
    CHECK(contains(out, "/s  ETA "));
    CHECK(contains(out, "verified (3.3 MiB)"));
    CHECK(contains(out, "alpine:3.20: sha256:d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c"));
}

TEST_CASE("pull progress without a terminal is one plain line per event", "[pull][progress]") {
    require_root();
    require_servers();
    TempDir store;
    AlpineMirror m;
    Result r = run(srl(store, {"pull", "--mirror", m.url(), "alpine:3.20"}));
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out == "alpine:3.20: sha256:d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c\n");
    CHECK_FALSE(contains(r.err, "\x1b"));
    CHECK(contains(r.err, "alpine:3.20: Alpine 3.20.3 from " + m.url() + AlpineMirror::tarball_path("v3.20") + "\n"));
    CHECK(contains(r.err, "alpine-minirootfs-3.20.3-x86_64.tar.gz: downloading (3.3 MiB)\n"));
    CHECK(contains(r.err, "alpine-minirootfs-3.20.3-x86_64.tar.gz: verified (3.3 MiB in "));

    // Pulling again finds the image up to date and downloads nothing.
    r = run(srl(store, {"pull", "--mirror", m.url(), "alpine:3.20"}));
    REQUIRE(r.status == 0);
    CHECK(contains(r.err, "alpine:3.20: image is up to date (Alpine 3.20.3)"));
    CHECK(m.server().requests_for(AlpineMirror::tarball_path("v3.20")).size() == 1);
}

TEST_CASE("pull -q prints only the image name", "[pull][progress]") {
    require_root();
    require_servers();
    TempDir store;
    AlpineMirror m;
    Result r = run(srl(store, {"pull", "-q", "--mirror", m.url(), "alpine"}));
    REQUIRE(r.status == 0);
    CHECK(r.out == "alpine:latest\n");
    CHECK(r.err.empty());
}
