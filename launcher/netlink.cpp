#include "launcher/netlink.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <utility>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl::netlink {

namespace {

// Large enough for any single answer of ours (a link message with all its stats is ~3 KiB).
constexpr size_t kRecvSize = 32768;

// A request under construction: a zeroed buffer with the netlink header in place.
struct Message {
    alignas(nlmsghdr) char buf[8192] = {};
    nlmsghdr* nlh;
    Message(uint16_t type, uint16_t flags) : nlh(mnl_nlmsg_put_header(buf)) {
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
    }
    template <class T>
    T* extra() {
        return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh, sizeof(T)));
    }
};

// Calls f(attr) for each attribute in [start, end): libmnl's iteration macros assign a
// void* and do not compile as C++.
template <class F>
void for_each_attr(const void* start, const void* end, F&& f) {
    for (auto* a = static_cast<const nlattr*>(start);
         mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(end) - reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a))
        f(a);
}
template <class F>
void for_each_attr(const nlmsghdr* nlh, size_t offset, F&& f) {
    for_each_attr(mnl_nlmsg_get_payload_offset(nlh, offset), mnl_nlmsg_get_payload_tail(nlh), f);
}
template <class F>
void for_each_nested(const nlattr* nest, F&& f) {
    const char* p = static_cast<const char*>(mnl_attr_get_payload(nest));
    for_each_attr(p, p + mnl_attr_get_payload_len(nest), f);
}

// The kernel's extended-ACK message (NLMSGERR_ATTR_MSG), if it sent one.
std::string ext_ack_message(const nlmsghdr* h) {
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
    size_t off = sizeof(nlmsgerr);
    if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - sizeof(nlmsghdr);
    off = MNL_ALIGN(off);
    size_t payload_len = mnl_nlmsg_get_payload_len(h);
    if (off >= payload_len) return "";
    const char* payload = static_cast<const char*>(mnl_nlmsg_get_payload(h));
    std::string msg;
    for_each_attr(payload + off, payload + payload_len, [&](const nlattr* attr) {
        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
            msg = mnl_attr_get_str(attr);
    });
    return msg;
}

// Throws for a NACK: "CONTEXT (kernel's text): strerror".
[[noreturn]] void throw_nack(const nlmsghdr* h, int err, const std::string& context) {
    std::string ext = ext_ack_message(h);
    throw Error(ext.empty() ? context : context + " (" + ext + ")", err);
}

int open_route_socket() {
    return check(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), "open a netlink socket");
}

in_addr_t prefix_mask(int prefix) {
    return prefix == 0 ? 0 : htonl(~uint32_t{0} << (32 - prefix));
}

void put_ifname(nlmsghdr* nlh, const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) throw Error("invalid interface name \"" + name + "\"");
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
}

}  // namespace

std::string format_ipv4(in_addr_t addr) {
    char buf[INET_ADDRSTRLEN];
    in_addr a{addr};
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
}

std::optional<in_addr_t> parse_ipv4(const std::string& text) {
    in_addr a{};
    // inet_pton accepts exactly the dotted quad (no "10.1", no octal), which is what we want.
    if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
    return a.s_addr;
}

Socket::Socket() : Socket(open_route_socket()) {}

Socket::Socket(int fd) {
    nl_ = mnl_socket_fdopen(fd);
    if (!nl_) {
        int e = errno;
        close(fd);
        throw Error("open a netlink socket", e);
    }
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl_);
        throw Error("bind a netlink socket", e);
    }
    portid_ = mnl_socket_get_portid(nl_);
    int on = 1;
    // Errors say why (extended ACK), and ACKs leave out the copy of our request.
    mnl_socket_setsockopt(nl_, NETLINK_EXT_ACK, &on, sizeof on);
    mnl_socket_setsockopt(nl_, NETLINK_CAP_ACK, &on, sizeof on);
}

Socket Socket::in_namespace(int netns_fd) {
    Fd self(check(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "open this thread's network namespace"));
    check(setns(netns_fd, CLONE_NEWNET), "enter the container's network namespace");
    // A socket stays in the namespace it was created in.
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int err = errno;
    if (setns(self.get(), CLONE_NEWNET) < 0) {
        // Going on in the container's namespace would put host links into it: stop here.
        std::fprintf(stderr, "srlaunch: cannot return to the host's network namespace: %s\n", std::strerror(errno));
        std::abort();
    }
    if (fd < 0) throw Error("open a netlink socket in the container's network namespace", err);
    return Socket(fd);
}

Socket::~Socket() {
    if (nl_) mnl_socket_close(nl_);
}

Socket::Socket(Socket&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)), portid_(o.portid_), seq_(o.seq_) {}

bool Socket::request(nlmsghdr* nlh, const std::string& context, int ignore) {
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = ++seq_;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) throw_errno(context);
    auto buf = std::make_unique<char[]>(kRecvSize);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf.get(), kRecvSize);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(context);
        }
        int len = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf.get()); mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_seq != seq_ || h->nlmsg_pid != portid_) continue;
            if (h->nlmsg_type != NLMSG_ERROR) continue;
            const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
            if (err->error == 0) return true;
            if (-err->error == ignore) return false;
            throw_nack(h, -err->error, context);
        }
    }
}

namespace {

template <class F>
int call_back(const nlmsghdr* nlh, void* data) {
    return (*static_cast<F*>(data))(nlh);
}

}  // namespace

template <class F>
void Socket::dump(nlmsghdr* nlh, const std::string& context, F&& cb) {
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = ++seq_;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) throw_errno(context);
    auto buf = std::make_unique<char[]>(kRecvSize);
    auto wrapped = [&](const nlmsghdr* h) -> int {
        cb(h);
        return MNL_CB_OK;
    };
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf.get(), kRecvSize);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(context);
        }
        int r = mnl_cb_run(buf.get(), static_cast<size_t>(n), seq_, portid_, call_back<decltype(wrapped)>, &wrapped);
        if (r == MNL_CB_STOP) return;
        if (r == MNL_CB_ERROR) throw_errno(context);
    }
}

namespace {

struct LinkAttrs {
    const nlattr* tb[IFLA_MAX + 1] = {};
};

int link_attr_cb(const nlattr* attr, void* data) {
    auto* a = static_cast<LinkAttrs*>(data);
    int type = mnl_attr_get_type(attr);
    if (mnl_attr_type_valid(attr, IFLA_MAX) > 0) a->tb[type] = attr;
    return MNL_CB_OK;
}

int info_kind_cb(const nlattr* attr, void* data) {
    if (mnl_attr_get_type(attr) == IFLA_INFO_KIND && mnl_attr_validate(attr, MNL_TYPE_STRING) == 0)
        *static_cast<std::string*>(data) = std::string(static_cast<const char*>(mnl_attr_get_payload(attr)),
                                                       strnlen(static_cast<const char*>(mnl_attr_get_payload(attr)),
                                                               mnl_attr_get_payload_len(attr)));
    return MNL_CB_OK;
}

LinkInfo parse_link(const nlmsghdr* nlh) {
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    LinkInfo info;
    info.index = ifi->ifi_index;
    info.flags = ifi->ifi_flags;
    LinkAttrs a;
    mnl_attr_parse(nlh, sizeof(ifinfomsg), link_attr_cb, &a);
    if (a.tb[IFLA_IFNAME] && mnl_attr_validate(a.tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) == 0)
        info.name = mnl_attr_get_str(a.tb[IFLA_IFNAME]);
    if (a.tb[IFLA_MASTER] && mnl_attr_validate(a.tb[IFLA_MASTER], MNL_TYPE_U32) == 0)
        info.master = static_cast<int>(mnl_attr_get_u32(a.tb[IFLA_MASTER]));
    if (a.tb[IFLA_LINKINFO]) mnl_attr_parse_nested(a.tb[IFLA_LINKINFO], info_kind_cb, &info.kind);
    return info;
}

}  // namespace

std::optional<LinkInfo> Socket::link(const std::string& name) {
    Message m(RTM_GETLINK, 0);
    m.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
    put_ifname(m.nlh, name);
    mnl_attr_put_u32(m.nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    m.nlh->nlmsg_flags = NLM_F_REQUEST;  // the answer is the link itself, or an error
    m.nlh->nlmsg_seq = ++seq_;
    std::string context = "look up link " + name;
    if (mnl_socket_sendto(nl_, m.nlh, m.nlh->nlmsg_len) < 0) throw_errno(context);
    auto buf = std::make_unique<char[]>(kRecvSize);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf.get(), kRecvSize);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(context);
        }
        int len = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf.get()); mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_seq != seq_ || h->nlmsg_pid != portid_) continue;
            if (h->nlmsg_type == RTM_NEWLINK) return parse_link(h);
            if (h->nlmsg_type == NLMSG_ERROR) {
                int e = -static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h))->error;
                if (e == ENODEV) return std::nullopt;
                throw_nack(h, e, context);
            }
        }
    }
}

int Socket::index_of(const std::string& name) {
    auto l = link(name);
    if (!l) throw Error("no network interface " + name, ENODEV);
    return l->index;
}

void Socket::create_bridge(const std::string& name, const Mac& mac) {
    Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
    put_ifname(m.nlh, name);
    mnl_attr_put(m.nlh, IFLA_ADDRESS, mac.size(), mac.data());
    nlattr* info = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(m.nlh, info);
    request(m.nlh, "create bridge " + name);
}

void Socket::create_veth(const std::string& name, const std::string& peer, int peer_netns_fd) {
    Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
    put_ifname(m.nlh, name);
    nlattr* info = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, "veth");
    nlattr* data = mnl_attr_nest_start(m.nlh, IFLA_INFO_DATA);
    // VETH_INFO_PEER carries a whole link description: an ifinfomsg, then its attributes.
    nlattr* peer_attr = mnl_attr_nest_start(m.nlh, VETH_INFO_PEER);
    m.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
    put_ifname(m.nlh, peer);
    if (peer_netns_fd >= 0) mnl_attr_put_u32(m.nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
    mnl_attr_nest_end(m.nlh, peer_attr);
    mnl_attr_nest_end(m.nlh, data);
    mnl_attr_nest_end(m.nlh, info);
    request(m.nlh, "create veth " + name);
}

void Socket::modify_link(const std::string& name, const std::string& context, void (*fill)(nlmsghdr*, const void*),
                         const void* arg) {
    int index = index_of(name);
    Message m(RTM_NEWLINK, 0);
    auto* ifi = m.extra<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    fill(m.nlh, arg);
    request(m.nlh, context);
}

void Socket::set_master(const std::string& name, const std::string& master) {
    uint32_t master_index = static_cast<uint32_t>(index_of(master));
    modify_link(name, "attach " + name + " to " + master,
                [](nlmsghdr* nlh, const void* a) { mnl_attr_put_u32(nlh, IFLA_MASTER, *static_cast<const uint32_t*>(a)); },
                &master_index);
}

void Socket::set_up(const std::string& name, bool up) {
    int index = index_of(name);
    Message m(RTM_NEWLINK, 0);
    auto* ifi = m.extra<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = up ? IFF_UP : 0;
    request(m.nlh, std::string(up ? "bring up " : "bring down ") + name);
}

void Socket::rename(const std::string& name, const std::string& new_name) {
    if (new_name.empty() || new_name.size() >= IFNAMSIZ) throw Error("invalid interface name \"" + new_name + "\"");
    modify_link(name, "rename " + name + " to " + new_name,
                [](nlmsghdr* nlh, const void* a) { mnl_attr_put_strz(nlh, IFLA_IFNAME, static_cast<const char*>(a)); },
                new_name.c_str());
}

void Socket::move_to_netns_pid(const std::string& name, pid_t pid) {
    uint32_t v = static_cast<uint32_t>(pid);
    modify_link(name, "move " + name + " to the network namespace of process " + std::to_string(pid),
                [](nlmsghdr* nlh, const void* a) { mnl_attr_put_u32(nlh, IFLA_NET_NS_PID, *static_cast<const uint32_t*>(a)); },
                &v);
}

void Socket::move_to_netns_fd(const std::string& name, int netns_fd) {
    uint32_t v = static_cast<uint32_t>(netns_fd);
    modify_link(name, "move " + name + " to another network namespace",
                [](nlmsghdr* nlh, const void* a) { mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, *static_cast<const uint32_t*>(a)); },
                &v);
}

void Socket::set_arp_notify(const std::string& name) {
    modify_link(name, "set arp_notify on " + name, [](nlmsghdr* nlh, const void*) {
        nlattr* spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
        nlattr* inet = mnl_attr_nest_start(nlh, AF_INET);
        nlattr* conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
        mnl_attr_put_u32(nlh, IPV4_DEVCONF_ARP_NOTIFY, 1);
        mnl_attr_nest_end(nlh, conf);
        mnl_attr_nest_end(nlh, inet);
        mnl_attr_nest_end(nlh, spec);
    }, nullptr);
}

void Socket::add_address(const std::string& name, in_addr_t addr, int prefix, bool exist_ok) {
    int index = index_of(name);
    Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    auto* ifa = m.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<unsigned>(index);
    mnl_attr_put_u32(m.nlh, IFA_LOCAL, addr);
    mnl_attr_put_u32(m.nlh, IFA_ADDRESS, addr);
    if (prefix < 31) mnl_attr_put_u32(m.nlh, IFA_BROADCAST, addr | ~prefix_mask(prefix));
    request(m.nlh, "add address " + format_ipv4(addr) + "/" + std::to_string(prefix) + " to " + name,
            exist_ok ? EEXIST : 0);
}

void Socket::add_default_route(in_addr_t gateway) {
    Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    auto* rt = m.extra<rtmsg>();
    rt->rtm_family = AF_INET;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(m.nlh, RTA_GATEWAY, gateway);
    request(m.nlh, "add the default route via " + format_ipv4(gateway));
}

bool Socket::delete_link(const std::string& name) {
    Message m(RTM_DELLINK, 0);
    m.extra<ifinfomsg>()->ifi_family = AF_UNSPEC;
    put_ifname(m.nlh, name);
    return request(m.nlh, "delete link " + name, ENODEV);
}

void Socket::delete_neighbour(const std::string& name, in_addr_t addr) {
    auto l = link(name);
    if (!l) return;
    Message m(RTM_DELNEIGH, 0);
    auto* nd = m.extra<ndmsg>();
    nd->ndm_family = AF_INET;
    nd->ndm_ifindex = l->index;
    mnl_attr_put_u32(m.nlh, NDA_DST, addr);
    request(m.nlh, "forget the neighbour " + format_ipv4(addr) + " on " + name, ENOENT);
}

std::vector<Route4> Socket::ipv4_routes() {
    Message m(RTM_GETROUTE, 0);
    m.extra<rtmsg>()->rtm_family = AF_INET;
    std::vector<Route4> routes;
    dump(m.nlh, "list IPv4 routes", [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWROUTE) return;
        const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(h));
        if (rt->rtm_family != AF_INET || rt->rtm_type != RTN_UNICAST) return;
        Route4 r;
        r.prefix = rt->rtm_dst_len;
        uint32_t table = rt->rtm_table;
        for_each_attr(h, sizeof(rtmsg), [&](const nlattr* attr) {
            switch (mnl_attr_get_type(attr)) {
            case RTA_DST:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) r.dst = mnl_attr_get_u32(attr);
                break;
            case RTA_OIF:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) r.oif = static_cast<int>(mnl_attr_get_u32(attr));
                break;
            case RTA_TABLE:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) table = mnl_attr_get_u32(attr);
                break;
            }
        });
        if (table == RT_TABLE_MAIN) routes.push_back(r);
    });
    return routes;
}

namespace {

bool file_says_one(const char* path) {
    std::ifstream in(path);
    std::string v;
    return in >> v && v == "1";
}

// Whether nf_tables is in the kernel already: asking nfnetlink about a subsystem that is not
// would make the kernel load the module, and srlaunch should not load firewall modules.
bool nf_tables_present() {
    if (access("/sys/module/nf_tables", F_OK) == 0) return true;  // a module (or built in with parameters)
    std::ifstream modules("/proc/modules");
    if (!modules) return true;  // no loadable modules at all: built in or absent, asking loads nothing
    for (std::string line; std::getline(modules, line);)
        if (line.rfind("nf_tables ", 0) == 0) return true;
    struct utsname u {};
    uname(&u);
    std::ifstream builtin(std::string("/lib/modules/") + u.release + "/modules.builtin");
    for (std::string line; std::getline(builtin, line);)
        if (line.size() >= 13 && line.compare(line.size() - 13, 13, "/nf_tables.ko") == 0) return true;
    return false;
}

}  // namespace

bool bridged_traffic_dropped(std::string* chain_out) {
    // Without br_netfilter (or with bridge-nf-call-iptables = 0) bridged frames never meet
    // the IP firewall; without nf_tables there is no nft ruleset to ask. (iptables-legacy
    // rules are not inspected.)
    if (!file_says_one("/proc/sys/net/bridge/bridge-nf-call-iptables")) return false;
    if (!nf_tables_present()) return false;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return false;
    mnl_socket* nl = mnl_socket_fdopen(fd);
    if (!nl) {
        close(fd);
        return false;
    }
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> owner(nl, mnl_socket_close);
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return false;
    uint32_t portid = mnl_socket_get_portid(nl);
    Message m((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN, NLM_F_REQUEST | NLM_F_DUMP);
    auto* nfg = m.extra<nfgenmsg>();
    nfg->nfgen_family = NFPROTO_UNSPEC;
    nfg->version = NFNETLINK_V0;
    m.nlh->nlmsg_seq = 1;
    if (mnl_socket_sendto(nl, m.nlh, m.nlh->nlmsg_len) < 0) return false;
    struct Found {
        bool drop = false;
        std::string chain;
    } found;
    auto cb = [](const nlmsghdr* h, void* data) -> int {
        auto* f = static_cast<Found*>(data);
        const auto* g = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(h));
        if (g->nfgen_family != NFPROTO_IPV4 && g->nfgen_family != NFPROTO_INET) return MNL_CB_OK;
        std::string table, name;
        bool forward = false, drop = false;
        for_each_attr(h, sizeof(nfgenmsg), [&](const nlattr* attr) {
            switch (mnl_attr_get_type(attr)) {
            case NFTA_CHAIN_TABLE:
                if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) table = mnl_attr_get_str(attr);
                break;
            case NFTA_CHAIN_NAME:
                if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) name = mnl_attr_get_str(attr);
                break;
            case NFTA_CHAIN_POLICY:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) drop = ntohl(mnl_attr_get_u32(attr)) == NF_DROP;
                break;
            case NFTA_CHAIN_HOOK:
                for_each_nested(attr, [&](const nlattr* hook) {
                    if (mnl_attr_get_type(hook) == NFTA_HOOK_HOOKNUM && mnl_attr_validate(hook, MNL_TYPE_U32) == 0)
                        forward = ntohl(mnl_attr_get_u32(hook)) == NF_INET_FORWARD;
                });
                break;
            }
        });
        if (forward && drop && !f->drop) {
            f->drop = true;
            f->chain = std::string(g->nfgen_family == NFPROTO_INET ? "inet " : "ip ") + table + " " + name;
        }
        return MNL_CB_OK;
    };
    auto buf = std::make_unique<char[]>(kRecvSize);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf.get(), kRecvSize);
        if (n < 0) return false;
        int r = mnl_cb_run(buf.get(), static_cast<size_t>(n), 1, portid, cb, &found);
        if (r == MNL_CB_STOP) break;
        if (r == MNL_CB_ERROR) return false;
    }
    if (found.drop && chain_out) *chain_out = found.chain;
    return found.drop;
}

}  // namespace srl::netlink
