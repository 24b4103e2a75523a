// Seccomp profiles: Docker's/OCI's JSON format in, libseccomp's BPF out. The parser is strict
// (an unknown action, operator, architecture or system call is an error naming the file and
// the item) because a typo in a security profile must not quietly allow or deny something.
#include "launcher/seccomp.hpp"

#include <seccomp.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "launcher/capabilities.hpp"
#include "launcher/error.hpp"
#include "launcher/fd.hpp"

namespace srl {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& where, const std::string& what) {
    throw Error("seccomp profile " + source + ": " + (where.empty() ? "" : where + ": ") + what);
}

// Go's architecture names (Docker's includes/excludes "arches" use them) and the aliases
// Docker's profiles write for the x86 family.
constexpr const char* kGoArches[] = {"386", "x86", "amd64", "x32", "arm", "arm64", "mips", "mipsle", "mipsel",
                                     "mips64", "mips64le", "mipsel64", "mips64n32", "mipsel64n32", "ppc", "ppc64",
                                     "ppc64le", "s390", "s390x", "riscv64", "loong64", "parisc", "parisc64"};

// The names under which a rule's "arches" mean the machine we run on.
std::vector<std::string> native_arch_names() {
    switch (seccomp_arch_native()) {
        case SCMP_ARCH_X86_64: return {"amd64", "x86_64"};
        case SCMP_ARCH_AARCH64: return {"arm64", "aarch64"};
        case SCMP_ARCH_X86: return {"386", "x86"};
        case SCMP_ARCH_ARM: return {"arm"};
        case SCMP_ARCH_PPC64LE: return {"ppc64le"};
        case SCMP_ARCH_S390X: return {"s390x"};
        case SCMP_ARCH_RISCV64: return {"riscv64"};
        default: return {};
    }
}

std::pair<int, int> running_kernel() {
    static const std::pair<int, int> version = [] {
        utsname u{};
        int major = 0, minor = 0;
        if (uname(&u) == 0) std::sscanf(u.release, "%d.%d", &major, &minor);
        return std::pair{major, minor};
    }();
    return version;
}

class Parser {
public:
    explicit Parser(const std::string& source) : source_(source) {}

    SeccompProfile profile(const json& doc) {
        if (!doc.is_object()) fail("", "expected a JSON object");
        SeccompProfile p;
        p.source = source_;
        std::optional<uint64_t> default_errno;
        if (auto it = doc.find("defaultErrnoRet"); it != doc.end() && !it->is_null())
            default_errno = number(*it, "defaultErrnoRet");
        auto def = doc.find("defaultAction");
        if (def == doc.end()) fail("", "no defaultAction");
        p.default_action = action(string(*def, "defaultAction"), default_errno, "defaultAction");
        for (const auto& name : strings(doc, "architectures", "architectures")) add_arch(p, name, "architectures");
        // Docker's archMap: the entry of the machine we run on brings its sub-architectures
        // (x86_64: x86 and x32), so 32-bit programs are filtered rather than killed.
        if (auto map = doc.find("archMap"); map != doc.end() && !map->is_null()) {
            if (!map->is_array()) fail("archMap", "expected an array");
            for (size_t i = 0; i < map->size(); ++i) {
                std::string where = "archMap[" + std::to_string(i) + "]";
                const json& entry = (*map)[i];
                if (!entry.is_object() || !entry.contains("architecture")) fail(where, "expected {architecture, subArchitectures}");
                uint32_t arch = arch_token(string(entry["architecture"], where + ".architecture"), where);
                auto subs = strings(entry, "subArchitectures", where + ".subArchitectures");
                for (const auto& s : subs) arch_token(s, where + ".subArchitectures");
                if (arch != seccomp_arch_native()) continue;
                for (const auto& s : subs) add_arch(p, s, where);
            }
        }
        if (auto flags = doc.find("flags"); flags != doc.end() && !flags->is_null() && !flags->empty())
            fail("flags", "filter flags are not supported");
        if (auto listener = doc.find("listenerPath"); listener != doc.end() && listener->is_string() && !listener->get<std::string>().empty())
            fail("listenerPath", "SCMP_ACT_NOTIFY listeners are not supported");
        if (auto calls = doc.find("syscalls"); calls != doc.end() && !calls->is_null()) {
            if (!calls->is_array()) fail("syscalls", "expected an array");
            for (size_t i = 0; i < calls->size(); ++i) p.rules.push_back(rule((*calls)[i], "syscalls[" + std::to_string(i) + "]"));
        }
        return p;
    }

private:
    [[noreturn]] void fail(const std::string& where, const std::string& what) const { srl::fail(source_, where, what); }

    std::string string(const json& v, const std::string& where) const {
        if (!v.is_string()) fail(where, "expected a string");
        return v.get<std::string>();
    }
    uint64_t number(const json& v, const std::string& where) const {
        if (!v.is_number_unsigned()) fail(where, "expected a non-negative integer");
        return v.get<uint64_t>();
    }
    // An optional array of strings under key; null and absent are empty.
    std::vector<std::string> strings(const json& obj, const char* key, const std::string& where) const {
        std::vector<std::string> out;
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return out;
        if (!it->is_array()) fail(where, "expected an array of strings");
        for (const auto& v : *it) out.push_back(string(v, where));
        return out;
    }

    uint32_t action(const std::string& name, std::optional<uint64_t> ret, const std::string& where) const {
        // The OCI spec: ERRNO and TRACE without errnoRet return EPERM.
        uint64_t value = ret.value_or(EPERM);
        if (value > 0xffff) fail(where, "errnoRet " + std::to_string(value) + " is out of range");
        if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
        if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(static_cast<uint16_t>(value));
        if (name == "SCMP_ACT_KILL") return SCMP_ACT_KILL;
        if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
        if (name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
        if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
        if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(static_cast<uint16_t>(value));
        if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
        fail(where, "unknown action \"" + name + "\"");
    }

    uint32_t arch_token(const std::string& name, const std::string& where) const {
        // SCMP_ARCH_X86_64 -> libseccomp's "x86_64".
        uint32_t token = 0;
        if (name.rfind("SCMP_ARCH_", 0) == 0) {
            std::string lower = name.substr(10);
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (lower != "native") token = seccomp_arch_resolve_name(lower.c_str());
        }
        if (token == 0) fail(where, "unknown architecture \"" + name + "\"");
        return token;
    }
    void add_arch(SeccompProfile& p, const std::string& name, const std::string& where) const {
        uint32_t token = arch_token(name, where);
        if (token != seccomp_arch_native() && std::find(p.arches.begin(), p.arches.end(), token) == p.arches.end())
            p.arches.push_back(token);
    }

    int op(const std::string& name, const std::string& where) const {
        static const std::pair<const char*, int> ops[] = {
            {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
            {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
            {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
        for (const auto& [n, v] : ops)
            if (name == n) return v;
        fail(where, "unknown operator \"" + name + "\"");
    }

    SeccompCondition condition(const json& obj, const char* key, const std::string& where) const {
        SeccompCondition c;
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return c;
        if (!it->is_object()) fail(where, "expected an object");
        for (const auto& cap : strings(*it, "caps", where + ".caps")) {
            try {
                c.caps |= uint64_t(1) << capability_number(cap);
            } catch (const Error& e) {
                fail(where + ".caps", e.what());
            }
        }
        for (const auto& a : strings(*it, "arches", where + ".arches")) {
            if (std::find_if(std::begin(kGoArches), std::end(kGoArches), [&](const char* g) { return a == g; }) ==
                std::end(kGoArches))
                fail(where + ".arches", "unknown architecture \"" + a + "\"");
            c.arches.push_back(a);
        }
        if (auto k = it->find("minKernel"); k != it->end() && !k->is_null()) {
            std::string v = string(*k, where + ".minKernel");
            int major = 0, minor = 0;
            char tail = 0;
            if (std::sscanf(v.c_str(), "%d.%d%c", &major, &minor, &tail) < 2 || (tail && tail != '.'))
                fail(where + ".minKernel", "expected a kernel version like \"4.8\", not \"" + v + "\"");
            c.min_kernel = std::pair{major, minor};
        }
        return c;
    }

    SeccompRule rule(const json& v, const std::string& where) const {
        if (!v.is_object()) fail(where, "expected an object");
        SeccompRule r;
        r.names = strings(v, "names", where + ".names");
        if (auto name = v.find("name"); name != v.end() && !name->is_null()) r.names.push_back(string(*name, where + ".name"));
        if (r.names.empty()) fail(where, "no system call names");
        for (const auto& n : r.names)
            if (seccomp_syscall_resolve_name(n.c_str()) == __NR_SCMP_ERROR) fail(where, "unknown system call \"" + n + "\"");
        std::optional<uint64_t> ret;
        if (auto e = v.find("errnoRet"); e != v.end() && !e->is_null()) ret = number(*e, where + ".errnoRet");
        auto act = v.find("action");
        if (act == v.end()) fail(where, "no action");
        r.action = action(string(*act, where + ".action"), ret, where + ".action");
        if (auto args = v.find("args"); args != v.end() && !args->is_null()) {
            if (!args->is_array()) fail(where + ".args", "expected an array");
            for (size_t i = 0; i < args->size(); ++i) {
                std::string at = where + ".args[" + std::to_string(i) + "]";
                const json& a = (*args)[i];
                if (!a.is_object() || !a.contains("index") || !a.contains("value") || !a.contains("op"))
                    fail(at, "expected {index, value, valueTwo, op}");
                SeccompArg arg;
                uint64_t index = number(a["index"], at + ".index");
                if (index > 5) fail(at + ".index", "a system call has arguments 0 to 5");
                arg.index = static_cast<unsigned>(index);
                arg.value = number(a["value"], at + ".value");
                if (a.contains("valueTwo") && !a["valueTwo"].is_null()) arg.value_two = number(a["valueTwo"], at + ".valueTwo");
                arg.op = op(string(a["op"], at + ".op"), at + ".op");
                r.args.push_back(arg);
            }
        }
        r.includes = condition(v, "includes", where + ".includes");
        r.excludes = condition(v, "excludes", where + ".excludes");
        return r;
    }

    const std::string& source_;
};

bool applies(const SeccompRule& r, uint64_t caps, const std::vector<std::string>& arch_names) {
    auto arch_in = [&](const std::vector<std::string>& list) {
        return std::any_of(list.begin(), list.end(),
                           [&](const std::string& a) { return std::find(arch_names.begin(), arch_names.end(), a) != arch_names.end(); });
    };
    auto kernel = running_kernel();
    if (arch_in(r.excludes.arches) || (r.excludes.caps & caps) != 0) return false;
    if (r.excludes.min_kernel && kernel >= *r.excludes.min_kernel) return false;
    if (!r.includes.arches.empty() && !arch_in(r.includes.arches)) return false;
    if ((r.includes.caps & caps) != r.includes.caps) return false;
    if (r.includes.min_kernel && kernel < *r.includes.min_kernel) return false;
    return true;
}

// scmp_filter_ctx, released exactly once.
class FilterContext {
public:
    explicit FilterContext(uint32_t default_action) : ctx_(seccomp_init(default_action)) {
        if (!ctx_) throw Error("seccomp_init failed");
    }
    ~FilterContext() { seccomp_release(ctx_); }
    FilterContext(const FilterContext&) = delete;
    FilterContext& operator=(const FilterContext&) = delete;
    scmp_filter_ctx get() const { return ctx_; }

private:
    scmp_filter_ctx ctx_;
};

void add_rule(const SeccompProfile& p, scmp_filter_ctx ctx, const SeccompRule& r, const std::string& name) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
        if (p.skip_unknown_syscalls) return;
        fail(p.source, "", "unknown system call \"" + name + "\"");
    }
    // libseccomp refuses a rule whose action is the default one; it would change nothing.
    if (r.action == p.default_action) return;
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& a : r.args) cmps.push_back({a.index, static_cast<scmp_compare>(a.op), a.value, a.value_two});
    auto add = [&](const scmp_arg_cmp* c, unsigned n) {
        int rc = seccomp_rule_add_array(ctx, r.action, nr, n, c);
        if (rc < 0) fail(p.source, "", "cannot add the rule for \"" + name + "\": " + std::strerror(-rc));
    };
    // Two conditions on one argument cannot both hold in a single libseccomp rule: as runc
    // does, each becomes a rule of its own (so they are alternatives).
    bool repeated = false;
    for (size_t i = 0; i < cmps.size(); ++i)
        for (size_t j = i + 1; j < cmps.size(); ++j) repeated = repeated || cmps[i].arg == cmps[j].arg;
    if (repeated)
        for (const auto& c : cmps) add(&c, 1);
    else
        add(cmps.data(), static_cast<unsigned>(cmps.size()));
}

}  // namespace

SeccompProfile parse_seccomp_profile(const std::string& json_text, const std::string& source) {
    json doc;
    try {
        doc = json::parse(json_text);
    } catch (const json::parse_error& e) {
        // nlohmann's text after its "[json.exception.parse_error.101] " tag is one line.
        std::string what = e.what();
        if (auto close = what.find("] "); what.rfind("[json.", 0) == 0 && close != std::string::npos) what.erase(0, close + 2);
        fail(source, "", "malformed JSON: " + what);
    }
    try {
        return Parser(source).profile(doc);
    } catch (const json::exception& e) {
        fail(source, "", e.what());
    }
}

SeccompProfile load_seccomp_profile(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("seccomp profile " + file.string(), errno);
    std::ostringstream text;
    text << in.rdbuf();
    return parse_seccomp_profile(text.str(), file.string());
}

std::string compile_seccomp(const SeccompProfile& profile, uint64_t capabilities) {
    FilterContext ctx(profile.default_action);
    // srinit installs the filter itself while it still holds CAP_SYS_ADMIN; whether the
    // workload gets no_new_privs is the user's choice (--security-opt no-new-privileges).
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); rc < 0) throw Error("seccomp: clear NNP", -rc);
    // A binary search over system call numbers rather than a linear chain: every system call
    // of the container passes through this filter.
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) throw Error("seccomp: optimize", -rc);
    for (uint32_t arch : profile.arches)
        if (int rc = seccomp_arch_add(ctx.get(), arch); rc < 0 && rc != -EEXIST)
            fail(profile.source, "", std::string("cannot add architecture: ") + std::strerror(-rc));
    auto arch_names = native_arch_names();
    for (const auto& rule : profile.rules) {
        if (!applies(rule, capabilities, arch_names)) continue;
        for (const auto& name : rule.names) add_rule(profile, ctx.get(), rule, name);
    }
    Fd mem(check(memfd_create("seccomp-bpf", MFD_CLOEXEC), "memfd_create"));
    if (int rc = seccomp_export_bpf(ctx.get(), mem.get()); rc < 0) throw Error("export the seccomp filter", -rc);
    struct stat st {};
    check(fstat(mem.get(), &st), "stat the seccomp filter");
    std::string bpf(static_cast<size_t>(st.st_size), '\0');
    if (pread(mem.get(), bpf.data(), bpf.size(), 0) != static_cast<ssize_t>(bpf.size())) throw_errno("read the seccomp filter");
    if (bpf.empty() || bpf.size() % sizeof(sock_filter) != 0) fail(profile.source, "", "libseccomp produced no filter");
    if (bpf.size() / sizeof(sock_filter) > BPF_MAXINSNS)
        fail(profile.source, "", "the filter has " + std::to_string(bpf.size() / sizeof(sock_filter)) +
                                     " instructions, more than the kernel's " + std::to_string(BPF_MAXINSNS));
    return bpf;
}

}  // namespace srl
