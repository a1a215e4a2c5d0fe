#include "tracer/filter/cbpf_lint.h"

#include <algorithm>
#include <set>
#include <utility>

namespace pwru {
namespace {

// What the accumulator can hold after `in`, given what it could hold before.
uint32_t max_after(const sock_filter& in, uint32_t before) {
    switch (BPF_CLASS(in.code)) {
        case BPF_LD:
            if (BPF_MODE(in.code) == BPF_ABS || BPF_MODE(in.code) == BPF_IND) {
                if (BPF_SIZE(in.code) == BPF_B) return 0xff;
                if (BPF_SIZE(in.code) == BPF_H) return 0xffff;
            }
            return 0xffffffff;
        case BPF_ALU:
        case BPF_MISC:  // tax leaves A alone, txa replaces it: either way assume anything
            return BPF_CLASS(in.code) == BPF_MISC && BPF_MISCOP(in.code) == BPF_TAX ? before : 0xffffffff;
        default: return before;  // jumps, stores, ldx, ret
    }
}

}  // namespace

std::vector<std::string> impossible_comparisons(const std::vector<struct sock_filter>& prog) {
    // cBPF jumps only forward: one pass in order sees every predecessor of an
    // instruction before it. in[i]: the largest value A can hold on entry.
    const size_t n = prog.size();
    std::vector<uint32_t> in(n + 1, 0);
    std::vector<bool> reached(n + 1, false);
    in[0] = 0xffffffff;
    reached[0] = true;
    std::set<std::pair<uint32_t, uint32_t>> seen;  // (field max, constant): one line each
    std::vector<std::string> out;
    auto flow = [&](size_t to, uint32_t value) {
        if (to > n) return;
        in[to] = reached[to] ? std::max(in[to], value) : value;
        reached[to] = true;
    };
    for (size_t i = 0; i < n; ++i) {
        if (!reached[i]) continue;
        const sock_filter& op = prog[i];
        const uint32_t after = max_after(op, in[i]);
        if (BPF_CLASS(op.code) == BPF_RET) continue;
        if (BPF_CLASS(op.code) != BPF_JMP) {
            flow(i + 1, after);
            continue;
        }
        if (BPF_OP(op.code) == BPF_JA) {
            flow(i + 1 + op.k, after);
            continue;
        }
        flow(i + 1 + op.jt, after);
        flow(i + 1 + op.jf, after);
        if (BPF_SRC(op.code) != BPF_K || in[i] == 0xffffffff) continue;
        const uint32_t max = in[i], k = op.k;
        const bool never = (BPF_OP(op.code) == BPF_JEQ && k > max) || (BPF_OP(op.code) == BPF_JGT && k >= max) ||
                           (BPF_OP(op.code) == BPF_JGE && k > max);
        if (never && seen.insert({max, k}).second)
            out.push_back(std::string("a test compares ") + (max == 0xff ? "a 1-byte" : "a 2-byte") +
                          " packet field with " + std::to_string(k) +
                          ", a value it cannot hold: that test is never true");
    }
    return out;
}

}  // namespace pwru
