// The few C++ runtime entry points that header-only libstdc++ code may reference. srinit
// links no libstdc++/libsupc++; with -fno-exceptions any of these is a bug, so abort.
#include <cstdlib>

namespace std {
[[noreturn]] void __throw_out_of_range_fmt(const char*, ...) { abort(); }
[[noreturn]] void __throw_length_error(const char*) { abort(); }
[[noreturn]] void __throw_logic_error(const char*) { abort(); }
[[noreturn]] void __throw_bad_optional_access() { abort(); }
}  // namespace std

extern "C" [[noreturn]] void __cxa_pure_virtual() { abort(); }
