#include "config.hpp"

#include <cstring>

namespace srinit {

int parse_uint(const char* s, std::size_t n, int max) {
    if (n == 0 || n > 10) return -1;
    long long v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v > max ? -1 : static_cast<int>(v);
}

int parse_seconds_ms(const char* s) {
    const char* dot = std::strchr(s, '.');
    std::size_t whole_len = dot ? static_cast<std::size_t>(dot - s) : std::strlen(s);
    int whole = whole_len == 0 && dot ? 0 : parse_uint(s, whole_len, 86'400);
    if (whole < 0) return -1;
    int ms = 0;
    if (dot) {
        const char* frac = dot + 1;
        std::size_t n = std::strlen(frac);
        if (n == 0 || n > 3 || parse_uint(frac, n, 999) < 0) return -1;
        ms = parse_uint(frac, n, 999);
        for (std::size_t i = n; i < 3; ++i) ms *= 10;
    }
    return whole * 1000 + ms;
}

static bool push(const char** list, int& count, int max, const char* value) {
    if (count >= max) return false;
    list[count++] = value;
    list[count] = nullptr;
    return true;
}

const char* parse_options(int argc, char** argv, Config& cfg, const char** bad) {
    int i = 1;
    auto value = [&](const char* opt) -> const char* {
        if (i + 1 >= argc) {
            *bad = opt;
            return nullptr;
        }
        return argv[++i];
    };
    for (; i < argc; ++i) {
        const char* a = argv[i];
        if (std::strcmp(a, "--") == 0) {
            ++i;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') break;
        *bad = a;
        if (std::strcmp(a, "-g") == 0) {
            cfg.group = true;
        } else if (std::strcmp(a, "-t") == 0 || std::strcmp(a, "--grace") == 0) {
            const char* v = value(a);
            if (!v || (cfg.grace_ms = parse_seconds_ms(v)) < 0) return "needs a duration in seconds";
        } else if (std::strcmp(a, "--preserve-fds") == 0) {
            const char* v = value(a);
            if (!v || (cfg.preserve_fds = parse_uint(v, std::strlen(v), 65'536)) < 0)
                return "needs a number of fds";
        } else if (std::strcmp(a, "--config-fd") == 0) {
            const char* v = value(a);
            if (!v || (cfg.config_fd = parse_uint(v, std::strlen(v), 1'048'576)) < 0)
                return "needs an fd number";
        } else if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
            cfg.help = true;
        } else if (std::strcmp(a, "-V") == 0 || std::strcmp(a, "--version") == 0) {
            cfg.version = true;
        } else {
            return "unknown option";
        }
    }
    *bad = nullptr;
    for (; i < argc; ++i)
        if (!push(cfg.argv, cfg.argc, Config::kMaxArgs, argv[i])) return "too many arguments";
    if (cfg.help || cfg.version) return nullptr;
    if (cfg.config_fd >= 0) {
        if (cfg.argc > 0) return "a command and --config-fd exclude each other";
    } else if (cfg.argc == 0) {
        return "no command given";
    }
    return nullptr;
}

static bool key_is(const char* key, std::size_t n, const char* want) {
    return std::strlen(want) == n && std::memcmp(key, want, n) == 0;
}

const char* parse_stream(char* buf, std::size_t len, Config& cfg, const char** bad) {
    std::size_t pos = 0;
    *bad = nullptr;
    while (pos < len) {
        char* key = buf + pos;
        char* sp = static_cast<char*>(std::memchr(key, ' ', len - pos));
        if (!sp) return "record without a length";
        std::size_t key_len = static_cast<std::size_t>(sp - key);
        char* num = sp + 1;
        char* lf = static_cast<char*>(std::memchr(num, '\n', len - (num - buf)));
        if (!lf) return "record without a length";
        int vlen = parse_uint(num, static_cast<std::size_t>(lf - num), 1 << 30);
        if (vlen < 0) return "bad record length";
        char* val = lf + 1;
        std::size_t end = static_cast<std::size_t>(val - buf) + static_cast<std::size_t>(vlen);
        if (end >= len || buf[end] != '\n') return "truncated record";
        buf[end] = '\0';
        *sp = '\0';
        *bad = key;
        if (key_is(key, key_len, "arg")) {
            if (!push(cfg.argv, cfg.argc, Config::kMaxArgs, val)) return "too many arguments";
        } else if (key_is(key, key_len, "env")) {
            cfg.env_set = true;
            if (!push(cfg.envp, cfg.envc, Config::kMaxEnv, val)) return "too many variables";
        } else if (key_is(key, key_len, "cwd")) {
            cfg.cwd = val;
        } else if (key_is(key, key_len, "group") || key_is(key, key_len, "exec")) {
            int v = parse_uint(val, static_cast<std::size_t>(vlen), 1);
            if (v < 0) return "expects 0 or 1";
            (key[0] == 'g' ? cfg.group : cfg.exec) = v == 1;
        } else if (key_is(key, key_len, "grace_ms")) {
            if ((cfg.grace_ms = parse_uint(val, static_cast<std::size_t>(vlen), 86'400'000)) < 0)
                return "expects milliseconds";
        } else if (key_is(key, key_len, "preserve_fds")) {
            if ((cfg.preserve_fds = parse_uint(val, static_cast<std::size_t>(vlen), 65'536)) < 0)
                return "expects a number of fds";
        } else if (key_is(key, key_len, "uid") || key_is(key, key_len, "gid")) {
            int v = parse_uint(val, static_cast<std::size_t>(vlen), 2'147'483'647);
            if (v < 0) return "expects a numeric id";
            (key[0] == 'u' ? cfg.uid : cfg.gid) = v;
        } else if (key_is(key, key_len, "groups")) {
            cfg.set_groups = true;
            cfg.ngroups = 0;
            for (char* p = val; *p;) {
                char* comma = std::strchr(p, ',');
                std::size_t n = comma ? static_cast<std::size_t>(comma - p) : std::strlen(p);
                int v = parse_uint(p, n, 2'147'483'647);
                if (v < 0) return "expects comma-separated numeric ids";
                if (cfg.ngroups == Config::kMaxGroups) return "too many groups";
                cfg.groups[cfg.ngroups++] = static_cast<unsigned>(v);
                p += n + (comma ? 1 : 0);
            }
        } else if (key_is(key, key_len, "caps")) {
            if (vlen == 0 || vlen > 16) return "expects a hex mask";
            cfg.caps = 0;
            for (int i = 0; i < vlen; ++i) {
                char c = val[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (d < 0) return "expects a hex mask";
                cfg.caps = cfg.caps << 4 | static_cast<unsigned>(d);
            }
            cfg.caps_set = true;
        } else if (key_is(key, key_len, "no_new_privs")) {
            int v = parse_uint(val, static_cast<std::size_t>(vlen), 1);
            if (v < 0) return "expects 0 or 1";
            cfg.no_new_privs = v == 1;
        } else if (key_is(key, key_len, "seccomp")) {
            std::size_t n = static_cast<std::size_t>(vlen);
            if (n == 0 || n % Config::kSockFilterSize != 0 || n / Config::kSockFilterSize > Config::kBpfMaxInsns)
                return "expects a BPF program of 1 to 4096 instructions";
            cfg.seccomp = val;
            cfg.seccomp_len = n;
        } else {
            return "unknown key";
        }
        pos = end + 1;
    }
    *bad = nullptr;
    if (cfg.argc == 0) return "no command given";
    return nullptr;
}

}  // namespace srinit
