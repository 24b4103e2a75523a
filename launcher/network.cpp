#include "launcher/network.hpp"
#include "launcher/state.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "launcher/error.hpp"
#include "launcher/netlink.hpp"
#include "launcher/port_proxy.hpp"

namespace srl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

uint32_t host_order(in_addr_t a) { return ntohl(a); }
in_addr_t net_order(uint32_t a) { return htonl(a); }

uint32_t mask_of(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

std::string cidr(in_addr_t net, int prefix) { return netlink::format_ipv4(net) + "/" + std::to_string(prefix); }

std::string read_text(const fs::path& p, size_t limit = 1 << 20) {
    std::ifstream in(p, std::ios::binary);
    std::string s;
    char buf[16384];
    while (in && s.size() < limit) {
        in.read(buf, static_cast<std::streamsize>(std::min(sizeof buf, limit - s.size())));
        s.append(buf, static_cast<size_t>(in.gcount()));
    }
    return s;
}

// Replaces a file's content without replacing the file: a bind mount of it (the container's
// /etc/hosts) shows the new text. Never follows a symlink.
void write_in_place(const fs::path& p, const std::string& content) {
    Fd fd(check(open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644), "open " + p.string()));
    size_t off = 0;
    while (off < content.size()) {
        ssize_t n = pwrite(fd.get(), content.data() + off, content.size() - off, static_cast<off_t>(off));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("write " + p.string());
        }
        off += static_cast<size_t>(n);
    }
    check(ftruncate(fd.get(), static_cast<off_t>(content.size())), "truncate " + p.string());
}

bool valid_ifname(const std::string& n) {
    if (n.empty() || n.size() >= IFNAMSIZ || n == "." || n == "..") return false;
    for (unsigned char c : n)
        if (c <= ' ' || c == '/' || c == ':' || c >= 127) return false;
    return true;
}

netlink::Mac random_mac() {
    netlink::Mac mac{};
    if (getrandom(mac.data(), mac.size(), 0) != static_cast<ssize_t>(mac.size())) throw_errno("getrandom");
    mac[0] = static_cast<uint8_t>((mac[0] & 0xfe) | 0x02);  // unicast, locally administered
    return mac;
}

constexpr const char* kPeerMarker = "# srlaunch: the other containers on bridge ";

}  // namespace

// ---- configuration ----

NetworkConfig::NetworkConfig() { set_subnet("10.88.0.0/16", "the default"); }

void NetworkConfig::set_subnet(const std::string& text, const std::string& where) {
    auto slash = text.find('/');
    auto bad = [&](const std::string& why) {
        throw Error("invalid subnet \"" + text + "\" in " + where + ": " + why);
    };
    if (slash == std::string::npos) bad("expected ADDRESS/PREFIX, e.g. 10.88.0.0/16");
    auto addr = netlink::parse_ipv4(text.substr(0, slash));
    std::string p = text.substr(slash + 1);
    if (!addr) bad("\"" + text.substr(0, slash) + "\" is not an IPv4 address");
    if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos) bad("bad prefix length");
    int len = std::stoi(p);
    if (len < 8 || len > 30) bad("the prefix length must be between 8 and 30");
    uint32_t a = host_order(*addr);
    if (a & ~mask_of(len))
        bad("host bits are set (did you mean " + cidr(net_order(a & mask_of(len)), len) + "?)");
    subnet = *addr;
    prefix = len;
    gateway = net_order(a + 1);
}

void NetworkConfig::set_bridge(const std::string& name, const std::string& where) {
    if (!valid_ifname(name)) throw Error("invalid bridge name \"" + name + "\" in " + where + ": 1-15 characters, no '/', ':' or space");
    bridge = name;
}

void NetworkConfig::apply(const std::string& text, const std::string& where) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error("cannot read " + where + ": " + e.what());
    }
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    std::string gw;
    for (auto& [key, value] : j.items()) {
        if (!value.is_string()) throw Error(where + ": \"" + key + "\" must be a string");
        if (key == "bridge") set_bridge(value.get<std::string>(), where);
        else if (key == "subnet") set_subnet(value.get<std::string>(), where);
        else if (key == "gateway") gw = value.get<std::string>();
        else throw Error(where + ": unknown key \"" + key + "\" (known: bridge, subnet, gateway)");
    }
    if (!gw.empty()) {
        auto g = netlink::parse_ipv4(gw);
        if (!g) throw Error(where + ": gateway \"" + gw + "\" is not an IPv4 address");
        uint32_t h = host_order(*g), net = host_order(subnet);
        if (!contains(*g) || h == net || h == host_order(broadcast()))
            throw Error(where + ": gateway " + gw + " is not a host address of " + cidr(subnet, prefix));
        gateway = *g;
    }
}

NetworkConfig NetworkConfig::load(const StorePaths& store) {
    NetworkConfig cfg;
    fs::path file = store.root / "network.json";
    if (fs::exists(file)) cfg.apply(read_text(file), file.string());
    if (const char* b = std::getenv("SRLAUNCH_BRIDGE"); b && *b) cfg.set_bridge(b, "$SRLAUNCH_BRIDGE");
    if (const char* s = std::getenv("SRLAUNCH_SUBNET"); s && *s) cfg.set_subnet(s, "$SRLAUNCH_SUBNET");
    return cfg;
}

bool NetworkConfig::contains(in_addr_t addr) const {
    return (host_order(addr) & mask_of(prefix)) == host_order(subnet);
}

in_addr_t NetworkConfig::broadcast() const { return net_order(host_order(subnet) | ~mask_of(prefix)); }

// ---- leases ----

std::optional<in_addr_t> pick_address(const NetworkConfig& cfg, const std::vector<in_addr_t>& used, in_addr_t hint) {
    uint32_t first = host_order(cfg.subnet) + 1;
    uint32_t last = host_order(cfg.broadcast()) - 1;
    uint64_t count = uint64_t{last} - first + 1;
    std::unordered_set<uint32_t> taken;
    taken.reserve(used.size() + 1);
    taken.insert(host_order(cfg.gateway));
    for (in_addr_t a : used) taken.insert(host_order(a));
    uint32_t start = cfg.contains(hint) ? host_order(hint) : first;
    if (start < first || start > last) start = first;
    // Among taken.size() + 1 consecutive candidates at least one is free, unless the range is full.
    uint64_t probes = std::min<uint64_t>(count, taken.size() + 1);
    for (uint64_t k = 0; k < probes; ++k) {
        uint32_t candidate = first + static_cast<uint32_t>((uint64_t{start - first} + k) % count);
        if (!taken.count(candidate)) return net_order(candidate);
    }
    return std::nullopt;
}

LeaseTable::LeaseTable(const StorePaths& store) : store_(store) {
    fs::path dir = store.root / "network";
    fs::create_directories(dir);
    lock_ = Fd(check(open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600), "open " + (dir / "lock").string()));
    while (flock(lock_.get(), LOCK_EX) < 0)
        if (errno != EINTR) throw_errno("lock " + (dir / "lock").string());
    fs::path file = dir / "leases.json";
    if (!fs::exists(file)) return;
    try {
        json j = json::parse(read_text(file, 64 << 20));
        for (const auto& l : j.at("leases")) {
            auto addr = netlink::parse_ipv4(l.at("address").get<std::string>());
            if (!addr) continue;
            leases_.push_back({l.at("id").get<std::string>(), l.value("name", ""), l.value("hostname", ""),
                               l.at("bridge").get<std::string>(), *addr});
        }
        if (j.contains("next"))
            for (auto& [bridge, addr] : j["next"].items())
                if (auto a = netlink::parse_ipv4(addr.get<std::string>())) next_.emplace_back(bridge, *a);
    } catch (const json::exception& e) {
        throw Error("corrupt lease file " + file.string() + ": " + e.what());
    }
}

bool LeaseTable::is_live(const Lease& l) const {
    return !l.id.empty() && l.id.find('/') == std::string::npos && fs::exists(store_.containers() / l.id);
}

std::vector<Lease> LeaseTable::live() const {
    std::vector<Lease> out;
    for (const auto& l : leases_)
        if (is_live(l)) out.push_back(l);
    return out;
}

std::optional<Lease> LeaseTable::find(const std::string& id) const {
    for (const auto& l : leases_)
        if (l.id == id) return l;
    return std::nullopt;
}

std::optional<Lease> container_lease(const StorePaths& store, const std::string& id) {
    if (!fs::exists(store.root / "network" / "leases.json")) return std::nullopt;
    return LeaseTable(store).find(id);
}

Lease LeaseTable::allocate(const NetworkConfig& cfg, const std::string& id, const std::string& name,
                           const std::string& hostname) {
    std::vector<Lease> kept;
    for (auto& l : leases_) {
        if (is_live(l)) kept.push_back(std::move(l));
        else dropped_.push_back(std::move(l));
    }
    leases_ = std::move(kept);
    for (const auto& l : leases_)
        if (l.id == id && l.bridge == cfg.bridge && cfg.contains(l.address)) return l;
    std::vector<in_addr_t> used;
    for (const auto& l : leases_)
        if (l.bridge == cfg.bridge) used.push_back(l.address);
    in_addr_t hint = 0;
    for (const auto& [b, a] : next_)
        if (b == cfg.bridge) hint = a;
    auto addr = pick_address(cfg, used, hint);
    if (!addr)
        throw Error("no free address left in " + cidr(cfg.subnet, cfg.prefix) + " on bridge " + cfg.bridge + " (" +
                    std::to_string(used.size()) + " containers hold one)");
    Lease lease{id, name, hostname, cfg.bridge, *addr};
    leases_.push_back(lease);
    in_addr_t next = net_order(host_order(*addr) + 1);
    bool found = false;
    for (auto& [b, a] : next_)
        if (b == cfg.bridge) a = next, found = true;
    if (!found) next_.emplace_back(cfg.bridge, next);
    save();
    return lease;
}

std::optional<Lease> LeaseTable::release(const std::string& id) {
    for (auto it = leases_.begin(); it != leases_.end(); ++it) {
        if (it->id != id) continue;
        Lease l = *it;
        leases_.erase(it);
        save();
        return l;
    }
    return std::nullopt;
}

void LeaseTable::save() const {
    json leases = json::array();
    for (const auto& l : leases_)
        leases.push_back({{"id", l.id}, {"name", l.name}, {"hostname", l.hostname}, {"bridge", l.bridge},
                          {"address", netlink::format_ipv4(l.address)}});
    json next = json::object();
    for (const auto& [b, a] : next_) next[b] = netlink::format_ipv4(a);
    fs::path dir = store_.root / "network";
    fs::path tmp = dir / "leases.json.tmp", file = dir / "leases.json";
    write_text_file(tmp, json{{"leases", leases}, {"next", next}}.dump(1) + "\n");
    check(rename(tmp.c_str(), file.c_str()), "rename " + tmp.string());
}

// ---- /etc/hosts ----

namespace {

std::string short_id(const std::string& id) { return id.substr(0, 12); }

// "NAME HOSTNAME SHORTID", each once, in that order, empty ones left out.
std::string names_of(const Lease& l, bool hostname_first) {
    std::vector<std::string> names;
    auto add = [&](const std::string& n) {
        if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    };
    if (hostname_first) add(l.hostname);
    add(l.name);
    add(l.hostname);
    add(short_id(l.id));
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : " ") + n;
    return out;
}

std::string peer_section(const Lease& self, const std::vector<Lease>& peers) {
    std::string s = kPeerMarker + self.bridge + " (rewritten as they come and go)\n";
    for (const auto& p : peers)
        if (p.id != self.id) s += netlink::format_ipv4(p.address) + "\t" + names_of(p, false) + "\n";
    return s;
}

}  // namespace

std::string render_hosts(const Lease& self, const std::vector<Lease>& peers) {
    return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + netlink::format_ipv4(self.address) +
           "\t" + names_of(self, true) + "\n" + peer_section(self, peers);
}

void update_peer_section(const fs::path& hosts, const Lease& self, const std::vector<Lease>& peers) {
    std::string text = read_text(hosts);
    std::string kept;
    size_t marker = text.find(kPeerMarker);
    if (marker != std::string::npos && (marker == 0 || text[marker - 1] == '\n')) {
        kept = text.substr(0, marker);
    } else {
        kept = text;
        if (!kept.empty() && kept.back() != '\n') kept += '\n';
    }
    write_in_place(hosts, kept + peer_section(self, peers));
}

std::string host_veth_name(const std::string& id) { return "srl" + id.substr(0, 12); }

// ---- joining another container ----

pid_t container_init_pid(const StorePaths& store, const std::string& ref) {
    ContainerRef c = find_container(store, ref);
    ContainerState state = read_state(c.dir);
    // Checked against the recorded start time: a pid reused since is not the container.
    if (state.status != ContainerState::Status::Running || !SupervisorLock::held_by_someone(c.dir) ||
        !open_container_init(state))
        throw Error("container " + ref + " is not running");
    return state.pid;
}

NetnsSwitch::NetnsSwitch(int netns_fd)
    : own_(check(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "open this thread's network namespace")) {
    check(setns(netns_fd, CLONE_NEWNET), "join the container's network namespace");
}

NetnsSwitch::~NetnsSwitch() {
    if (setns(own_.get(), CLONE_NEWNET) < 0) {
        std::fprintf(stderr, "srlaunch: cannot return to the host's network namespace: %s\n", std::strerror(errno));
        std::abort();
    }
}

// ---- release ----

namespace {

// Rewrites the peer section of every live container on `bridge` (after one came or went).
void refresh_peers(const StorePaths& store, const std::vector<Lease>& live, const std::string& bridge,
                   const std::string& except) {
    std::vector<Lease> on_bridge;
    for (const auto& l : live)
        if (l.bridge == bridge) on_bridge.push_back(l);
    for (const auto& l : on_bridge) {
        if (l.id == except) continue;
        fs::path hosts = store.containers() / l.id / "hosts";
        try {
            if (fs::exists(hosts)) update_peer_section(hosts, l, on_bridge);
        } catch (const std::exception&) {
            // A container that is just going away: its file does not matter any more.
        }
    }
}

}  // namespace

void release_network(const StorePaths& store, const std::string& id) noexcept {
    try {
        netlink::Socket host;
        host.delete_link(host_veth_name(id));
        LeaseTable table(store);
        if (auto lease = table.release(id)) {
            host.delete_neighbour(lease->bridge, lease->address);
            refresh_peers(store, table.live(), lease->bridge, id);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "srlaunch: releasing the network of %s: %s\n", short_id(id).c_str(), e.what());
    }
}

// ---- ContainerNetwork ----

namespace {

// The bridge with its gateway address, up; created if missing (called under the lease lock,
// so concurrent starts create it once).
void ensure_bridge(netlink::Socket& host, const NetworkConfig& cfg) {
    auto link = host.link(cfg.bridge);
    bool created = false;
    if (!link) {
        // A subnet that another interface already routes would shadow it (or be shadowed):
        // refuse rather than break the host's networking.
        for (const auto& r : host.ipv4_routes()) {
            if (r.prefix == 0) continue;
            int p = std::min(r.prefix, cfg.prefix);
            if ((host_order(r.dst) & mask_of(p)) != (host_order(cfg.subnet) & mask_of(p))) continue;
            char name[IF_NAMESIZE] = "?";
            if (r.oif) if_indextoname(static_cast<unsigned>(r.oif), name);
            throw Error("the subnet " + cidr(cfg.subnet, cfg.prefix) + " for bridge " + cfg.bridge +
                        " overlaps the route " + cidr(r.dst, r.prefix) + " on " + name +
                        "; choose another one (\"subnet\" in <store>/network.json or $SRLAUNCH_SUBNET)");
        }
        try {
            host.create_bridge(cfg.bridge, random_mac());
            created = true;
        } catch (const Error& e) {
            if (e.code() != EEXIST) throw;  // another store's launcher made it meanwhile
        }
        link = host.link(cfg.bridge);
        if (!link) throw Error("bridge " + cfg.bridge + " vanished after it was created");
    }
    if (link->kind != "bridge")
        throw Error("the network interface " + cfg.bridge + " exists and is not a bridge (it is a " +
                    (link->kind.empty() ? std::string("plain device") : link->kind) + ")");
    host.add_address(cfg.bridge, cfg.gateway, cfg.prefix, true);
    if (!(link->flags & IFF_UP)) host.set_up(cfg.bridge);
    std::string chain;
    if (created && netlink::bridged_traffic_dropped(&chain))
        std::fprintf(stderr,
                     "srlaunch: note: bridged traffic passes the IP firewall (net.bridge.bridge-nf-call-iptables = 1) "
                     "and the forward chain \"%s\" drops by default, so containers on %s may not reach each other. "
                     "Allow it, e.g. `iptables -I FORWARD -i %s -o %s -j ACCEPT`, or set "
                     "net.bridge.bridge-nf-call-iptables = 0.\n",
                     chain.c_str(), cfg.bridge.c_str(), cfg.bridge.c_str(), cfg.bridge.c_str());
}

// The host's resolv.conf without loopback nameservers, which a container on a bridge cannot
// reach.
std::string bridge_resolv_conf() {
    std::istringstream in(read_text("/etc/resolv.conf"));
    std::string out = "# srlaunch --net bridge: the host's resolv.conf without loopback nameservers\n";
    bool any = false;
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string key, value;
        words >> key >> value;
        if (key == "nameserver") {
            if (value.rfind("127.", 0) == 0 || value == "::1") continue;
            any = true;
        }
        out += line + "\n";
    }
    if (!any) out += "# no nameserver: the host's are on loopback; other containers are in /etc/hosts\n";
    return out;
}

}  // namespace

ContainerNetwork::ContainerNetwork(const ContainerSpec& spec, const StorePaths& store, fs::path dir)
    : spec_(spec), store_(store), dir_(std::move(dir)) {
    if (!spec.ports.empty() && spec.net != NetMode::Bridge) throw Error("-p/--publish needs --net bridge");
    if (spec.net == NetMode::Bridge) {
        if (geteuid() != 0) throw Error("--net bridge needs root (a rootless container has --net none or host)");
        cfg_ = NetworkConfig::load(store);
        // Bound now: a port in use fails the start before the container exists.
        if (!spec.ports.empty()) proxy_ = std::make_unique<PortProxy>(spec.ports);
    } else if (spec.net == NetMode::Container) {
        std::string id = find_container(store, spec.net_container).id;
        pid_t pid = container_init_pid(store, id);
        std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
        joined_netns_ = Fd(check(open(ns.c_str(), O_RDONLY | O_CLOEXEC), "open " + ns));
        // Its names and nameservers too, as docker shares them.
        for (const char* f : {"hosts", "resolv.conf"}) {
            fs::path theirs = store.containers() / id / f;
            if (fs::exists(theirs)) write_in_place(dir_ / f, read_text(theirs));
        }
    }
}

ContainerNetwork::~ContainerNetwork() {
    proxy_.reset();  // no new connections towards an address about to be released
    if (attached_) release_network(store_, spec_.id);
}

long ContainerNetwork::clone_flags() const {
    return spec_.net == NetMode::None || spec_.net == NetMode::Bridge ? CLONE_NEWNET : 0;
}

std::unique_ptr<NetnsSwitch> ContainerNetwork::enter_for_clone() const {
    if (!joined_netns_) return nullptr;
    return std::make_unique<NetnsSwitch>(joined_netns_.get());
}

void ContainerNetwork::attach(pid_t pid) {
    if (spec_.net != NetMode::Bridge) return;
    std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
    Fd netns(check(open(ns.c_str(), O_RDONLY | O_CLOEXEC), "open " + ns));
    netlink::Socket host;
    Lease lease;
    std::vector<Lease> stale;
    {
        LeaseTable table(store_);
        ensure_bridge(host, cfg_);
        lease = table.allocate(cfg_, spec_.id, spec_.name, spec_.hostname);
        attached_ = true;  // from here on the destructor gives everything back
        address_ = lease.address;
        std::vector<Lease> live = table.live(), peers;
        for (const auto& l : live)
            if (l.bridge == cfg_.bridge && l.id != spec_.id) peers.push_back(l);
        write_in_place(dir_ / "hosts", render_hosts(lease, peers));
        refresh_peers(store_, live, cfg_.bridge, spec_.id);
        stale = table.take_dropped();
    }
    // Leases of containers removed without release_network (their supervisor was killed).
    for (const auto& s : stale) {
        try {
            host.delete_link(host_veth_name(s.id));
        } catch (const Error&) {
        }
    }
    std::string veth = host_veth_name(spec_.id);
    host.create_veth(veth, "eth0", netns.get());  // the peer is born in the container as eth0
    host.set_master(veth, cfg_.bridge);
    host.set_up(veth);
    host.delete_neighbour(cfg_.bridge, lease.address);  // an older owner's MAC
    netlink::Socket inside = netlink::Socket::in_namespace(netns.get());
    inside.set_up("lo");
    inside.set_arp_notify("eth0");
    inside.add_address("eth0", lease.address, cfg_.prefix);
    inside.set_up("eth0");
    inside.add_default_route(cfg_.gateway);
    write_in_place(dir_ / "resolv.conf", bridge_resolv_conf());
}

void ContainerNetwork::start() {
    if (proxy_ && address_) proxy_->start(*address_);
}

}  // namespace srl
