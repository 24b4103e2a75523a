// The Dockerfile subset `srlaunch build` reads: parsing (lines, continuations, comments, exec vs
// shell form, flags) and Docker's word processing ($VAR, ${VAR:-default}, quotes, escapes).
//
// Parsing knows nothing of variables: an instruction keeps its argument text, and the builder
// expands it when the instruction runs, against the ENV and ARG values of that moment, as Docker
// does. Everything here is pure (no files, no root), so it is unit-tested on its own.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace srl::dockerfile {

struct Instruction {
    int line = 0;         // where the instruction starts (1-based)
    std::string keyword;  // upper case: FROM, RUN, COPY, ...
    // --name=value flags in front of the arguments (FROM, RUN, COPY, ADD), in order.
    std::vector<std::pair<std::string, std::string>> flags;
    // The exec (JSON array) form, when the arguments are one: RUN, CMD, ENTRYPOINT, COPY, ADD.
    std::optional<std::vector<std::string>> exec;
    std::string args;  // the arguments after the flags, continuation lines joined, trimmed

    std::optional<std::string> flag(const std::string& name) const;
    // As written, for history and messages: "COPY --chown=student hello /usr/local/bin/".
    std::string text() const;
};

// Parses a whole Dockerfile. Errors are srl::Error("FILE:LINE: what"): an unknown instruction,
// one srlaunch does not support, a flag an instruction does not take, an instruction without
// its arguments, a JSON form that is not an array of strings where only JSON makes sense.
std::vector<Instruction> parse(std::string_view text, const std::string& file_name);

// A variable lookup: the value, or nullopt when the variable is not set.
using Lookup = std::function<std::optional<std::string>(const std::string&)>;
Lookup lookup_in(const std::map<std::string, std::string>& vars);

// Docker's processing of one word: 'single quotes' are literal, "double quotes" and unquoted
// text expand $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word},
// ${NAME:?msg}, ${NAME?msg}; a backslash escapes the next character ("\$" is a dollar).
// Unset variables expand to "". Throws srl::Error for a malformed expansion or ${X:?msg}.
std::string expand(std::string_view word, const Lookup& vars);

// Splits at unquoted, unescaped whitespace, keeping the quotes and escapes in each word (so
// that expand() still sees them): `a "b c" d\ e` is {a, "b c", d\ e}.
std::vector<std::string> split_raw_words(std::string_view text);

// Words with expansion: split_raw_words, then expand each.
std::vector<std::string> expand_words(std::string_view text, const Lookup& vars);

// ENV and LABEL: "K=V K2=\"v 2\"" (each value expanded), or the old form "K some value"
// (one pair, the rest of the line the value). Throws for "K=V junk" (a word without '=').
std::vector<std::pair<std::string, std::string>> name_values(std::string_view text, const Lookup& vars,
                                                             const std::string& where);

// ARG: "NAME", "NAME=default", several per line. The default is expanded; none is nullopt.
std::vector<std::pair<std::string, std::optional<std::string>>> arg_declarations(std::string_view text,
                                                                                 const Lookup& vars,
                                                                                 const std::string& where);

}  // namespace srl::dockerfile
