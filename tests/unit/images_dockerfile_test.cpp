// The Dockerfile subset of `srlaunch build`: parsing and Docker's word processing.
#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "images/dockerfile.hpp"
#include "launcher/error.hpp"

using namespace srl::dockerfile;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

namespace {

std::vector<Instruction> parse_text(const std::string& text) { return parse(text, "Dockerfile"); }

std::string error_of(const std::string& text) {
    try {
        parse_text(text);
    } catch (const srl::Error& e) {
        return e.what();
    }
    return "";
}

const std::map<std::string, std::string> kVars{{"A", "alpha"}, {"EMPTY", ""}, {"SP", "a b"}};

std::string x(const std::string& word) { return expand(word, lookup_in(kVars)); }

}  // namespace

TEST_CASE("dockerfile: instructions, keywords in any case, comments and blank lines", "[build]") {
    const auto ins = parse_text("# syntax=docker/dockerfile:1\n"
                                "\n"
                                "from alpine:3.20\n"
                                "  # indented comment\n"
                                "Run adduser -D student\r\n"
                                "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]\n"
                                "ENTRYPOINT [not json\n");
    REQUIRE(ins.size() == 4);
    CHECK(ins[0].keyword == "FROM");
    CHECK(ins[0].line == 3);
    CHECK(ins[0].args == "alpine:3.20");
    CHECK(ins[1].keyword == "RUN");
    CHECK(ins[1].line == 5);
    CHECK(ins[1].args == "adduser -D student");
    CHECK(!ins[1].exec);
    REQUIRE(ins[2].exec);
    CHECK_THAT(*ins[2].exec, Equals(std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
    CHECK(!ins[3].exec);  // not an array of strings: shell form, as Docker does
    CHECK(ins[3].args == "[not json");
}

TEST_CASE("dockerfile: continuation lines join, comments inside them are dropped", "[build]") {
    const auto ins = parse_text("FROM scratch\n"
                                "RUN apk add \\\n"
                                "# a comment between\n"
                                "\n"
                                "    gcc \\  \n"
                                "    make\n"
                                "ENV A=1 \\\n");  // a continuation at the end of the file ends there
    REQUIRE(ins.size() == 3);
    CHECK(ins[1].line == 2);
    CHECK(ins[1].args == "apk add     gcc     make");
    CHECK(ins[2].args == "A=1");
}

TEST_CASE("dockerfile: flags in front of the arguments", "[build]") {
    const auto ins = parse_text("FROM alpine\nCOPY --chown=student:users --chmod=0755 a b /dst/\n");
    REQUIRE(ins[1].flags.size() == 2);
    CHECK(ins[1].flag("chown") == "student:users");
    CHECK(ins[1].flag("chmod") == "0755");
    CHECK(!ins[1].flag("from"));
    CHECK(ins[1].args == "a b /dst/");
    CHECK(ins[1].text() == "COPY --chown=student:users --chmod=0755 a b /dst/");
    CHECK_THAT(error_of("FROM alpine\nCOPY --link a b\n"), Contains("Dockerfile:2: COPY does not take the flag --link"));
    CHECK_THAT(error_of("FROM alpine\nCOPY --chown a b\n"), Contains("Dockerfile:2: --chown needs a value"));
    CHECK_THAT(error_of("FROM alpine\nRUN --mount=type=cache,target=/x true\n"), Contains("RUN does not take the flag --mount"));
}

TEST_CASE("dockerfile: unknown and unsupported instructions name their line", "[build]") {
    CHECK(error_of("FROM alpine\n\nFROBNICATE x\n") == "Dockerfile:3: unknown instruction: FROBNICATE");
    CHECK(error_of("FROM alpine\nRUN a \\\n b\nfoo bar\n") == "Dockerfile:4: unknown instruction: foo");
    CHECK(error_of("FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\n") == "Dockerfile:2: SHELL is not supported by srlaunch build");
    CHECK(error_of("FROM alpine\nRUN\n") == "Dockerfile:2: RUN needs arguments");
    CHECK(error_of("FROM alpine\nCOPY [\"only-one\"]\n") == "Dockerfile:2: COPY needs a source and a destination");
    CHECK(error_of("# nothing\n\n") == "Dockerfile: no instructions");
}

TEST_CASE("dockerfile: $VAR and ${VAR} expansion with the shell's modifiers", "[build]") {
    CHECK(x("$A") == "alpha");
    CHECK(x("${A}x") == "alphax");
    CHECK(x("$Ax") == "");  // the name is Ax
    CHECK(x("/home/$UNSET/x") == "/home//x");
    CHECK(x("${UNSET:-dflt}") == "dflt");
    CHECK(x("${EMPTY:-dflt}") == "dflt");
    CHECK(x("${EMPTY-dflt}") == "");
    CHECK(x("${UNSET-dflt}") == "dflt");
    CHECK(x("${A:+set}") == "set");
    CHECK(x("${EMPTY:+set}") == "");
    CHECK(x("${EMPTY+set}") == "set");
    CHECK(x("${UNSET:-${A}}") == "alpha");
    CHECK(x("${A:?must be set}") == "alpha");
    CHECK_THROWS_WITH(x("${UNSET:?must be set}"), "UNSET: must be set");
    CHECK_THROWS_WITH(x("${A"), Contains("bad substitution"));
    CHECK(x("cost: $5 and $") == "cost: $5 and $");
}

TEST_CASE("dockerfile: quotes and escapes as Docker's word processing has them", "[build]") {
    CHECK(x("'$A'") == "$A");
    CHECK(x("\"$A b\"") == "alpha b");
    CHECK(x("\\$A") == "$A");
    CHECK(x("\"\\$A \\\" \\n\"") == "$A \" \\n");
    CHECK(x("a\\ b") == "a b");
    CHECK_THROWS(x("'open"));
    CHECK_THROWS(x("\"open"));
    CHECK_THAT(split_raw_words("a  \"b c\" d\\ e 'f g'"),
               Equals(std::vector<std::string>{"a", "\"b c\"", "d\\ e", "'f g'"}));
    CHECK_THAT(expand_words("$SP \"$SP\" x", lookup_in(kVars)), Equals(std::vector<std::string>{"a b", "a b", "x"}));
    CHECK_THAT(split_raw_words("A=${B:-two words} C"), Equals(std::vector<std::string>{"A=${B:-two words}", "C"}));
}

TEST_CASE("dockerfile: ENV and LABEL pairs, new and old form", "[build]") {
    const auto l = lookup_in(kVars);
    auto p = name_values("K=v K2=\"two words\" K3=$A K4='$A' K5=", l, "Dockerfile:3");
    REQUIRE(p.size() == 5);
    CHECK(p[0] == std::pair<std::string, std::string>{"K", "v"});
    CHECK(p[1].second == "two words");
    CHECK(p[2].second == "alpha");
    CHECK(p[3].second == "$A");
    CHECK(p[4].second == "");
    p = name_values("GREETING hello   $A world", l, "Dockerfile:3");
    REQUIRE(p.size() == 1);
    CHECK(p[0] == std::pair<std::string, std::string>{"GREETING", "hello   alpha world"});
    CHECK_THROWS_WITH(name_values("K=v junk", l, "Dockerfile:3"), Contains("Dockerfile:3: \"junk\" is not of the form NAME=VALUE"));
    CHECK_THROWS_WITH(name_values("ALONE", l, "Dockerfile:3"), Contains("needs a value"));
}

TEST_CASE("dockerfile: ARG declarations", "[build]") {
    const auto l = lookup_in(kVars);
    auto a = arg_declarations("V1 V2=2 V3=${A}", l, "Dockerfile:1");
    REQUIRE(a.size() == 3);
    CHECK(a[0].first == "V1");
    CHECK(!a[0].second);
    CHECK(a[1].second == "2");
    CHECK(a[2].second == "alpha");
    CHECK_THROWS_WITH(arg_declarations("1BAD=x", l, "Dockerfile:1"), Contains("invalid ARG name"));
}
