// cBPF -> eBPF translation. See cbpf_translate.h for the calling convention.
//
// Shape of the output:
//   prologue      r8 = w, r9 = w->copied, zero what is read before written
//   body          one block per reachable cBPF instruction, in cBPF order, so
//                 cBPF fall-through stays eBPF fall-through; a loop head
//                 starts with its budget reset, a backward jump spends budget
//   slow blocks   out of line: the pkt_load_slow() call of every load that
//                 has an inline fast path, each jumping back after its load
//                 (the fast path then costs no taken jump)
//   reject        w0 = 0; exit (shared by failed loads, division by zero and
//                 an exhausted loop budget)
//
// Semantics follow libpcap's bpf_filter() (1.10): A and X are 32-bit
// unsigned, a load with off + size > len rejects the packet, division or
// modulo by X == 0 rejects it, a shift by X >= 32 gives 0, `ja` sign-extends
// its offset. R6/R7 always hold
// zero-extended 32-bit values: every write to them is a 32-bit ALU op, a
// zero-extending load or a byte swap.
#include "tracer/filter/cbpf_translate.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "pwru_abi.h"

namespace pwru {
namespace {

// ---- registers and stack layout -------------------------------------------

constexpr uint8_t R0 = BPF_REG_0;        // return value, slow-load result
constexpr uint8_t R1 = BPF_REG_1;        // argument 1 (w)
constexpr uint8_t R2 = BPF_REG_2;        // argument 2 (off), temporary
constexpr uint8_t R3 = BPF_REG_3;        // argument 3 (size), temporary
constexpr uint8_t R_A = BPF_REG_6;       // cBPF accumulator
constexpr uint8_t R_X = BPF_REG_7;       // cBPF index register
constexpr uint8_t R_W = BPF_REG_8;       // struct pwru_pkt_window *
constexpr uint8_t R_COPIED = BPF_REG_9;  // w->copied, loaded once
constexpr uint8_t R_FP = BPF_REG_10;

constexpr int kMemWords = 16;  // BPF_MEMWORDS

// M[k] lives at R10 - 64 + 4k.
int16_t mem_slot_off(uint32_t k) { return static_cast<int16_t>(-4 * kMemWords + 4 * static_cast<int>(k)); }

// The loop budget (programs with backward jumps only): a u64 at R10 - 72,
// 8 bytes so that the verifier tracks its constant value through spills.
constexpr int16_t kBudgetOff = -4 * kMemWords - 8;

// Linux cBPF encodes extension loads (skb metadata, SKF_NET_OFF/SKF_LL_OFF
// relative loads) as offsets >= SKF_LL_OFF seen as unsigned.
constexpr uint32_t kFirstExtensionOff = static_cast<uint32_t>(SKF_LL_OFF);

// ---- instruction builders ----------------------------------------------------

bpf_insn make_insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn insn{};
    insn.code = code;
    insn.dst_reg = dst;
    insn.src_reg = src;
    insn.off = off;
    insn.imm = imm;
    return insn;
}

// Bit patterns of a u32 immediate: 32-bit ALU and JMP32 use only the low 32 bits.
int32_t imm32(uint32_t k) { return static_cast<int32_t>(k); }

bpf_insn alu32_imm(uint8_t op, uint8_t dst, uint32_t k) { return make_insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm32(k)); }
bpf_insn alu32_reg(uint8_t op, uint8_t dst, uint8_t src) { return make_insn(BPF_ALU | op | BPF_X, dst, src, 0, 0); }
bpf_insn alu64_imm(uint8_t op, uint8_t dst, int32_t imm) { return make_insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn alu64_reg(uint8_t op, uint8_t dst, uint8_t src) { return make_insn(BPF_ALU64 | op | BPF_X, dst, src, 0, 0); }
bpf_insn mov32_imm(uint8_t dst, uint32_t k) { return alu32_imm(BPF_MOV, dst, k); }
bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return alu32_reg(BPF_MOV, dst, src); }
bpf_insn mov64_reg(uint8_t dst, uint8_t src) { return alu64_reg(BPF_MOV, dst, src); }
bpf_insn ldx(uint8_t size, uint8_t dst, uint8_t base, int16_t off) {
    return make_insn(BPF_LDX | BPF_MEM | size, dst, base, off, 0);
}
bpf_insn stx(uint8_t size, uint8_t base, int16_t off, uint8_t src) {
    return make_insn(BPF_STX | BPF_MEM | size, base, src, off, 0);
}
bpf_insn st_imm(uint8_t size, uint8_t base, int16_t off, int32_t imm) {
    return make_insn(BPF_ST | BPF_MEM | size, base, 0, off, imm);
}
bpf_insn to_be(uint8_t dst, int bits) { return make_insn(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bits); }
bpf_insn exit_insn() { return make_insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
bpf_insn pseudo_call() { return make_insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0); }
// Jumps: the offset is filled in by Assembler::finish().
bpf_insn ja() { return make_insn(BPF_JMP | BPF_JA, 0, 0, 0, 0); }
bpf_insn jmp_imm(uint8_t op, uint8_t dst, int32_t imm) { return make_insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm); }
bpf_insn jmp32_imm(uint8_t op, uint8_t dst, uint32_t k) {
    return make_insn(BPF_JMP32 | op | BPF_K, dst, 0, 0, imm32(k));
}
bpf_insn jmp32_reg(uint8_t op, uint8_t dst, uint8_t src) { return make_insn(BPF_JMP32 | op | BPF_X, dst, src, 0, 0); }

// BPF_B/H/W for a load of `size` bytes.
uint8_t size_code(uint32_t size) { return size == 1 ? BPF_B : size == 2 ? BPF_H : BPF_W; }

// Bytes read by a cBPF packet load (BPF_LD|BPF_ABS/IND, BPF_LDX|BPF_MSH).
uint32_t cbpf_load_size(uint16_t code) {
    switch (BPF_SIZE(code)) {
        case BPF_W: return 4;
        case BPF_H: return 2;
        default: return 1;
    }
}

// ---- assembler: instructions plus forward/backward labels -------------------

using Label = size_t;

class Assembler {
  public:
    Label new_label() {
        label_pos_.push_back(std::nullopt);
        return label_pos_.size() - 1;
    }
    void bind(Label l) { label_pos_[l] = insns_.size(); }
    bool is_bound(Label l) const { return label_pos_[l].has_value(); }

    void emit(const bpf_insn& insn) { insns_.push_back(insn); }
    void emit_jump(const bpf_insn& insn, Label target) {
        fixups_.emplace_back(insns_.size(), target);
        insns_.push_back(insn);
    }
    void emit_slow_load_call() {
        calls_.push_back(insns_.size());
        insns_.push_back(pseudo_call());
    }

    Result<TranslatedFilter> finish(size_t cbpf_len) {
        for (auto [at, label] : fixups_) {
            if (!label_pos_[label]) return fail("cBPF translator bug: jump to an unbound label");
            long off = static_cast<long>(*label_pos_[label]) - static_cast<long>(at) - 1;
            if (off < std::numeric_limits<int16_t>::min() || off > std::numeric_limits<int16_t>::max())
                return fail(
                    fmt::format("filter too large: its eBPF translation needs a jump over {} instructions, "
                                "more than the 16-bit eBPF jump offset allows; simplify the expression",
                                off));
            insns_[at].off = static_cast<int16_t>(off);
        }
        TranslatedFilter out;
        out.insns = std::move(insns_);
        out.slow_load_calls = std::move(calls_);
        out.cbpf_len = cbpf_len;
        return out;
    }

  private:
    std::vector<bpf_insn> insns_;
    std::vector<std::optional<size_t>> label_pos_;
    std::vector<std::pair<size_t, Label>> fixups_;
    std::vector<size_t> calls_;
};

// ---- validation ------------------------------------------------------------------

std::string insn_name(size_t i, const sock_filter& f) {
    return fmt::format("cBPF instruction {} (code {:#06x}, k {:#x})", i, f.code, f.k);
}

bool is_packet_load(uint16_t code) {
    switch (code) {
        case BPF_LD | BPF_W | BPF_ABS:
        case BPF_LD | BPF_H | BPF_ABS:
        case BPF_LD | BPF_B | BPF_ABS:
        case BPF_LD | BPF_W | BPF_IND:
        case BPF_LD | BPF_H | BPF_IND:
        case BPF_LD | BPF_B | BPF_IND:
        case BPF_LDX | BPF_B | BPF_MSH: return true;
        default: return false;
    }
}

bool is_scratch_access(uint16_t code) {
    return code == (BPF_LD | BPF_MEM) || code == (BPF_LDX | BPF_MEM) || code == BPF_ST || code == BPF_STX;
}

// Exactly the opcodes libpcap's bpf_filter() executes (the cases of its
// switch); anything else is an error here.
bool is_known_opcode(uint16_t code) {
    if (is_packet_load(code) || is_scratch_access(code)) return true;
    switch (code) {
        case BPF_RET | BPF_K:
        case BPF_RET | BPF_A:
        case BPF_LD | BPF_W | BPF_LEN:
        case BPF_LDX | BPF_W | BPF_LEN:
        case BPF_LD | BPF_IMM:
        case BPF_LDX | BPF_IMM:
        case BPF_JMP | BPF_JA:
        case BPF_MISC | BPF_TAX:
        case BPF_MISC | BPF_TXA:
        case BPF_ALU | BPF_NEG: return true;
        default: break;
    }
    if (BPF_CLASS(code) == BPF_JMP) {
        uint16_t op = BPF_OP(code);
        bool known_op = op == BPF_JEQ || op == BPF_JGT || op == BPF_JGE || op == BPF_JSET;
        return known_op && (code & ~(BPF_JMP | op | BPF_X)) == 0;
    }
    if (BPF_CLASS(code) == BPF_ALU) {
        uint16_t op = BPF_OP(code);
        bool known_op = op == BPF_ADD || op == BPF_SUB || op == BPF_MUL || op == BPF_DIV || op == BPF_MOD ||
                        op == BPF_AND || op == BPF_OR || op == BPF_XOR || op == BPF_LSH || op == BPF_RSH;
        return known_op && (code & ~(BPF_ALU | op | BPF_X)) == 0;
    }
    return false;
}

bool is_jump(uint16_t code) { return BPF_CLASS(code) == BPF_JMP; }
bool is_ret(uint16_t code) { return BPF_CLASS(code) == BPF_RET; }

// Target of `ja k` at i. libpcap's bpf_filter() sign-extends k (its
// `protochain` code jumps backwards), so do we.
long ja_target(size_t i, const sock_filter& f) {
    return static_cast<long>(i) + 1 + static_cast<long>(static_cast<int32_t>(f.k));
}
bool is_backward_ja(size_t i, const sock_filter& f) {
    return f.code == (BPF_JMP | BPF_JA) && ja_target(i, f) <= static_cast<long>(i);
}

Result<void> validate_insn(size_t i, const sock_filter& f, size_t n) {
    if (!is_known_opcode(f.code)) {
        if (BPF_CLASS(f.code) == BPF_MISC)
            return fail(insn_name(i, f) + ": BPF_MISC other than TAX/TXA is not supported");
        return fail(insn_name(i, f) + " not supported");
    }
    if (is_packet_load(f.code) && f.k >= kFirstExtensionOff)
        return fail(insn_name(i, f) +
                    ": filter uses a Linux BPF extension load (SKF_AD_OFF/SKF_NET_OFF/SKF_LL_OFF, e.g. "
                    "inbound/outbound, ifindex or vlan metadata), not supported");
    if (is_scratch_access(f.code) && f.k >= kMemWords)
        return fail(insn_name(i, f) + ": scratch memory slot out of range (M[0..15])");
    bool div_or_mod = BPF_CLASS(f.code) == BPF_ALU && (BPF_OP(f.code) == BPF_DIV || BPF_OP(f.code) == BPF_MOD);
    if (div_or_mod && BPF_SRC(f.code) == BPF_K && f.k == 0)
        return fail(insn_name(i, f) + ": division or modulo by constant zero");
    if (f.code == (BPF_JMP | BPF_JA)) {
        long target = ja_target(i, f);
        if (target < 0)
            return fail(insn_name(i, f) + fmt::format(": backward jump (protochain) to instruction {}, before the "
                                                      "start of the program",
                                                      target));
        if (static_cast<size_t>(target) >= n) return fail(insn_name(i, f) + ": jump out of the program");
    } else if (is_jump(f.code)) {
        if (i + 1 + f.jt >= n || i + 1 + f.jf >= n) return fail(insn_name(i, f) + ": jump out of the program");
    }
    return {};
}

Result<void> validate(const std::vector<sock_filter>& prog) {
    if (prog.empty()) return fail("empty cBPF program");
    for (size_t i = 0; i < prog.size(); ++i) {
        auto ok = validate_insn(i, prog[i], prog.size());
        if (!ok) return ok;
    }
    return {};
}

// ---- analysis: reachability and what must be zeroed at entry -----------------

// State bits: M[0..15], A, X.
constexpr uint32_t kBitA = 1u << kMemWords;
constexpr uint32_t kBitX = 1u << (kMemWords + 1);
constexpr uint32_t kAllBits = (kBitX << 1) - 1;

uint32_t reads_of(const sock_filter& f) {
    uint16_t c = f.code;
    if (c == (BPF_LD | BPF_MEM) || c == (BPF_LDX | BPF_MEM)) return 1u << f.k;
    if (c == BPF_ST || c == (BPF_RET | BPF_A) || c == (BPF_MISC | BPF_TAX)) return kBitA;
    if (c == BPF_STX || c == (BPF_MISC | BPF_TXA)) return kBitX;
    if (BPF_CLASS(c) == BPF_LD && BPF_MODE(c) == BPF_IND) return kBitX;
    if (BPF_CLASS(c) == BPF_ALU) return kBitA | (BPF_SRC(c) == BPF_X && BPF_OP(c) != BPF_NEG ? kBitX : 0);
    if (is_jump(c) && c != (BPF_JMP | BPF_JA)) return kBitA | (BPF_SRC(c) == BPF_X ? kBitX : 0);
    return 0;
}

uint32_t writes_of(const sock_filter& f) {
    uint16_t c = f.code;
    if (c == BPF_ST || c == BPF_STX) return 1u << f.k;
    if (BPF_CLASS(c) == BPF_LD || BPF_CLASS(c) == BPF_ALU || c == (BPF_MISC | BPF_TXA)) return kBitA;
    if (BPF_CLASS(c) == BPF_LDX || c == (BPF_MISC | BPF_TAX)) return kBitX;
    return 0;
}

// Successors of instruction i in a program of n. Jump targets are validated
// to be inside; only the last instruction can fall through past the end.
std::vector<size_t> successors(size_t i, const sock_filter& f, size_t n) {
    if (is_ret(f.code)) return {};
    if (f.code == (BPF_JMP | BPF_JA)) return {static_cast<size_t>(ja_target(i, f))};
    if (is_jump(f.code)) return {i + 1 + f.jt, i + 1 + f.jf};
    if (i + 1 == n) return {};
    return {i + 1};
}

// An inline fast path reads w->data, so the prologue loads w->copied.
bool has_fast_path(const sock_filter& f) {
    if (!is_packet_load(f.code)) return false;
    if (BPF_MODE(f.code) == BPF_IND) return true;
    return uint64_t{f.k} + cbpf_load_size(f.code) <= PWRU_PKT_WINDOW;
}

// How the translation bounds backward jumps (see the translator's loop
// budget below).
enum class BudgetMode {
    kNone,     // no reachable backward jump
    kPerLoop,  // loops do not overlap: the budget is reset on every entry to a loop head
    kGlobal,   // overlapping loops (hand-written cBPF only): one budget for the whole run
};

struct Analysis {
    std::vector<bool> reachable;
    uint32_t zero_at_entry = 0;  // state bits read on some path before any write
    bool needs_copied = false;
    bool loads_packet = false;    // every packet load calls pkt_load_slow somewhere
    std::vector<bool> loop_head;  // target of a reachable backward jump
    BudgetMode budget = BudgetMode::kNone;
};

// Loops: every reachable backward jump j -> t makes t a loop head whose
// region is [t, last j jumping to t]. When the regions are disjoint, control
// enters each region only through its head from below and, once it leaves
// forwards, never comes back (all other jumps go forward): a budget reset
// on every forward entry to a head still bounds the whole run. Otherwise
// one budget for the run.
void find_loops(const std::vector<sock_filter>& prog, Analysis& a) {
    size_t n = prog.size();
    a.loop_head.assign(n, false);
    std::vector<long> region_end(n, -1);
    for (size_t i = 0; i < n; ++i) {
        if (!a.reachable[i] || !is_backward_ja(i, prog[i])) continue;
        auto t = static_cast<size_t>(ja_target(i, prog[i]));
        a.loop_head[t] = true;
        region_end[t] = std::max(region_end[t], static_cast<long>(i));
    }
    long prev_end = -1;
    bool any = false, disjoint = true;
    for (size_t t = 0; t < n; ++t) {
        if (!a.loop_head[t]) continue;
        any = true;
        if (static_cast<long>(t) <= prev_end) disjoint = false;
        prev_end = std::max(prev_end, region_end[t]);
    }
    a.budget = !any ? BudgetMode::kNone : disjoint ? BudgetMode::kPerLoop : BudgetMode::kGlobal;
}

// Reachability, then what is written on every path to each instruction: a
// data-flow fixed point (backward jumps make loops; without them one pass in
// program order suffices and the second finds nothing to change).
Analysis analyze(const std::vector<sock_filter>& prog) {
    size_t n = prog.size();
    Analysis a;
    a.reachable.assign(n, false);
    std::vector<size_t> work = {0};
    a.reachable[0] = true;
    while (!work.empty()) {
        size_t i = work.back();
        work.pop_back();
        for (size_t s : successors(i, prog[i], n))
            if (!a.reachable[s]) a.reachable[s] = true, work.push_back(s);
    }

    std::vector<uint32_t> written_on_all_paths(n, kAllBits);
    written_on_all_paths[0] = 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; ++i) {
            if (!a.reachable[i]) continue;
            uint32_t out = written_on_all_paths[i] | writes_of(prog[i]);
            for (size_t s : successors(i, prog[i], n)) {
                uint32_t narrowed = written_on_all_paths[s] & out;
                changed |= narrowed != written_on_all_paths[s];
                written_on_all_paths[s] = narrowed;
            }
        }
    }
    for (size_t i = 0; i < n; ++i) {
        if (!a.reachable[i]) continue;
        // A backward jump reads A and X (see Translator::forget_ranges).
        uint32_t reads = reads_of(prog[i]) | (is_backward_ja(i, prog[i]) ? kBitA | kBitX : 0);
        a.zero_at_entry |= reads & ~written_on_all_paths[i];
        a.needs_copied |= has_fast_path(prog[i]);
        a.loads_packet |= is_packet_load(prog[i].code);
    }
    find_loops(prog, a);
    return a;
}

// ---- the translator --------------------------------------------------------------

class Translator {
  public:
    Translator(const std::vector<sock_filter>& prog, Analysis analysis) : prog_(prog), analysis_(std::move(analysis)) {
        for (size_t i = 0; i < prog_.size(); ++i) {
            cbpf_label_.push_back(as_.new_label());
            loop_label_.push_back(as_.new_label());
        }
        reject_ = as_.new_label();
    }

    Result<TranslatedFilter> run() {
        prologue();
        for (size_t i = 0; i < prog_.size(); ++i) {
            if (!analysis_.reachable[i]) continue;
            // Forward jumps and fall-through enter at cbpf_label_ (through
            // the budget reset of a loop head), backward jumps at loop_label_.
            as_.bind(cbpf_label_[i]);
            if (analysis_.loop_head[i] && analysis_.budget == BudgetMode::kPerLoop) reset_budget();
            as_.bind(loop_label_[i]);
            translate(i, prog_[i]);
        }
        if (falls_off_the_end()) as_.emit_jump(ja(), reject());
        for (const SlowBlock& b : slow_blocks_) emit_slow_block(b);
        if (reject_used_) {
            as_.bind(reject_);
            as_.emit(mov32_imm(R0, 0));
            as_.emit(exit_insn());
        }
        return as_.finish(prog_.size());
    }

  private:
    // The out-of-line part of a load with an inline fast path.
    struct SlowBlock {
        Label entry;
        Label resume;
        uint8_t dst;
        uint32_t size;
        bool indexed;  // R2 already holds the 64-bit offset (BPF_IND)
        uint32_t k;    // the offset for an absolute load
    };

    Label reject() {
        reject_used_ = true;
        return reject_;
    }

    // libpcap returns 0 when execution runs past the last instruction.
    bool falls_off_the_end() const {
        size_t last = prog_.size() - 1;
        return analysis_.reachable[last] && !is_ret(prog_[last].code) && !is_jump(prog_[last].code);
    }

    void prologue() {
        as_.emit(mov64_reg(R_W, R1));
        if (analysis_.needs_copied) as_.emit(ldx(BPF_W, R_COPIED, R_W, PWRU_PKT_WINDOW_OFF_COPIED));
        // cBPF starts with A = X = M[] = 0; the verifier refuses reads of
        // uninitialised registers and stack, so zero what may be read first.
        if (analysis_.zero_at_entry & kBitA) as_.emit(mov32_imm(R_A, 0));
        if (analysis_.zero_at_entry & kBitX) as_.emit(mov32_imm(R_X, 0));
        for (uint32_t k = 0; k < kMemWords; ++k)
            if (analysis_.zero_at_entry & (1u << k)) as_.emit(st_imm(BPF_W, R_FP, mem_slot_off(k), 0));
        if (analysis_.budget == BudgetMode::kGlobal) reset_budget();
        if (!analysis_.loads_packet) reference_slow_loader();
    }

    // A filter that reads no packet byte (`len > 100`) still calls
    // pkt_load_slow, as the calling convention promises: the probes carry
    // pkt_load_slow with BTF func info, and the kernel refuses a program
    // with a subprogram nobody calls ("number of funcs in func_info doesn't
    // match number of subprogs"). The call is made only if w->copied >
    // PWRU_PKT_WINDOW, which never happens (the verifier cannot know that),
    // and its result is ignored: two instructions at run time.
    void reference_slow_loader() {
        Label skip = as_.new_label();
        as_.emit(ldx(BPF_W, R2, R_W, PWRU_PKT_WINDOW_OFF_COPIED));
        as_.emit_jump(jmp_imm(BPF_JLE, R2, PWRU_PKT_WINDOW), skip);
        as_.emit(mov64_reg(R1, R_W));
        as_.emit(mov32_imm(R2, 0));
        as_.emit(mov32_imm(R3, 1));
        as_.emit_slow_load_call();
        as_.bind(skip);
    }

    // ---- backward jumps (libpcap's `protochain`) ----
    // The verifier accepts a loop only if it can prove that it ends; libpcap
    // would follow a header chain as long as the packet is. Every backward
    // jump spends one unit of a budget of kLoopBudget; with none left the
    // filter rejects the packet. See cbpf_translate.h.

    // Through a register: kernels before 6.3 do not track a constant stored
    // by BPF_ST, and a budget the verifier does not know proves no end.
    // R2 is free where this runs (a block boundary, or the prologue).
    void reset_budget() {
        as_.emit(alu64_imm(BPF_MOV, R2, static_cast<int32_t>(kLoopBudget)));
        as_.emit(stx(BPF_DW, R_FP, kBudgetOff, R2));
    }

    // R2 and R3 are free at a jump (they are live only inside a load).
    void backward_jump(Label head) {
        as_.emit(ldx(BPF_DW, R2, R_FP, kBudgetOff));
        as_.emit_jump(jmp_imm(BPF_JEQ, R2, 0), reject());
        as_.emit(alu64_imm(BPF_SUB, R2, 1));
        as_.emit(stx(BPF_DW, R_FP, kBudgetOff, R2));
        forget_ranges();
        as_.emit_jump(ja(), head);
    }

    // The verifier walks a loop one iteration at a time and can stop walking
    // a path only where its state equals one already verified. The budget
    // differs per iteration (that is what proves the end); everything else
    // should not, or the paths through one iteration (each extension-header
    // kind, fast or slow load) multiply from one iteration to the next. A, X
    // and w->copied carry different value ranges on each path (bounds
    // learnt from the loads' checks), so make the verifier forget them
    // without changing them: reload w->copied, and xor A and X twice with a
    // value it cannot know (a map value: w->copied again). This cuts the
    // verifier's walk of `ip6 protochain 58` from over a million
    // instructions (rejected) to 30 000 - 50 000, depending on pkt_load_slow.
    void forget_ranges() {
        if (analysis_.needs_copied) as_.emit(ldx(BPF_W, R_COPIED, R_W, PWRU_PKT_WINDOW_OFF_COPIED));
        as_.emit(ldx(BPF_W, R3, R_W, PWRU_PKT_WINDOW_OFF_COPIED));
        for (uint8_t reg : {R_A, R_X}) {
            as_.emit(alu32_reg(BPF_XOR, reg, R3));
            as_.emit(alu32_reg(BPF_XOR, reg, R3));
        }
    }

    void translate(size_t i, const sock_filter& f) {
        uint16_t c = f.code;
        if (is_packet_load(c)) return translate_packet_load(f);
        switch (BPF_CLASS(c)) {
            case BPF_LD:
            case BPF_LDX: return translate_other_load(f);
            case BPF_ST: return as_.emit(stx(BPF_W, R_FP, mem_slot_off(f.k), R_A));
            case BPF_STX: return as_.emit(stx(BPF_W, R_FP, mem_slot_off(f.k), R_X));
            case BPF_ALU: return translate_alu(f);
            case BPF_JMP: return translate_jump(i, f);
            case BPF_RET: return translate_ret(f);
            case BPF_MISC:
                if (c == (BPF_MISC | BPF_TAX)) return as_.emit(mov32_reg(R_X, R_A));
                return as_.emit(mov32_reg(R_A, R_X));
        }
    }

    // BPF_LEN, BPF_IMM, BPF_MEM into A or X.
    void translate_other_load(const sock_filter& f) {
        uint8_t dst = BPF_CLASS(f.code) == BPF_LD ? R_A : R_X;
        switch (BPF_MODE(f.code)) {
            case BPF_LEN: return as_.emit(ldx(BPF_W, dst, R_W, PWRU_PKT_WINDOW_OFF_LEN));
            case BPF_IMM: return as_.emit(mov32_imm(dst, f.k));
            default: return as_.emit(ldx(BPF_W, dst, R_FP, mem_slot_off(f.k)));  // BPF_MEM
        }
    }

    void translate_packet_load(const sock_filter& f) {
        uint32_t size = cbpf_load_size(f.code);
        if (f.code == (BPF_LDX | BPF_B | BPF_MSH)) {
            load_abs(R_X, f.k, 1);
            as_.emit(alu32_imm(BPF_AND, R_X, 0xf));  // X = 4 * (P[k] & 0xf)
            as_.emit(alu32_imm(BPF_LSH, R_X, 2));
            return;
        }
        if (BPF_MODE(f.code) == BPF_IND) return load_ind(f.k, size);
        load_abs(R_A, f.k, size);
    }

    // dst = P[k : size]. Validation guarantees k + size does not overflow.
    void load_abs(uint8_t dst, uint32_t k, uint32_t size) {
        if (uint64_t{k} + size > PWRU_PKT_WINDOW) {
            // Never in the window: always the slow loader, inline.
            as_.emit(mov32_imm(R2, k));
            slow_load(dst, size);
            return;
        }
        SlowBlock b{as_.new_label(), as_.new_label(), dst, size, false, k};
        as_.emit_jump(jmp_imm(BPF_JLT, R_COPIED, static_cast<int32_t>(k + size)), b.entry);
        as_.emit(ldx(size_code(size), dst, R_W, static_cast<int16_t>(k)));
        swap_to_host(dst, size);
        as_.bind(b.resume);
        slow_blocks_.push_back(b);
    }

    // A = P[X + k : size]. The offset is computed in 64 bits so that X + k
    // cannot wrap (libpcap rejects such loads).
    void load_ind(uint32_t k, uint32_t size) {
        SlowBlock b{as_.new_label(), as_.new_label(), R_A, size, true, k};
        as_.emit(mov32_imm(R2, k));
        as_.emit(alu64_reg(BPF_ADD, R2, R_X));
        // Bound for the verifier: off + size stays inside w->data ...
        as_.emit_jump(jmp_imm(BPF_JGT, R2, static_cast<int32_t>(PWRU_PKT_WINDOW - size)), b.entry);
        // ... and for the semantics: the bytes were copied (copied - off <
        // size: slow path). Compared through a difference, not `off + size >
        // copied`: a jump between two registers makes the verifier track
        // w->copied's range exactly on every path from there on (the offset
        // is needed exactly for the access), and paths that differ only in
        // what they learnt about w->copied could then no longer be merged.
        as_.emit(mov64_reg(R3, R_COPIED));
        as_.emit(alu64_reg(BPF_SUB, R3, R2));
        as_.emit_jump(jmp_imm(BPF_JSLT, R3, static_cast<int32_t>(size)), b.entry);
        as_.emit(alu64_reg(BPF_ADD, R2, R_W));
        as_.emit(ldx(size_code(size), R_A, R2, 0));
        swap_to_host(R_A, size);
        as_.bind(b.resume);
        slow_blocks_.push_back(b);
    }

    // Packet bytes are big-endian; BPF_TO_BE is a swap on little-endian hosts
    // and zero-extends the result.
    void swap_to_host(uint8_t dst, uint32_t size) {
        if (size > 1) as_.emit(to_be(dst, static_cast<int>(size * 8)));
    }

    void emit_slow_block(const SlowBlock& b) {
        as_.bind(b.entry);
        if (b.indexed) {
            // R2 = X + k may exceed 32 bits: such a load is past any len.
            as_.emit(mov64_reg(R3, R2));
            as_.emit(alu64_imm(BPF_RSH, R3, 32));
            as_.emit_jump(jmp_imm(BPF_JNE, R3, 0), reject());
        } else {
            as_.emit(mov32_imm(R2, b.k));
        }
        slow_load(b.dst, b.size);
        as_.emit_jump(ja(), b.resume);
    }

    // dst = pkt_load_slow(w, R2, size), rejecting the packet on failure.
    void slow_load(uint8_t dst, uint32_t size) {
        as_.emit(mov64_reg(R1, R_W));
        as_.emit(mov32_imm(R3, size));
        as_.emit_slow_load_call();
        as_.emit_jump(jmp_imm(BPF_JSLT, R0, 0), reject());
        as_.emit(mov32_reg(dst, R0));
    }

    void translate_alu(const sock_filter& f) {
        uint8_t op = BPF_OP(f.code);
        bool by_x = BPF_SRC(f.code) == BPF_X;
        if (op == BPF_NEG) return as_.emit(make_insn(BPF_ALU | BPF_NEG, R_A, 0, 0, 0));
        if (op == BPF_LSH || op == BPF_RSH) return by_x ? shift_by_x(op) : shift_by_k(op, f.k);
        if (by_x && (op == BPF_DIV || op == BPF_MOD))
            as_.emit_jump(jmp_imm(BPF_JEQ, R_X, 0), reject());  // libpcap: X == 0 rejects
        // 32-bit eBPF ALU ops, including DIV/MOD (unsigned), match cBPF's.
        as_.emit(by_x ? alu32_reg(op, R_A, R_X) : alu32_imm(op, R_A, f.k));
    }

    // libpcap 1.10 shifts by a constant with C's `A <<= k`, which on x86-64
    // uses k mod 32 (libpcap's compiler never emits k >= 32). eBPF rejects
    // shift immediates >= 32, so mask; a shift by 0 is nothing.
    void shift_by_k(uint8_t op, uint32_t k) {
        uint32_t count = k & 31;
        if (count != 0) as_.emit(alu32_imm(op, R_A, count));
    }

    // libpcap: X < 32 ? A << X : 0. Zeroing A first makes the shift a no-op
    // whatever the CPU does with counts >= 32.
    void shift_by_x(uint8_t op) {
        Label do_shift = as_.new_label();
        as_.emit_jump(jmp32_imm(BPF_JLT, R_X, 32), do_shift);
        as_.emit(mov32_imm(R_A, 0));
        as_.bind(do_shift);
        as_.emit(alu32_reg(op, R_A, R_X));
    }

    // cBPF condition as a JMP32 (32-bit, unsigned, imm not sign-extended).
    bpf_insn condition(uint8_t op, const sock_filter& f) const {
        return BPF_SRC(f.code) == BPF_X ? jmp32_reg(op, R_A, R_X) : jmp32_imm(op, R_A, f.k);
    }

    static uint8_t negated(uint8_t op) {
        switch (op) {
            case BPF_JEQ: return BPF_JNE;
            case BPF_JGT: return BPF_JLE;
            default: return BPF_JLT;  // BPF_JGE
        }
    }

    void translate_jump(size_t i, const sock_filter& f) {
        if (f.code == (BPF_JMP | BPF_JA)) {
            if (is_backward_ja(i, f)) return backward_jump(loop_label_[static_cast<size_t>(ja_target(i, f))]);
            if (f.k != 0) as_.emit_jump(ja(), cbpf_label_[i + 1 + f.k]);
            return;
        }
        uint8_t op = BPF_OP(f.code);
        Label on_true = cbpf_label_[i + 1 + f.jt];
        Label on_false = cbpf_label_[i + 1 + f.jf];
        if (f.jt == f.jf) {
            if (f.jt != 0) as_.emit_jump(ja(), on_true);
        } else if (f.jf == 0) {
            as_.emit_jump(condition(op, f), on_true);
        } else if (f.jt == 0 && op != BPF_JSET) {  // eBPF has no "jump if not set"
            as_.emit_jump(condition(negated(op), f), on_false);
        } else {
            as_.emit_jump(condition(op, f), on_true);
            as_.emit_jump(ja(), on_false);
        }
    }

    // pcap_offline_filter() returns the cBPF return value (a snap length);
    // we only report match (non-zero) or not.
    void translate_ret(const sock_filter& f) {
        if (f.code == (BPF_RET | BPF_K)) {
            as_.emit(mov32_imm(R0, f.k != 0 ? 1 : 0));
        } else {
            Label done = as_.new_label();
            as_.emit(mov32_imm(R0, 1));
            as_.emit_jump(jmp32_imm(BPF_JNE, R_A, 0), done);
            as_.emit(mov32_imm(R0, 0));
            as_.bind(done);
        }
        as_.emit(exit_insn());
    }

    const std::vector<sock_filter>& prog_;
    Analysis analysis_;
    Assembler as_;
    std::vector<Label> cbpf_label_;
    std::vector<Label> loop_label_;  // after a loop head's budget reset
    Label reject_;
    bool reject_used_ = false;
    std::vector<SlowBlock> slow_blocks_;
};

}  // namespace

Result<TranslatedFilter> translate_cbpf(const std::vector<sock_filter>& prog) {
    if (auto ok = validate(prog); !ok) return std::unexpected(ok.error());
    return Translator(prog, analyze(prog)).run();
}

TranslatedFilter constant_filter(bool verdict) {
    TranslatedFilter out;
    out.insns = {mov32_imm(R0, verdict ? 1 : 0), exit_insn()};
    return out;
}

}  // namespace pwru
