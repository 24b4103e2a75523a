// The one error type of srlaunch: what failed (context) and, for system calls, errno.
// Errors propagate as exceptions and are printed once, at the top, as
// "srlaunch: <context>: <strerror>"; the process then exits 125 (like `docker run`).
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace srl {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& context, int err = 0)
        : std::runtime_error(err ? context + ": " + std::strerror(err) : context), errno_(err) {}
    int code() const { return errno_; }

private:
    int errno_;
};

// Throws Error(context, errno) for the errno of the failed call just made.
[[noreturn]] inline void throw_errno(const std::string& context) { throw Error(context, errno); }

// For calls that return -1 and set errno: returns the result, or throws.
template <class T>
T check(T result, const std::string& context) {
    if (result == static_cast<T>(-1)) throw_errno(context);
    return result;
}

// A value from the command line or a file as an error message echoes it: at most `max` bytes
// (cut at a UTF-8 character boundary, then "…"), so a 5000-byte path is not repeated whole,
// and control characters as '?', so the message stays one line.
inline std::string shown(std::string_view value, size_t max = 64) {
    size_t end = value.size();
    if (end > max) {
        end = max;
        while (end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
    }
    std::string out(value.substr(0, end));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return end < value.size() ? out + "…" : out;
}

// The final message printed for any error, whoever composed it (CLI11, std::filesystem, a
// library): one line, and no word longer than 256 bytes (a long path is shortened by shown()).
inline std::string one_line(std::string_view message) {
    std::string out, word;
    auto flush = [&] {
        out += word.size() > 256 ? shown(word) : word;
        word.clear();
    };
    for (char c : message) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            flush();
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            word += c;
        }
    }
    flush();
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

}  // namespace srl
