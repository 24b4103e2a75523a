// srl::netlink (launcher/netlink.hpp) on its own: every operation srlaunch's bridge networking
// uses, in network namespaces the test makes and drops, so nothing touches the host's links.
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "../support/proc.hpp"
#include "launcher/netlink.hpp"

using namespace test;

namespace {

// A process parked in a network namespace of its own, for as long as this lives.
struct ScratchNetns {
    pid_t pid = -1;
    int fd = -1;
    ScratchNetns() {
        int ready[2];
        REQUIRE(pipe(ready) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            if (unshare(CLONE_NEWNET) < 0) _exit(1);
            ::write(ready[1], "x", 1);
            pause();
            _exit(0);
        }
        close(ready[1]);
        char c;
        REQUIRE(read(ready[0], &c, 1) == 1);
        close(ready[0]);
        fd = open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~ScratchNetns() {
        close(fd);
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

}  // namespace

TEST_CASE("netlink: every operation, in network namespaces the test made", "[net]") {
    require_root();
    using namespace srl::netlink;
    ScratchNetns a, b;
    Socket in_a = Socket::in_namespace(a.fd);
    Socket in_b = Socket::in_namespace(b.fd);
    CHECK_FALSE(in_a.link("br0"));
    in_a.create_bridge("br0", Mac{0x02, 1, 2, 3, 4, 5});
    auto br = in_a.link("br0");
    REQUIRE(br);
    CHECK(br->kind == "bridge");
    CHECK_THROWS_WITH(in_a.create_bridge("br0", Mac{0x02, 1, 2, 3, 4, 5}), Catch::Matchers::StartsWith("create bridge br0") && Catch::Matchers::EndsWith(": File exists"));
    // A pair in a, its peer straight into b; then a second pair moved over by fd and by pid.
    in_a.create_veth("va", "vb", b.fd);
    CHECK(in_a.link("va")->kind == "veth");
    CHECK_FALSE(in_a.link("vb"));
    CHECK(in_b.link("vb"));
    CHECK_THROWS_WITH(in_a.create_veth("va", "vz"), Catch::Matchers::StartsWith("create veth va") && Catch::Matchers::EndsWith(": File exists"));
    in_a.create_veth("tmp1", "tmp2");
    in_a.rename("tmp2", "moved");
    in_a.move_to_netns_fd("moved", b.fd);
    in_a.move_to_netns_pid("tmp1", b.pid);
    CHECK(in_b.link("moved"));
    CHECK(in_b.link("tmp1"));
    CHECK_FALSE(in_a.link("tmp1"));
    in_a.set_master("va", "br0");
    CHECK(in_a.link("va")->master == br->index);
    in_a.add_address("br0", *parse_ipv4("10.99.0.1"), 24);
    in_a.add_address("br0", *parse_ipv4("10.99.0.1"), 24, true);  // exist_ok
    // Newer kernels add their extended-ACK text: "... to br0 (ipv4: Address already assigned): File exists".
    CHECK_THROWS_WITH(in_a.add_address("br0", *parse_ipv4("10.99.0.1"), 24),
                      Catch::Matchers::StartsWith("add address 10.99.0.1/24 to br0") &&
                          Catch::Matchers::EndsWith(": File exists"));
    for (const char* l : {"br0", "va"}) in_a.set_up(l);
    CHECK((in_a.link("br0")->flags & IFF_UP) != 0);
    in_b.set_up("lo");
    in_b.set_arp_notify("vb");
    in_b.add_address("vb", *parse_ipv4("10.99.0.2"), 24);
    in_b.set_up("vb");
    in_b.add_default_route(*parse_ipv4("10.99.0.1"));
    bool has_default = false, has_subnet = false;
    for (const auto& r : in_b.ipv4_routes()) {
        has_default = has_default || r.prefix == 0;
        has_subnet = has_subnet || (r.prefix == 24 && format_ipv4(r.dst) == "10.99.0.0");
    }
    CHECK(has_default);
    CHECK(has_subnet);
    CHECK_THROWS_WITH(in_b.add_default_route(*parse_ipv4("10.99.0.1")), Catch::Matchers::StartsWith("add the default route via 10.99.0.1") && Catch::Matchers::EndsWith(": File exists"));
    in_a.delete_neighbour("br0", *parse_ipv4("10.99.0.2"));  // none yet: fine
    in_a.set_up("va", false);
    CHECK((in_a.link("va")->flags & IFF_UP) == 0);
    CHECK(in_a.delete_link("va"));
    CHECK_FALSE(in_a.delete_link("va"));
    CHECK_FALSE(in_b.link("vb"));  // a veth's peer goes with it
    CHECK_THROWS_WITH(in_a.set_master("nope", "br0"), "no network interface nope: No such device");
}
