// Differential test of the cBPF -> eBPF translator alone (the fast layer):
// every expression is compiled by libpcap, translated, loaded through the
// real verifier (raw runner, tests/support/raw_filter_runner.h) and run with
// BPF_PROG_TEST_RUN on packets of tests/support/packet_corpus.h (generated,
// and the shared capture corpus when present); each verdict must equal
// libpcap's pcap_offline_filter() on the same bytes. The probes' own code
// path is tested by filter_differential_test.cc with the same inputs.
#include <linux/bpf.h>
#include <linux/filter.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "support/packet_corpus.h"
#include "support/raw_filter_runner.h"
#include "tracer/filter/cbpf_translate.h"
#include "tracer/filter/pcap_compile.h"

using pwru::LinkLayer;
using pwru::test::Bytes;
using pwru::test::hex;
using pwru::test::libpcap_matches;

namespace {

// ---- hand-written cBPF: constructs libpcap's compiler rarely emits -----------

sock_filter op(uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) { return sock_filter{code, jt, jf, k}; }
constexpr uint16_t LDB = BPF_LD | BPF_B | BPF_ABS, LDH = BPF_LD | BPF_H | BPF_ABS, LDW = BPF_LD | BPF_W | BPF_ABS;
constexpr uint16_t RETK = BPF_RET | BPF_K, RETA = BPF_RET | BPF_A;

struct HandProgram {
    const char* name;
    std::vector<sock_filter> prog;
};

// `ja` back to the instruction `distance - 1` before it.
sock_filter back(int distance) { return op(BPF_JMP | BPF_JA, static_cast<uint32_t>(-distance)); }

// A = 0; do A += 1 while A <= n; return A: n backward jumps.
std::vector<sock_filter> counting_loop(uint32_t n) {
    return {op(BPF_LD | BPF_IMM, 0), op(BPF_ALU | BPF_ADD | BPF_K, 1), op(BPF_JMP | BPF_JGT | BPF_K, n, 1, 0), back(3),
            op(RETA, 0)};
}

std::vector<HandProgram> hand_programs() {
    auto alu = [](uint16_t o, uint32_t k) { return op(BPF_ALU | o | BPF_K, k); };
    auto alux = [](uint16_t o) { return op(BPF_ALU | o | BPF_X, 0); };
    const sock_filter tax = op(BPF_MISC | BPF_TAX, 0), txa = op(BPF_MISC | BPF_TXA, 0);
    return {
        {"lsh by X (X may be >= 32)", {op(LDB, 23), tax, op(LDH, 14), alux(BPF_LSH), op(RETA, 0)}},
        {"rsh by X (X may be >= 32)", {op(LDB, 22), tax, op(LDW, 26), alux(BPF_RSH), op(RETA, 0)}},
        {"div by X (X may be 0)", {op(LDB, 15), tax, op(LDW, 16), alux(BPF_DIV), op(RETA, 0)}},
        {"mod by X (X may be 0)",
         {op(LDB, 15), tax, op(LDW, 16), alux(BPF_MOD), op(BPF_JMP | BPF_JGT | BPF_K, 3, 0, 1), op(RETK, 1),
          op(RETK, 0)}},
        {"neg, st/ldx M[], txa, jset x",
         {op(LDW, 20), alu(BPF_NEG, 0), op(BPF_ST, 3), op(BPF_LDX | BPF_MEM, 3), op(LDB, 30), txa,
          op(BPF_JMP | BPF_JSET | BPF_X, 0, 0, 1), op(RETK, 7), op(RETK, 0)}},
        // (Unwritten M[] slots are not compared: libpcap 1.10 leaves them
        // uninitialised; see the last test case.)
        {"unwritten X reads 0", {txa, alu(BPF_ADD, 1), op(RETA, 0)}},
        {"ldx len, jgt x",
         {op(BPF_LDX | BPF_W | BPF_LEN, 0), op(BPF_LD | BPF_IMM, 100), op(BPF_JMP | BPF_JGT | BPF_X, 0, 0, 1),
          op(RETK, 1), op(RETK, 0)}},
        {"ind with k >= 2^31", {op(BPF_LDX | BPF_IMM, 1), op(BPF_LD | BPF_B | BPF_IND, 0x80000000), op(RETK, 1)}},
        {"ind with X from a word", {op(LDW, 14), tax, op(BPF_LD | BPF_B | BPF_IND, 0), op(RETA, 0)}},
        {"ind with X + k wrapping 32 bits",
         {op(LDW, 14), alu(BPF_OR, 0xffff0000), tax, op(BPF_LD | BPF_H | BPF_IND, 0x10010), op(RETK, 1)}},
        {"msh past the window", {op(BPF_LDX | BPF_B | BPF_MSH, 130), op(BPF_LD | BPF_B | BPF_IND, 100), op(RETA, 0)}},
        {"jeq/jge x",
         {op(LDB, 20), tax, op(LDB, 21), op(BPF_JMP | BPF_JEQ | BPF_X, 0, 2, 0), op(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 1),
          op(RETK, 1), op(RETK, 0)}},
        {"word at 124 (fast) and 125 (slow)",
         {op(LDW, 124), op(BPF_ST, 0), op(LDW, 125), op(BPF_LDX | BPF_MEM, 0), alux(BPF_XOR), op(RETA, 0)}},
        {"half at 126/127, byte at 127/128", {op(LDH, 126), op(LDH, 127), op(LDB, 127), op(LDB, 128), op(RETA, 0)}},
        {"alu with high-bit constants",
         {op(LDW, 14), alu(BPF_ADD, 0xfffffff0), alu(BPF_MUL, 0x10001), alu(BPF_AND, 0x8fffffff),
          alu(BPF_OR, 0x80000001), alu(BPF_XOR, 0xffffffff), alu(BPF_SUB, 5), alu(BPF_DIV, 7), alu(BPF_MOD, 0x80000001),
          op(BPF_JMP | BPF_JGT | BPF_K, 0xfffffff8, 0, 1), op(RETK, 1), op(BPF_JMP | BPF_JGE | BPF_K, 0x80000000, 0, 1),
          op(RETK, 1), op(RETK, 0)}},
        {"alu with X",
         {op(LDW, 18), tax, op(LDW, 22), alux(BPF_ADD), alux(BPF_SUB), alux(BPF_MUL), alux(BPF_AND), alux(BPF_OR),
          alux(BPF_XOR), op(BPF_JMP | BPF_JSET | BPF_K, 0x80000000, 0, 1), op(RETK, 1), op(RETK, 0)}},
        {"constant shifts", {op(LDW, 14), alu(BPF_LSH, 31), alu(BPF_RSH, 31), op(RETA, 0)}},
        {"ret A with only the high bit", {op(LDB, 14), alu(BPF_LSH, 24), alu(BPF_AND, 0x80000000), op(RETA, 0)}},
        {"ret k large", {op(LDB, 14), op(BPF_JMP | BPF_JEQ | BPF_K, 0x45, 0, 1), op(RETK, 0x80000000), op(RETK, 0)}},
        {"ja forward, jt == jf",
         {op(LDB, 14), op(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 1), op(RETK, 0), op(BPF_JMP | BPF_JA, 1), op(RETK, 0),
          op(RETK, 1)}},
        {"ld len, ldx imm, txa chains",
         {op(BPF_LD | BPF_W | BPF_LEN, 0), op(BPF_LDX | BPF_IMM, 129), op(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 1),
          op(RETK, 1), op(RETK, 0)}},
        // Loops (backward `ja`), see the loop budget in cbpf_translate.h.
        {"loop: P[0] & 0x3f backward jumps",
         {op(LDB, 0), alu(BPF_AND, 0x3f), tax, op(BPF_LD | BPF_IMM, 0), alu(BPF_ADD, 1),
          op(BPF_JMP | BPF_JGT | BPF_X, 0, 1, 0), back(3), op(RETA, 0)}},
        {"loop: exactly the whole budget", counting_loop(pwru::kLoopBudget)},
        {"two loops in a row, more backward jumps in all than one budget",
         {op(LDB, 0), alu(BPF_AND, 0x3f), tax, op(BPF_LD | BPF_IMM, 0), alu(BPF_ADD, 1),
          op(BPF_JMP | BPF_JGT | BPF_X, 0, 1, 0), back(3), op(BPF_LD | BPF_IMM, 0), alu(BPF_ADD, 1),
          op(BPF_JMP | BPF_JGT | BPF_K, 50, 1, 0), back(3), op(RETA, 0)}},
        {"overlapping loops (one budget for the run)",
         {op(LDB, 0), alu(BPF_AND, 0x1f), alu(BPF_ADD, 1), alu(BPF_ADD, 2), op(BPF_JMP | BPF_JGT | BPF_K, 60, 3, 0),
          op(BPF_JMP | BPF_JSET | BPF_K, 1, 0, 1), back(5), back(5), op(RETA, 0)}},
    };
}

// ---- the comparison ----------------------------------------------------------------

struct Loaded {
    std::string name;
    std::vector<sock_filter> cbpf;
    size_t insns = 0;
    size_t handle = 0;
};

struct Stats {
    size_t programs = 0;
    size_t packets = 0;
    size_t comparisons = 0;
    size_t disagreements = 0;
    size_t max_insns = 0;
};

// Loads one program into the runner; a verifier rejection fails the test
// with the log.
void load_into(pwru::test::RawFilterRunner& runner, std::vector<Loaded>& loaded, Stats& stats, const std::string& name,
               const std::vector<sock_filter>& cbpf) {
    auto ebpf = pwru::translate_cbpf(cbpf);
    INFO(name);
    if (!ebpf) FAIL("translation failed: " << ebpf.error().what);
    auto handle = runner.load(*ebpf);
    if (!handle) FAIL(handle.error().message() << "\n" << handle.error().context);
    loaded.push_back({name, cbpf, ebpf->insns.size(), *handle});
    stats.max_insns = std::max(stats.max_insns, ebpf->insns.size());
    ++stats.programs;
}

// Runs every loaded program on every packet, twice: with the full window and
// with a window cut at a pseudo-random point, so loads in the window take the
// slow path too.
void compare_all(pwru::test::RawFilterRunner& runner, const std::vector<Loaded>& loaded,
                 const std::vector<Bytes>& packets, const char* layer, Stats& stats) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> cut(0, PWRU_PKT_WINDOW);
    for (const Bytes& pkt : packets) {
        ++stats.packets;
        for (uint32_t window : {uint32_t{PWRU_PKT_WINDOW}, cut(rng)}) {
            auto set = runner.set_packet(pkt, window);
            REQUIRE(set.has_value());
            for (const Loaded& l : loaded) {
                auto got = runner.run(l.handle);
                REQUIRE(got.has_value());
                bool want = libpcap_matches(l.cbpf, pkt);
                ++stats.comparisons;
                if ((*got != 0) == want) continue;
                if (++stats.disagreements <= 20)
                    std::printf("DISAGREE %s [%s] window %u len %zu: ebpf %d libpcap %d\n  %s\n", layer, l.name.c_str(),
                                window, pkt.size(), *got, int(want), hex(pkt, 96).c_str());
            }
        }
    }
}

bool have_root() {
    if (geteuid() == 0) return true;
    WARN("skipped: BPF_PROG_LOAD / BPF_PROG_TEST_RUN need root");
    return false;
}

}  // namespace

TEST_CASE("translated filters agree with libpcap on every packet", "[bpf]") {
    if (!have_root()) return;
    auto runner = pwru::test::RawFilterRunner::create();
    if (!runner) FAIL(runner.error().message());

    pwru::test::PacketSets packets = pwru::test::make_packets();
    for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) {
        auto corpus = pwru::test::read_captures(ll, pwru::test::kRawRunnerMaxPacket);
        const char* layer = ll == LinkLayer::L2 ? "L2" : "L3";
        if (!corpus.found) {
            std::printf("capture corpus %s missing: corpus part skipped (%s)\n", corpus.dir.c_str(), layer);
            continue;
        }
        std::printf("capture corpus %s: %zu packets from %zu files (%zu cut to %zu bytes)\n", layer,
                    corpus.packets.size(), corpus.files, corpus.truncated, pwru::test::kRawRunnerMaxPacket);
        auto& into = ll == LinkLayer::L2 ? packets.l2 : packets.l3;
        into.insert(into.end(), corpus.packets.begin(), corpus.packets.end());
    }

    Stats stats;
    std::vector<Loaded> l2, l3;
    size_t expressions = 0;
    std::printf(
        "eBPF instructions (and instructions the verifier walked) per link layer; - = does not compile "
        "there\n%-15s %-15s expression\n",
        "L2", "L3");
    auto column = [&](bool compiled, const std::vector<Loaded>& loaded) {
        if (!compiled) return std::string("-");
        return std::to_string(loaded.back().insns) + " (" +
               std::to_string(runner->verified_insns(loaded.back().handle)) + ")";
    };
    for (const std::string& expr : pwru::test::filter_expressions()) {
        auto c2 = pwru::compile_pcap(expr, LinkLayer::L2);
        auto c3 = pwru::compile_pcap(expr, LinkLayer::L3);
        INFO(expr);
        REQUIRE((c2 || c3));
        ++expressions;
        if (c2) load_into(*runner, l2, stats, expr, *c2);
        if (c3) load_into(*runner, l3, stats, expr, *c3);
        std::printf("%-15s %-15s %s\n", column(c2.has_value(), l2).c_str(), column(c3.has_value(), l3).c_str(),
                    expr.c_str());
    }
    for (const HandProgram& h : hand_programs()) {
        load_into(*runner, l2, stats, std::string("hand: ") + h.name, h.prog);
        std::printf("%-15s %-15s hand-written: %s\n", column(true, l2).c_str(), "", h.name);
    }

    compare_all(*runner, l2, packets.l2, "L2", stats);
    compare_all(*runner, l3, packets.l3, "L3", stats);

    std::printf(
        "translator differential: %zu expressions + %zu hand-written programs (%zu loaded programs) x "
        "%zu L2 / %zu L3 packets x 2 windows = %zu comparisons, %zu disagreements; max insns %zu\n",
        expressions, hand_programs().size(), stats.programs, packets.l2.size(), packets.l3.size(), stats.comparisons,
        stats.disagreements, stats.max_insns);
    CHECK(expressions >= 300);
    CHECK(stats.disagreements == 0);
}

TEST_CASE("run_raw_filter: constant filters, unwritten scratch slots, a simple expression", "[bpf]") {
    if (!have_root()) return;
    std::vector<Bytes> pkts = {Bytes(60, 0), Bytes(10, 1)};
    auto yes = pwru::test::run_raw_filter(pwru::constant_filter(true), pkts);
    REQUIRE(yes.has_value());
    CHECK(*yes == std::vector<int>{1, 1});
    auto no = pwru::test::run_raw_filter(pwru::constant_filter(false), pkts);
    REQUIRE(no.has_value());
    CHECK(*no == std::vector<int>{0, 0});

    // Scratch slots read before any write are 0 (newer libpcap and the
    // kernel's cBPF do that; libpcap 1.10 reads an uninitialised array).
    auto unwritten = pwru::translate_cbpf({op(BPF_LD | BPF_MEM, 5), op(RETA, 0)});
    REQUIRE(unwritten.has_value());
    auto u = pwru::test::run_raw_filter(*unwritten, pkts);
    REQUIRE(u.has_value());
    CHECK(*u == std::vector<int>{0, 0});
    auto ldx_unwritten = pwru::translate_cbpf(
        {op(BPF_LDX | BPF_MEM, 2), op(BPF_MISC | BPF_TXA, 0), op(BPF_ALU | BPF_ADD | BPF_K, 1), op(RETA, 0)});
    REQUIRE(ldx_unwritten.has_value());
    auto lu = pwru::test::run_raw_filter(*ldx_unwritten, pkts);
    REQUIRE(lu.has_value());
    CHECK(*lu == std::vector<int>{1, 1});

    auto cbpf = pwru::compile_pcap("len > 20", LinkLayer::L2);
    REQUIRE(cbpf.has_value());
    auto f = pwru::translate_cbpf(*cbpf);
    REQUIRE(f.has_value());
    auto v = pwru::test::run_raw_filter(*f, pkts);
    REQUIRE(v.has_value());
    CHECK(*v == std::vector<int>{1, 0});
}

TEST_CASE("the loop budget bounds backward jumps: the one documented difference from libpcap", "[bpf]") {
    if (!have_root()) return;
    std::vector<Bytes> pkts = {Bytes(60, 0)};
    // n backward jumps in one loop: the same verdict as libpcap up to the
    // budget, 0 beyond it (libpcap would return n + 1).
    for (uint32_t n : {pwru::kLoopBudget - 1, pwru::kLoopBudget, pwru::kLoopBudget + 1, 1000u}) {
        INFO("backward jumps: " << n);
        auto prog = counting_loop(n);
        auto f = pwru::translate_cbpf(prog);
        REQUIRE(f.has_value());
        auto v = pwru::test::run_raw_filter(*f, pkts);
        REQUIRE(v.has_value());
        CHECK(libpcap_matches(prog, pkts[0]));
        CHECK((*v)[0] == (n <= pwru::kLoopBudget ? 1 : 0));
    }
    // `ja -1` forever: libpcap never returns; we reject when the budget is spent.
    auto forever = pwru::translate_cbpf({op(LDB, 0), back(1)});
    REQUIRE(forever.has_value());
    auto v = pwru::test::run_raw_filter(*forever, pkts);
    REQUIRE(v.has_value());
    CHECK((*v)[0] == 0);
}
