#include "launcher/port_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "launcher/error.hpp"
#include "launcher/fd.hpp"
#include "launcher/netlink.hpp"

namespace srl {

namespace {

[[noreturn]] void bad_mapping(const std::string& text, const std::string& why) {
    throw Error("invalid -p \"" + shown(text) + "\": " + why);
}

uint16_t parse_port(const std::string& text, const std::string& part) {
    if (part.empty() || part.size() > 5 || part.find_first_not_of("0123456789") != std::string::npos)
        bad_mapping(text, part.empty() ? "a port is missing (expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp])"
                                       : "\"" + shown(part) + "\" is not a port number");
    unsigned long v = std::stoul(part);
    if (v < 1 || v > 65535) bad_mapping(text, "port " + part + " is not between 1 and 65535");
    return static_cast<uint16_t>(v);
}

}  // namespace

PortMapping parse_port_mapping(const std::string& text) {
    PortMapping p;
    std::string main = text;
    if (auto slash = text.find('/'); slash != std::string::npos) {
        std::string proto = text.substr(slash + 1);
        main = text.substr(0, slash);
        if (proto == "tcp") p.proto = PortMapping::Proto::Tcp;
        else if (proto == "udp") p.proto = PortMapping::Proto::Udp;
        else bad_mapping(text, "the protocol must be tcp or udp, not \"" + shown(proto) + "\"");
    }
    if (!main.empty() && main[0] == '[') bad_mapping(text, "IPv6 host addresses are not supported");
    std::vector<std::string> parts;
    for (size_t start = 0;;) {
        size_t colon = main.find(':', start);
        parts.push_back(main.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    if (parts.size() == 3) {
        if (!netlink::parse_ipv4(parts[0])) bad_mapping(text, "\"" + shown(parts[0]) + "\" is not an IPv4 address");
        p.host_ip = parts[0];
        parts.erase(parts.begin());
    } else if (parts.size() != 2) {
        bad_mapping(text, parts.size() == 1 ? "expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] (a host port is required)"
                                            : "expected [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp]");
    }
    if (parts[0].find('-') != std::string::npos || parts[1].find('-') != std::string::npos)
        bad_mapping(text, "port ranges are not supported");
    p.host_port = parse_port(text, parts[0]);
    p.container_port = parse_port(text, parts[1]);
    return p;
}

std::vector<PortMapping> parse_port_mappings(const std::vector<std::string>& texts) {
    std::vector<PortMapping> out;
    for (size_t i = 0; i < texts.size(); ++i) {
        PortMapping p = parse_port_mapping(texts[i]);
        for (size_t j = 0; j < out.size(); ++j) {
            const PortMapping& q = out[j];
            bool any = p.host_ip == "0.0.0.0" || q.host_ip == "0.0.0.0";
            if (q.proto == p.proto && q.host_port == p.host_port && (any || q.host_ip == p.host_ip))
                throw Error("-p \"" + shown(texts[j]) + "\" and -p \"" + shown(texts[i]) + "\" both publish host port " +
                            std::to_string(p.host_port) + "/" + (p.proto == PortMapping::Proto::Tcp ? "tcp" : "udp"));
        }
        out.push_back(p);
    }
    return out;
}

std::string format_port_mapping(const PortMapping& p) {
    return p.host_ip + ":" + std::to_string(p.host_port) + "->" + std::to_string(p.container_port) +
           (p.proto == PortMapping::Proto::Tcp ? "/tcp" : "/udp");
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kBufSize = 64 * 1024;
constexpr size_t kMaxUdpFlows = 1024;

sockaddr_in make_addr(in_addr_t ip, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = ip;
    a.sin_port = htons(port);
    return a;
}

// Whatever epoll reports on: each knows what to do with its events.
struct Handler {
    virtual ~Handler() = default;
    virtual void on_event(uint32_t events) = 0;
};

}  // namespace

struct PortProxy::Impl {
    struct Listener;
    struct TcpConn;
    struct UdpFlow;

    // One end of a TCP connection as epoll sees it.
    struct TcpEnd : Handler {
        TcpConn* conn = nullptr;
        int side = 0;  // 0: the client, 1: the container
        void on_event(uint32_t events) override { conn->on_event(side, events); }
    };

    struct TcpConn {
        Impl* impl;
        Fd fd[2];
        TcpEnd end[2];
        uint32_t registered[2] = {kNone, kNone};
        bool connecting = true, closed = false;
        // dir[i]: bytes read from fd[i], not yet written to fd[1 - i].
        struct Dir {
            std::unique_ptr<char[]> buf;
            size_t off = 0, len = 0;
            bool eof = false, shut = false;
        } dir[2];
        static constexpr uint32_t kNone = ~0u;

        TcpConn(Impl* i, Fd client, Fd upstream) : impl(i) {
            fd[0] = std::move(client);
            fd[1] = std::move(upstream);
            for (int s = 0; s < 2; ++s) {
                end[s].conn = this;
                end[s].side = s;
            }
        }

        void set_events(int s, uint32_t ev) {
            if (registered[s] == ev) return;
            epoll_event e{};
            e.events = ev;
            e.data.ptr = static_cast<Handler*>(&end[s]);
            epoll_ctl(impl->epoll.get(), registered[s] == kNone ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd[s].get(), &e);
            registered[s] = ev;
        }

        void update() {
            if (connecting) {
                set_events(1, EPOLLOUT);
                return;
            }
            for (int s = 0; s < 2; ++s) {
                uint32_t ev = 0;
                if (!dir[s].eof && dir[s].len == 0) ev |= EPOLLIN;
                if (dir[1 - s].len > 0) ev |= EPOLLOUT;
                set_events(s, ev);
            }
        }

        // An error on one side resets the other (linger 0), as a direct connection would.
        void close(bool reset) {
            if (closed) return;
            closed = true;
            if (reset) {
                linger l{1, 0};
                for (auto& f : fd)
                    if (f) setsockopt(f.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
            }
            fd[0].reset();
            fd[1].reset();
            impl->closed_conns.push_back(this);
        }

        // Writes what dir[s] holds to the other side. false on a fatal error.
        bool flush(int s) {
            Dir& d = dir[s];
            while (d.len > 0) {
                ssize_t n = send(fd[1 - s].get(), d.buf.get() + d.off, d.len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    return errno == EAGAIN || errno == EWOULDBLOCK;
                }
                d.off += static_cast<size_t>(n);
                d.len -= static_cast<size_t>(n);
            }
            d.off = 0;
            if (d.eof && !d.shut) {
                shutdown(fd[1 - s].get(), SHUT_WR);
                d.shut = true;
            }
            return true;
        }

        void on_event(int s, uint32_t events) {
            if (closed) return;
            if (connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fd[1].get(), SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) return close(true);
                connecting = false;
                for (auto& d : dir) d.buf = std::make_unique<char[]>(kBufSize);
                set_events(0, 0);  // registered from now on
                return update();
            }
            if (events & EPOLLERR) return close(true);
            if ((events & (EPOLLIN | EPOLLHUP)) && !dir[s].eof && dir[s].len == 0) {
                ssize_t n = recv(fd[s].get(), dir[s].buf.get(), kBufSize, MSG_DONTWAIT);
                if (n > 0) {
                    dir[s].len = static_cast<size_t>(n);
                } else if (n == 0) {
                    dir[s].eof = true;
                } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    return close(true);
                }
            }
            if (!flush(s) || !flush(1 - s)) return close(true);
            if (dir[0].shut && dir[1].shut) return close(false);
            update();
            // A hang-up that nothing we wait for can follow (the peer reset while we had
            // nothing to send it): done.
            if ((events & EPOLLHUP) && registered[s] == 0) close(true);
        }
    };

    struct Listener : Handler {
        Impl* impl = nullptr;
        PortMapping mapping;
        Fd fd;
        uint16_t port = 0;
        bool paused = false;
        void on_event(uint32_t) override {
            if (mapping.proto == PortMapping::Proto::Tcp) impl->accept_all(*this);
            else impl->receive_datagrams(*this);
        }
    };

    struct UdpFlow : Handler {
        Impl* impl = nullptr;
        Listener* listener = nullptr;
        sockaddr_in client{};
        Fd fd;
        Clock::time_point last;
        void on_event(uint32_t) override { impl->answer_datagrams(*this); }
    };

    struct Wake : Handler {
        bool* stop;
        void on_event(uint32_t) override { *stop = true; }
    };

    std::vector<std::unique_ptr<Listener>> listeners;
    std::chrono::milliseconds udp_idle;
    Fd epoll, wake_fd;
    std::thread thread;
    in_addr_t target = 0;
    bool stop = false;
    Wake wake;
    std::unordered_map<TcpConn*, std::unique_ptr<TcpConn>> conns;
    std::vector<TcpConn*> closed_conns;
    using FlowKey = std::tuple<Listener*, in_addr_t, in_port_t>;
    std::map<FlowKey, std::unique_ptr<UdpFlow>> flows;
    bool listeners_paused = false;
    char datagram[65536];

    void add(int fd, uint32_t events, Handler* h) {
        epoll_event e{};
        e.events = events;
        e.data.ptr = h;
        check(epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &e), "epoll_ctl");
    }

    void accept_all(Listener& l) {
        for (int i = 0; i < 64; ++i) {
            Fd client(accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!client) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // Out of descriptors: stop accepting for a moment rather than spin.
                    epoll_event e{};
                    e.data.ptr = static_cast<Handler*>(&l);
                    epoll_ctl(epoll.get(), EPOLL_CTL_MOD, l.fd.get(), &e);
                    l.paused = listeners_paused = true;
                }
                return;  // EAGAIN, or a connection that went away before we took it
            }
            Fd upstream(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            if (!upstream) continue;
            sockaddr_in to = make_addr(target, l.mapping.container_port);
            if (connect(upstream.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) < 0 && errno != EINPROGRESS) {
                linger lg{1, 0};
                setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                continue;
            }
            auto conn = std::make_unique<TcpConn>(this, std::move(client), std::move(upstream));
            TcpConn* c = conn.get();
            conns.emplace(c, std::move(conn));
            c->update();
        }
    }

    void receive_datagrams(Listener& l) {
        for (int i = 0; i < 64; ++i) {
            sockaddr_in from{};
            socklen_t len = sizeof from;
            ssize_t n = recvfrom(l.fd.get(), datagram, sizeof datagram, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
            if (n < 0) return;
            FlowKey key{&l, from.sin_addr.s_addr, from.sin_port};
            auto it = flows.find(key);
            if (it == flows.end()) {
                if (flows.size() >= kMaxUdpFlows) continue;
                auto flow = std::make_unique<UdpFlow>();
                flow->impl = this;
                flow->listener = &l;
                flow->client = from;
                flow->fd = Fd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
                if (!flow->fd) continue;
                sockaddr_in to = make_addr(target, l.mapping.container_port);
                if (connect(flow->fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) continue;
                add(flow->fd.get(), EPOLLIN, flow.get());
                it = flows.emplace(key, std::move(flow)).first;
            }
            it->second->last = Clock::now();
            send(it->second->fd.get(), datagram, static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
    }

    void answer_datagrams(UdpFlow& f) {
        for (int i = 0; i < 64; ++i) {
            ssize_t n = recv(f.fd.get(), datagram, sizeof datagram, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == ECONNREFUSED) continue;  // an ICMP error for an earlier datagram
                return;
            }
            f.last = Clock::now();
            sendto(f.listener->fd.get(), datagram, static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL,
                   reinterpret_cast<const sockaddr*>(&f.client), sizeof f.client);
        }
    }

    void expire_flows() {
        auto now = Clock::now();
        for (auto it = flows.begin(); it != flows.end();) {
            if (now - it->second->last >= udp_idle) it = flows.erase(it);  // closing the fd leaves epoll
            else ++it;
        }
    }

    void resume_listeners() {
        for (auto& l : listeners) {
            if (!l->paused) continue;
            epoll_event e{};
            e.events = EPOLLIN;
            e.data.ptr = static_cast<Handler*>(l.get());
            epoll_ctl(epoll.get(), EPOLL_CTL_MOD, l->fd.get(), &e);
            l->paused = false;
        }
        listeners_paused = false;
    }

    void run() {
        epoll_event events[64];
        auto next_sweep = Clock::now() + std::min<std::chrono::milliseconds>(udp_idle, std::chrono::seconds(1));
        while (!stop) {
            int timeout = -1;
            if (listeners_paused) timeout = 100;
            if (!flows.empty()) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep - Clock::now()).count();
                left = std::max<long long>(left, 0) + 1;
                timeout = timeout < 0 ? static_cast<int>(left) : std::min(timeout, static_cast<int>(left));
            }
            int n = epoll_wait(epoll.get(), events, 64, timeout);
            if (n < 0 && errno != EINTR) break;
            for (int i = 0; i < n; ++i) static_cast<Handler*>(events[i].data.ptr)->on_event(events[i].events);
            // Freed only now: a later event of this batch may name a connection closed earlier.
            if (!closed_conns.empty()) {
                for (TcpConn* c : closed_conns) conns.erase(c);
                closed_conns.clear();
                if (listeners_paused) resume_listeners();
            }
            if (n == 0 && listeners_paused) resume_listeners();
            if (Clock::now() >= next_sweep) {
                expire_flows();
                next_sweep = Clock::now() + std::min<std::chrono::milliseconds>(udp_idle, std::chrono::seconds(1));
            }
        }
    }
};

PortProxy::PortProxy(const std::vector<PortMapping>& mappings, std::chrono::milliseconds udp_idle)
    : impl_(std::make_unique<Impl>()) {
    impl_->udp_idle = udp_idle;
    for (const auto& m : mappings) {
        auto l = std::make_unique<Impl::Listener>();
        l->impl = impl_.get();
        l->mapping = m;
        std::string what = "publish " + format_port_mapping(m);
        bool tcp = m.proto == PortMapping::Proto::Tcp;
        auto ip = netlink::parse_ipv4(m.host_ip);
        if (!ip) throw Error(what + ": not an IPv4 address");
        l->fd = Fd(check(socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), what));
        if (tcp) {
            // TIME_WAIT leftovers of an earlier container must not block the port; a live
            // listener still does.
            int on = 1;
            setsockopt(l->fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        }
        sockaddr_in a = make_addr(*ip, m.host_port);
        check(bind(l->fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), what);
        if (tcp) check(listen(l->fd.get(), 128), what);
        socklen_t len = sizeof a;
        getsockname(l->fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
        l->port = ntohs(a.sin_port);
        impl_->listeners.push_back(std::move(l));
    }
}

void PortProxy::start(in_addr_t container_ip) {
    Impl& i = *impl_;
    if (i.thread.joinable() || i.listeners.empty()) return;
    i.target = container_ip;
    i.epoll = Fd(check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
    i.wake_fd = Fd(check(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd"));
    i.wake.stop = &i.stop;
    i.add(i.wake_fd.get(), EPOLLIN, &i.wake);
    for (auto& l : i.listeners) i.add(l->fd.get(), EPOLLIN, l.get());
    // Every signal blocked from the thread's first instruction: they stay with the thread
    // that supervises the container.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
        i.thread = std::thread([&i] { i.run(); });
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw Error("start the port proxy thread");
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

uint16_t PortProxy::bound_port(size_t i) const { return impl_->listeners.at(i)->port; }

PortProxy::~PortProxy() {
    if (impl_->thread.joinable()) {
        uint64_t one = 1;
        if (write(impl_->wake_fd.get(), &one, sizeof one) < 0) {
        }
        impl_->thread.join();
    }
    // The connections first: their handlers point into the listeners and the epoll set.
    impl_->flows.clear();
    impl_->conns.clear();
}

}  // namespace srl
