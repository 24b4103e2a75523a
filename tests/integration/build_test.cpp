// `srlaunch build` and `history`: a Dockerfile into a layered image that runs as written, a
// cache that reuses exactly the unchanged steps, reproducible digests, save/load of a built
// image (skopeo and umoci read it), and bad input that stores nothing.
#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "../support/alpine_store.hpp"
#include "../support/proc.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::size_t count(const std::string& s, const std::string& part) {
    std::size_t n = 0;
    for (auto p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
    return n;
}

// The digest a build prints last.
std::string digest_of(const Result& r) {
    std::string out = trim(r.out);
    return out.substr(out.rfind('\n') + 1);
}

const char* kHello = R"(#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    char cwd[256];
    const char* g = getenv("GREETING");
    printf("hello uid=%d cwd=%s greeting=%s\n", (int)getuid(), getcwd(cwd, sizeof cwd), g ? g : "-");
    return 0;
}
)";

// The lab context: a static C program, a text file, and the Dockerfile of issue 9.
struct LabContext {
    TempDir dir;
    LabContext() {
        require_program("gcc");
        write_file(dir / "hello.c", kHello);
        auto cc = run({"gcc", "-static", "-O2", "-o", dir / "hello", dir / "hello.c"});
        INFO(cc.err);
        REQUIRE(cc.status == 0);
        fs::remove(dir / "hello.c");
        write_file(dir / "note.txt", "lab notes\n");
        write_file(dir / "Dockerfile",
                   "# the lab image\n"
                   "FROM alpine:3.20\n"
                   "RUN adduser -D student && echo RAN-ADDUSER\n"
                   "COPY hello /usr/local/bin/\n"
                   "COPY --chown=student note.txt /home/student/\n"
                   "ENV GREETING=\"hi there\" \\\n"
                   "    LAB=1\n"
                   "WORKDIR /home/student\n"
                   "RUN echo RAN-AFTER && echo after > after.txt\n"
                   "USER student\n"
                   "LABEL course=os\n"
                   "EXPOSE 8080\n"
                   "CMD [\"hello\"]\n");
    }
    std::string path() const { return dir.path(); }
};

Result build(const AlpineStore& s, const std::vector<std::string>& args, const SpawnOptions& o = {}) {
    std::vector<std::string> a{"build"};
    a.insert(a.end(), args.begin(), args.end());
    return s.srl(a, o);
}

// path -> "type mode uid:gid size sha256|target" for every entry of a tree, to compare images.
std::map<std::string, std::string> tree(const std::string& root) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        struct stat st {};
        REQUIRE(::lstat(it->path().c_str(), &st) == 0);
        std::ostringstream d;
        d << (st.st_mode & S_IFMT) << " " << std::oct << (st.st_mode & 07777) << std::dec << " " << st.st_uid << ":" << st.st_gid;
        if (S_ISREG(st.st_mode)) d << " " << st.st_size << " " << run({"sha256sum", it->path()}).out.substr(0, 64);
        if (S_ISLNK(st.st_mode)) d << " -> " << fs::read_symlink(it->path()).string();
        out[fs::relative(it->path(), root).string()] = d.str();
    }
    return out;
}

std::vector<std::string> temp_dirs(const std::string& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().starts_with(".tmp-")) out.push_back(e.path());
    return out;
}

}  // namespace

TEST_CASE("build: the lab image runs as written, and history lists its steps", "[build]") {
    AlpineStore s;
    LabContext ctx;
    auto b = build(s, {"-t", "lab:1", ctx.path()});
    INFO(b.out << b.err);
    REQUIRE(b.status == 0);
    CHECK(contains(b.out, "STEP 1/11: FROM alpine:3.20"));
    CHECK(contains(b.out, "STEP 2/11: RUN adduser -D student && echo RAN-ADDUSER"));
    CHECK(contains(b.out, "\nRAN-ADDUSER\n"));
    CHECK(contains(b.out, "Successfully tagged lab:1"));
    CHECK(digest_of(b).starts_with("sha256:"));

    // CMD is the default; user, workdir and env as written.
    auto r = s.srl({"run", "--rm", "lab:1"});
    INFO(r.err);
    CHECK(trim(r.out) == "hello uid=1000 cwd=/home/student greeting=hi there");
    r = s.srl({"run", "--rm", "lab:1", "sh", "-c",
               "id -un; pwd; echo $LAB; cat note.txt after.txt; stat -c '%U %a' note.txt /usr/local/bin/hello"});
    CHECK(r.out == "student\n/home/student\n1\nlab notes\nafter\nstudent 644\nroot 755\n");
    // The mount points RUN containers had are in no layer: Alpine has no /etc/resolv.conf.
    CHECK(!fs::exists(s.path("images/lab/@1/rootfs/etc/resolv.conf")));
    CHECK(read_file(s.path("images/lab/@1/rootfs/etc/hostname")) == "localhost\n");

    auto h = s.srl({"history", "lab:1"});
    INFO(h.err);
    REQUIRE(h.status == 0);
    std::istringstream lines(h.out);
    std::vector<std::string> rows;
    for (std::string l; std::getline(lines, l);) rows.push_back(l);
    REQUIRE(rows.size() == 12);  // the header, the base layer, 10 steps after FROM
    CHECK(contains(rows[1], "CMD [\"hello\"]"));
    CHECK(contains(rows[1], "0B"));
    CHECK(contains(rows[9], "COPY hello /usr/local/bin/"));
    CHECK(contains(rows[10], "RUN /bin/sh -c adduser -D student"));
    CHECK(contains(rows[11], "FROM alpine:3.20"));
    CHECK(contains(s.srl({"history", "alpine:3.20"}).out, "import "));

    // `images`: the layers' sizes, base first (flattened Alpine, ~3.4 MB compressed).
    auto images = s.srl({"images"}).out;
    INFO(images);
    CHECK(contains(images, "LAYERS"));
    std::string lab_row = images.substr(images.find("\nlab "));
    lab_row = lab_row.substr(0, lab_row.find('\n', 1));
    CHECK(contains(lab_row, "MB "));
    CHECK(contains(lab_row, "build:" + ctx.path()));
}

TEST_CASE("build: a rebuild reuses every step, and a changed file rebuilds from its COPY on", "[build]") {
    AlpineStore s;
    LabContext ctx;
    auto first = build(s, {"-t", "lab:1", ctx.path()});
    REQUIRE(first.status == 0);

    auto again = build(s, {"-t", "lab:1", ctx.path()});
    INFO(again.out << again.err);
    REQUIRE(again.status == 0);
    CHECK(count(again.out, "--> Using cache") == 5);  // 2 RUN, 2 COPY, WORKDIR
    CHECK(!contains(again.out, "\nRAN-"));  // what the RUN steps print (the STEP lines say it too)
    CHECK(digest_of(again) == digest_of(first));

    // The cache survives rmi: the layers stay in the layer store.
    REQUIRE(s.srl({"rmi", "lab:1"}).status == 0);
    auto after_rmi = build(s, {"-t", "lab:1", ctx.path()});
    CHECK(count(after_rmi.out, "--> Using cache") == 5);
    CHECK(digest_of(after_rmi) == digest_of(first));

    write_file(ctx.dir / "note.txt", "changed notes\n");
    auto changed = build(s, {"-t", "lab:2", ctx.path()});
    INFO(changed.out << changed.err);
    REQUIRE(changed.status == 0);
    CHECK(count(changed.out, "--> Using cache") == 2);  // RUN adduser, COPY hello
    CHECK(!contains(changed.out, "\nRAN-ADDUSER\n"));
    CHECK(contains(changed.out, "\nRAN-AFTER\n"));  // after the changed COPY: runs again
    CHECK(digest_of(changed) != digest_of(first));
    CHECK(trim(s.srl({"run", "--rm", "lab:2", "cat", "note.txt"}).out) == "changed notes");
    CHECK(trim(s.srl({"run", "--rm", "lab:1", "cat", "note.txt"}).out) == "lab notes");
}

TEST_CASE("build: save, rmi, load and run give the same content and digest, and skopeo and umoci read it", "[build][save]") {
    AlpineStore s;
    require_program("skopeo");
    require_program("umoci");
    LabContext ctx;
    auto b = build(s, {"-t", "lab:1", ctx.path()});
    REQUIRE(b.status == 0);
    const std::string digest = digest_of(b);
    const auto before = tree(s.path("images/lab/@1/rootfs"));
    TempDir out;
    const std::string a = out / "lab.tar", again = out / "again.tar";
    REQUIRE(s.srl({"save", "lab:1", "-o", a}).status == 0);

    auto inspect = run({"skopeo", "inspect", "oci-archive:" + a});
    INFO(inspect.err);
    REQUIRE(inspect.status == 0);
    CHECK(contains(inspect.out, "\"Digest\": \"" + digest + "\""));
    CHECK(count(inspect.out, "\"sha256:") >= 5);  // the base and the four layers that changed files
    const std::string layout = out / "layout", bundle = out / "bundle";
    fs::create_directory(layout);
    REQUIRE(run({"tar", "-xf", a, "-C", layout}).status == 0);
    auto unpack = run({"umoci", "unpack", "--image", layout + ":1", bundle});
    INFO(unpack.err);
    REQUIRE(unpack.status == 0);
    CHECK(read_file(bundle + "/rootfs/home/student/note.txt") == "lab notes\n");
    CHECK(fs::exists(bundle + "/rootfs/usr/local/bin/hello"));
    CHECK(!fs::exists(bundle + "/rootfs/etc/resolv.conf"));

    REQUIRE(s.srl({"rmi", "lab:1"}).status == 0);
    auto load = s.srl({"load", "-i", a});
    INFO(load.err);
    REQUIRE(load.status == 0);
    CHECK(contains(s.srl({"images"}).out, digest.substr(0, 19)));
    CHECK(tree(s.path("images/lab/@1/rootfs")) == before);
    CHECK(trim(s.srl({"run", "--rm", "lab:1"}).out) == "hello uid=1000 cwd=/home/student greeting=hi there");
    // Loaded with its layers: saved again, it is the same archive.
    REQUIRE(s.srl({"save", "lab:1", "-o", again}).status == 0);
    CHECK(run({"cmp", a, again}).status == 0);
    CHECK(contains(s.srl({"history", "lab:1"}).out, "COPY hello"));

    // A clean store, as on a student's machine: no Alpine there, the archive is enough.
    TempDir clean;
    auto srl_clean = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {SRLAUNCH_PATH, "--root", clean.path()});
        return run(args);
    };
    REQUIRE(srl_clean({"load", "-i", a}).status == 0);
    CHECK(tree(clean / "images/lab/@1/rootfs") == before);
    CHECK(trim(srl_clean({"run", "--rm", "lab:1"}).out) == "hello uid=1000 cwd=/home/student greeting=hi there");

    SECTION("a flipped byte in a layer: load refuses it and stores nothing") {
        TempDir other;
        const std::string bad = out / "bad.tar";
        fs::copy_file(a, bad);
        std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
        const auto middle = static_cast<std::streamoff>(fs::file_size(bad) / 2);
        f.seekg(middle);
        const char c = static_cast<char>(f.get());
        f.seekp(middle);
        f.put(static_cast<char>(c ^ 0x55));
        f.close();
        auto r = run({SRLAUNCH_PATH, "--root", other.path(), "load", "-i", bad});
        CHECK(r.status == 125);
        CHECK(contains(r.err, "has digest sha256:"));
        CHECK(count(r.err, "\n") == 1);
        CHECK(!fs::exists(other / "images/lab"));
        CHECK(temp_dirs(other / "layers").empty());
        CHECK(temp_dirs(other / "images").empty());
    }
}

TEST_CASE("build: the same Dockerfile and context give the same digest in another store", "[build]") {
    TempDir ctx;
    write_file(ctx / "a.txt", "A\n");
    fs::create_directory(ctx / "dir");
    write_file(ctx / "dir/b.sh", "echo b\n", 0755);
    write_file(ctx / "Containerfile", "FROM alpine:3.20\nCOPY . /srv/\nENV X=1\nCMD [\"sh\"]\n");
    AlpineStore one, two;
    auto first = build(one, {"-t", "r:1", ctx.path()});
    INFO(first.out << first.err);
    REQUIRE(first.status == 0);
    // Other mtimes, another store, another run: the same bytes.
    REQUIRE(run({"touch", "-d", "2001-02-03", ctx / "a.txt", ctx / "dir", ctx / "dir/b.sh"}).status == 0);
    auto second = build(two, {"-t", "r:1", ctx.path()});
    REQUIRE(second.status == 0);
    CHECK(digest_of(second) == digest_of(first));
    CHECK(read_file(two.path("images/r/@1/rootfs/srv/dir/b.sh")) == "echo b\n");
    CHECK(fs::exists(two.path("images/r/@1/rootfs/srv/Containerfile")));

    // SOURCE_DATE_EPOCH is what the files' times are clamped to: another epoch, another digest.
    SpawnOptions epoch;
    epoch.env = {"SOURCE_DATE_EPOCH=1700000000"};
    auto dated = build(two, {"--no-cache", "-t", "r:2", ctx.path()}, epoch);
    REQUIRE(dated.status == 0);
    CHECK(digest_of(dated) != digest_of(first));
    struct stat st {};
    REQUIRE(::stat(two.path("images/r/@2/rootfs/srv/a.txt").c_str(), &st) == 0);
    CHECK(st.st_mtime == 981158400);  // 2001-02-03, before the epoch: kept
    REQUIRE(::stat(two.path("images/r/@1/rootfs/srv/a.txt").c_str(), &st) == 0);
    CHECK(st.st_mtime == 0);  // no SOURCE_DATE_EPOCH: 0
}

TEST_CASE("build: ARG, --build-arg and ENV substitution", "[build]") {
    AlpineStore s;
    TempDir ctx;
    write_file(ctx / "Dockerfile",
               "ARG BASE=alpine:3.20\n"
               "FROM $BASE\n"
               "ARG WHO=world\n"
               "ENV GREETING=\"hello ${WHO}\" DIR=/opt/${WHO:-none}\n"
               "WORKDIR $DIR\n"
               "RUN echo \"$GREETING from $WHO\" > greeting\n");
    auto b = build(s, {"--build-arg", "WHO=lab", "--build-arg", "UNUSED=1", "-t", "args:1", ctx.path()});
    INFO(b.out << b.err);
    REQUIRE(b.status == 0);
    CHECK(contains(b.err, "--build-arg UNUSED was not used"));
    auto r = s.srl({"run", "--rm", "args:1", "sh", "-c", "pwd; cat greeting; echo ${WHO:-unset}"});
    CHECK(r.out == "/opt/lab\nhello lab from lab\nunset\n");  // ARGs are not in the image
    CHECK(contains(s.srl({"history", "--no-trunc", "args:1"}).out, "RUN |1 WHO=lab /bin/sh -c echo"));
    // Another value is another RUN (the args are part of the cache key).
    auto other = build(s, {"--build-arg", "WHO=you", "-t", "args:2", ctx.path()});
    REQUIRE(other.status == 0);
    CHECK(trim(s.srl({"run", "--rm", "args:2", "cat", "greeting"}).out) == "hello you from you");
}

TEST_CASE("build: ADD unpacks local tarballs safely, and whiteouts and opaque directories become layers", "[build]") {
    AlpineStore s;
    TempDir ctx, src;
    fs::create_directories(src / "tree/sub");
    write_file(src / "tree/sub/f.txt", "from the tarball\n");
    REQUIRE(run({"tar", "-C", src / "tree", "-czf", ctx / "good.tar.gz", "."}).status == 0);
    write_file(ctx / "plain.txt", "not an archive\n");
    write_file(ctx / "Dockerfile",
               "FROM alpine:3.20\n"
               "ADD good.tar.gz plain.txt /opt/\n"
               "RUN rm /etc/motd && rm -r /etc/apk && mkdir /etc/apk && echo new > /etc/apk/only\n");
    auto b = build(s, {"-t", "add:1", ctx.path()});
    INFO(b.out << b.err);
    REQUIRE(b.status == 0);
    auto r = s.srl({"run", "--rm", "add:1", "sh", "-c", "cat /opt/sub/f.txt /opt/plain.txt; ls /etc/apk; test -e /etc/motd || echo no-motd"});
    CHECK(r.out == "from the tarball\nnot an archive\nonly\nno-motd\n");
    // Through save and load (the whiteouts as .wh. entries, applied by load) to the same tree.
    TempDir out;
    REQUIRE(s.srl({"save", "add:1", "-o", out / "add.tar"}).status == 0);
    const auto before = tree(s.path("images/add/@1/rootfs"));
    if (run({"which", "umoci"}).status == 0) {  // another OCI tool reads the whiteouts the same way
        fs::create_directory(out / "layout");
        REQUIRE(run({"tar", "-xf", out / "add.tar", "-C", out / "layout"}).status == 0);
        auto unpack = run({"umoci", "unpack", "--image", out / "layout:1", out / "bundle"});
        INFO(unpack.err);
        REQUIRE(unpack.status == 0);
        CHECK(!fs::exists(out / "bundle/rootfs/etc/motd"));
        CHECK(count_entries(out / "bundle/rootfs/etc/apk") == 1);
        CHECK(read_file(out / "bundle/rootfs/opt/sub/f.txt") == "from the tarball\n");
    }
    REQUIRE(s.srl({"rmi", "add:1"}).status == 0);
    REQUIRE(s.srl({"load", "-i", out / "add.tar"}).status == 0);
    CHECK(tree(s.path("images/add/@1/rootfs")) == before);

    SECTION("a tarball with ../ in it is refused") {
        REQUIRE(run({"tar", "-C", src.path(), "-cPf", ctx / "evil.tar", "--transform", "s,^tree,../../escape,", "tree"}).status == 0);
        write_file(ctx / "Dockerfile", "FROM alpine:3.20\nADD evil.tar /opt/\n");
        auto e = build(s, {"-t", "evil:1", ctx.path()});
        CHECK(e.status == 125);
        CHECK(contains(e.err, "Dockerfile:2: ADD: ADD evil.tar: unsafe path in archive"));
        CHECK(!fs::exists(s.path("images/evil")));
    }
}

TEST_CASE("build: bad input fails with one line and leaves nothing behind", "[build]") {
    AlpineStore s;
    TempDir ctx;
    write_file(ctx / "x", "x\n");
    const std::string mounts_before = read_file("/proc/self/mountinfo");
    auto fails = [&](const std::string& dockerfile, int status, const std::string& why) {
        write_file(ctx / "Dockerfile", dockerfile);
        auto r = build(s, {"-t", "bad:1", ctx.path()});
        INFO(r.out << r.err);
        CHECK(r.status == status);
        CHECK(contains(r.err, why));
        CHECK(count(r.err, "srlaunch:") == 1);  // one line of ours (a RUN's own stderr comes before it)
        CHECK(count(r.err.substr(r.err.find("srlaunch:")), "\n") == 1);
        CHECK(!fs::exists(s.path("images/bad")));
        CHECK(count_entries(s.path("containers")) == 0);
        CHECK(temp_dirs(s.path("layers")).empty());
        CHECK(temp_dirs(s.path("images")).empty());
        CHECK(read_file("/proc/self/mountinfo") == mounts_before);
        return r;
    };
    fails("FROM alpine:3.20\nRUN true\nFROBNICATE now\n", 125, "srlaunch: Dockerfile:3: unknown instruction: FROBNICATE");
    fails("FROM alpine:3.20\nCOPY ../x /x\n", 125, "srlaunch: Dockerfile:2: COPY ../x: the path is outside the build context");
    fails("FROM alpine:3.20\nCOPY missing /x\n", 125, "COPY missing: no such file or directory in the build context");
    fails("RUN true\n", 125, "Dockerfile:1: RUN before FROM");
    fails("FROM alpine:3.20\nUSER nobody-here\nRUN true\n", 125, "Dockerfile:3: unable to find user nobody-here");
    auto r = fails("FROM alpine:3.20\nRUN echo one > /one\nRUN hostname; exit 3\nRUN echo never\n", 3,
                   "srlaunch: Dockerfile:3: RUN hostname; exit 3: the command exited with status 3; nothing was tagged");
    CHECK(!contains(r.out, "STEP 4/4"));
    // The failed step's container (its hostname is its id's start) left no cgroup.
    const std::string id = r.out.substr(r.out.find("STEP 3/4"));
    const std::string host = id.substr(id.find('\n') + 1, 12);
    REQUIRE(host.size() == 12);
    CHECK(!contains(run({"find", "/sys/fs/cgroup", "-type", "d", "-path", "*/srlaunch/*"}).out, host));
    fails("FROM alpine:3.20\nRUN no-such-command\n", 127, "exited with status 127");
}
