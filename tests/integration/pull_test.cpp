// `srlaunch pull` (and `run` pulling what is missing) against real servers on loopback only:
// httpd.py serving a tree laid out like the Alpine mirror, Debian's docker-registry filled by
// skopeo with the lab images of tests/servers/mkimage.py, a token issuer for the bearer flow,
// and httpd.py serving a static registry tree for what a real registry will not hold.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "../support/proc.hpp"
#include "../support/servers.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::vector<std::string> words(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

ino_t lstat_ino(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_ino;
}

// A temporary srlaunch store (--root) and the commands the tests run against it.
class Store {
public:
    Store() {
        require_root();
        require_servers();
    }
    std::vector<std::string> argv(std::vector<std::string> args) const {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", dir.path()});
        return args;
    }
    Result srl(std::vector<std::string> args, std::vector<std::string> env = {}) const {
        SpawnOptions o;
        o.env = std::move(env);
        return run(argv(std::move(args)), o, 180s);
    }
    // `pull -q FLAGS... REF`
    Result pull(const std::string& ref, std::vector<std::string> flags = {}) const {
        std::vector<std::string> args{"pull", "-q"};
        args.insert(args.end(), flags.begin(), flags.end());
        args.push_back(ref);
        return srl(args);
    }
    // `run --rm FLAGS... IMAGE CMD...`
    Result run_in(const std::string& image, std::vector<std::string> cmd, std::vector<std::string> flags = {}) const {
        std::vector<std::string> args{"run", "--rm"};
        args.insert(args.end(), flags.begin(), flags.end());
        args.push_back(image);
        args.insert(args.end(), cmd.begin(), cmd.end());
        return srl(args);
    }
    // `images`, header first.
    std::vector<std::string> images() const {
        auto r = srl({"images"});
        REQUIRE(r.status == 0);
        auto lines = split_lines(r.out);
        REQUIRE(!lines.empty());
        return lines;
    }
    // The `images` row of NAME TAG, or "" when it is not listed.
    std::string row(const std::string& name, const std::string& tag) const {
        auto lines = images();
        for (size_t i = 1; i < lines.size(); ++i) {
            auto w = words(lines[i]);
            if (w.size() >= 2 && w[0] == name && w[1] == tag) return lines[i];
        }
        return "";
    }
    bool has_image(const std::string& name, const std::string& tag) const { return !row(name, tag).empty(); }
    size_t image_count() const { return images().size() - 1; }

    // Dot-entries anywhere in the store except .locks (and what is inside it): temporary trees
    // left behind. Image trees (rootfs/) are not looked into.
    std::vector<std::string> leftovers() const {
        std::vector<std::string> out;
        for (auto it = fs::recursive_directory_iterator(dir.path()); it != fs::recursive_directory_iterator(); ++it) {
            std::string name = it->path().filename().string();
            std::error_code ec;
            if (name == ".locks" || (name == "rootfs" && it->is_directory(ec))) {
                it.disable_recursion_pending();
                if (name == ".locks") continue;
            }
            if (name.rfind('.', 0) == 0) out.push_back(it->path().lexically_relative(dir.path()).string());
        }
        return out;
    }
    // Every visible image tree (<store>/images/**/rootfs, not under dot-dirs).
    std::vector<std::string> rootfs_dirs() const {
        std::vector<std::string> out;
        std::string images = dir / "images";
        if (!fs::exists(images)) return out;
        for (auto it = fs::recursive_directory_iterator(images); it != fs::recursive_directory_iterator(); ++it) {
            std::string name = it->path().filename().string();
            if (name.rfind('.', 0) == 0) {
                it.disable_recursion_pending();
            } else if (name == "rootfs" && it->is_directory()) {
                out.push_back(it->path().string());
                it.disable_recursion_pending();
            }
        }
        return out;
    }
    // The rootfs of an image whose store directory ends in NAME_SUFFIX/@TAG.
    std::string rootfs_of(const std::string& name_suffix, const std::string& tag) const {
        for (const auto& r : rootfs_dirs())
            if (ends_with(r, name_suffix + "/@" + tag + "/rootfs")) return r;
        FAIL("no rootfs for " << name_suffix << ":" << tag << " in " << dir.path());
        return "";
    }
    // Any file named `name` anywhere in the store.
    bool holds_file_named(const std::string& name) const {
        for (const auto& e : fs::recursive_directory_iterator(dir.path()))
            if (e.path().filename() == name) return true;
        return false;
    }

    TempDir dir;
};

// A failed pull: 125, one line on stderr starting "srlaunch: " that names `mention`, the
// image not listed, no image tree for it and no temporary left in the store.
void check_failed(const Store& s, const Result& r, const std::string& mention, const std::string& name,
                  const std::string& tag) {
    INFO("stderr: " << r.err << "stdout: " << r.out);
    CHECK(r.status == 125);
    CHECK(r.err.rfind("srlaunch: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(contains(r.err, mention));
    CHECK_FALSE(s.has_image(name, tag));
    CHECK(s.leftovers().empty());
}

// The same for a store that had nothing in it before.
void check_failed_empty(const Store& s, const Result& r, const std::string& mention, const std::string& name,
                        const std::string& tag) {
    check_failed(s, r, mention, name, tag);
    CHECK(s.image_count() == 0);
    CHECK(s.rootfs_dirs().empty());
}

void check_runs(const Store& s, const std::string& image, std::vector<std::string> cmd, const std::string& out) {
    auto r = s.run_in(image, std::move(cmd));
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == out);
}

const std::string kAlpineRelease = std::string(AlpineMirror::kVersion) + "\n";

// Waits until `pred` holds, at most `timeout`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 30s) {
    auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

}  // namespace

// ---- Alpine mirror --------------------------------------------------------------------------

TEST_CASE("pull alpine then alpine:3.20 then alpine:latest from the mirror", "[pull][alpine]") {
    Store s;
    AlpineMirror m;
    auto r = s.pull("alpine", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.has_image("alpine", "latest"));
    CHECK_FALSE(m.server().requests_for(AlpineMirror::yaml_path("latest-stable")).empty());
    check_runs(s, "alpine", {"cat", "/etc/alpine-release"}, kAlpineRelease);

    r = s.pull("alpine:3.20", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.has_image("alpine", "3.20"));
    CHECK_FALSE(m.server().requests_for(AlpineMirror::yaml_path("v3.20")).empty());
    CHECK_FALSE(m.server().requests_for(AlpineMirror::tarball_path("v3.20")).empty());
    check_runs(s, "alpine:3.20", {"cat", "/etc/alpine-release"}, kAlpineRelease);

    r = s.pull("alpine:latest", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.image_count() == 2);
    CHECK(m.server().requests("GET /alpine/edge").empty());
    CHECK(s.leftovers().empty());

    auto header = words(s.images().front());
    for (const char* col : {"NAME", "TAG", "SIZE", "SOURCE", "DIGEST"})
        CHECK(std::find(header.begin(), header.end(), col) != header.end());
}

TEST_CASE("alpine:edge from the mirror named by SRLAUNCH_ALPINE_MIRROR", "[pull][alpine]") {
    Store s;
    AlpineMirror m;
    auto r = s.srl({"pull", "-q", "alpine:edge"}, {"SRLAUNCH_ALPINE_MIRROR=" + m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.has_image("alpine", "edge"));
    CHECK_FALSE(m.server().requests_for(AlpineMirror::yaml_path("edge")).empty());
    check_runs(s, "alpine:edge", {"cat", "/etc/alpine-release"}, kAlpineRelease);
}

TEST_CASE("alpine: a wrong sha256 in latest-releases.yaml stores nothing", "[pull][alpine][bad]") {
    Store s;
    AlpineMirrorOptions o;
    o.bad_sha256 = true;
    AlpineMirror m(o);
    check_failed_empty(s, s.pull("alpine:3.20", {"--mirror", m.url()}), "alpine:3.20", "alpine", "3.20");
}

TEST_CASE("alpine: a wrong sha512 in latest-releases.yaml stores nothing", "[pull][alpine][bad]") {
    Store s;
    AlpineMirrorOptions o;
    o.bad_sha512 = true;
    AlpineMirror m(o);
    check_failed_empty(s, s.pull("alpine:3.20", {"--mirror", m.url()}), "alpine:3.20", "alpine", "3.20");
}

TEST_CASE("alpine: a truncated tarball stores nothing", "[pull][alpine][bad]") {
    Store s;
    AlpineMirrorOptions o;
    o.truncate = true;
    AlpineMirror m(o);
    check_failed_empty(s, s.pull("alpine", {"--mirror", m.url()}), "alpine", "alpine", "latest");
}

TEST_CASE("alpine: a dropped connection is resumed with Range", "[pull][alpine][retry]") {
    Store s;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().drop_after(tarball, 1'000'000)});
    auto r = s.pull("alpine:3.20", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto gets = m.server().requests_for(tarball);
    INFO("requests:\n" << [&] { std::string all; for (auto& l : m.server().requests()) all += l + "\n"; return all; }());
    REQUIRE(gets.size() >= 2);
    auto ranged = m.server().requests("GET " + tarball + " bytes=");
    REQUIRE_FALSE(ranged.empty());
    CHECK(ends_with(ranged.front(), " 206"));
    check_runs(s, "alpine:3.20", {"cat", "/etc/alpine-release"}, kAlpineRelease);
    CHECK(s.leftovers().empty());
}

TEST_CASE("alpine: a dropped connection to a server without Range support starts over", "[pull][alpine][retry]") {
    Store s;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().drop_after(tarball, 1'000'000).no_range(tarball)});
    auto r = s.pull("alpine:3.20", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto gets = m.server().requests_for(tarball);
    REQUIRE(gets.size() >= 2);
    CHECK(ends_with(gets.back(), " 200"));  // whatever was asked, the whole file came again
    check_runs(s, "alpine:3.20", {"cat", "/etc/alpine-release"}, kAlpineRelease);
    CHECK(s.leftovers().empty());
}

TEST_CASE("alpine: 503 twice is retried", "[pull][alpine][retry]") {
    Store s;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().status(tarball, 503, 2)});
    auto r = s.pull("alpine:3.20", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto gets = m.server().requests_for(tarball);
    REQUIRE(gets.size() == 3);
    CHECK(ends_with(gets[0], " 503"));
    CHECK(ends_with(gets[1], " 503"));
    CHECK(ends_with(gets[2], " 200"));
    check_runs(s, "alpine:3.20", {"cat", "/etc/alpine-release"}, kAlpineRelease);
}

TEST_CASE("alpine: 404 fails at once with a clear error", "[pull][alpine][bad]") {
    Store s;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().status(tarball, 404)});
    check_failed_empty(s, s.pull("alpine:3.20", {"--mirror", m.url()}), "alpine:3.20", "alpine", "3.20");
    CHECK(m.server().requests_for(tarball).size() == 1);  // permanent: not retried

    // A branch the mirror does not have: its latest-releases.yaml is 404.
    check_failed_empty(s, s.pull("alpine:3.19", {"--mirror", m.url()}), "alpine:3.19", "alpine", "3.19");
    CHECK(m.server().requests_for(AlpineMirror::yaml_path("v3.19")).size() == 1);
}

TEST_CASE("alpine: SIGKILL mid-pull leaves no image and the next pull succeeds", "[pull][alpine][kill]") {
    Store s;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().throttle(tarball, 1'000'000)});  // ~3.5 s for the tarball
    {
        Child c(s.argv({"pull", "-q", "--mirror", m.url(), "alpine:3.20"}));
        REQUIRE(eventually([&] { return !m.server().requests_for(tarball).empty(); }));
        std::this_thread::sleep_for(1s);
        REQUIRE(process_state(c.pid()) != '\0');
        REQUIRE(process_state(c.pid()) != 'Z');  // still pulling
        kill(c.pid(), SIGKILL);
        CHECK(c.wait() == 128 + SIGKILL);
    }
    CHECK_FALSE(s.has_image("alpine", "3.20"));
    CHECK(s.rootfs_dirs().empty());

    auto r = s.pull("alpine:3.20", {"--mirror", m.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.leftovers().empty());
    check_runs(s, "alpine:3.20", {"cat", "/etc/alpine-release"}, kAlpineRelease);
}

TEST_CASE("alpine: two concurrent pulls of one reference", "[pull][alpine]") {
    Store s;
    const std::string tarball = AlpineMirror::tarball_path("v3.20");
    AlpineMirror m({.faults = HttpFaults().throttle(tarball, 2'000'000)});
    Child a(s.argv({"pull", "-q", "--mirror", m.url(), "alpine:3.20"}));
    Child b(s.argv({"pull", "-q", "--mirror", m.url(), "alpine:3.20"}));
    int sa = a.wait(120s), sb = b.wait(120s);
    INFO(a.err() << b.err());
    CHECK(sa == 0);
    CHECK(sb == 0);
    CHECK(s.image_count() == 1);
    CHECK(s.leftovers().empty());
    check_runs(s, "alpine:3.20", {"cat", "/etc/alpine-release"}, kAlpineRelease);
}

TEST_CASE("run pulls a missing alpine image first", "[pull][alpine][run]") {
    Store s;
    AlpineMirror m;
    auto r = s.run_in("alpine", {"cat", "/etc/alpine-release"}, {"--mirror", m.url()});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == kAlpineRelease);
    CHECK(s.has_image("alpine", "latest"));
}

// ---- registry -------------------------------------------------------------------------------

TEST_CASE("registry: a plain OCI image by tag and run uses its config", "[pull][registry]") {
    Store s;
    Registry reg;
    auto digests = reg.populate({"lab/plain:1"});
    const std::string ref = reg.ref("lab/plain:1");
    auto r = s.pull(ref);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::string row = s.row(reg.host() + "/lab/plain", "1");
    REQUIRE_FALSE(row.empty());
    CHECK(contains(row, digests.at("lab/plain:1").substr(0, 7 + 12)));  // sha256: + 12 hex
    check_runs(s, ref, {"cat", "/etc/lab-release"}, "plain\n");
    check_runs(s, ref, {}, "cmd-plain\n/usr/share/lab\n");        // Cmd, Env, WorkingDir
    check_runs(s, ref, {"cat", "hello.txt"}, "hello from lab/plain\n");
    CHECK(s.leftovers().empty());
}

TEST_CASE("registry: pull by digest", "[pull][registry]") {
    Store s;
    Registry reg;
    std::string digest = reg.populate({"lab/plain:1"}).at("lab/plain:1");
    std::string hex = digest.substr(7);
    auto r = s.pull(reg.host() + "/lab/plain@" + digest);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.has_image(reg.host() + "/lab/plain", "sha256-" + hex));
    check_runs(s, reg.host() + "/lab/plain:sha256-" + hex, {"cat", "/etc/lab-release"}, "plain\n");

    // A digest the registry does not have.
    std::string zeros(64, '0');
    check_failed(s, s.pull(reg.host() + "/lab/plain@sha256:" + zeros), "lab/plain", reg.host() + "/lab/plain",
                 "sha256-" + zeros);
    CHECK(s.image_count() == 1);
}

TEST_CASE("registry: Docker v2s2 media types", "[pull][registry]") {
    Store s;
    Registry reg;
    reg.populate({"lab/docker:1"});
    auto r = s.pull(reg.ref("lab/docker:1"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    check_runs(s, reg.ref("lab/docker:1"), {"cat", "/etc/lab-release"}, "docker\n");
    check_runs(s, reg.ref("lab/docker:1"), {}, "cmd-docker\n/usr/share/lab\n");
}

TEST_CASE("registry: an index (OCI and Docker list) gives linux/amd64 and skips attestations", "[pull][registry]") {
    Store s;
    Registry reg;
    reg.populate({"lab/multi:1", "lab/multi-docker:1"});
    for (const char* name : {"lab/multi:1", "lab/multi-docker:1"}) {
        INFO(name);
        auto r = s.pull(reg.ref(name));
        INFO(r.err);
        REQUIRE(r.status == 0);
        check_runs(s, reg.ref(name), {"cat", "/etc/lab-arch"}, "amd64\n");
    }
    // The index digest is what was asked for and what is recorded.
    CHECK(contains(s.row(reg.host() + "/lab/multi", "1"), reg.digest("lab/multi:1").substr(0, 19)));
}

TEST_CASE("registry: zstd and uncompressed layers", "[pull][registry]") {
    Store s;
    Registry reg;
    reg.populate({"lab/zstd:1", "lab/uncompressed:1"});
    for (const char* name : {"zstd", "uncompressed"}) {
        std::string ref = reg.ref(std::string("lab/") + name + ":1");
        auto r = s.pull(ref);
        INFO(r.err);
        REQUIRE(r.status == 0);
        check_runs(s, ref, {"cat", "/etc/lab-release"}, std::string(name) + "\n");
    }
}

TEST_CASE("registry: whiteouts and opaque directories merge exactly", "[pull][registry]") {
    Store s;
    Registry reg;
    reg.populate({"lab/whiteout:1"});
    auto r = s.pull(reg.ref("lab/whiteout:1"));
    INFO(r.err);
    REQUIRE(r.status == 0);

    // mkimage.py's WHITEOUT_EXPECTED, plus the base layer outside bin/ ("" is a directory).
    const std::map<std::string, std::string> expected{
        {"a", ""}, {"a/keep.txt", "keep"}, {"a/new.txt", "new"}, {"a/sub", ""},
        {"b", ""}, {"b/later.txt", "later"}, {"b/newsub", ""}, {"b/newsub/y.txt", "y"},
        {"d", ""}, {"d/f", "d2"}, {"e", ""}, {"e/inner", "e"},
        {"hl", ""}, {"hl/link", "hardlinked"}, {"hl/orig", "hardlinked"},
        {"bin", ""}, {"dev", ""}, {"etc", ""}, {"proc", ""}, {"root", ""}, {"sys", ""}, {"tmp", ""},
        {"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
        {"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
    };
    std::string root = s.rootfs_of("lab/whiteout", "1");
    std::map<std::string, std::string> got;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        std::string rel = it->path().lexically_relative(root).string();
        CHECK_FALSE(contains(it->path().filename().string(), ".wh."));
        if (rel.rfind("bin/", 0) == 0) continue;
        if (it->is_symlink()) got[rel] = "-> " + fs::read_symlink(it->path()).string();
        else if (it->is_directory()) got[rel] = "";
        else got[rel] = read_file(it->path());
    }
    CHECK(got == expected);
    CHECK(lstat_ino(root + "/hl/link") == lstat_ino(root + "/hl/orig"));
    CHECK(fs::is_regular_file(root + "/bin/busybox"));

    check_runs(s, reg.ref("lab/whiteout:1"), {"cat", "/a/keep.txt", "/a/new.txt", "/d/f"}, "keepnewd2");
    check_runs(s, reg.ref("lab/whiteout:1"), {"ls", "/b"}, "later.txt\nnewsub\n");
}

TEST_CASE("registry: redirects are followed and a dropped blob is resumed", "[pull][registry][retry]") {
    Store s;
    StaticRegistryTree tree;
    auto layers = tree.layer_paths();
    REQUIRE(layers.size() == 2);
    // The top layer lives elsewhere on the server; the base layer's first GET is cut short.
    fs::create_directories(tree.root() + "/elsewhere");
    fs::copy_file(tree.root() + layers[1], tree.root() + "/elsewhere/blob");
    HttpServer srv(tree.root(), HttpFaults().redirect(layers[1], "/elsewhere/blob").drop_after(layers[0], 300'000));
    const std::string ref = srv.host() + "/lab/static:1";
    auto r = s.pull(ref);
    INFO(r.err);
    INFO("requests:\n" << [&] { std::string all; for (auto& l : srv.requests()) all += l + "\n"; return all; }());
    REQUIRE(r.status == 0);
    check_runs(s, ref, {"cat", "/etc/lab-release"}, "static\n");
    auto redirected = srv.requests_for(layers[1]);
    REQUIRE_FALSE(redirected.empty());
    CHECK(ends_with(redirected.front(), " 302"));
    CHECK_FALSE(srv.requests_for("/elsewhere/blob").empty());
    CHECK_FALSE(srv.requests("GET " + layers[0] + " bytes=").empty());
    CHECK(contains(s.row(srv.host() + "/lab/static", "1"), tree.digest("lab/static:1").substr(0, 19)));
}

TEST_CASE("registry: the bearer token flow works and a token for another repository is refused", "[pull][registry][auth]") {
    Store s;
    TokenIssuer issuer({"lab/plain"});
    Registry reg(&issuer);
    reg.populate({"lab/plain:1", "lab/docker:1"});

    auto r = s.pull(reg.ref("lab/plain:1"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    check_runs(s, reg.ref("lab/plain:1"), {"cat", "/etc/lab-release"}, "plain\n");
    auto asked = issuer.requests();
    CHECK(std::any_of(asked.begin(), asked.end(), [](auto& l) { return contains(l, "repository:lab/plain:pull"); }));

    // lab/docker exists, but the issuer grants nothing for it: 401 with the token.
    const std::string denied = reg.ref("lab/docker:1");
    check_failed(s, s.pull(denied), denied, reg.host() + "/lab/docker", "1");
    asked = issuer.requests();
    CHECK(std::any_of(asked.begin(), asked.end(), [](auto& l) { return contains(l, "repository:lab/docker:pull"); }));
    CHECK(s.image_count() == 1);
}

TEST_CASE("registry: --registry-mirror and SRLAUNCH_REGISTRY_MIRROR stand in for Docker Hub", "[pull][registry]") {
    Store s;
    Registry reg;
    reg.populate({"lab/plain:1", "lab/docker:1"});
    auto r = s.pull("lab/plain:1", {"--registry-mirror", reg.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(s.has_image("lab/plain", "1"));
    check_runs(s, "lab/plain:1", {"cat", "/etc/lab-release"}, "plain\n");

    r = s.srl({"pull", "-q", "lab/docker:1"}, {"SRLAUNCH_REGISTRY_MIRROR=" + reg.url()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    check_runs(s, "lab/docker:1", {"cat", "/etc/lab-release"}, "docker\n");
}

TEST_CASE("run pulls a missing registry image first", "[pull][registry][run]") {
    Store s;
    Registry reg;
    reg.populate({"lab/plain:1"});
    auto r = s.run_in(reg.ref("lab/plain:1"), {"cat", "/etc/lab-release"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "plain\n");
    CHECK(s.has_image(reg.host() + "/lab/plain", "1"));
}

// ---- bad registry input: each a clear error, nothing stored, no temporary left -------------

TEST_CASE("registry: a missing repository or tag is a clear error", "[pull][registry][bad]") {
    Store s;
    Registry reg;
    reg.populate({"lab/plain:1"});
    check_failed_empty(s, s.pull(reg.ref("lab/nope:1")), reg.ref("lab/nope:1"), reg.host() + "/lab/nope", "1");
    check_failed_empty(s, s.pull(reg.ref("lab/plain:2")), reg.ref("lab/plain:2"), reg.host() + "/lab/plain", "2");
}

TEST_CASE("registry: a layer that does not match its digest", "[pull][registry][bad]") {
    Store s;
    Registry reg;
    reg.populate({"lab/corrupt:1"});
    reg.corrupt_layer("lab/corrupt:1");
    const std::string ref = reg.ref("lab/corrupt:1");
    check_failed_empty(s, s.pull(ref), ref, reg.host() + "/lab/corrupt", "1");
}

TEST_CASE("registry: a config whose diff_id does not match the layer", "[pull][registry][bad]") {
    Store s;
    Registry reg;
    reg.populate({"lab/baddiff:1"});
    const std::string ref = reg.ref("lab/baddiff:1");
    check_failed_empty(s, s.pull(ref), ref, reg.host() + "/lab/baddiff", "1");
}

TEST_CASE("registry: a layer with a ../ entry", "[pull][registry][bad]") {
    Store s;
    Registry reg;
    reg.populate({"lab/dotdot:1"});
    const std::string ref = reg.ref("lab/dotdot:1");
    check_failed_empty(s, s.pull(ref), ref, reg.host() + "/lab/dotdot", "1");
    CHECK_FALSE(s.holds_file_named("escape"));
}

TEST_CASE("registry: a write through an absolute symlink", "[pull][registry][bad]") {
    Store s;
    Registry reg;
    reg.populate({"lab/symlink-escape:1", "lab/symlink-escape:2"});
    const std::string canary = "/tmp/srlaunch-symlink-escape-canary";
    fs::remove(canary);
    for (const char* tag : {"1", "2"}) {  // 1: symlink and write in one layer; 2: in two layers
        INFO("lab/symlink-escape:" << tag);
        const std::string ref = reg.ref(std::string("lab/symlink-escape:") + tag);
        check_failed_empty(s, s.pull(ref), ref, reg.host() + "/lab/symlink-escape", tag);
        CHECK_FALSE(fs::exists(canary));
    }
}

TEST_CASE("registry: a 100 MB manifest is refused", "[pull][registry][bad]") {
    Store s;
    StaticRegistryTree tree;
    HttpServer srv(tree.root());
    const std::string ref = srv.host() + "/lab/huge:1";
    auto t0 = Clock::now();
    check_failed_empty(s, s.pull(ref), ref, srv.host() + "/lab/huge", "1");
    CHECK(Clock::now() - t0 < 60s);

    // The same without a Content-Length: the size is only known by counting.
    HttpServer unsized(tree.root(), HttpFaults().no_length("/v2/lab/huge/manifests/1"));
    const std::string ref2 = unsized.host() + "/lab/huge:1";
    t0 = Clock::now();
    check_failed_empty(s, s.pull(ref2), ref2, unsized.host() + "/lab/huge", "1");
    CHECK(Clock::now() - t0 < 60s);
}

TEST_CASE("registry: an index without linux/amd64", "[pull][registry][bad]") {
    Store s;
    Registry reg;
    reg.populate({"lab/armonly:1"});
    const std::string ref = reg.ref("lab/armonly:1");
    auto r = s.pull(ref);
    check_failed_empty(s, r, ref, reg.host() + "/lab/armonly", "1");
    CHECK(contains(r.err, "amd64"));
}
