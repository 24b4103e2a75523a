// ID mappings and the srinit config stream, without a kernel.
#include <catch2/catch.hpp>

#include "launcher/error.hpp"
#include "launcher/capabilities.hpp"
#include "launcher/idmap.hpp"
#include "launcher/srinit_config.hpp"

using namespace srl;

TEST_CASE("ID mappings parse as CONTAINER:HOST:COUNT", "[unit][idmap]") {
    CHECK(parse_id_mapping("0:100000:65536") == IdMapping{0, 100000, 65536});
    for (const char* bad : {"", "0:100000", "0:1:2:3", "a:1:2", "0:-1:5", "0::5", "0:1:2x"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_id_mapping(bad), Error);
    }
}

TEST_CASE("ID mappings may not overlap, be empty or overflow", "[unit][idmap]") {
    CHECK_NOTHROW(validate_id_mappings({{0, 100000, 1000}, {1000, 300000, 10}}, "--uidmap"));
    CHECK_THROWS_WITH(validate_id_mappings({{0, 100000, 1000}, {500, 300000, 10}}, "--uidmap"),
                      Catch::Contains("container side"));
    CHECK_THROWS_WITH(validate_id_mappings({{0, 100000, 1000}, {5000, 100500, 10}}, "--uidmap"),
                      Catch::Contains("host side"));
    CHECK_THROWS(validate_id_mappings({{0, 100000, 0}}, "--uidmap"));
    CHECK_THROWS(validate_id_mappings({{0, 4294967000u, 65536}}, "--uidmap"));
}

TEST_CASE("map_to_host and the kernel's map text", "[unit][idmap]") {
    std::vector<IdMapping> maps{{0, 100000, 10}, {1000, 200000, 1}};
    CHECK(map_to_host(maps, 0) == 100000u);
    CHECK(map_to_host(maps, 9) == 100009u);
    CHECK(!map_to_host(maps, 10));
    CHECK(map_to_host(maps, 1000) == 200000u);
    CHECK(format_id_map(maps) == "0 100000 10\n1000 200000 1\n");
}

TEST_CASE("the srinit config stream carries the process", "[unit][srinit]") {
    ContainerSpec spec;
    spec.process.args = {"sh", "-c", "echo a\nb"};
    spec.process.env = {"A=1"};
    spec.process.cwd = "/tmp";
    spec.process.uid = 1000;
    spec.process.gid = 100;
    spec.process.additional_gids = {1, 4};
    spec.stop_timeout_s = 3;
    CHECK(srinit_config_stream(spec) ==
          "arg 2\nsh\narg 2\n-c\narg 8\necho a\nb\nenv 3\nA=1\ncwd 4\n/tmp\nuid 4\n1000\ngid 3\n100\n"
          "groups 3\n1,4\ngrace_ms 4\n3000\ncaps 1\n0\nno_new_privs 1\n0\n");
    spec.process.capabilities = 0xa80425fb;
    spec.process.no_new_privileges = true;
    CHECK(srinit_config_stream(spec).find("caps 8\na80425fb\nno_new_privs 1\n1\n") != std::string::npos);
}

TEST_CASE("capabilities: docker's defaults, add and drop by any spelling", "[unit][caps]") {
    CHECK(default_capabilities() == 0xa80425fbull);
    CHECK(resolve_capabilities({}, {}) == 0xa80425fbull);
    CHECK(resolve_capabilities({"sys_admin"}, {"CAP_NET_RAW"}) == 0xa82405fbull);
    CHECK(resolve_capabilities({}, {"ALL"}) == 0);
    CHECK(resolve_capabilities({"ALL"}, {}) == all_capabilities());
    CHECK(resolve_capabilities({"KILL"}, {"all"}) == 1ull << 5);  // drops first, then adds
    CHECK_THROWS_WITH(resolve_capabilities({"NOPE"}, {}), "unknown capability \"NOPE\"");
}
