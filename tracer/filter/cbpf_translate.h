// Classic BPF (what libpcap compiles a tcpdump expression to) -> eBPF.
//
// The output is the body of a BPF subprogram
//     static __noinline int f(struct pwru_pkt_window *w)
// that the filter injector splices into the probe programs after libbpf has
// relocated them. Its verdict equals libpcap's bpf_filter() on the same
// bytes: R0 = 1 when the cBPF program returns non-zero, 0 otherwise.
//
// Calling convention of the produced code:
// - On entry R1 = w (PTR_TO_MAP_VALUE of sizeof(struct pwru_pkt_window)),
//   R10 = frame pointer. Packet offsets are relative to the packet start;
//   w->len is the packet length, bytes [0, w->copied) are in w->data.
// - Loads inside the window read w->data directly; anything else calls the
//   subprogram `long pkt_load_slow(struct pwru_pkt_window *w, __u32 off,
//   __u32 size)` (R1 = w, R2 = off, R3 = size in {1, 2, 4}), which returns
//   the value in host order, or a negative number when off + size > len or
//   the bytes cannot be read; the filter then returns 0, as libpcap does.
//   Every translated body calls pkt_load_slow at least once (on a path the
//   verifier walks), also when the filter reads no packet byte: a program
//   must not carry a subprogram nobody calls. constant_filter() does not.
// - cBPF A, X and the window pointer live in callee-saved R6..R9 (A = R6,
//   X = R7, w = R8, w->copied = R9); M[0..15] on the stack at R10-64..R10-4.
//   64 bytes of stack in total, 72 with the loop budget (below).
//
// Backward jumps (libpcap's `protochain`, which walks the IPv6 extension
// header chain in a loop): the eBPF verifier only accepts loops it can prove
// to end, so every backward jump spends one unit of a loop budget, a u64 at
// R10-72; with none left the filter returns 0. The budget (kLoopBudget) is
// set to its full value each time control enters a loop from above (each
// `protochain` clause has its own), or once at entry for hand-written cBPF
// whose loops overlap. One `protochain` step is one backward jump, one
// extension header (or IPv4 AH) passed; real chains have a handful.
// The one case where the verdict can differ from libpcap: a packet on which
// one loop needs more than kLoopBudget backward jumps (a chain of more than
// 64 extension headers): libpcap follows the chain to its end, we reject.
#pragma once

#include <linux/bpf.h>
#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tracer/util/result.h"

namespace pwru {

// Backward jumps one loop may take before the filter gives up (returns 0).
inline constexpr uint32_t kLoopBudget = 64;

struct TranslatedFilter {
    // Body of the subprogram. Always ends with an exit.
    std::vector<struct bpf_insn> insns;
    // Indices in insns of BPF_JMP|BPF_CALL insns with src_reg = BPF_PSEUDO_CALL
    // whose target must become the subprogram `pkt_load_slow`. Their imm is 0;
    // whoever places the body patches it.
    std::vector<size_t> slow_load_calls;
    // Number of cBPF instructions translated (0 for constant_filter()).
    size_t cbpf_len = 0;
};

// Translates a cBPF program (as produced by compile_pcap()). Errors name the
// construct that cannot be translated: Linux BPF extension loads (SKF_AD_OFF
// and friends), unknown opcodes, jumps out of the program (forwards past the
// end, or backwards before the start), scratch slots >= 16, programs whose
// eBPF jumps would not fit the 16-bit offset.
Result<TranslatedFilter> translate_cbpf(const std::vector<struct sock_filter>& prog);

// A body that always returns `verdict` (two instructions).
TranslatedFilter constant_filter(bool verdict);

}  // namespace pwru
