#include "servers.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace test {

namespace {

const char* const kPython = "/usr/bin/python3";  // Debian's, with python3-jwt; not a pyenv shim

std::string script(const std::string& name) { return servers_dir() + "/" + name; }

[[noreturn]] void missing(const std::string& what) {
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL("missing prerequisite under CI=true: " << what);
    std::fprintf(stderr, "SKIPPED: missing prerequisite: %s\n", what.c_str());
    std::exit(77);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Runs a tests/servers script to completion; fails the test with its output if it fails.
Result run_script(std::vector<std::string> argv, std::chrono::milliseconds timeout = 300s) {
    argv.insert(argv.begin(), kPython);
    auto r = run(argv, {}, timeout);
    if (r.status != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        FAIL(cmd << "exited " << r.status << "\n" << r.out << r.err);
    }
    return r;
}

}  // namespace

std::string servers_dir() { return SERVERS_DIR; }

void require_servers() {
    static bool checked = false;
    if (checked) return;
    for (const char* prog : {"docker-registry", "skopeo", "zstd"})
        if (run({"sh", "-c", std::string("command -v ") + prog}).status != 0) missing(std::string("program ") + prog);
    if (run({kPython, "-c", "import jwt, cryptography"}).status != 0)
        missing("/usr/bin/python3 with python3-jwt and python3-cryptography");
    if (run({"sh", "-c", "file -L /bin/busybox | grep -q 'statically linked'"}).status != 0)
        missing("a static /bin/busybox (busybox-static)");
    checked = true;
}

void require_fixture(const std::string& path) {
    if (!std::filesystem::exists(path)) missing("fixture " + path);
}

// ---- ServerProcess ----------------------------------------------------------------------------

ServerProcess::ServerProcess(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<std::string> store = argv;
    store.insert(store.begin(), kPython);
    std::vector<char*> args;
    for (auto& a : store) args.push_back(a.data());
    args.push_back(nullptr);

    int out[2];
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    REQUIRE(log >= 0);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(devnull >= 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Dies with the test process, whatever kills it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(log, 2);
        syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    pid_ = pid;
    close(out[1]);
    close(log);
    close(devnull);

    std::string line;
    auto deadline = Clock::now() + 60s;
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
        pollfd p{out[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[256];
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n > 0) line.append(buf, static_cast<size_t>(n));
        else if (n == 0 || errno != EINTR) break;
    }
    close(out[0]);
    try {
        port_ = std::stoi(line);
    } catch (...) {
        port_ = 0;
    }
    if (port_ <= 0 || port_ > 65535) {
        stop();
        FAIL(store[1] << " did not start (first line: '" << line << "'); its stderr:\n" << read_file(log_path));
    }
}

ServerProcess::~ServerProcess() { stop(); }

void ServerProcess::stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    auto deadline = Clock::now() + 5s;
    int status;
    pid_t r = 0;
    while ((r = waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    if (r == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
    }
    pid_ = -1;
}

// ---- HttpServer -------------------------------------------------------------------------------

HttpFaults& HttpFaults::drop_after(const std::string& path, long bytes) {
    args.insert(args.end(), {"--drop-after", path + "=" + std::to_string(bytes)});
    return *this;
}
HttpFaults& HttpFaults::status(const std::string& path, int code, int count) {
    args.insert(args.end(), {"--status", path + "=" + std::to_string(code) + (count >= 0 ? ":" + std::to_string(count) : "")});
    return *this;
}
HttpFaults& HttpFaults::no_range(const std::string& path) {
    args.insert(args.end(), {"--no-range", path});
    return *this;
}
HttpFaults& HttpFaults::throttle(const std::string& path, long bytes_per_second) {
    args.insert(args.end(), {"--throttle", path + "=" + std::to_string(bytes_per_second)});
    return *this;
}
HttpFaults& HttpFaults::redirect(const std::string& path, const std::string& url) {
    args.insert(args.end(), {"--redirect", path + "=" + url});
    return *this;
}
HttpFaults& HttpFaults::no_length(const std::string& path) {
    args.insert(args.end(), {"--no-length", path});
    return *this;
}

HttpServer::HttpServer(const std::string& root, const HttpFaults& faults) : root_(root) {
    std::vector<std::string> argv{script("httpd.py"), "--root", root, "--log", logs_ / "requests.log"};
    argv.insert(argv.end(), faults.args.begin(), faults.args.end());
    proc_ = std::make_unique<ServerProcess>(argv, logs_ / "httpd.err");
}

std::string HttpServer::host() const { return "127.0.0.1:" + std::to_string(port()); }
std::string HttpServer::url() const { return "http://" + host(); }

std::vector<std::string> HttpServer::requests() const { return lines_of(read_file(logs_ / "requests.log")); }

std::vector<std::string> HttpServer::requests(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto& l : requests())
        if (l.rfind(prefix, 0) == 0) out.push_back(l);
    return out;
}

// ---- AlpineMirror -----------------------------------------------------------------------------

AlpineMirror::AlpineMirror(const AlpineMirrorOptions& options) {
    require_servers();
    std::string fixture = servers_dir() + "/../../../shared/fixtures/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz";
    if (!std::filesystem::exists(fixture)) missing("fixture " + fixture);
    std::vector<std::string> argv{script("alpine_mirror.py"), dir_ / "mirror"};
    if (options.bad_sha256) argv.emplace_back("--bad-sha256");
    if (options.bad_sha512) argv.emplace_back("--bad-sha512");
    if (options.truncate) argv.emplace_back("--truncate");
    run_script(argv);
    http_ = std::make_unique<HttpServer>(dir_ / "mirror", options.faults);
}

std::string AlpineMirror::tarball_path(const std::string& branch) {
    return "/alpine/" + branch + "/releases/x86_64/alpine-minirootfs-" + kVersion + "-x86_64.tar.gz";
}

std::string AlpineMirror::yaml_path(const std::string& branch) {
    return "/alpine/" + branch + "/releases/x86_64/latest-releases.yaml";
}

// ---- TokenIssuer ------------------------------------------------------------------------------

TokenIssuer::TokenIssuer(const std::vector<std::string>& allow) {
    require_servers();
    std::vector<std::string> argv{script("token_issuer.py"), "--cert-out", cert_path(), "--log", dir_ / "requests.log"};
    for (const auto& a : allow) argv.insert(argv.end(), {"--allow", a});
    proc_ = std::make_unique<ServerProcess>(argv, dir_ / "issuer.err");
}

std::string TokenIssuer::realm() const { return "http://127.0.0.1:" + std::to_string(port()) + "/token"; }

std::vector<std::string> TokenIssuer::requests() const { return lines_of(read_file(dir_ / "requests.log")); }

// ---- Registry ---------------------------------------------------------------------------------

Registry::Registry(const TokenIssuer* auth) {
    require_servers();
    storage_ = dir_ / "storage";
    std::vector<std::string> argv{script("registry.py"), "--storage", storage_, "--config", dir_ / "registry.yml",
                                  "--log", dir_ / "registry.log"};
    if (auth) argv.insert(argv.end(), {"--token-realm", auth->realm(), "--token-cert", auth->cert_path()});
    proc_ = std::make_unique<ServerProcess>(argv, dir_ / "registry.err");
    if (auth)
        push_proc_ = std::make_unique<ServerProcess>(
            std::vector<std::string>{script("registry.py"), "--storage", storage_, "--config", dir_ / "push-registry.yml",
                                     "--log", dir_ / "push-registry.log"},
            dir_ / "push-registry.err");
}

std::string Registry::host() const { return "127.0.0.1:" + std::to_string(port()); }
std::string Registry::url() const { return "http://" + host(); }
std::string Registry::push_host() const {
    return "127.0.0.1:" + std::to_string((push_proc_ ? push_proc_ : proc_)->port());
}
std::string Registry::log() const { return read_file(dir_ / "registry.log"); }

std::map<std::string, std::string> Registry::populate(const std::vector<std::string>& only) {
    std::vector<std::string> argv{script("mkimage.py"), "populate", "--registry", push_host()};
    for (const auto& o : only) argv.insert(argv.end(), {"--only", o});
    auto digests = parse_digest_lines(run_script(argv).out);
    for (const auto& [k, v] : digests) digests_[k] = v;
    return digests;
}

std::string Registry::digest(const std::string& name_tag) const {
    auto it = digests_.find(name_tag);
    REQUIRE(it != digests_.end());
    return it->second;
}

std::string Registry::push_tarball(const std::string& tar, const std::string& name_tag, const std::string& cache_dir) {
    std::vector<std::string> argv{script("mkimage.py"), "tarball-image", "--tar", tar, "--registry", push_host(),
                                  "--name", name_tag};
    if (!cache_dir.empty()) argv.insert(argv.end(), {"--cache", cache_dir});
    auto digests = parse_digest_lines(run_script(argv, 600s).out);
    REQUIRE(digests.size() == 1);
    digests_[digests.begin()->first] = digests.begin()->second;
    return digests.begin()->second;
}

std::string Registry::corrupt_layer(const std::string& name_tag) {
    return trimmed(run_script({script("mkimage.py"), "corrupt-layer", "--registry", push_host(), "--storage", storage_,
                               name_tag})
                       .out);
}

// ---- StaticRegistryTree -----------------------------------------------------------------------

StaticRegistryTree::StaticRegistryTree(long huge_bytes) {
    require_servers();
    root_ = dir_ / "registry";
    digests_ = parse_digest_lines(
        run_script({script("mkimage.py"), "static-registry", root_, "--huge-bytes", std::to_string(huge_bytes)}).out);
}

std::string StaticRegistryTree::digest(const std::string& name_tag) const {
    auto it = digests_.find(name_tag);
    REQUIRE(it != digests_.end());
    return it->second;
}

std::vector<std::string> StaticRegistryTree::layer_paths() const {
    auto manifest = nlohmann::json::parse(read_file(root_ + "/v2/lab/static/manifests/1"));
    std::vector<std::string> out;
    for (const auto& l : manifest.at("layers")) out.push_back("/v2/lab/static/blobs/" + l.at("digest").get<std::string>());
    return out;
}

std::map<std::string, std::string> parse_digest_lines(const std::string& out) {
    std::map<std::string, std::string> m;
    for (const auto& line : lines_of(out)) {
        auto sp = line.find(' ');
        if (sp == std::string::npos) continue;
        m[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return m;
}

}  // namespace test
