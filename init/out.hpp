// Messages to stderr without stdio: srinit stays small and never allocates.
#pragma once

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace srinit {

// Writes "srinit: " and the parts, then a newline, in one write(2) so lines from
// srinit and its workload never interleave mid-line.
inline void say(const char* a, const char* b = nullptr, const char* c = nullptr,
                const char* d = nullptr) {
    char line[512];
    std::size_t n = 0;
    const char* parts[] = {"srinit: ", a, b, c, d};
    for (const char* part : parts) {
        for (; part && *part && n < sizeof line - 1; ++part) line[n++] = *part;
    }
    line[n++] = '\n';
    while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR) {
    }
}

// Like say(), ending with ": <strerror(err)>".
inline void say_errno(int err, const char* a, const char* b = nullptr) {
    say(a, b, ": ", std::strerror(err));
}

}  // namespace srinit
