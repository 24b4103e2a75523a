#include "launcher/cgroup_v2_devices.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "launcher/devices.hpp"
#include "launcher/error.hpp"

namespace srl {

namespace fs = std::filesystem;

namespace {

long bpf(int cmd, bpf_attr& attr) { return syscall(SYS_bpf, cmd, &attr, sizeof attr); }

// The few eBPF instruction shapes the program needs (linux/filter.h's macros are not in the
// UAPI headers).
constexpr bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}
constexpr bpf_insn load_u32(uint8_t dst, int16_t ctx_offset) {
    return insn(BPF_LDX | BPF_W | BPF_MEM, dst, BPF_REG_1, ctx_offset, 0);
}
constexpr bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
constexpr bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
constexpr bpf_insn mov64_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
constexpr bpf_insn jne_imm(uint8_t dst, int32_t imm) { return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm); }
constexpr bpf_insn jne_reg(uint8_t dst, uint8_t src) { return insn(BPF_JMP | BPF_JNE | BPF_X, dst, src, 0, 0); }
constexpr bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int32_t access_bits(const std::string& access) {
    int32_t bits = 0;
    for (char c : access)
        bits |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
    return bits;
}
constexpr int32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

// One rule: each test that fails jumps past the block, to the next rule; a request that
// passes them all gets the rule's verdict. Registers as the prologue leaves them.
void append_rule(std::vector<bpf_insn>& prog, const DeviceRule& r) {
    size_t start = prog.size();
    int32_t bits = access_bits(r.access);
    if (r.type != 'a') prog.push_back(jne_imm(BPF_REG_2, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    if (bits != kAllAccess) {
        // Every access asked for must be in the rule's: (request & rule) == request.
        prog.push_back(mov32_reg(BPF_REG_1, BPF_REG_3));
        prog.push_back(alu32_imm(BPF_AND, BPF_REG_1, bits));
        prog.push_back(jne_reg(BPF_REG_1, BPF_REG_3));
    }
    if (r.major >= 0) prog.push_back(jne_imm(BPF_REG_4, static_cast<int32_t>(r.major)));
    if (r.minor >= 0) prog.push_back(jne_imm(BPF_REG_5, static_cast<int32_t>(r.minor)));
    prog.push_back(mov64_imm(BPF_REG_0, r.allow ? 1 : 0));
    prog.push_back(exit_insn());
    size_t next = prog.size();
    for (size_t i = start; i < next; ++i)
        if (BPF_CLASS(prog[i].code) == BPF_JMP && BPF_OP(prog[i].code) == BPF_JNE)
            prog[i].off = static_cast<int16_t>(next - (i + 1));
}

}  // namespace

std::optional<std::vector<bpf_insn>> compile_device_program(const std::vector<DeviceRule>& rules) {
    // A fresh cgroup allows everything, as v1's does below an unrestricted parent; a
    // wildcard rule resets that, and only rules after the last reset matter.
    bool default_allow = true;
    size_t first = 0;
    for (size_t i = 0; i < rules.size(); ++i)
        if (resets_all(rules[i])) {
            default_allow = rules[i].allow;
            first = i + 1;
        }
    bool all_allow = default_allow;
    for (size_t i = first; i < rules.size(); ++i) all_allow = all_allow && rules[i].allow;
    if (all_allow) return std::nullopt;

    std::vector<bpf_insn> prog = {
        // r1 = struct bpf_cgroup_dev_ctx*: access_type = (access << 16) | type.
        load_u32(BPF_REG_2, offsetof(bpf_cgroup_dev_ctx, access_type)),
        alu32_imm(BPF_AND, BPF_REG_2, 0xffff),  // r2: BPF_DEVCG_DEV_*
        load_u32(BPF_REG_3, offsetof(bpf_cgroup_dev_ctx, access_type)),
        alu32_imm(BPF_RSH, BPF_REG_3, 16),       // r3: BPF_DEVCG_ACC_*
        load_u32(BPF_REG_4, offsetof(bpf_cgroup_dev_ctx, major)),
        load_u32(BPF_REG_5, offsetof(bpf_cgroup_dev_ctx, minor)),
    };
    // The last matching rule decides, so the checks run from the last rule back.
    for (size_t i = rules.size(); i-- > first;) append_rule(prog, rules[i]);
    prog.push_back(mov64_imm(BPF_REG_0, default_allow ? 1 : 0));
    prog.push_back(exit_insn());
    return prog;
}

Fd load_device_program(const std::vector<bpf_insn>& insns) {
    static const char license[] = "GPL";
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<uint64_t>(insns.data());
    attr.insn_cnt = static_cast<uint32_t>(insns.size());
    attr.license = reinterpret_cast<uint64_t>(license);
    std::strncpy(attr.prog_name, "srlaunch_dev", sizeof attr.prog_name - 1);  // what bpftool shows
    long fd = bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0) return Fd(static_cast<int>(fd));
    int err = errno;
    // Loaded again with the verifier's log only on failure: asking for it costs time.
    std::string log(64 * 1024, '\0');
    attr.log_level = 1;
    attr.log_buf = reinterpret_cast<uint64_t>(log.data());
    attr.log_size = static_cast<uint32_t>(log.size());
    fd = bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0) return Fd(static_cast<int>(fd));  // a transient failure (EAGAIN...)
    log.resize(std::strlen(log.c_str()));
    while (!log.empty() && log.back() == '\n') log.pop_back();
    throw Error("load the cgroup v2 device program" + (log.empty() ? std::string() : " (verifier: " + log + ")"), err);
}

void attach_device_program(const Fd& cgroup_dir, const Fd& program) {
    bpf_attr attr{};
    attr.target_fd = static_cast<uint32_t>(cgroup_dir.get());
    attr.attach_bpf_fd = static_cast<uint32_t>(program.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (bpf(BPF_PROG_ATTACH, attr) < 0) throw_errno("attach the device program to the cgroup");
}

void apply_device_rules(const fs::path& cgroup_dir, const std::vector<DeviceRule>& rules) {
    auto insns = compile_device_program(rules);
    if (!insns) return;
    Fd dir(check(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open " + cgroup_dir.string()));
    Fd program = load_device_program(*insns);
    attach_device_program(dir, program);
}

std::vector<uint32_t> attached_device_programs(const fs::path& cgroup_dir) {
    Fd dir(check(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open " + cgroup_dir.string()));
    std::vector<uint32_t> ids(64);
    bpf_attr attr{};
    attr.query.target_fd = static_cast<uint32_t>(dir.get());
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (bpf(BPF_PROG_QUERY, attr) < 0) throw_errno("query the device programs of " + cgroup_dir.string());
    ids.resize(attr.query.prog_cnt);
    return ids;
}

}  // namespace srl
