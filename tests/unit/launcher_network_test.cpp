// -p parsing, the network configuration, the lease allocator, /etc/hosts and the port proxy
// (forwarding between loopback sockets: no root, no namespaces).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/netlink.hpp"
#include "launcher/network.hpp"
#include "launcher/port_proxy.hpp"

using namespace srl;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::string& text) {
    try {
        parse_port_mapping(text);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

in_addr_t ip(const char* text) { return *netlink::parse_ipv4(text); }

struct TempStore {
    fs::path root;
    TempStore() {
        char tmpl[] = "/tmp/srl-net-unit-XXXXXX";
        root = mkdtemp(tmpl);
    }
    ~TempStore() { fs::remove_all(root); }
    StorePaths paths() const { return {root}; }
    void container(const std::string& id) { fs::create_directories(root / "containers" / id); }
    void remove(const std::string& id) { fs::remove_all(root / "containers" / id); }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("publish -p: HOSTPORT:CTRPORT with the host address and protocol optional", "[network]") {
    PortMapping p = parse_port_mapping("18080:80");
    CHECK(p.host_ip == "127.0.0.1");
    CHECK(p.host_port == 18080);
    CHECK(p.container_port == 80);
    CHECK(p.proto == PortMapping::Proto::Tcp);
    p = parse_port_mapping("0.0.0.0:53:5353/udp");
    CHECK(p.host_ip == "0.0.0.0");
    CHECK(p.host_port == 53);
    CHECK(p.container_port == 5353);
    CHECK(p.proto == PortMapping::Proto::Udp);
    CHECK(parse_port_mapping("10.1.2.3:1:65535/tcp").container_port == 65535);
    CHECK(format_port_mapping(parse_port_mapping("8080:80/udp")) == "127.0.0.1:8080->80/udp");
}

TEST_CASE("publish -p: every malformed mapping is refused with a one-line reason", "[network]") {
    CHECK(error_of("80") == "invalid -p \"80\": expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] (a host port is required)");
    CHECK(error_of("70000:80") == "invalid -p \"70000:80\": port 70000 is not between 1 and 65535");
    CHECK(error_of("0:80") == "invalid -p \"0:80\": port 0 is not between 1 and 65535");
    CHECK(error_of("80:http") == "invalid -p \"80:http\": \"http\" is not a port number");
    CHECK(error_of(":80") == "invalid -p \":80\": a port is missing (expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp])");
    CHECK(error_of("1.2.3:80:80") == "invalid -p \"1.2.3:80:80\": \"1.2.3\" is not an IPv4 address");
    CHECK(error_of("localhost:80:80") == "invalid -p \"localhost:80:80\": \"localhost\" is not an IPv4 address");
    CHECK(error_of("80:80/sctp") == "invalid -p \"80:80/sctp\": the protocol must be tcp or udp, not \"sctp\"");
    CHECK(error_of("8000-8001:80") == "invalid -p \"8000-8001:80\": port ranges are not supported");
    CHECK(error_of("[::1]:80:80") == "invalid -p \"[::1]:80:80\": IPv6 host addresses are not supported");
    CHECK(error_of("1:2:3:4") == "invalid -p \"1:2:3:4\": expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp]");
    CHECK(error_of("") != "");
    for (const auto& s : {"80:", "a:b:c", "80:80/", "-1:80", "+80:80"}) CHECK(error_of(s) != "");
}

TEST_CASE("publish -p: one host port cannot be published twice", "[network]") {
    CHECK(parse_port_mappings({"8080:80", "8080:80/udp", "127.0.0.2:8080:81"}).size() == 3);
    CHECK_THROWS_WITH(parse_port_mappings({"8080:80", "8080:81"}),
                      "-p \"8080:80\" and -p \"8080:81\" both publish host port 8080/tcp");
    CHECK_THROWS_WITH(parse_port_mappings({"0.0.0.0:53:53/udp", "127.0.0.1:53:54/udp"}),
                      "-p \"0.0.0.0:53:53/udp\" and -p \"127.0.0.1:53:54/udp\" both publish host port 53/udp");
}

TEST_CASE("network config: defaults, network.json and its errors", "[network]") {
    NetworkConfig c;
    CHECK(c.bridge == "srl0");
    CHECK(netlink::format_ipv4(c.subnet) == "10.88.0.0");
    CHECK(c.prefix == 16);
    CHECK(netlink::format_ipv4(c.gateway) == "10.88.0.1");
    CHECK(netlink::format_ipv4(c.broadcast()) == "10.88.255.255");

    c.apply(R"({"bridge": "lab0", "subnet": "172.30.4.0/24"})", "network.json");
    CHECK(c.bridge == "lab0");
    CHECK(netlink::format_ipv4(c.gateway) == "172.30.4.1");
    CHECK(c.contains(ip("172.30.4.200")));
    CHECK_FALSE(c.contains(ip("172.30.5.1")));
    c.apply(R"({"gateway": "172.30.4.254"})", "network.json");
    CHECK(netlink::format_ipv4(c.gateway) == "172.30.4.254");

    CHECK_THROWS_WITH(c.apply(R"({"subnet": "10.0.0.5/8"})", "f"),
                      "invalid subnet \"10.0.0.5/8\" in f: host bits are set (did you mean 10.0.0.0/8?)");
    CHECK_THROWS_WITH(c.apply(R"({"subnet": "10.0.0.0/31"})", "f"),
                      "invalid subnet \"10.0.0.0/31\" in f: the prefix length must be between 8 and 30");
    CHECK_THROWS_WITH(c.apply(R"({"subnet": "10.0.0.0"})", "f"),
                      "invalid subnet \"10.0.0.0\" in f: expected ADDRESS/PREFIX, e.g. 10.88.0.0/16");
    CHECK_THROWS_WITH(c.apply(R"({"bridge": "a/b"})", "f"),
                      "invalid bridge name \"a/b\" in f: 1-15 characters, no '/', ':' or space");
    CHECK_THROWS_WITH(c.apply(R"({"bridge": "sixteen-chars-xx"})", "f"),
                      "invalid bridge name \"sixteen-chars-xx\" in f: 1-15 characters, no '/', ':' or space");
    CHECK_THROWS_WITH(c.apply(R"({"mtu": "1500"})", "f"), "f: unknown key \"mtu\" (known: bridge, subnet, gateway)");
    CHECK_THROWS_WITH(c.apply(R"({"subnet": "192.168.9.0/24", "gateway": "192.168.9.255"})", "f"),
                      "f: gateway 192.168.9.255 is not a host address of 192.168.9.0/24");
    CHECK_THROWS(c.apply("{", "f"));
}

TEST_CASE("network config: the store's network.json, then the environment", "[network]") {
    TempStore s;
    std::ofstream(s.root / "network.json") << R"({"bridge": "lab1", "subnet": "10.9.0.0/16"})";
    unsetenv("SRLAUNCH_BRIDGE");
    unsetenv("SRLAUNCH_SUBNET");
    NetworkConfig c = NetworkConfig::load(s.paths());
    CHECK(c.bridge == "lab1");
    CHECK(netlink::format_ipv4(c.subnet) == "10.9.0.0");
    setenv("SRLAUNCH_BRIDGE", "lab2", 1);
    setenv("SRLAUNCH_SUBNET", "10.10.10.0/24", 1);
    c = NetworkConfig::load(s.paths());
    unsetenv("SRLAUNCH_BRIDGE");
    unsetenv("SRLAUNCH_SUBNET");
    CHECK(c.bridge == "lab2");
    CHECK(c.prefix == 24);
    CHECK(netlink::format_ipv4(c.gateway) == "10.10.10.1");
}

TEST_CASE("pick_address: round the subnet from the hint, past the gateway and what is taken", "[network]") {
    NetworkConfig c;
    c.set_subnet("10.1.2.0/29", "t");  // hosts .1-.6, .1 the gateway
    CHECK(netlink::format_ipv4(*pick_address(c, {}, 0)) == "10.1.2.2");
    CHECK(netlink::format_ipv4(*pick_address(c, {ip("10.1.2.2")}, 0)) == "10.1.2.3");
    CHECK(netlink::format_ipv4(*pick_address(c, {}, ip("10.1.2.5"))) == "10.1.2.5");
    CHECK(netlink::format_ipv4(*pick_address(c, {ip("10.1.2.6")}, ip("10.1.2.6"))) == "10.1.2.2");  // wraps, skips .1
    CHECK(netlink::format_ipv4(*pick_address(c, {}, ip("10.1.2.7"))) == "10.1.2.2");  // broadcast: not a hint
    std::vector<in_addr_t> all{ip("10.1.2.2"), ip("10.1.2.3"), ip("10.1.2.4"), ip("10.1.2.5"), ip("10.1.2.6")};
    CHECK_FALSE(pick_address(c, all, 0));
    all.erase(all.begin() + 2);
    CHECK(netlink::format_ipv4(*pick_address(c, all, ip("10.1.2.5"))) == "10.1.2.4");
}

TEST_CASE("leases: distinct addresses, stale ones reused, released once", "[network]") {
    TempStore s;
    NetworkConfig c;
    c.set_subnet("10.1.2.0/29", "t");
    c.bridge = "b0";
    std::set<std::string> got;
    for (int i = 0; i < 5; ++i) {
        std::string id = std::string(64, static_cast<char>('a' + i));
        s.container(id);
        Lease l = LeaseTable(s.paths()).allocate(c, id, "n" + std::to_string(i), "h");
        got.insert(netlink::format_ipv4(l.address));
        // Asking again gives the same one.
        CHECK(LeaseTable(s.paths()).allocate(c, id, "", "").address == l.address);
    }
    CHECK(got.size() == 5);
    CHECK_FALSE(got.count("10.1.2.1"));
    std::string sixth(64, 'z');
    s.container(sixth);
    CHECK_THROWS_WITH(LeaseTable(s.paths()).allocate(c, sixth, "", ""),
                      "no free address left in 10.1.2.0/29 on bridge b0 (5 containers hold one)");
    // A container whose dir is gone (its supervisor was killed, then it was removed) holds nothing.
    s.remove(std::string(64, 'c'));
    Lease l = LeaseTable(s.paths()).allocate(c, sixth, "", "");
    CHECK(netlink::format_ipv4(l.address) == "10.1.2.4");
    {
        LeaseTable t(s.paths());
        CHECK(t.take_dropped().empty());
        CHECK(t.live().size() == 5);
        CHECK(t.find(sixth)->address == l.address);
        CHECK(t.release(sixth));
        CHECK_FALSE(t.release(sixth));
        CHECK(t.live().size() == 4);
    }
    CHECK(container_lease(s.paths(), std::string(64, 'a'))->name == "n0");
    CHECK_FALSE(container_lease(s.paths(), sixth));
    // Another bridge has its own addresses.
    NetworkConfig other = c;
    other.bridge = "b1";
    CHECK(netlink::format_ipv4(LeaseTable(s.paths()).allocate(other, sixth, "", "").address) == "10.1.2.2");
}

TEST_CASE("leases: 40 processes allocating at once all get different addresses", "[network]") {
    TempStore s;
    NetworkConfig c;
    c.set_subnet("10.77.0.0/24", "t");
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) {
        char buf[65];
        std::snprintf(buf, sizeof buf, "%064d", i);
        ids.push_back(buf);
        s.container(buf);
    }
    std::vector<pid_t> kids;
    for (const auto& id : ids) {
        pid_t p = fork();
        if (p == 0) {
            try {
                LeaseTable(s.paths()).allocate(c, id, "", "");
                _exit(0);
            } catch (...) {
                _exit(1);
            }
        }
        kids.push_back(p);
    }
    for (pid_t p : kids) {
        int st = 0;
        waitpid(p, &st, 0);
        CHECK(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == 0);
    }
    std::set<in_addr_t> addrs;
    for (const auto& l : LeaseTable(s.paths()).live()) addrs.insert(l.address);
    CHECK(addrs.size() == 40);
}

TEST_CASE("/etc/hosts: own address and names, then the other containers, rewritten in place", "[network]") {
    TempStore s;
    Lease self{std::string(64, 'a'), "web", "webhost", "srl0", ip("10.88.0.2")};
    Lease db{std::string(64, 'b'), "db", std::string(12, 'b'), "srl0", ip("10.88.0.3")};
    Lease anon{std::string(64, 'c'), "", std::string(12, 'c'), "srl0", ip("10.88.0.4")};
    std::string text = render_hosts(self, {db, anon, self});
    CHECK(text ==
          "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
          "10.88.0.2\twebhost web aaaaaaaaaaaa\n"
          "# srlaunch: the other containers on bridge srl0 (rewritten as they come and go)\n"
          "10.88.0.3\tdb bbbbbbbbbbbb\n"
          "10.88.0.4\tcccccccccccc\n");
    fs::path hosts = s.root / "hosts";
    std::ofstream(hosts) << text;
    // What the container wrote above the marker stays; the inode too (a bind mount sees it).
    std::string mine = "127.0.0.1\tlocalhost\n10.88.0.2\twebhost\n1.2.3.4\tadded-inside\n";
    std::ofstream(hosts) << mine << text.substr(text.find("# srlaunch"));
    struct stat st1 {}, st2 {};
    stat(hosts.c_str(), &st1);
    update_peer_section(hosts, self, {anon});
    stat(hosts.c_str(), &st2);
    CHECK(st1.st_ino == st2.st_ino);
    CHECK(slurp(hosts) == mine +
                              "# srlaunch: the other containers on bridge srl0 (rewritten as they come and go)\n"
                              "10.88.0.4\tcccccccccccc\n");
    // A file without the marker gets it appended.
    std::ofstream(hosts) << "127.0.0.1 localhost";
    update_peer_section(hosts, self, {db});
    CHECK(slurp(hosts) == "127.0.0.1 localhost\n# srlaunch: the other containers on bridge srl0 (rewritten as they come and go)\n"
                          "10.88.0.3\tdb bbbbbbbbbbbb\n");
    CHECK(host_veth_name(std::string(64, 'a')) == "srlaaaaaaaaaaaa");
    CHECK(host_veth_name(std::string(64, 'a')).size() == 15);
}

namespace {

Fd tcp_listener(uint16_t* port) {
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd.get(), 8) == 0);
    socklen_t len = sizeof a;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    *port = ntohs(a.sin_port);
    return fd;
}

Fd connect_to(uint16_t port, int type = SOCK_STREAM) {
    Fd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
}

void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(fd, s.data() + off, s.size() - off);
        REQUIRE(n > 0);
        off += static_cast<size_t>(n);
    }
}

PortMapping mapping(uint16_t ctr_port, PortMapping::Proto proto = PortMapping::Proto::Tcp) {
    PortMapping m;
    m.host_port = 0;  // any free port: bound_port() tells
    m.container_port = ctr_port;
    m.proto = proto;
    return m;
}

}  // namespace

TEST_CASE("port proxy: TCP both ways, with half-close, many bytes, several clients", "[network]") {
    uint16_t server_port = 0;
    Fd server = tcp_listener(&server_port);
    // The "container": reads everything until the client's FIN, answers with its size and the
    // data reversed in case, then closes.
    std::thread t([&] {
        for (int i = 0; i < 3; ++i) {
            Fd c(accept(server.get(), nullptr, nullptr));
            std::string got = read_all(c.get());
            std::string reply = std::to_string(got.size()) + ":" + got;
            for (auto& ch : reply) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            write_all(c.get(), reply);
        }
    });
    PortProxy proxy({mapping(server_port)});
    proxy.start(htonl(INADDR_LOOPBACK));
    uint16_t port = proxy.bound_port(0);
    for (size_t size : {size_t{5}, size_t{3'000'000}, size_t{0}}) {
        std::string msg(size, 'x');
        if (size == 5) msg = "hello";
        Fd c = connect_to(port);
        std::thread writer([&] {
            write_all(c.get(), msg);
            shutdown(c.get(), SHUT_WR);  // the server answers only after this
        });
        std::string reply = read_all(c.get());
        writer.join();
        std::string expect = std::to_string(size) + ":" + msg;
        for (auto& ch : expect) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        CHECK(reply.size() == expect.size());
        CHECK(reply == expect);
    }
    t.join();
}

TEST_CASE("port proxy: a refused connection to the container closes the client", "[network]") {
    uint16_t dead_port = 0;
    { Fd gone = tcp_listener(&dead_port); }
    PortProxy proxy({mapping(dead_port)});
    proxy.start(htonl(INADDR_LOOPBACK));
    Fd c = connect_to(proxy.bound_port(0));
    char b;
    CHECK(read(c.get(), &b, 1) <= 0);
}

TEST_CASE("port proxy: UDP answers go back to each client, idle flows expire", "[network]") {
    Fd server(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(server.get(), reinterpret_cast<sockaddr*>(&a), &len);
    std::vector<uint16_t> sources;
    std::thread t([&] {
        for (int i = 0; i < 3; ++i) {
            char buf[512];
            sockaddr_in from{};
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(server.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
            if (n < 0) return;
            sources.push_back(ntohs(from.sin_port));
            std::string reply = "re:" + std::string(buf, static_cast<size_t>(n));
            sendto(server.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
        }
    });
    PortProxy proxy({mapping(ntohs(a.sin_port), PortMapping::Proto::Udp)}, std::chrono::milliseconds(200));
    proxy.start(htonl(INADDR_LOOPBACK));
    uint16_t port = proxy.bound_port(0);
    Fd c1 = connect_to(port, SOCK_DGRAM), c2 = connect_to(port, SOCK_DGRAM);
    char buf[512];
    write_all(c1.get(), "one");
    CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(0, read(c1.get(), buf, sizeof buf)))) == "re:one");
    write_all(c2.get(), "two");
    CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(0, read(c2.get(), buf, sizeof buf)))) == "re:two");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    write_all(c1.get(), "three");
    CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(0, read(c1.get(), buf, sizeof buf)))) == "re:three");
    t.join();
    REQUIRE(sources.size() == 3);
    CHECK(sources[0] != sources[1]);  // one upstream socket per client
    CHECK(sources[2] != sources[0]);  // c1's first flow expired: a new one
}

TEST_CASE("port proxy: a port in use fails at construction", "[network]") {
    uint16_t taken = 0;
    Fd l = tcp_listener(&taken);
    PortMapping m = mapping(80);
    m.host_port = taken;
    CHECK_THROWS_WITH(PortProxy({mapping(81), m}),
                      "publish 127.0.0.1:" + std::to_string(taken) + "->80/tcp: Address already in use");
}
