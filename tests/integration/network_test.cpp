// --net bridge, --net container:X and -p: real containers on a private bridge and subnet per
// test (claimed under /tmp/srlaunch-net-tests so parallel tests, of this checkout or another,
// never share one), published on host ports free when the test starts, traffic only between the
// test, loopback and the containers' namespaces. srl::netlink alone: netlink_test.cpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/bridge_net.hpp"
#include "../support/proc.hpp"

using namespace test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Stops a foreground srlaunch the way Ctrl-C would, and waits for it.
int stop(Child& c) {
    kill(c.pid(), SIGTERM);
    return c.wait(30s);
}

int connect_tcp(const std::string& ip, uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
}

// A request/answer over TCP from the host, retried while the service is not listening yet.
std::string tcp_exchange(const std::string& ip, uint16_t port, const std::string& request,
                         std::chrono::milliseconds timeout = 60s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        int fd = connect_tcp(ip, port);
        if (fd >= 0) {
            ::write(fd, request.data(), request.size());
            shutdown(fd, SHUT_WR);
            std::string reply = read_all(fd);
            close(fd);
            if (!reply.empty()) return reply;
        }
        std::this_thread::sleep_for(100ms);
    }
    return "";
}

// A port of 127.0.0.1 nobody uses now (the kernel's pick for port 0), for a test to publish:
// fixed ports may be taken by anything else on this host, other tests' containers included.
uint16_t free_port(int type = SOCK_STREAM) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

bool port_free(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

// A client loop for inside a container: send MSG to HOST:PORT until it is taken.
std::string nc_send(const std::string& msg, const std::string& host, int port) {
    return "(for i in $(seq 100); do echo " + msg + " | nc " + host + " " + std::to_string(port) +
           " && exit 0; sleep 0.1; done; exit 1)";
}

}  // namespace

TEST_CASE("bridge: two containers exchange TCP messages by address and by name, the host reaches them", "[net]") {
    BridgeNet b;
    // srv takes three connections, then shows whether the named client was in its /etc/hosts
    // (added in place when cli joined).
    Child srv(b.run_argv({"--name", "srv"},
                         {"sh", "-c",
                          "for i in 1 2 3; do nc -l -p 5000; done; grep -q '[[:space:]]cli ' /etc/hosts && echo saw-cli; "
                          "ip -4 -o addr show eth0; ip route"}));
    std::string addr = b.address_of("srv");
    CHECK(addr.rfind(b.net, 0) == 0);

    auto by_addr = run(b.run_argv({}, {"sh", "-c", nc_send("by-address", addr, 5000)}));
    INFO(by_addr.err);
    CHECK(by_addr.status == 0);
    // The host reaches the container through the bridge's address.
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; ++i) {
        fd = connect_tcp(addr, 5000);
        if (fd < 0) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(fd >= 0);
    ::write(fd, "from-host\n", 10);
    close(fd);
    // By name, from a container started after srv; srv checks its /etc/hosts meanwhile.
    auto by_name = run(b.run_argv({"--name", "cli"}, {"sh", "-c", nc_send("by-name", "srv", 5000) + " && sleep 2"}));
    INFO(by_name.err);
    CHECK(by_name.status == 0);

    CHECK(srv.wait(30s) == 0);
    INFO(srv.out() << srv.err());
    CHECK(srv.out().find("by-address\nfrom-host\nby-name\nsaw-cli\n") == 0);
    CHECK(srv.out().find("inet " + addr + "/24") != std::string::npos);
    CHECK(srv.out().find("default via " + b.net + "1 dev eth0") != std::string::npos);
    b.expect_clean();
}

TEST_CASE("bridge: /etc/hosts names the container and its peers, lo and eth0 are up", "[net]") {
    BridgeNet b;
    Child peer(b.run_argv({"--name", "peer"}, {"sleep", "30"}));
    std::string peer_addr = b.address_of("peer");
    auto r = run(b.run_argv({"--name", "me", "--hostname", "box"},
                                {"sh", "-c", "cat /etc/hosts; ip -o link show lo; ip -o link show eth0; ping -c1 -W2 peer"}));
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find("127.0.0.1\tlocalhost\n") == 0);
    CHECK(std::regex_search(r.out, std::regex(b.net + R"(\d+\tbox me [0-9a-f]{12}\n)")));
    CHECK(std::regex_search(r.out, std::regex(peer_addr + R"(\tpeer [0-9a-f]{12}\n)")));
    CHECK(r.out.find("lo: <LOOPBACK,UP,LOWER_UP>") != std::string::npos);
    CHECK(r.out.find("eth0@") != std::string::npos);
    CHECK(r.out.find("1 packets received") != std::string::npos);
    // The host pings the peer too.
    CHECK(run({"busybox", "ping", "-c1", "-W2", peer_addr}).status == 0);
    CHECK(stop(peer) == 143);
    b.expect_clean();
}

TEST_CASE("publish -p HOSTPORT:80 publishes a busybox httpd on 127.0.0.1:HOSTPORT, and only while it runs", "[net]") {
    BridgeNet b;
    const uint16_t port = free_port();
    const std::string published = std::to_string(port) + ":80";
    // Alpine's busybox has no httpd applet (that is busybox-extras): the host's static busybox.
    require_program("busybox");
    std::string busybox = trim(run({"sh", "-c", "readlink -f \"$(command -v busybox)\""}).out);
    Child web(b.run_argv({"-p", published, "-v", busybox + ":/busybox:ro"},
                         {"sh", "-c", "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec /busybox httpd -f -p 80 -h /www"}));
    std::string reply = tcp_exchange("127.0.0.1", port, "GET / HTTP/1.0\r\n\r\n");
    INFO(reply << web.err());
    CHECK(std::regex_search(reply, std::regex(R"(^HTTP/1\.[01] 200 OK\r\n)")));
    CHECK(reply.find("\r\n\r\nhello-from-httpd\n") != std::string::npos);
    // Not on every address: only loopback was asked for.
    CHECK(connect_tcp(b.net + "1", port) < 0);
    // Several clients at once.
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 0; i < 8; ++i)
        clients.emplace_back([&] {
            if (tcp_exchange("127.0.0.1", port, "GET / HTTP/1.0\r\n\r\n").find("hello-from-httpd") != std::string::npos) ++ok;
        });
    for (auto& t : clients) t.join();
    CHECK(ok == 8);
    stop(web);
    CHECK(port_free(port));
    b.expect_clean();
}

TEST_CASE("publish -p HOSTIP:HOSTPORT:CTRPORT/udp forwards datagrams both ways", "[net]") {
    BridgeNet b;
    const uint16_t port = free_port(SOCK_DGRAM);
    // nc -u -l answers the first sender with its stdin.
    Child udp(b.run_argv({"--name", "u", "-p", "127.0.0.1:" + std::to_string(port) + ":53/udp"},
                         {"sh", "-c", "sleep 30 | (echo pong; cat) | nc -u -l -p 53"}));
    b.address_of("u");
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    std::string got;
    for (int i = 0; i < 100 && got.empty(); ++i) {
        ::write(fd, "ping\n", 5);
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 200) == 1) {
            char buf[64];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0) got.assign(buf, static_cast<size_t>(n));
        }
    }
    close(fd);
    CHECK(got == "pong\n");
    CHECK(udp.read_until("ping"));
    stop(udp);
    b.expect_clean();
}

TEST_CASE("network --net container:NAME shares the network namespace of a running container", "[net]") {
    BridgeNet b;
    Child first(b.run_argv({"--name", "first"}, {"sh", "-c", "nc -l -p 7000; readlink /proc/self/ns/net"}));
    std::string addr = b.address_of("first");
    auto second = b.s.in_alpine({"--net", "container:first"},
                                {"sh", "-c", "ip -4 -o addr show eth0; readlink /proc/self/ns/net; " + nc_send("via-lo", "127.0.0.1", 7000)});
    INFO(second.out << second.err);
    CHECK(second.status == 0);
    CHECK(second.out.find("inet " + addr + "/24") != std::string::npos);
    CHECK(first.wait(30s) == 0);
    CHECK(first.out().find("via-lo\n") == 0);
    std::string first_ns = first.out().substr(first.out().find("net:"));
    CHECK(second.out.find(first_ns) != std::string::npos);
    auto missing = b.s.in_alpine({"--net", "container:nosuch"}, {"true"});
    CHECK(missing.status == 125);
    CHECK(missing.err == "srlaunch: no such container: nosuch\n");
    b.expect_clean();
}

TEST_CASE("bad -p and --net are refused before anything exists, a port in use leaves nothing", "[net]") {
    BridgeNet b;
    struct Case {
        std::vector<std::string> flags;
        std::string err;
    } cases[] = {
        {{"--net", "bridge", "-p", "80"},
         "srlaunch: invalid -p \"80\": expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] (a host port is required)\n"},
        {{"--net", "bridge", "-p", "99999:80"}, "srlaunch: invalid -p \"99999:80\": port 99999 is not between 1 and 65535\n"},
        {{"--net", "bridge", "-p", "8080:80/sctp"},
         "srlaunch: invalid -p \"8080:80/sctp\": the protocol must be tcp or udp, not \"sctp\"\n"},
        {{"-p", "8080:80"}, "srlaunch: -p/--publish needs --net bridge\n"},
        {{"--net", "overlay"}, "srlaunch: unsupported --net \"overlay\": use none, host, bridge or container:ID|NAME\n"},
    };
    for (const auto& c : cases) {
        auto r = b.s.in_alpine(c.flags, {"true"});
        CHECK(r.status == 125);
        CHECK(r.err == c.err);
    }
    // A port somebody else listens on.
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(l, 1) == 0);
    socklen_t len = sizeof a;
    getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    std::string port = std::to_string(ntohs(a.sin_port));
    // The first mapping, bound before the second fails, is let go again.
    const uint16_t first = free_port();
    auto r = b.s.in_alpine({"--net", "bridge", "-p", std::to_string(first) + ":81", "-p", port + ":80"}, {"true"});
    close(l);
    CHECK(r.status == 125);
    CHECK(r.err == "srlaunch: publish 127.0.0.1:" + port + "->80/tcp: Address already in use\n");
    CHECK(port_free(first));
    b.expect_clean();
}

TEST_CASE("bridge: 30 containers started at once get 30 addresses and leave nothing behind", "[net]") {
    BridgeNet b;
    std::vector<std::unique_ptr<Child>> kids;
    for (int i = 0; i < 30; ++i)
        kids.push_back(std::make_unique<Child>(
            b.run_argv({"--name", "c" + std::to_string(i)}, {"sh", "-c", "ip -4 -o addr show eth0; sleep 2"})));
    std::set<std::string> addrs;
    for (auto& k : kids) {
        CHECK(k->wait(120s) == 0);
        std::smatch m;
        std::string out = k->out();
        INFO(out << k->err());
        REQUIRE(std::regex_search(out, m, std::regex(R"(inet (\S+)/24)")));
        addrs.insert(m[1]);
    }
    CHECK(addrs.size() == 30);
    b.expect_clean();
}

TEST_CASE("a firewall that drops bridged traffic gets a hint when the bridge is made (in a netns of the test's own)", "[net]") {
    require_program("unshare");
    require_program("nft");
    AlpineStore s;
    write_file(s.path("network.json"), R"({"bridge": "srlfw0", "subnet": "10.213.0.0/24"})");
    std::string srl = std::string(SRLAUNCH_PATH) + " --root " + s.dir.path() + " run --rm --net bridge alpine:3.20 true";
    // Everything below happens in a network namespace that exists only for this command.
    auto r = run({"unshare", "-n", "sh", "-c",
                  "ip link set lo up && nft add table ip t && "
                  "nft add chain ip t fw '{ type filter hook forward priority 0; policy drop; }' && " +
                      srl + " && echo second >&2 && " + srl});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err ==
          "srlaunch: note: bridged traffic passes the IP firewall (net.bridge.bridge-nf-call-iptables = 1) and the "
          "forward chain \"ip t fw\" drops by default, so containers on srlfw0 may not reach each other. Allow it, "
          "e.g. `iptables -I FORWARD -i srlfw0 -o srlfw0 -j ACCEPT`, or set net.bridge.bridge-nf-call-iptables = 0.\n"
          "second\n");
}

namespace {
// `run -d ARGS...` on the bridge: the id it printed.
// `run -d --net bridge FLAGS... alpine:3.20 CMD...`, kept after it ends (no --rm).
std::vector<std::string> detached_argv(const BridgeNet& b, std::vector<std::string> flags, const std::vector<std::string>& cmd) {
    flags.insert(flags.begin(), {"run", "-d", "--net", "bridge"});
    flags.emplace_back("alpine:3.20");
    flags.insert(flags.end(), cmd.begin(), cmd.end());
    return b.s.argv(flags);
}
std::string detach_on(const BridgeNet& b, std::vector<std::string> flags, std::vector<std::string> cmd) {
    auto r = run(detached_argv(b, flags, cmd));
    INFO(r.err);
    REQUIRE(r.status == 0);
    return r.out.substr(0, r.out.find('\n'));
}
bool gone(pid_t pid) { return kill(pid, 0) < 0 || process_state(pid) == 'Z'; }
}  // namespace

TEST_CASE("run -d -p: the monitor publishes the port for the container's lifetime, ps and inspect show it", "[net][lifecycle]") {
    BridgeNet b;
    const uint16_t port = free_port();
    std::string busybox = run({"sh", "-c", "command -v busybox"}).out;
    busybox = busybox.substr(0, busybox.find('\n'));
    TempDir www;
    write_file(www / "index.html", "hello-detached\n");
    std::string id = detach_on(b, {"--name", "web", "-p", std::to_string(port) + ":80", "-v", busybox + ":/busybox:ro", "-v", www.path() + ":/www:ro"},
                               {"/busybox", "httpd", "-f", "-p", "80", "-h", "/www"});
    CHECK(tcp_exchange("127.0.0.1", port, "GET / HTTP/1.0\r\n\r\n").find("hello-detached") != std::string::npos);
    CHECK(b.s.srl({"ps"}).out.find("127.0.0.1:" + std::to_string(port) + "->80/tcp") != std::string::npos);
    json info = json::parse(b.s.srl({"inspect", "web"}).out).at(0);
    CHECK(info["NetworkSettings"]["mode"] == "bridge");
    CHECK(info["NetworkSettings"]["address"].get<std::string>().rfind(b.net, 0) == 0);
    REQUIRE(b.s.srl({"stop", "web"}).status == 0);
    CHECK(port_free(port));
    auto removed = b.s.srl({"rm", "web"});
    INFO(removed.err);
    REQUIRE(removed.status == 0);
    b.expect_clean();
}

TEST_CASE("load: 50 detached containers at once on the bridge, listed, stopped, removed, nothing left", "[net][lifecycle][load]") {
    BridgeNet b;
    constexpr int kCount = 50;
    std::vector<std::unique_ptr<Child>> starts;
    for (int i = 0; i < kCount; ++i)
        starts.push_back(std::make_unique<Child>(
            detached_argv(b, {"--name", "load" + std::to_string(i), "-m", "32m"}, {"sleep", "600"})));
    std::vector<std::string> ids;
    for (auto& c : starts) {
        int status = c->wait(180s);
        INFO(c->err());
        CHECK(status == 0);
        ids.push_back(c->out().substr(0, c->out().find('\n')));
    }
    auto ps = b.s.srl({"ps", "--format", "json"});
    std::set<std::string> addresses;
    size_t running = 0;
    std::istringstream rows(ps.out);
    for (std::string line; std::getline(rows, line);)
        if (json::parse(line)["Status"] == "running") ++running;
    CHECK(running == kCount);
    std::vector<pid_t> monitors, inits;
    for (const auto& id : ids) {
        json info = json::parse(b.s.srl({"inspect", id}).out).at(0);
        monitors.push_back(info["State"]["MonitorPid"]);
        inits.push_back(info["State"]["Pid"]);
        addresses.insert(info["NetworkSettings"].value("address", ""));
    }
    CHECK(addresses.size() == kCount);  // no two share one
    CHECK(b.leases().size() == kCount);
    std::vector<std::string> stop{"stop", "-t", "1"};
    stop.insert(stop.end(), ids.begin(), ids.end());
    auto stopped = b.s.srl(stop);
    INFO(stopped.err);
    CHECK(stopped.status == 0);
    std::vector<std::string> rm{"rm"};
    rm.insert(rm.end(), ids.begin(), ids.end());
    auto removed = b.s.srl(rm);
    INFO(removed.err);
    CHECK(removed.status == 0);
    std::set<std::string> veths = srl_veths();
    for (const auto& id : ids) CHECK(veths.count("srl" + id.substr(0, 12)) == 0);
    for (pid_t p : monitors) CHECK(gone(p));
    for (pid_t p : inits) CHECK(gone(p));
    std::string cgroups = run({"find", "/sys/fs/cgroup", "-type", "d", "-path", "*/srlaunch/*"}).out;
    for (const auto& id : ids) CHECK(cgroups.find(id) == std::string::npos);
    std::string mounts = read_file("/proc/self/mountinfo");
    for (const auto& id : ids) CHECK(mounts.find(id) == std::string::npos);
    // Of the subnet, the host holds the bridge's gateway address alone.
    std::string host_addresses = run({"ip", "-o", "-4", "addr", "show"}).out;
    for (const auto& a : addresses) CHECK(host_addresses.find(a + "/") == std::string::npos);
    CHECK(count_entries(b.s.path("names")) == 0);
    b.expect_clean();
}
