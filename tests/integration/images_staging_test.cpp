// The store's support for pulls: staging an image and committing it, sweeping what killed
// processes left behind, and the per-reference lock that serialises pulls across processes.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "../support/proc.hpp"
#include "images/extract.hpp"
#include "images/store.hpp"
#include "open_gate.hpp"
#include "images_helpers.hpp"
#include "launcher/error.hpp"

using namespace test;
using namespace images_test;
namespace fs = std::filesystem;
using srl::Image;
using srl::ImageRef;
using srl::ImageStore;

namespace {

// The store's hidden directories (.tmp-*, .rm-*, .old-*), not counting .locks.
std::vector<std::string> temp_dirs(const std::string& root) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (name.starts_with('.') && name != ".locks") out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

void write_at(int dirfd, const char* name, const std::string& content) {
    srl::Fd fd(::openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    REQUIRE(fd);
    REQUIRE(::write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()));
}

// A child process running `body`; it reports on `out` (its write end) and exits 0, or 1 on error.
pid_t fork_child(const std::function<void()>& body) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            body();
        } catch (...) {
            ::_exit(1);
        }
        ::_exit(0);
    }
    return pid;
}

int wait_status(pid_t pid) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return status;
}

// What arrives on fd within the timeout ("" for nothing).
std::string read_within(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

struct Pipe {
    int fds[2];
    Pipe() { REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); }
    ~Pipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    int read_end() const { return fds[0]; }
    int write_end() const { return fds[1]; }
};

}  // namespace

TEST_CASE("images: a committed staging is the image, its metadata round-tripping", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const auto ref = ImageRef::parse("localhost:5000/lab/os:1");
    auto staging = store.stage(ref);
    CHECK(temp_dirs(tmp / "images").size() == 1);
    CHECK((lstat_of(staging.rootfs().string()).st_mode & 07777) == 0755);
    CHECK(fs::is_empty(staging.rootfs()));
    write_at(staging.rootfs_fd(), "hello", "world");

    Image meta;
    meta.ref = ref;
    meta.size_bytes = 5;
    meta.source = "127.0.0.1:5000/lab/os:1";
    meta.digest = "sha256:" + std::string(64, 'a');
    meta.layers = {{"sha256:" + std::string(64, 'b'), 123, {}, 0}, {"sha256:" + std::string(64, 'c'), 1ull << 40, {}, 0}};
    meta.config.entrypoint = {"/bin/sh", "-c"};
    meta.config.cmd = {"echo hi"};
    meta.config.env = {"PATH=/bin", "A=b"};
    meta.config.workdir = "/w";
    meta.config.user = "1000:1000";
    const Image img = staging.commit(meta);
    CHECK(img.dir == fs::path(tmp / "images") / "localhost:5000" / "lab" / "os" / "@1");
    CHECK(img.rootfs == img.dir / "rootfs");
    CHECK(img.created > 1700000000);
    CHECK(read_file((img.rootfs / "hello").string()) == "world");
    CHECK_THROWS_WITH(staging.commit(meta), Catch::Contains("committed already"));

    for (const Image& got : {store.get(ref), store.list().at(0)}) {
        CHECK(got.ref == ref);
        CHECK(got.dir == img.dir);
        CHECK(got.created == img.created);
        CHECK(got.size_bytes == 5);
        CHECK(got.source == meta.source);
        CHECK(got.digest == meta.digest);
        REQUIRE(got.layers.size() == 2);
        CHECK(got.layers[0].digest == meta.layers[0].digest);
        CHECK(got.layers[0].size == 123);
        CHECK(got.layers[1].size == 1ull << 40);
        CHECK(got.config.entrypoint == meta.config.entrypoint);
        CHECK(got.config.cmd == meta.config.cmd);
        CHECK(got.config.env == meta.config.env);
        CHECK(got.config.workdir == "/w");
        CHECK(got.config.user == "1000:1000");
    }
    CHECK(temp_dirs(tmp / "images").empty());

    // A second commit of the same reference replaces the first in one step.
    auto again = store.stage(ref);
    write_at(again.rootfs_fd(), "v2", "");
    meta.digest = "sha256:" + std::string(64, 'd');
    meta.layers.clear();
    again.commit(meta);
    const Image second = store.get(ref);
    CHECK(second.digest == meta.digest);
    CHECK(second.layers.empty());
    CHECK(fs::exists(second.rootfs / "v2"));
    CHECK_FALSE(fs::exists(second.rootfs / "hello"));
    CHECK(temp_dirs(tmp / "images").empty());

    // The staged reference is the one committed.
    auto other = store.stage(ImageRef::parse("other"));
    CHECK_THROWS_WITH(other.commit(meta), "cannot commit image localhost:5000/lab/os:1: the staged image is other:latest");
}

TEST_CASE("images: image.json from before pulls reads with empty source, digest and layers", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const std::string tar = tmp / "t.tar";
    write_tar(tar, {file_entry("f", "x")});
    const Image img = store.import(tar, ImageRef::parse("old:1"));
    CHECK(img.source == tar);
    CHECK(store.get(img.ref).source == tar);
    CHECK(store.get(img.ref).digest.empty());

    const fs::path json_path = img.dir / "image.json";
    auto j = nlohmann::json::parse(read_file(json_path.string()));
    j.erase("source");
    j.erase("digest");
    j.erase("layers");
    fs::remove(json_path);
    write_file(json_path.string(), j.dump());
    const Image old = store.get(img.ref);
    CHECK(old.source.empty());
    CHECK(old.digest.empty());
    CHECK(old.layers.empty());
    CHECK(old.size_bytes == 1);
}

TEST_CASE("images: a staging dropped without commit leaves nothing", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    {
        auto staging = store.stage(ImageRef::parse("dropped"));
        ::mkdirat(staging.rootfs_fd(), "d", 0500);
        srl::Fd d(::openat(staging.rootfs_fd(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        write_at(d.get(), "f", "x");
        ::symlinkat((tmp / "outside").c_str(), staging.rootfs_fd(), "out");
        auto moved = std::move(staging);
        CHECK(temp_dirs(tmp / "images").size() == 1);
    }
    CHECK(store_contents(tmp / "images").empty());
    CHECK_FALSE(store.find(ImageRef::parse("dropped")));
}

TEST_CASE("images: sweep_stale removes what a killed process left, never a live staging", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    auto mine = store.stage(ImageRef::parse("mine"));

    // One child stages and stays alive until told to go; another stages and is killed.
    Pipe ready, go;
    pid_t alive = fork_child([&] {
        auto staging = store.stage(ImageRef::parse("alive"));
        if (::write(ready.write_end(), "r", 1) != 1) ::_exit(2);
        char c;
        if (::read(go.read_end(), &c, 1) != 1) ::_exit(3);
        ::raise(SIGKILL);
    });
    REQUIRE(read_within(ready.read_end(), 10000) == "r");
    pid_t killed = fork_child([&] {
        auto staging = store.stage(ImageRef::parse("killed"));
        write_at(staging.rootfs_fd(), "f", "x");
        ::raise(SIGKILL);
    });
    const int status = wait_status(killed);
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    // A removal interrupted by SIGKILL leaves a .rm- directory, and an old-style .old- one.
    fs::create_directories(tmp / "images/.rm-ABCDEF/image/rootfs");
    fs::create_directory(tmp / "images/.old-ABCDEF");
    CHECK(temp_dirs(tmp / "images").size() == 5);

    store.sweep_stale();
    auto left = temp_dirs(tmp / "images");
    CHECK(left.size() == 2);  // mine and the living child's
    CHECK(std::find(left.begin(), left.end(), mine.rootfs().parent_path().filename().string()) != left.end());
    CHECK(std::none_of(left.begin(), left.end(), [](const std::string& n) { return n.starts_with(".rm-") || n.starts_with(".old-"); }));

    REQUIRE(::write(go.write_end(), "g", 1) == 1);
    wait_status(alive);
    // stage() sweeps too: now the second child's tree goes as well.
    auto next = store.stage(ImageRef::parse("next"));
    CHECK(temp_dirs(tmp / "images").size() == 2);  // mine and next
}

TEST_CASE("images: removing a tree never empties a file system mounted in it", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const fs::path stale = fs::path(tmp / "images") / ".rm-ABCDEF", mnt = stale / "image/rootfs/mnt";
    fs::create_directories(mnt);
    write_file((stale / "image/rootfs/f").string(), "x");
    Pipe report;
    pid_t child = fork_child([&] {
        // A mount namespace of its own: the tmpfs goes with this child, no other test sees it.
        if (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) ::_exit(2);
        if (::mount("srl-test", mnt.c_str(), "tmpfs", 0, "size=1m") < 0) ::_exit(3);
        write_file((mnt / "keep").string(), "kept");
        std::string msg;
        try {
            srl::Fd images(::open((tmp / "images").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            srl::remove_tree_at(images.get(), stale.filename(), stale.string());
        } catch (const srl::Error& e) {
            msg = e.what();
        }
        store.sweep_stale();  // meets the same mount, and leaves it be
        msg += fs::exists(mnt / "keep") ? "|kept" : "|gone";
        if (::write(report.write_end(), msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) ::_exit(4);
    });
    CHECK(read_within(report.read_end(), 10000) == "cannot remove " + mnt.string() + ": a file system is mounted there|kept");
    CHECK(WEXITSTATUS(wait_status(child)) == 0);
    // Unmounted (the namespace is gone), the stale tree is only a tree.
    store.sweep_stale();
    CHECK(temp_dirs(tmp / "images").empty());
}

TEST_CASE("images: lock_reference serialises two processes on one reference", "[images]") {
    require_root();
    TempDir tmp;
    ImageStore store(tmp / "images");
    const auto ref = ImageRef::parse("localhost:5000/lab/os:1");
    auto held = std::make_unique<srl::Fd>(store.lock_reference(ref));
    REQUIRE(*held);

    Pipe got;
    const int held_fd = held->get();
    auto contender = [&](const ImageRef& r) {
        return fork_child([&, r] {
            // A forked copy of our fd would keep our lock alive (flocks belong to open files).
            ::close(held_fd);
            srl::Fd lock = store.lock_reference(r);
            if (::write(got.write_end(), "l", 1) != 1) ::_exit(2);
        });
    };
    // A different reference is not held up.
    pid_t other = contender(ImageRef::parse("localhost:5000/lab/os:2"));
    CHECK(read_within(got.read_end(), 10000) == "l");
    CHECK(WEXITSTATUS(wait_status(other)) == 0);

    pid_t same = contender(ref);
    CHECK(read_within(got.read_end(), 500).empty());  // waits for us
    held.reset();
    CHECK(read_within(got.read_end(), 10000) == "l");
    CHECK(WEXITSTATUS(wait_status(same)) == 0);

    // Long names still make a valid lock file.
    const auto long_ref = ImageRef::parse(std::string(200, 'a') + "/" + std::string(50, 'b') + ":" + std::string(128, 't'));
    CHECK(store.lock_reference(long_ref));
    CHECK(store.list().empty());  // .locks is no image
}

TEST_CASE("images: any command sweeps a staging dir left by a killed import, never a live one", "[images]") {
    require_root();
    TempDir tmp;
    const std::string tar = tmp / "t.tar", store = tmp / "store", images = store + "/images";
    write_tar(tar, {file_entry("f", "x")});
    const auto argv = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", store});
        return args;
    };
    // import makes its staging dir, then opens the tarball: the gate holds it there.
    {
        OpenGate gate(tar);
        Child killed(argv({"import", tar, "killed:1"}));
        REQUIRE(gate.wait_for_open(30s));
        CHECK(temp_dirs(images).size() == 1);
        ::kill(killed.pid(), SIGKILL);
        CHECK(killed.wait() == 128 + SIGKILL);
    }
    REQUIRE(temp_dirs(images).size() == 1);  // unlocked now: its owner is dead
    const auto listed = run(argv({"images"}));
    INFO(listed.err);
    CHECK(listed.status == 0);
    CHECK(temp_dirs(images).empty());

    OpenGate gate(tar);
    Child live(argv({"import", tar, "live:1"}));
    REQUIRE(gate.wait_for_open(30s));
    const auto staging = temp_dirs(images);
    CHECK(staging.size() == 1);
    CHECK(run(argv({"images"})).status == 0);
    CHECK(temp_dirs(images) == staging);  // flocked by the live import: kept
    gate.release();
    CHECK(live.wait() == 0);
    CHECK(temp_dirs(images).empty());
    CHECK(run(argv({"images"})).out.find("live") != std::string::npos);
}
