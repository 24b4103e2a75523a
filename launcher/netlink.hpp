// rtnetlink through libmnl: the few link, address, route and neighbour operations a bridge
// network needs, each one request answered by one ACK. Errors are srl::Error with errno and
// what was being done ("create veth srl1a2b3c4d5e6f: File exists"), plus the kernel's
// extended-ACK text when it sends one. srlaunch never runs `ip`.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct mnl_socket;
struct nlmsghdr;

namespace srl::netlink {

using Mac = std::array<uint8_t, 6>;

struct LinkInfo {
    int index = 0;
    std::string name;
    std::string kind;      // IFLA_INFO_KIND: "bridge", "veth", "" for plain devices
    int master = 0;        // ifindex of the bridge it is enslaved to, 0 if none
    unsigned flags = 0;    // IFF_*
};

// An IPv4 route of the main table: dst/prefix via the link `oif`.
struct Route4 {
    in_addr_t dst = 0;  // network byte order
    int prefix = 0;
    int oif = 0;
};

// A NETLINK_ROUTE socket, bound to the network namespace it was opened in for its whole life
// (whatever namespace the thread using it is in later).
class Socket {
public:
    Socket();  // in the calling thread's network namespace
    // A socket in another network namespace (an fd of /proc/PID/ns/net): the calling thread
    // enters that namespace just long enough to open it.
    static Socket in_namespace(int netns_fd);
    ~Socket();
    Socket(Socket&& o) noexcept;
    Socket& operator=(Socket&&) = delete;
    Socket(const Socket&) = delete;

    std::optional<LinkInfo> link(const std::string& name);  // nullopt: no such device
    int index_of(const std::string& name);                  // throws when there is none

    // A new bridge, down; `mac` fixed so it does not follow its ports' addresses.
    void create_bridge(const std::string& name, const Mac& mac);
    // A veth pair: `name` here, `peer` created directly in the network namespace `peer_netns_fd`
    // (-1: here too).
    void create_veth(const std::string& name, const std::string& peer, int peer_netns_fd = -1);
    void set_master(const std::string& name, const std::string& master);
    void set_up(const std::string& name, bool up = true);
    void rename(const std::string& name, const std::string& new_name);
    void move_to_netns_pid(const std::string& name, pid_t pid);
    void move_to_netns_fd(const std::string& name, int netns_fd);
    // net.ipv4.conf.NAME.arp_notify = 1: the device announces its address (gratuitous ARP)
    // when it comes up, so neighbours drop a stale entry for a reused address.
    void set_arp_notify(const std::string& name);
    // IPv4 address/prefix on the link (broadcast derived). exist_ok: EEXIST is success.
    void add_address(const std::string& name, in_addr_t addr, int prefix, bool exist_ok = false);
    void add_default_route(in_addr_t gateway);
    // Removes a link (a veth takes its peer with it). false when there was no such device.
    bool delete_link(const std::string& name);
    // Forgets the neighbour (ARP) entry for `addr` on the link; no entry is fine.
    void delete_neighbour(const std::string& name, in_addr_t addr);
    std::vector<Route4> ipv4_routes();

private:
    explicit Socket(int fd);
    // Sends one request and waits for its ACK; throws Error(context, errno) on a NACK.
    // ignore: an errno that counts as success (returns false then).
    bool request(nlmsghdr* nlh, const std::string& context, int ignore = 0);
    // Sends a dump request, calling `cb` for each answer.
    template <class F>
    void dump(nlmsghdr* nlh, const std::string& context, F&& cb);
    void modify_link(const std::string& name, const std::string& context, void (*fill)(nlmsghdr*, const void*),
                     const void* arg);

    mnl_socket* nl_ = nullptr;
    uint32_t portid_ = 0;
    uint32_t seq_ = 0;
};

// Whether bridged IPv4 traffic passes through netfilter (br_netfilter loaded and
// net.bridge.bridge-nf-call-iptables = 1) and an nftables/iptables-nft chain on the forward
// hook drops by policy: then containers on a bridge cannot reach each other until the
// firewall allows it. Looked up over nfnetlink; false when unsure. `chain` gets
// "FAMILY TABLE CHAIN" of the first such chain.
bool bridged_traffic_dropped(std::string* chain = nullptr);

// Dotted quad, e.g. "10.88.0.2"; addresses are in network byte order throughout.
std::string format_ipv4(in_addr_t addr);
std::optional<in_addr_t> parse_ipv4(const std::string& text);

}  // namespace srl::netlink
