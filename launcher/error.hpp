// The one error type of srlaunch: what failed (context) and, for system calls, errno.
// Errors propagate as exceptions and are printed once, at the top, as
// "srlaunch: <context>: <strerror>"; the process then exits 125 (like `docker run`).
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

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

}  // namespace srl
