// Container networking beyond `none` and `host`:
//
//   --net bridge         a veth pair per container on a host bridge (srl0 by default, created on
//                        first use with the gateway address), an address leased from the store's
//                        allocator, a default route via the gateway, /etc/hosts naming the
//                        container and the other containers on the bridge.
//   --net container:X    the netns of the running container X (the launcher enters it just for
//                        the clone, so the child is born in it, with or without a user namespace).
//   -p                   a userspace proxy (launcher/port_proxy.hpp) from the host to the
//                        container's bridge address.
//
// Configuration: <store root>/network.json, e.g. {"bridge": "srl0", "subnet": "10.88.0.0/16"}
// (optional "gateway", default the subnet's first address); $SRLAUNCH_BRIDGE and
// $SRLAUNCH_SUBNET override it (tests use a private bridge and subnet each).
//
// Leases: <store root>/network/leases.json, read and rewritten whole under flock on
// <store root>/network/lock. A lease (container id, name, hostname, bridge, address) whose
// container directory is gone is stale and its address free again. Allocation goes round the
// subnet from the address after the last one given, so a just-freed address (and the ARP
// entries naming it) is the last to be reused.
//
// What exists on the host per container: the veth `srl<first 12 hex of the id>` enslaved to
// the bridge (its peer is eth0 in the container), the lease, and lines in the other containers'
// /etc/hosts. All of it goes in ~ContainerNetwork, or in release_network() after a supervisor
// was killed. The bridge itself stays (like docker0).
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/container.hpp"
#include "launcher/fd.hpp"
#include "launcher/spec.hpp"

namespace srl {

class PortProxy;

struct NetworkConfig {
    std::string bridge = "srl0";
    in_addr_t subnet = 0;  // network byte order, host bits zero
    int prefix = 16;
    in_addr_t gateway = 0;
    NetworkConfig();  // 10.88.0.0/16, gateway 10.88.0.1
    // Applies the fields of a network.json object; throws Error naming `where` on bad values.
    void apply(const std::string& json_text, const std::string& where);
    void set_subnet(const std::string& cidr, const std::string& where);
    void set_bridge(const std::string& name, const std::string& where);
    // network.json of the store (if any), then $SRLAUNCH_BRIDGE / $SRLAUNCH_SUBNET.
    static NetworkConfig load(const StorePaths& store);
    bool contains(in_addr_t addr) const;
    in_addr_t broadcast() const;
};

struct Lease {
    std::string id, name, hostname, bridge;
    in_addr_t address = 0;
};

// The first free address at or after `hint` (wrapping), skipping the network, gateway and
// broadcast addresses and every address in `used`. nullopt when the subnet is full.
// O(used) time.
std::optional<in_addr_t> pick_address(const NetworkConfig& cfg, const std::vector<in_addr_t>& used, in_addr_t hint);

// The lease table of a store, locked (flock) from construction to destruction.
class LeaseTable {
public:
    explicit LeaseTable(const StorePaths& store);
    // Drops stale leases, gives `id` an address on cfg.bridge (the one it has, if any), saves.
    Lease allocate(const NetworkConfig& cfg, const std::string& id, const std::string& name,
                   const std::string& hostname);
    // Stale leases the last allocate() dropped (their veths may be left to delete).
    std::vector<Lease> take_dropped() { return std::move(dropped_); }
    // Removes the lease of `id` and saves; nullopt when there was none.
    std::optional<Lease> release(const std::string& id);
    // The leases whose containers still exist.
    std::vector<Lease> live() const;
    std::optional<Lease> find(const std::string& id) const;

private:
    void save() const;
    bool is_live(const Lease& l) const;
    StorePaths store_;
    Fd lock_;
    std::vector<Lease> leases_, dropped_;
    std::vector<std::pair<std::string, in_addr_t>> next_;  // bridge -> next address to try
};

// /etc/hosts of a container on a bridge: localhost, its own address with its hostname and
// name, and after a marker line the other containers (name and short id).
std::string render_hosts(const Lease& self, const std::vector<Lease>& peers);
// Rewrites only the part after the marker (what the container added above it stays), in
// place, so a bind mount of the file shows the new text.
void update_peer_section(const std::filesystem::path& hosts, const Lease& self, const std::vector<Lease>& peers);

// The lease of container `id` (its bridge and address, for ps/inspect); nullopt when it has none.
std::optional<Lease> container_lease(const StorePaths& store, const std::string& id);

// The host side veth of a container: "srl" + the first 12 hex digits of its id.
std::string host_veth_name(const std::string& id);

// The host pid of the init (srinit) of a running container, by id, unique id prefix or name:
// `pid` of <root>/containers/<id>/state.json, checked to be in the container's cgroup (so a
// stale file cannot aim at a reused pid). Throws Error when there is no such running container.
pid_t container_init_pid(const StorePaths& store, const std::string& id_or_name);

// Undoes what attach() did for container `id`: deletes its host veth, releases its lease,
// drops it from the other containers' /etc/hosts. Idempotent, never throws: for the
// supervisor's normal exit and for `rm` of a container whose supervisor was killed.
void release_network(const StorePaths& store, const std::string& id) noexcept;

// The calling thread in another network namespace for as long as this lives.
class NetnsSwitch {
public:
    explicit NetnsSwitch(int netns_fd);
    ~NetnsSwitch();
    NetnsSwitch(const NetnsSwitch&) = delete;
    NetnsSwitch& operator=(const NetnsSwitch&) = delete;

private:
    Fd own_;
};

// Everything network of one container, for run_container (and the detached monitor):
//
//   ContainerNetwork net(spec, store, dir);     // before the clone: ports bound, netns of X open
//   flags |= net.clone_flags();
//   { auto in = net.enter_for_clone(); clone... }  // --net container:X
//   net.attach(pid);                            // child blocked before "go": veth, address, hosts
//   ... "go", srinit runs ...
//   net.start();                                // published ports forward from now on
//   ~ContainerNetwork                           // after the child is reaped: all of it undone
class ContainerNetwork {
public:
    ContainerNetwork(const ContainerSpec& spec, const StorePaths& store, std::filesystem::path container_dir);
    ~ContainerNetwork();
    ContainerNetwork(const ContainerNetwork&) = delete;
    ContainerNetwork& operator=(const ContainerNetwork&) = delete;

    long clone_flags() const;  // CLONE_NEWNET for none and bridge
    std::unique_ptr<NetnsSwitch> enter_for_clone() const;  // non-null for container:X
    void attach(pid_t pid);
    void start();
    std::optional<in_addr_t> address() const { return address_; }

private:
    const ContainerSpec& spec_;
    StorePaths store_;
    NetworkConfig cfg_;
    std::filesystem::path dir_;
    std::unique_ptr<PortProxy> proxy_;
    Fd joined_netns_;
    std::optional<in_addr_t> address_;
    bool attached_ = false;
};

}  // namespace srl
