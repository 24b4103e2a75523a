#include "launcher/units.hpp"

#include <cstdio>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "launcher/error.hpp"

namespace srl {

int64_t parse_size(const std::string& text, const char* flag) {
    auto bad = [&] {
        return Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": expected a size like 512k, 32m or 1g" +
                     (text.empty() ? " (it is empty)" : ""));
    };
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == 0) throw bad();
    std::string unit = text.substr(digits);
    for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (unit.size() == 2 && unit[1] == 'b') unit.pop_back();
    int shift = unit.empty() || unit == "b" ? 0 : unit == "k" ? 10 : unit == "m" ? 20 : unit == "g" ? 30 : unit == "t" ? 40 : -1;
    if (shift < 0) throw bad();
    int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + digits, n);
    if (ec != std::errc() || n > (INT64_MAX >> shift)) throw bad();
    return n << shift;
}

int64_t parse_cpus_quota(const std::string& text, int64_t period_us, const char* flag, unsigned available) {
    // Plain decimals only: strtod would also take " 1", "1e0", "0x1" and "inf".
    bool plain = !text.empty() && text.find_first_not_of("0123456789.") == std::string::npos &&
                 text.find('.') == text.rfind('.') && text != ".";
    char* end = nullptr;
    double cpus = plain ? std::strtod(text.c_str(), &end) : -1;
    if (!plain || *end != '\0' || cpus <= 0)
        throw Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": expected a positive number of CPUs like 0.5");
    // As docker: from 0.01 (the kernel's minimum quota is 1 ms of a 100 ms period) to the CPUs
    // there are.
    if (cpus < 0.01 || cpus > available)
        throw Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": the range is 0.01 to " +
                    std::to_string(available) + " (the CPUs available)");
    return std::max<int64_t>(1000, std::llround(cpus * static_cast<double>(period_us)));
}

void validate_cpu_list(const std::string& text, const char* flag) {
    bool ok = !text.empty();
    bool expect_digit = true;
    for (char c : text) {
        if (std::isdigit(static_cast<unsigned char>(c))) {
            expect_digit = false;
        } else if ((c == ',' || c == '-') && !expect_digit) {
            expect_digit = true;
        } else {
            ok = false;
        }
    }
    if (!ok || expect_digit)
        throw Error(std::string("invalid ") + flag + " \"" + shown(text) + "\": expected a list like 0-3,5");
}

uint64_t shares_to_weight(uint64_t shares) {
    if (shares < 2) shares = 2;
    if (shares > 262'144) shares = 262'144;
    return 1 + ((shares - 2) * 9999) / 262'142;
}

std::string format_mib(int64_t bytes) {
    if (bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    return std::to_string(bytes) + " bytes";
}

std::string human_size(uint64_t bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
    return buf;
}

}  // namespace srl
