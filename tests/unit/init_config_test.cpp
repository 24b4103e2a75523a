// srinit's option and config-stream parsing, compiled for the host.
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../init/config.hpp"

using srinit::Config;

namespace {

struct Parsed {
    Config cfg;
    const char* err = nullptr;
    const char* bad = nullptr;
};

// Config is large; keep it off the test's stack.
std::unique_ptr<Parsed> options(std::vector<std::string> args) {
    static std::vector<std::string> store;
    store = std::move(args);
    store.insert(store.begin(), "srinit");
    static std::vector<char*> argv;
    argv.clear();
    for (auto& a : store) argv.push_back(a.data());
    argv.push_back(nullptr);
    auto p = std::make_unique<Parsed>();
    p->err = srinit::parse_options(static_cast<int>(store.size()), argv.data(), p->cfg, &p->bad);
    return p;
}

std::unique_ptr<Parsed> stream(std::string& text) {
    auto p = std::make_unique<Parsed>();
    p->err = srinit::parse_stream(text.data(), text.size(), p->cfg, &p->bad);
    return p;
}

std::string record(const std::string& k, const std::string& v) {
    return k + " " + std::to_string(v.size()) + "\n" + v + "\n";
}

}  // namespace

TEST_CASE("options: command after --, or after the first non-option", "[unit][srinit]") {
    auto p = options({"-g", "-t", "2.5", "--", "-weird", "arg"});
    REQUIRE(p->err == nullptr);
    CHECK(p->cfg.group);
    CHECK(p->cfg.grace_ms == 2500);
    REQUIRE(p->cfg.argc == 2);
    CHECK(std::string(p->cfg.argv[0]) == "-weird");
    CHECK(p->cfg.argv[2] == nullptr);

    auto q = options({"--preserve-fds", "2", "sh", "-c", "true"});
    REQUIRE(q->err == nullptr);
    CHECK(q->cfg.preserve_fds == 2);
    CHECK(q->cfg.argc == 3);
    CHECK(std::string(q->cfg.argv[1]) == "-c");  // options of the command are its own
    CHECK(q->cfg.grace_ms == 10'000);
}

TEST_CASE("options: errors name the option", "[unit][srinit]") {
    auto unknown = options({"--colour", "sh"});
    REQUIRE(unknown->err != nullptr);
    CHECK(std::string(unknown->bad) == "--colour");
    auto missing = options({"-t"});
    REQUIRE(missing->err != nullptr);
    CHECK(std::string(missing->bad) == "-t");
    CHECK(options({"-t", "soon", "sh"})->err != nullptr);
    CHECK(options({"-t", "1.2345", "sh"})->err != nullptr);
    CHECK(options({})->err != nullptr);                               // no command
    CHECK(options({"--config-fd", "3", "sh"})->err != nullptr);       // both
    CHECK(options({"--config-fd", "3"})->err == nullptr);
    CHECK(options({"--help"})->cfg.help);
}

TEST_CASE("durations parse to milliseconds", "[unit][srinit]") {
    CHECK(srinit::parse_seconds_ms("0") == 0);
    CHECK(srinit::parse_seconds_ms("10") == 10'000);
    CHECK(srinit::parse_seconds_ms("0.05") == 50);
    CHECK(srinit::parse_seconds_ms(".5") == 500);
    CHECK(srinit::parse_seconds_ms("") == -1);
    CHECK(srinit::parse_seconds_ms("1.") == -1);
    CHECK(srinit::parse_seconds_ms("-1") == -1);
    CHECK(srinit::parse_seconds_ms("99999999999") == -1);
}

TEST_CASE("config stream: records in place, binary-safe values", "[unit][srinit]") {
    std::string value_with_newline = "line one\nline two";
    std::string text = record("arg", "printf") + record("arg", value_with_newline) +
                       record("arg", "") + record("env", "A=1") + record("cwd", "/srv") +
                       record("group", "1") + record("grace_ms", "250") +
                       record("preserve_fds", "4");
    auto p = stream(text);
    REQUIRE(p->err == nullptr);
    REQUIRE(p->cfg.argc == 3);
    CHECK(std::string(p->cfg.argv[1]) == value_with_newline);
    CHECK(std::string(p->cfg.argv[2]).empty());
    CHECK(p->cfg.env_set);
    CHECK(p->cfg.envc == 1);
    CHECK(std::string(p->cfg.envp[0]) == "A=1");
    CHECK(std::string(p->cfg.cwd) == "/srv");
    CHECK(p->cfg.group);
    CHECK(p->cfg.grace_ms == 250);
    CHECK(p->cfg.preserve_fds == 4);
    CHECK(!p->cfg.exec);
    std::string exec_text = record("arg", "ps") + record("exec", "1");
    auto e = stream(exec_text);
    REQUIRE(e->err == nullptr);
    CHECK(e->cfg.exec);
    CHECK(!e->cfg.group);
    std::string bad = record("arg", "ps") + record("exec", "2");
    CHECK(stream(bad)->err != nullptr);
}

TEST_CASE("config stream: malformed input is refused", "[unit][srinit]") {
    for (std::string text : {std::string("arg 5\nshort\n").substr(0, 9),  // truncated
                             std::string("arg x\nsh\n"),                   // bad length
                             std::string("arg 2\nsh!"),                    // no terminator
                             std::string("arg"),                           // no length
                             record("env", "A=1"),                         // no command
                             record("arg", "sh") + record("group", "2")}) {
        INFO(text);
        CHECK(stream(text)->err != nullptr);
    }
    std::string unknown = record("arg", "sh") + record("colour", "blue");
    auto p = stream(unknown);
    REQUIRE(p->err != nullptr);
    CHECK(std::string(p->bad) == "colour");
}

TEST_CASE("config stream: user, group and supplementary groups", "[unit][srinit]") {
    std::string text = record("arg", "id") + record("uid", "1000") + record("gid", "100") +
                       record("groups", "1,4,65534");
    auto p = stream(text);
    REQUIRE(p->err == nullptr);
    CHECK(p->cfg.uid == 1000);
    CHECK(p->cfg.gid == 100);
    REQUIRE(p->cfg.set_groups);
    REQUIRE(p->cfg.ngroups == 3);
    CHECK(p->cfg.groups[2] == 65534u);
    std::string none = record("arg", "id") + record("groups", "");
    auto q = stream(none);
    REQUIRE(q->err == nullptr);
    CHECK(q->cfg.set_groups);
    CHECK(q->cfg.ngroups == 0);
    std::string bad = record("arg", "id") + record("groups", "1,,2");
    CHECK(stream(bad)->err != nullptr);
    std::string badu = record("arg", "id") + record("uid", "-1");
    CHECK(stream(badu)->err != nullptr);
}

TEST_CASE("config stream: capability mask and no_new_privs", "[unit][srinit]") {
    std::string text = record("arg", "id") + record("caps", "a80425fb") + record("no_new_privs", "1");
    auto p = stream(text);
    REQUIRE(p->err == nullptr);
    CHECK(p->cfg.caps_set);
    CHECK(p->cfg.caps == 0xa80425fbull);
    CHECK(p->cfg.no_new_privs);
    for (std::string bad : {record("arg", "id") + record("caps", "xyz"), record("arg", "id") + record("caps", ""),
                            record("arg", "id") + record("caps", "12345678901234567")}) {
        INFO(bad);
        CHECK(stream(bad)->err != nullptr);
    }
}

TEST_CASE("config stream: a seccomp filter travels as raw bytes", "[unit][srinit]") {
    // Two instructions holding every awkward byte: NUL, LF, space, 0xff.
    std::string bpf("\x06\x00\x00\x00\x00\x00\xff\x7f" "\x0a\x20\x00\x0a\x00\xff\x00\x00", 16);
    std::string text = record("arg", "sh") + record("seccomp", bpf) + record("cwd", "/");
    auto p = stream(text);
    REQUIRE(p->err == nullptr);
    REQUIRE(p->cfg.seccomp != nullptr);
    CHECK(p->cfg.seccomp_len == 16);
    CHECK(std::memcmp(p->cfg.seccomp, bpf.data(), 16) == 0);
    CHECK(std::string(p->cfg.cwd) == "/");  // the records after it still parse

    std::string none = record("arg", "sh");
    CHECK(stream(none)->cfg.seccomp == nullptr);

    // Not whole instructions, empty, or beyond the kernel's BPF_MAXINSNS: refused by name.
    for (size_t len : {size_t(12), size_t(0), size_t(4097 * 8)}) {
        std::string bad = record("arg", "sh") + record("seccomp", std::string(len, '\0'));
        INFO(len);
        auto q = stream(bad);
        REQUIRE(q->err != nullptr);
        CHECK(std::string(q->bad) == "seccomp");
    }
    std::string max = record("arg", "sh") + record("seccomp", std::string(4096 * 8, '\0'));
    CHECK(stream(max)->err == nullptr);
}
