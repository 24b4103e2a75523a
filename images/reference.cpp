#include "images/reference.hpp"

#include "launcher/error.hpp"

namespace srl {
namespace {

constexpr std::size_t kMaxNameLength = 255;  // Docker's limit; also keeps paths well short of PATH_MAX
constexpr std::size_t kMaxTagLength = 128;

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool tag_char(char c) {
    return lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

[[noreturn]] void bad(std::string_view ref, const std::string& why) {
    throw Error("invalid image reference \"" + std::string(ref) + "\": " + why);
}

// One path component of a name: [a-z0-9]+([._-][a-z0-9]+)*
void check_component(std::string_view ref, std::string_view c) {
    if (c.empty()) bad(ref, "empty name component");
    if (c == "." || c == "..") bad(ref, "\"" + std::string(c) + "\" is not allowed in a name");
    bool after_separator = true;
    for (char ch : c) {
        if (lower_alnum(ch)) {
            after_separator = false;
        } else if (ch == '.' || ch == '_' || ch == '-') {
            if (after_separator) bad(ref, "name components must start and end with [a-z0-9] and not repeat separators");
            after_separator = true;
        } else if (ch >= 'A' && ch <= 'Z') {
            bad(ref, "name must be lowercase");
        } else {
            bad(ref, "invalid character '" + std::string(1, ch) + "' in name");
        }
    }
    if (after_separator) bad(ref, "name components must start and end with [a-z0-9] and not repeat separators");
}

}  // namespace

ImageRef ImageRef::parse(std::string_view s) {
    if (s.empty()) bad(s, "empty");
    // The tag separator is a ':' after the last '/', as in Docker references.
    auto slash = s.rfind('/');
    auto colon = s.find(':', slash == std::string_view::npos ? 0 : slash);
    ImageRef ref;
    std::string_view name = s.substr(0, colon);
    if (colon != std::string_view::npos) {
        std::string_view tag = s.substr(colon + 1);
        if (tag.empty()) bad(s, "empty tag");
        if (tag.size() > kMaxTagLength) bad(s, "tag longer than 128 characters");
        // Tags may not start with '.' or '-': that rules out "." and "..", and keeps store
        // directories apart from the store's own dot-files.
        if (tag[0] == '.' || tag[0] == '-') bad(s, "tag must start with [A-Za-z0-9_]");
        for (char ch : tag)
            if (!tag_char(ch)) bad(s, "invalid character '" + std::string(1, ch) + "' in tag (allowed: A-Z a-z 0-9 _ . -)");
        ref.tag = tag;
    }
    if (name.empty()) bad(s, "empty name");
    if (name.size() > kMaxNameLength) bad(s, "name longer than 255 characters");
    for (std::size_t start = 0;;) {
        auto end = name.find('/', start);
        check_component(s, name.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    ref.name = name;
    return ref;
}

std::string ImageRef::str() const { return name + ":" + tag; }

}  // namespace srl
