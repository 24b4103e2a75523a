// Docker's units on the command line: sizes ("32m"), rates ("2mb"), CPUs ("0.5"), CPU lists.
#pragma once

#include <cstdint>
#include <string>

namespace srl {

// "1024", "512k", "32m", "1g" (also kb/mb/gb, either case; binary multiples). Throws Error.
int64_t parse_size(const std::string& text, const char* flag);
// "0.5" CPUs -> CFS quota for the period. Throws Error unless 0.01 <= cpus <= `available` (the
// CPUs this process may use, as docker counts them).
int64_t parse_cpus_quota(const std::string& text, int64_t period_us, const char* flag, unsigned available = 1024);
// "0-3,5": checked for shape only; the kernel checks it against the parent's set.
void validate_cpu_list(const std::string& text, const char* flag);
// v1 cpu.shares -> v2 cpu.weight, the standard conversion.
uint64_t shares_to_weight(uint64_t shares);
std::string format_mib(int64_t bytes);  // "32 MiB"
std::string human_size(uint64_t bytes);  // "12.3MB", decimal units as docker prints them

}  // namespace srl
