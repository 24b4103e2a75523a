#include "images/dockerfile.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "launcher/error.hpp"

namespace srl::dockerfile {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// Which flags each instruction takes; the builder decides what a value means.
const std::map<std::string, std::set<std::string>>& supported() {
    static const std::map<std::string, std::set<std::string>> table{
        {"FROM", {"platform"}}, {"RUN", {}},     {"COPY", {"chown", "chmod", "from"}}, {"ADD", {"chown", "chmod"}},
        {"ENV", {}},            {"ARG", {}},     {"WORKDIR", {}},                        {"USER", {}},
        {"CMD", {}},            {"ENTRYPOINT", {}}, {"LABEL", {}},                       {"EXPOSE", {}},
    };
    return table;
}

// Real Dockerfile instructions this subset leaves out: named so the error says so, rather than
// calling them unknown.
const std::set<std::string> kUnsupported{"SHELL", "VOLUME", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD", "MAINTAINER"};

// Instructions whose arguments may be a JSON array (exec form).
const std::set<std::string> kExecForm{"RUN", "CMD", "ENTRYPOINT", "COPY", "ADD"};

// "[...]" that is a JSON array of strings, or nullopt (then it is shell form, as with Docker).
std::optional<std::vector<std::string>> json_array(std::string_view args) {
    if (args.empty() || args.front() != '[') return std::nullopt;
    const nlohmann::json j = nlohmann::json::parse(args, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& e : j) {
        if (!e.is_string()) return std::nullopt;
        out.push_back(e.get<std::string>());
    }
    return out;
}

struct Source {
    std::string_view text;
    std::size_t pos = 0;
    int line = 0;
    // The next physical line without its newline, or nullopt at the end.
    std::optional<std::string_view> next() {
        if (pos >= text.size()) return std::nullopt;
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view l = text.substr(pos, end - pos);
        pos = end + 1;
        ++line;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        return l;
    }
};

bool is_comment(std::string_view l) {
    l = trim(l);
    return !l.empty() && l.front() == '#';
}

Instruction make_instruction(int line, std::string logical, const std::string& file_name) {
    const std::string where = file_name + ":" + std::to_string(line);
    std::string_view rest = trim(logical);
    std::size_t end = 0;
    while (end < rest.size() && !is_space(rest[end])) ++end;
    Instruction ins;
    ins.line = line;
    ins.keyword = upper(rest.substr(0, end));
    rest = trim(rest.substr(end));
    if (kUnsupported.contains(ins.keyword))
        throw Error(where + ": " + ins.keyword + " is not supported by srlaunch build");
    const auto known = supported().find(ins.keyword);
    if (known == supported().end())
        throw Error(where + ": unknown instruction: " + std::string(trim(logical).substr(0, end)));
    // Flags: leading --name=value words.
    while (rest.starts_with("--")) {
        std::size_t stop = 0;
        while (stop < rest.size() && !is_space(rest[stop])) ++stop;
        const std::string_view word = rest.substr(2, stop - 2);
        const std::size_t eq = word.find('=');
        const std::string name(word.substr(0, eq));
        if (!known->second.contains(name))
            throw Error(where + ": " + ins.keyword + " does not take the flag --" + name);
        if (eq == std::string_view::npos) throw Error(where + ": --" + name + " needs a value (--" + name + "=VALUE)");
        ins.flags.emplace_back(name, std::string(word.substr(eq + 1)));
        rest = trim(rest.substr(stop));
    }
    ins.args = std::string(rest);
    if (ins.args.empty()) throw Error(where + ": " + ins.keyword + " needs arguments");
    if (kExecForm.contains(ins.keyword)) ins.exec = json_array(ins.args);
    if ((ins.keyword == "COPY" || ins.keyword == "ADD") && ins.exec && ins.exec->size() < 2)
        throw Error(where + ": " + ins.keyword + " needs a source and a destination");
    return ins;
}

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Expander {
public:
    Expander(std::string_view s, const Lookup& vars) : s_(s), vars_(vars) {}

    std::string word() {
        std::string out;
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if (c == '\'') {
                const std::size_t close = s_.find('\'', i_ + 1);
                if (close == std::string_view::npos) throw Error("unexpected end of text while looking for matching '");
                out.append(s_.substr(i_ + 1, close - i_ - 1));
                i_ = close + 1;
            } else if (c == '"') {
                ++i_;
                double_quoted(out);
            } else if (c == '\\') {
                if (i_ + 1 < s_.size()) out += s_[i_ + 1];
                i_ += 2;
            } else if (c == '$') {
                out += dollar();
            } else {
                out += c;
                ++i_;
            }
        }
        return out;
    }

private:
    void double_quoted(std::string& out) {
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if (c == '"') {
                ++i_;
                return;
            }
            if (c == '\\' && i_ + 1 < s_.size() && (s_[i_ + 1] == '"' || s_[i_ + 1] == '$' || s_[i_ + 1] == '\\')) {
                out += s_[i_ + 1];
                i_ += 2;
            } else if (c == '$') {
                out += dollar();
            } else {
                out += c;
                ++i_;
            }
        }
        throw Error("unexpected end of text while looking for matching \"");
    }

    // At a '$': the expansion, or a literal '$' when no name follows.
    std::string dollar() {
        ++i_;
        if (i_ < s_.size() && s_[i_] == '{') return braced();
        if (i_ >= s_.size() || !name_start(s_[i_])) return "$";
        const std::size_t start = i_;
        while (i_ < s_.size() && name_char(s_[i_])) ++i_;
        return vars_(std::string(s_.substr(start, i_ - start))).value_or("");
    }

    std::string braced() {
        const std::size_t open = i_;
        ++i_;
        const std::size_t start = i_;
        while (i_ < s_.size() && name_char(s_[i_])) ++i_;
        const std::string name(s_.substr(start, i_ - start));
        if (name.empty() || !name_start(name[0])) throw Error("bad substitution: " + std::string(s_.substr(open - 1)));
        if (i_ < s_.size() && s_[i_] == '}') {
            ++i_;
            return vars_(name).value_or("");
        }
        bool colon = false;
        if (i_ < s_.size() && s_[i_] == ':') {
            colon = true;
            ++i_;
        }
        if (i_ >= s_.size() || (s_[i_] != '-' && s_[i_] != '+' && s_[i_] != '?'))
            throw Error("bad substitution: " + std::string(s_.substr(open - 1)));
        const char op = s_[i_++];
        // The word runs to the matching '}', nested ${...} included.
        const std::size_t word_start = i_;
        int depth = 1;
        for (; i_ < s_.size(); ++i_) {
            if (s_[i_] == '\\') {
                ++i_;
            } else if (s_[i_] == '$' && i_ + 1 < s_.size() && s_[i_ + 1] == '{') {
                ++depth;
                ++i_;
            } else if (s_[i_] == '}' && --depth == 0) {
                break;
            }
        }
        if (i_ >= s_.size()) throw Error("missing '}' in " + std::string(s_.substr(open - 1)));
        const std::string_view raw = s_.substr(word_start, i_ - word_start);
        ++i_;
        const std::optional<std::string> value = vars_(name);
        // With ':' an empty value counts as unset, as in the shell.
        const bool set = value && (!colon || !value->empty());
        switch (op) {
        case '-':
            return set ? *value : Expander(raw, vars_).word();
        case '+':
            return set ? Expander(raw, vars_).word() : "";
        default:  // '?'
            if (set) return *value;
            {
                const std::string msg = Expander(raw, vars_).word();
                throw Error(name + ": " + (msg.empty() ? "is not set" : msg));
            }
        }
    }

    std::string_view s_;
    const Lookup& vars_;
    std::size_t i_ = 0;
};

}  // namespace

std::optional<std::string> Instruction::flag(const std::string& name) const {
    std::optional<std::string> v;
    for (const auto& [n, value] : flags)
        if (n == name) v = value;  // the last one wins
    return v;
}

std::string Instruction::text() const {
    std::string out = keyword;
    for (const auto& [n, v] : flags) out += " --" + n + "=" + v;
    return out + " " + (exec ? nlohmann::json(*exec).dump() : args);
}

std::vector<Instruction> parse(std::string_view text, const std::string& file_name) {
    std::vector<Instruction> out;
    Source src{text};
    while (auto l = src.next()) {
        if (trim(*l).empty() || is_comment(*l)) continue;
        const int start = src.line;
        std::string logical;
        std::string_view cur = *l;
        for (;;) {
            // A backslash at the end of a line (trailing blanks allowed) continues the instruction
            // on the next one; comment lines and empty lines inside it are dropped, as Docker does.
            std::string_view t = cur;
            while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
            if (t.empty() || t.back() != '\\') {
                logical += cur;
                break;
            }
            t.remove_suffix(1);
            logical += t;
            std::optional<std::string_view> next;
            while ((next = src.next()) && (is_comment(*next) || trim(*next).empty())) {
            }
            if (!next) break;
            cur = *next;
        }
        out.push_back(make_instruction(start, std::move(logical), file_name));
    }
    if (out.empty()) throw Error(file_name + ": no instructions");
    return out;
}

Lookup lookup_in(const std::map<std::string, std::string>& vars) {
    return [&vars](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

std::string expand(std::string_view word, const Lookup& vars) { return Expander(word, vars).word(); }

std::vector<std::string> split_raw_words(std::string_view text) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    int braces = 0;  // inside ${...}, where "${X:-a b}" is still one word
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quote != '\'') {
            if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') ++braces;
            else if (c == '}' && braces > 0) --braces;
        }
        if (!quote && !braces && is_space(c)) {
            if (in_word) words.push_back(std::move(cur));
            cur.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        cur += c;
        if (c == '\\' && quote != '\'' && i + 1 < text.size()) {
            cur += text[++i];
        } else if (!quote && (c == '\'' || c == '"')) {
            quote = c;
        } else if (quote && c == quote) {
            quote = 0;
        }
    }
    if (in_word) words.push_back(std::move(cur));
    return words;
}

std::vector<std::string> expand_words(std::string_view text, const Lookup& vars) {
    std::vector<std::string> out;
    for (const auto& w : split_raw_words(text)) out.push_back(expand(w, vars));
    return out;
}

std::vector<std::pair<std::string, std::string>> name_values(std::string_view text, const Lookup& vars,
                                                             const std::string& where) {
    const auto words = split_raw_words(text);
    std::vector<std::pair<std::string, std::string>> out;
    if (words.empty()) throw Error(where + ": a name and a value are needed");
    if (words[0].find('=') == std::string::npos) {
        // The old form, "ENV KEY the rest of the line": one pair.
        text = trim(text);
        std::size_t end = 0;
        while (end < text.size() && !is_space(text[end])) ++end;
        const std::string_view value = trim(text.substr(end));
        if (value.empty()) throw Error(where + ": " + words[0] + " needs a value (NAME=VALUE)");
        out.emplace_back(expand(text.substr(0, end), vars), expand(value, vars));
        return out;
    }
    for (const auto& w : words) {
        const std::size_t eq = w.find('=');
        if (eq == std::string::npos)
            throw Error(where + ": \"" + w + "\" is not of the form NAME=VALUE");
        std::string name = expand(std::string_view(w).substr(0, eq), vars);
        if (name.empty()) throw Error(where + ": an empty name in \"" + w + "\"");
        out.emplace_back(std::move(name), expand(std::string_view(w).substr(eq + 1), vars));
    }
    return out;
}

std::vector<std::pair<std::string, std::optional<std::string>>> arg_declarations(std::string_view text,
                                                                                 const Lookup& vars,
                                                                                 const std::string& where) {
    std::vector<std::pair<std::string, std::optional<std::string>>> out;
    for (const auto& w : split_raw_words(text)) {
        const std::size_t eq = w.find('=');
        const std::string name = w.substr(0, eq);
        if (name.empty() || !name_start(name[0]) || !std::all_of(name.begin(), name.end(), name_char))
            throw Error(where + ": invalid ARG name \"" + name + "\"");
        if (eq == std::string::npos) out.emplace_back(name, std::nullopt);
        else out.emplace_back(name, expand(std::string_view(w).substr(eq + 1), vars));
    }
    return out;
}

}  // namespace srl::dockerfile
