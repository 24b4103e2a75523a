// Published ports (-p): parsing, and a userspace proxy that forwards from the host's
// addresses to the container's bridge address.
//
// The proxy lives in the process that supervises the container (the launcher in the
// foreground, the monitor of a detached container), so it lives exactly as long as the
// container: construction binds every listening socket (a port in use fails the start before
// the container exists), start() begins forwarding on a thread of its own, destruction stops
// it and closes every socket.
//
// TCP: accept, connect to CONTAINER_IP:CTRPORT (non-blocking), then copy both ways through
// 64 KiB buffers in one epoll loop; a FIN from one side becomes shutdown(SHUT_WR) on the
// other once its buffer is drained, so half-closed protocols work; an error on either side
// closes both. UDP: one connected socket towards the container per client address, replies
// sent back from the published socket, dropped after `udp_idle` without traffic.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace srl {

// "[HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp]"; HOSTIP defaults to 127.0.0.1 (not every address, as
// docker would: a container is published to this machine only unless asked). Throws a one-line
// Error naming the flag's text.
PortMapping parse_port_mapping(const std::string& text);
// Parses every -p and refuses two that publish the same host address, port and protocol.
std::vector<PortMapping> parse_port_mappings(const std::vector<std::string>& texts);
// "127.0.0.1:18080->80/tcp", as `docker ps` shows ports.
std::string format_port_mapping(const PortMapping& p);

class PortProxy {
public:
    // Binds (and for TCP listens on) every mapping; throws Error naming the mapping on failure
    // ("publish 127.0.0.1:18080->80/tcp: bind: Address already in use"), leaving nothing open.
    explicit PortProxy(const std::vector<PortMapping>& mappings,
                       std::chrono::milliseconds udp_idle = std::chrono::seconds(90));
    ~PortProxy();
    PortProxy(const PortProxy&) = delete;
    PortProxy& operator=(const PortProxy&) = delete;

    // Starts forwarding to `container_ip` (network byte order) on a thread with every signal
    // blocked (signals stay with the supervising thread). Connections that arrived before wait
    // in the listen backlog.
    void start(in_addr_t container_ip);
    // The port actually bound for mapping i (differs from the mapping when it asked for 0; tests).
    uint16_t bound_port(size_t i) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace srl
