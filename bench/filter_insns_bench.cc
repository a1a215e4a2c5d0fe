// Bench 4: filter cost in eBPF instructions executed per packet.
//
// For each typical tcpdump expression: libpcap compiles it, our translator
// (tracer/cbpf_translate) turns it into the eBPF body the probes run, and
// this file EXECUTES that body on every generated test packet
// (tests/support/packet_corpus) with a small eBPF interpreter that counts the
// instructions it runs and the calls of the slow loader pkt_load_slow (one
// bpf_probe_read_kernel each in the probes). Two ways:
//   ours   the window holds the first PWRU_PKT_WINDOW bytes (one probe read
//          fills it, counted as 1 read) and loads inside it are inline;
//   naive  one probe read per load: the same body with an empty window, so
//          every load goes through pkt_load_slow (that is what a
//          translation without the window does: a helper call per load).
// The interpreter's verdicts are checked against the kernel's
// (BPF_PROG_TEST_RUN of the same body, tests/support/raw_filter_runner) and
// against libpcap's: a count from a wrong interpreter is not reported.
//
// Prints `RESULT\t...` lines (bench/lib.sh's format).
#include <linux/bpf.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "pwru_abi.h"
#include "support/packet_corpus.h"
#include "support/raw_filter_runner.h"
#include "tracer/filter/cbpf_translate.h"
#include "tracer/filter/pcap_compile.h"

using namespace pwru;

namespace {

struct Count {
    uint64_t insns = 0;
    uint64_t slow_calls = 0;
    int verdict = 0;
    bool ok = true;  // false: the interpreter met something it does not model
};

// Executes a translated body (R1 = window) on `pkt`, window of `copied` bytes.
Count interpret(const TranslatedFilter& f, const std::vector<uint8_t>& pkt, uint32_t copied) {
    pwru_pkt_window w{};
    w.len = static_cast<uint32_t>(pkt.size());
    w.copied = std::min<uint32_t>(copied, std::min<uint32_t>(w.len, PWRU_PKT_WINDOW));
    std::memcpy(w.data, pkt.data(), w.copied);
    alignas(8) uint8_t stack[512] = {};
    // Guest addresses: the window at kWin, the stack's top at kStack.
    constexpr uint64_t kWin = 0x100000, kStack = 0x200000 + sizeof(stack);
    uint64_t r[11] = {};
    r[1] = kWin;
    r[10] = kStack;
    std::set<size_t> slow(f.slow_load_calls.begin(), f.slow_load_calls.end());
    auto mem = [&](uint64_t addr, size_t size) -> uint8_t* {
        if (addr >= kWin && addr + size <= kWin + sizeof(w)) return reinterpret_cast<uint8_t*>(&w) + (addr - kWin);
        if (addr >= kStack - sizeof(stack) && addr + size <= kStack) return stack + (addr - (kStack - sizeof(stack)));
        return nullptr;
    };
    Count c;
    const auto& in = f.insns;
    for (size_t pc = 0; pc < in.size() && c.insns < 1'000'000; ++pc) {
        const bpf_insn& i = in[pc];
        ++c.insns;
        const uint8_t cls = BPF_CLASS(i.code), op = BPF_OP(i.code);
        uint64_t& dst = r[i.dst_reg];
        const uint64_t src =
            BPF_SRC(i.code) == BPF_X ? r[i.src_reg] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        if (cls == BPF_ALU64 || cls == BPF_ALU) {
            const bool w32 = cls == BPF_ALU;
            uint64_t a = w32 ? static_cast<uint32_t>(dst) : dst, b = w32 ? static_cast<uint32_t>(src) : src, v = 0;
            switch (op) {
                case BPF_ADD: v = a + b; break;
                case BPF_SUB: v = a - b; break;
                case BPF_MUL: v = a * b; break;
                case BPF_DIV: v = b ? a / b : 0; break;
                case BPF_MOD: v = b ? a % b : a; break;
                case BPF_OR: v = a | b; break;
                case BPF_AND: v = a & b; break;
                case BPF_XOR: v = a ^ b; break;
                case BPF_LSH: v = a << (b & (w32 ? 31 : 63)); break;
                case BPF_RSH: v = a >> (b & (w32 ? 31 : 63)); break;
                case BPF_ARSH:
                    v = w32 ? static_cast<uint32_t>(static_cast<int32_t>(a) >> (b & 31))
                            : static_cast<uint64_t>(static_cast<int64_t>(a) >> (b & 63));
                    break;
                case BPF_NEG: v = -a; break;
                case BPF_MOV: v = b; break;
                case BPF_END: {  // to big endian (x86 is little endian) or no-op for to_le
                    if (BPF_SRC(i.code) == BPF_TO_BE) {
                        if (i.imm == 16)
                            v = __builtin_bswap16(static_cast<uint16_t>(dst));
                        else if (i.imm == 32)
                            v = __builtin_bswap32(static_cast<uint32_t>(dst));
                        else
                            v = __builtin_bswap64(dst);
                    } else {
                        v = i.imm == 16 ? static_cast<uint16_t>(dst) : i.imm == 32 ? static_cast<uint32_t>(dst) : dst;
                    }
                    dst = v;
                    continue;
                }
                default: c.ok = false; return c;
            }
            dst = w32 ? static_cast<uint32_t>(v) : v;
        } else if (cls == BPF_JMP || cls == BPF_JMP32) {
            if (op == BPF_EXIT) {
                c.verdict = static_cast<int>(r[0]);
                return c;
            }
            if (op == BPF_CALL) {
                if (i.src_reg != BPF_PSEUDO_CALL || !slow.count(pc)) {
                    c.ok = false;
                    return c;
                }
                ++c.slow_calls;  // pkt_load_slow(w, off, size): the whole packet is linear here
                uint64_t off = static_cast<uint32_t>(r[2]), size = static_cast<uint32_t>(r[3]);
                if (off + size > pkt.size()) {
                    r[0] = static_cast<uint64_t>(-1);
                } else {
                    uint64_t v = 0;
                    for (uint64_t k = 0; k < size; ++k) v = (v << 8) | pkt[off + k];
                    r[0] = v;
                }
                r[1] = r[2] = r[3] = r[4] = r[5] = 0xdead;  // caller-saved
                continue;
            }
            const bool j32 = cls == BPF_JMP32;
            uint64_t a = j32 ? static_cast<uint32_t>(dst) : dst, b = j32 ? static_cast<uint32_t>(src) : src;
            int64_t sa = j32 ? static_cast<int32_t>(a) : static_cast<int64_t>(a);
            int64_t sb = j32 ? static_cast<int32_t>(b) : static_cast<int64_t>(b);
            bool t = false;
            switch (op) {
                case BPF_JA: t = true; break;
                case BPF_JEQ: t = a == b; break;
                case BPF_JNE: t = a != b; break;
                case BPF_JGT: t = a > b; break;
                case BPF_JGE: t = a >= b; break;
                case BPF_JLT: t = a < b; break;
                case BPF_JLE: t = a <= b; break;
                case BPF_JSET: t = (a & b) != 0; break;
                case BPF_JSGT: t = sa > sb; break;
                case BPF_JSGE: t = sa >= sb; break;
                case BPF_JSLT: t = sa < sb; break;
                case BPF_JSLE: t = sa <= sb; break;
                default: c.ok = false; return c;
            }
            if (t) pc += i.off;
        } else if (cls == BPF_LDX || cls == BPF_STX || cls == BPF_ST) {
            if (BPF_MODE(i.code) != BPF_MEM) {
                c.ok = false;
                return c;
            }
            size_t size = BPF_SIZE(i.code) == BPF_B   ? 1
                          : BPF_SIZE(i.code) == BPF_H ? 2
                          : BPF_SIZE(i.code) == BPF_W ? 4
                                                      : 8;
            uint64_t addr = (cls == BPF_LDX ? r[i.src_reg] : dst) + static_cast<int64_t>(i.off);
            uint8_t* p = mem(addr, size);
            if (!p) {
                c.ok = false;
                return c;
            }
            if (cls == BPF_LDX) {
                uint64_t v = 0;
                std::memcpy(&v, p, size);
                dst = v;
            } else {
                uint64_t v = cls == BPF_STX ? r[i.src_reg] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
                std::memcpy(p, &v, size);
            }
        } else if (i.code == (BPF_LD | BPF_IMM | BPF_DW)) {
            dst = static_cast<uint32_t>(i.imm) | (static_cast<uint64_t>(static_cast<uint32_t>(in[pc + 1].imm)) << 32);
            ++pc;
        } else {
            c.ok = false;
            return c;
        }
    }
    c.ok = false;
    return c;
}

}  // namespace

int main() {
    const std::vector<std::string> exprs = {
        "host 10.1.2.3",
        "tcp and dst port 80",
        "udp port 53",
        "icmp",
        "src net 10.0.0.0/8 and tcp[tcpflags] & tcp-syn != 0",
        "ip6 and tcp",
        "vlan and host 10.1.2.3",
        "not arp and not (port 22 or port 443)",
    };
    auto runner = test::RawFilterRunner::create();
    if (!runner) {
        std::fprintf(stderr, "filter-bench: %s\n", runner.error().message().c_str());
        return 1;
    }
    test::PacketSets sets = test::make_packets();
    std::vector<std::vector<uint8_t>> pkts;
    for (auto& p : sets.l2)
        if (!p.empty() && p.size() <= 1514) pkts.push_back(p);
    int rc = 0;
    double sum_ours = 0, sum_naive = 0, reads_ours = 0, reads_naive = 0;
    for (const auto& e : exprs) {
        auto cbpf = compile_pcap(e, LinkLayer::L2);
        if (!cbpf) {
            std::fprintf(stderr, "filter-bench: %s: %s\n", e.c_str(), cbpf.error().message().c_str());
            return 1;
        }
        auto tf = translate_cbpf(*cbpf);
        if (!tf) {
            std::fprintf(stderr, "filter-bench: %s: %s\n", e.c_str(), tf.error().message().c_str());
            return 1;
        }
        auto h = runner->load(*tf);
        if (!h) {
            std::fprintf(stderr, "filter-bench: %s: %s\n", e.c_str(), h.error().message().c_str());
            return 1;
        }
        uint64_t ours_insns = 0, naive_insns = 0, ours_slow = 0, naive_slow = 0;
        size_t mismatches = 0, unmodelled = 0;
        for (const auto& p : pkts) {
            Count o = interpret(*tf, p, PWRU_PKT_WINDOW), n = interpret(*tf, p, 0);
            if (!o.ok || !n.ok) {
                ++unmodelled;
                continue;
            }
            int lib = test::libpcap_matches(*cbpf, p) ? 1 : 0;
            int kern = -1;
            if (runner->set_packet(p)) {
                if (auto v = runner->run(*h)) kern = *v;
            }
            if (o.verdict != lib || n.verdict != lib || kern != lib) ++mismatches;
            ours_insns += o.insns;
            naive_insns += n.insns;
            ours_slow += o.slow_calls;
            naive_slow += n.slow_calls;
        }
        double np = static_cast<double>(pkts.size() - unmodelled);
        double oi = ours_insns / np, ni = naive_insns / np;
        double orr = 1 + ours_slow / np, nr = naive_slow / np;  // ours: +1 read fills the window
        sum_ours += oi;
        sum_naive += ni;
        reads_ours += orr;
        reads_naive += nr;
        if (mismatches || unmodelled) rc = 1;
        std::printf(
            "RESULT\tfilter\t'%s': insns/packet ours vs one-read-per-load\t%.1f insns, %.2f reads\t%.1f insns, %.2f "
            "reads\t%.3f\t%zu packets; verdict mismatches %zu, unmodelled %zu; %zu-insn body\n",
            e.c_str(), oi, orr, ni, nr, oi / ni, pkts.size(), mismatches, unmodelled, tf->insns.size());
    }
    std::printf(
        "RESULT\tfilter\tmean over %zu expressions: probe reads/packet ours vs one-read-per-load\t%.2f reads\t%.2f "
        "reads\t%.3f\tinsns %.1f vs %.1f (ratio %.3f)\n",
        exprs.size(), reads_ours / exprs.size(), reads_naive / exprs.size(), reads_ours / reads_naive,
        sum_ours / exprs.size(), sum_naive / exprs.size(), sum_ours / sum_naive);
    return rc;
}
