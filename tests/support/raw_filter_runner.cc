#include "support/raw_filter_runner.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace pwru::test {
namespace {

// ---- raw instruction builders (the runner is independent of the translator) --

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst;
    i.src_reg = src;
    i.off = off;
    i.imm = imm;
    return i;
}
bpf_insn mov64_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn mov64_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn add64_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm); }
bpf_insn add64_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0); }
bpf_insn ldx(uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
    return insn(BPF_LDX | BPF_MEM | size, dst, src, off, 0);
}
bpf_insn st_imm(uint8_t size, uint8_t dst, int16_t off, int32_t imm) {
    return insn(BPF_ST | BPF_MEM | size, dst, 0, off, imm);
}
bpf_insn jmp_imm(uint8_t op, uint8_t dst, int32_t imm, int16_t off) {
    return insn(BPF_JMP | op | BPF_K, dst, 0, off, imm);
}
bpf_insn jmp_reg(uint8_t op, uint8_t dst, uint8_t src, int16_t off) {
    return insn(BPF_JMP | op | BPF_X, dst, src, off, 0);
}
bpf_insn to_be(uint8_t dst, int bits) { return insn(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits); }
bpf_insn call_helper(int32_t id) { return insn(BPF_JMP | BPF_CALL, 0, 0, 0, id); }
bpf_insn pseudo_call() { return insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// R<dst> = map fd (two slots).
void emit_ld_map_fd(std::vector<bpf_insn>& out, uint8_t dst, int fd) {
    out.push_back(insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd));
    out.push_back(insn(0, 0, 0, 0, 0));
}

// R0 = bpf_map_lookup_elem(map, &(u32)0), key at R10-4.
void emit_lookup_elem0(std::vector<bpf_insn>& out, int map_fd) {
    out.push_back(st_imm(BPF_W, BPF_REG_10, -4, 0));
    out.push_back(mov64_reg(BPF_REG_2, BPF_REG_10));
    out.push_back(add64_imm(BPF_REG_2, -4));
    emit_ld_map_fd(out, BPF_REG_1, map_fd);
    out.push_back(call_helper(BPF_FUNC_map_lookup_elem));
}

// main: look up the window, call the filter (right after main), return its
// verdict. Returns the index of the pseudo call to patch.
size_t emit_main(std::vector<bpf_insn>& out, int window_map_fd) {
    emit_lookup_elem0(out, window_map_fd);
    out.push_back(jmp_imm(BPF_JNE, BPF_REG_0, 0, 2));
    out.push_back(mov64_imm(BPF_REG_0, 0));
    out.push_back(exit_insn());
    out.push_back(mov64_reg(BPF_REG_1, BPF_REG_0));
    size_t call = out.size();
    out.push_back(pseudo_call());
    out.push_back(exit_insn());
    return call;
}

// long pkt_load_slow(w = R1, off = R2, size = R3): reads the packet map.
void emit_slow_loader(std::vector<bpf_insn>& out, int packet_map_fd) {
    constexpr uint8_t W = BPF_REG_6, OFF = BPF_REG_7, SIZE = BPF_REG_8;
    out.push_back(mov64_reg(W, BPF_REG_1));
    out.push_back(mov32_reg(OFF, BPF_REG_2));  // the argument is a __u32
    out.push_back(mov32_reg(SIZE, BPF_REG_3));
    // off + size > w->len (in 64 bits: no wrap) -> -1
    out.push_back(mov64_reg(BPF_REG_4, OFF));
    out.push_back(add64_reg(BPF_REG_4, SIZE));
    out.push_back(ldx(BPF_W, BPF_REG_5, W, PWRU_PKT_WINDOW_OFF_LEN));
    size_t fail_len = out.size();
    out.push_back(jmp_reg(BPF_JGT, BPF_REG_4, BPF_REG_5, 0));
    // Bound for the verifier; the map value has 4 spare bytes past the max.
    size_t fail_bound = out.size();
    out.push_back(jmp_imm(BPF_JGT, OFF, static_cast<int32_t>(kRawRunnerMaxPacket), 0));
    emit_lookup_elem0(out, packet_map_fd);
    size_t fail_null = out.size();
    out.push_back(jmp_imm(BPF_JEQ, BPF_REG_0, 0, 0));
    out.push_back(add64_reg(BPF_REG_0, OFF));
    out.push_back(jmp_imm(BPF_JEQ, SIZE, 1, 7));  // -> byte
    out.push_back(jmp_imm(BPF_JEQ, SIZE, 2, 3));  // -> half
    out.push_back(ldx(BPF_W, BPF_REG_0, BPF_REG_0, 0));
    out.push_back(to_be(BPF_REG_0, 32));
    out.push_back(exit_insn());
    out.push_back(ldx(BPF_H, BPF_REG_0, BPF_REG_0, 0));  // half
    out.push_back(to_be(BPF_REG_0, 16));
    out.push_back(exit_insn());
    out.push_back(ldx(BPF_B, BPF_REG_0, BPF_REG_0, 0));  // byte
    out.push_back(exit_insn());
    size_t fail = out.size();
    out.push_back(mov64_imm(BPF_REG_0, -1));
    out.push_back(exit_insn());
    for (size_t j : {fail_len, fail_bound, fail_null}) out[j].off = static_cast<int16_t>(fail - j - 1);
}

// Aims the pseudo call at `at` to instruction `target`.
void aim_call(std::vector<bpf_insn>& prog, size_t at, size_t target) {
    prog[at].imm = static_cast<int32_t>(static_cast<long>(target) - static_cast<long>(at) - 1);
}

std::vector<bpf_insn> build_program(const TranslatedFilter& filter, int window_map_fd, int packet_map_fd) {
    std::vector<bpf_insn> prog;
    size_t main_call = emit_main(prog, window_map_fd);
    size_t filter_start = prog.size();
    prog.insert(prog.end(), filter.insns.begin(), filter.insns.end());
    aim_call(prog, main_call, filter_start);
    // The verifier refuses unreachable code: no loader when nothing calls it.
    if (filter.slow_load_calls.empty()) return prog;
    size_t loader_start = prog.size();
    emit_slow_loader(prog, packet_map_fd);
    for (size_t c : filter.slow_load_calls) aim_call(prog, filter_start + c, loader_start);
    return prog;
}

Result<UniqueFd> create_array(const char* name, uint32_t value_size) {
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(uint32_t), value_size, 1, nullptr);
    if (fd < 0) return fail(std::string("bpf_map_create ") + name, errno);
    return UniqueFd(fd);
}

// The verifier log of a failed load (loaded again with log_level 1).
std::string verifier_log(const std::vector<bpf_insn>& prog) {
    std::string log(1 << 22, '\0');
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1, .log_size = static_cast<__u32>(log.size()),
                .log_buf = log.data());
    int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "raw_filter", "GPL", prog.data(), prog.size(), &opts);
    if (fd >= 0) ::close(fd);
    log.resize(std::strlen(log.c_str()));
    constexpr size_t kTail = 12000;  // the end of the log says what failed
    return log.size() > kTail ? "..." + log.substr(log.size() - kTail) : log;
}

}  // namespace

Result<RawFilterRunner> RawFilterRunner::create() {
    RawFilterRunner r;
    auto window = create_array("pwru_raw_win", sizeof(pwru_pkt_window));
    if (!window) return std::unexpected(window.error());
    auto packet = create_array("pwru_raw_pkt", kRawRunnerMaxPacket + 4);
    if (!packet) return std::unexpected(packet.error());
    r.window_map_ = std::move(*window);
    r.packet_map_ = std::move(*packet);
    return r;
}

Result<size_t> RawFilterRunner::load(const TranslatedFilter& filter) {
    std::vector<bpf_insn> prog = build_program(filter, window_map_.get(), packet_map_.get());
    int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "raw_filter", "GPL", prog.data(), prog.size(), nullptr);
    if (fd < 0) {
        int err = errno;
        return fail("the verifier rejected the translated filter", err, verifier_log(prog));
    }
    progs_.emplace_back(fd);
    sizes_.push_back(prog.size());
    return progs_.size() - 1;
}

size_t RawFilterRunner::verified_insns(size_t handle) const {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(progs_.at(handle).get(), &info, &len) != 0) return 0;
    return info.verified_insns;
}

Result<void> RawFilterRunner::set_packet(std::span<const uint8_t> packet, uint32_t window_limit) {
    if (packet.size() > kRawRunnerMaxPacket) return fail("packet longer than the raw runner holds");
    pwru_pkt_window w{};
    size_t copied = std::min<size_t>({packet.size(), window_limit, PWRU_PKT_WINDOW});
    std::memcpy(w.data, packet.data(), copied);
    w.copied = static_cast<uint32_t>(copied);
    w.len = static_cast<uint32_t>(packet.size());
    w.linear = w.len;
    std::vector<uint8_t> full(kRawRunnerMaxPacket + 4, 0);
    std::copy(packet.begin(), packet.end(), full.begin());
    uint32_t key = 0;
    if (bpf_map_update_elem(window_map_.get(), &key, &w, BPF_ANY) != 0) return fail("update window map", errno);
    if (bpf_map_update_elem(packet_map_.get(), &key, full.data(), BPF_ANY) != 0)
        return fail("update packet map", errno);
    return {};
}

Result<int> RawFilterRunner::run(size_t handle) const {
    // SOCKET_FILTER test runs need an skb of at least ETH_HLEN bytes; the
    // filter does not look at it.
    uint8_t dummy[64] = {};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = dummy, .data_size_in = sizeof(dummy));
    if (bpf_prog_test_run_opts(progs_.at(handle).get(), &opts) != 0) return fail("BPF_PROG_TEST_RUN", errno);
    return static_cast<int>(opts.retval);
}

Result<std::vector<int>> run_raw_filter(const TranslatedFilter& filter,
                                        const std::vector<std::vector<uint8_t>>& packets) {
    auto runner = RawFilterRunner::create();
    if (!runner) return std::unexpected(runner.error());
    auto handle = runner->load(filter);
    if (!handle) return std::unexpected(handle.error());
    std::vector<int> verdicts;
    for (const auto& p : packets) {
        if (auto ok = runner->set_packet(p); !ok) return std::unexpected(ok.error());
        auto v = runner->run(*handle);
        if (!v) return std::unexpected(v.error());
        verdicts.push_back(*v);
    }
    return verdicts;
}

}  // namespace pwru::test
