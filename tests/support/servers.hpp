// Real servers on loopback for the pull tests, as RAII objects: the scripts in tests/servers
// (httpd.py, alpine_mirror.py, token_issuer.py, registry.py, mkimage.py) started as children.
// Every server listens on 127.0.0.1 only, on a port it picked itself; every process is killed
// and reaped on destruction (and gets SIGKILL if the test process dies first).
//
//   AlpineMirror mirror;                        // mirror.url() -> --mirror
//   Registry reg;  auto digests = reg.populate({"lab/plain:1"});
//   reg.ref("lab/plain:1")                      // "127.0.0.1:PORT/lab/plain:1"
//   TokenIssuer tok({"lab/plain"});  Registry authed(&tok);
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proc.hpp"

namespace test {

// tests/servers (SERVERS_DIR), and the prerequisites of these servers: docker-registry,
// skopeo, zstd, a static /bin/busybox, /usr/bin/python3 with python3-jwt and
// python3-cryptography. A missing one skips the test (exit 77), or fails it under CI=true.
std::string servers_dir();
void require_servers();
// A fixture file the test needs (e.g. the Debian rootfs tarball); the same skip-or-fail.
void require_fixture(const std::string& path);

// One server process: argv's first stdout line is its port. stderr goes to log_path.
class ServerProcess {
public:
    ServerProcess(const std::vector<std::string>& argv, const std::string& log_path);
    ~ServerProcess();  // stop()
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    // SIGTERM, then SIGKILL after 5 s; reaps. Idempotent.
    void stop();

private:
    pid_t pid_ = -1;
    int port_ = 0;
};

// httpd.py fault rules, each for one URL path ("/alpine/v3.20/releases/x86_64/...").
struct HttpFaults {
    // The first GET sends the headers and `bytes` of the body, then closes the connection.
    HttpFaults& drop_after(const std::string& path, long bytes);
    // The first `count` requests (all if count < 0) answer `code`.
    HttpFaults& status(const std::string& path, int code, int count = -1);
    HttpFaults& no_range(const std::string& path);  // Range ignored: 200 with everything
    HttpFaults& throttle(const std::string& path, long bytes_per_second);
    HttpFaults& redirect(const std::string& path, const std::string& url);  // 302
    HttpFaults& no_length(const std::string& path);  // no Content-Length, close-delimited
    std::vector<std::string> args;
};

// httpd.py serving `root` (static files, Range, sidecar headers; see the script).
class HttpServer {
public:
    explicit HttpServer(const std::string& root, const HttpFaults& faults = {});
    int port() const { return proc_->port(); }
    std::string host() const;  // "127.0.0.1:PORT"
    std::string url() const;   // "http://127.0.0.1:PORT"
    const std::string& root() const { return root_; }
    // The request log, one "METHOD PATH RANGE STATUS" per request (RANGE "-" when none).
    std::vector<std::string> requests() const;
    // Requests whose log line starts with `prefix` ("GET /path bytes=").
    std::vector<std::string> requests(const std::string& prefix) const;
    // Requests of exactly `path` (not /path.sha256), by `method`.
    std::vector<std::string> requests_for(const std::string& path, const std::string& method = "GET") const {
        return requests(method + " " + path + " ");
    }
    void stop() { proc_->stop(); }

private:
    TempDir logs_;
    std::string root_;
    std::unique_ptr<ServerProcess> proc_;
};

struct AlpineMirrorOptions {
    bool bad_sha256 = false;  // the YAML's sha256 for the minirootfs is wrong
    bool bad_sha512 = false;
    bool truncate = false;    // the tarball is cut in half (checksums stay the real ones)
    HttpFaults faults;        // for paths such as AlpineMirror::tarball_path()
};

// A tree like dl-cdn.alpinelinux.org (latest-stable, v3.20, edge) from the real fixture,
// served by httpd.py. url() is what `--mirror` takes.
class AlpineMirror {
public:
    explicit AlpineMirror(const AlpineMirrorOptions& options = {});
    std::string url() const { return http_->url(); }
    HttpServer& server() { return *http_; }
    static std::string tarball_path(const std::string& branch = "v3.20");  // URL path
    static std::string yaml_path(const std::string& branch = "v3.20");
    static constexpr const char* kVersion = "3.20.3";

private:
    TempDir dir_;
    std::unique_ptr<HttpServer> http_;
};

// token_issuer.py: anonymous RS256 tokens granting pull on repositories matching `allow`
// (fnmatch patterns such as "lab/plain" or "lab/*").
class TokenIssuer {
public:
    explicit TokenIssuer(const std::vector<std::string>& allow);
    int port() const { return proc_->port(); }
    std::string realm() const;  // http://127.0.0.1:PORT/token
    std::string cert_path() const { return dir_ / "cert.pem"; }
    std::vector<std::string> requests() const;  // "GET /token SCOPES -> GRANTED" lines

private:
    TempDir dir_;
    std::unique_ptr<ServerProcess> proc_;
};

// docker-registry (distribution 2.8) on 127.0.0.1 with filesystem storage in a temporary
// directory. With a TokenIssuer it requires bearer tokens from it; pushes (populate,
// push_tarball) then go through an open twin serving the same storage.
class Registry {
public:
    explicit Registry(const TokenIssuer* auth = nullptr);
    int port() const { return proc_->port(); }
    std::string host() const;  // "127.0.0.1:PORT"
    std::string url() const;   // "http://127.0.0.1:PORT"
    std::string ref(const std::string& name_tag) const { return host() + "/" + name_tag; }
    const std::string& storage() const { return storage_; }
    std::string log() const;  // the registry's own log

    // Pushes lab images (mkimage.py; all when `only` is empty) and returns NAME:TAG -> the
    // manifest digest the registry serves ("sha256:HEX"); also remembered for digest().
    std::map<std::string, std::string> populate(const std::vector<std::string>& only = {});
    std::string digest(const std::string& name_tag) const;
    // A one-layer image from a rootfs tarball (the Debian fixture); returns its digest.
    std::string push_tarball(const std::string& tar, const std::string& name_tag, const std::string& cache_dir = "");
    // Rewrites the content of the image's last layer in storage; returns that layer's digest.
    std::string corrupt_layer(const std::string& name_tag);

private:
    std::string push_host() const;
    TempDir dir_;
    std::string storage_;
    std::unique_ptr<ServerProcess> proc_, push_proc_;
    std::map<std::string, std::string> digests_;
};

// A read-only registry as static files (mkimage.py static-registry) for httpd.py: lab/static:1
// (busybox, /etc/lab-release "static") and lab/huge:1 (a manifest of huge_bytes bytes).
// Build it, add files, then serve it with HttpServer(tree.root(), faults).
class StaticRegistryTree {
public:
    explicit StaticRegistryTree(long huge_bytes = 100L * 1024 * 1024);
    const std::string& root() const { return root_; }
    std::string digest(const std::string& name_tag) const;
    // URL paths of lab/static:1's layer blobs, bottom first: "/v2/lab/static/blobs/sha256:HEX".
    std::vector<std::string> layer_paths() const;

private:
    TempDir dir_;
    std::string root_;
    std::map<std::string, std::string> digests_;
};

// "NAME:TAG sha256:HEX" lines -> map.
std::map<std::string, std::string> parse_digest_lines(const std::string& out);

}  // namespace test
