// The pcap-filter -> cBPF -> eBPF translator, without the kernel: structure of
// the output and the errors. tests/bpf/cbpf_translate_run_test.cc runs the
// output through the verifier and compares verdicts with libpcap.
#include <linux/bpf.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "tracer/filter/cbpf_translate.h"
#include "tracer/filter/pcap_compile.h"

using pwru::LinkLayer;

namespace {

const std::vector<std::string> kBothLayers = {
    "tcp and dst port 80",
    "host 10.0.0.1",
    "ip6",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
    "ip[6:2] & 0x1fff = 0",
    "ip6[53] & 0x3f = 0x2",
    "len > 100",
    "ip[2:2] - ((ip[0]&0xf)<<2) > 40",
    "udp portrange 1000-2000",
    "net 192.168.0.0/16 and not port 22",
    "icmp[icmptype] == icmp-echo",
    "ip[0] / 3 > 1 or ip[1] % 3 = 1",
    "ip[0] << 2 = 0x40 and ip[1] >> 1 = 0",
};

const std::vector<std::string> kL2Only = {
    "arp", "vlan", "vlan 100 and tcp", "ether host 00:11:22:33:44:55", "ether[200:4] = 0x01020304",
};

bool is_jump_class(const bpf_insn& i) {
    uint8_t cls = BPF_CLASS(i.code);
    if (cls != BPF_JMP && cls != BPF_JMP32) return false;
    uint8_t op = BPF_OP(i.code);
    return op != BPF_CALL && op != BPF_EXIT;
}

bool is_pseudo_call(const bpf_insn& i) { return i.code == (BPF_JMP | BPF_CALL) && i.src_reg == BPF_PSEUDO_CALL; }

// What every translation must satisfy for the injector and the verifier.
void check_structure(const pwru::TranslatedFilter& f) {
    REQUIRE_FALSE(f.insns.empty());
    CHECK(f.insns.back().code == (BPF_JMP | BPF_EXIT));
    size_t pseudo_calls = 0;
    for (size_t i = 0; i < f.insns.size(); ++i) {
        const bpf_insn& in = f.insns[i];
        INFO("insn " << i << " code " << int(in.code));
        if (is_jump_class(in)) {
            long target = static_cast<long>(i) + 1 + in.off;
            CHECK(target >= 0);
            CHECK(target < static_cast<long>(f.insns.size()));
        }
        if (is_pseudo_call(in)) ++pseudo_calls;
        // Never a helper call or a map load: the body is self-contained.
        if (in.code == (BPF_JMP | BPF_CALL)) CHECK(in.src_reg == BPF_PSEUDO_CALL);
        CHECK(in.code != (BPF_LD | BPF_DW | BPF_IMM));
        // Shift immediates >= 32 are rejected by the verifier.
        uint8_t cls = BPF_CLASS(in.code);
        bool shift = (cls == BPF_ALU || cls == BPF_ALU64) &&
                     (BPF_OP(in.code) == BPF_LSH || BPF_OP(in.code) == BPF_RSH || BPF_OP(in.code) == BPF_ARSH);
        if (shift && BPF_SRC(in.code) == BPF_K) CHECK((in.imm >= 0 && in.imm < (cls == BPF_ALU ? 32 : 64)));
        // Stack use stays within 128 bytes below the frame pointer.
        bool mem = cls == BPF_LDX || cls == BPF_STX || cls == BPF_ST;
        if (mem && (in.dst_reg == BPF_REG_10 || in.src_reg == BPF_REG_10)) {
            CHECK(in.off < 0);
            CHECK(in.off >= -128);
        }
    }
    CHECK(pseudo_calls == f.slow_load_calls.size());
    for (size_t c : f.slow_load_calls) {
        REQUIRE(c < f.insns.size());
        CHECK(is_pseudo_call(f.insns[c]));
        CHECK(f.insns[c].imm == 0);
    }
}

pwru::TranslatedFilter translate_ok(const std::string& expr, LinkLayer ll) {
    auto cbpf = pwru::compile_pcap(expr, ll);
    INFO(expr);
    REQUIRE(cbpf.has_value());
    auto out = pwru::translate_cbpf(*cbpf);
    INFO((out ? std::string() : out.error().what));
    REQUIRE(out.has_value());
    CHECK(out->cbpf_len == cbpf->size());
    std::printf("  %-45s %s: %3zu cBPF -> %3zu eBPF insns, %zu slow calls\n", expr.c_str(),
                ll == LinkLayer::L2 ? "L2" : "L3", cbpf->size(), out->insns.size(), out->slow_load_calls.size());
    return *out;
}

sock_filter cbpf(uint16_t code, uint8_t jt, uint8_t jf, uint32_t k) { return sock_filter{code, jt, jf, k}; }

std::string translate_error(const std::vector<sock_filter>& prog) {
    auto out = pwru::translate_cbpf(prog);
    REQUIRE_FALSE(out.has_value());
    return out.error().what;
}

}  // namespace

TEST_CASE("tcpdump expressions translate to well-formed eBPF", "[unit]") {
    for (const auto& expr : kBothLayers) {
        for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) check_structure(translate_ok(expr, ll));
    }
    for (const auto& expr : kL2Only) check_structure(translate_ok(expr, LinkLayer::L2));
}

TEST_CASE("loads inside the window get a fast path, others only the slow loader", "[unit]") {
    // ether[200:4] is past PWRU_PKT_WINDOW: one inline slow call, no copied check.
    auto far = translate_ok("ether[200:4] = 0x01020304", LinkLayer::L2);
    CHECK(far.slow_load_calls.size() == 1);
    // ether[0:4] is in the window: fast path plus an out-of-line slow block.
    auto near = translate_ok("ether[0:4] = 0x01020304", LinkLayer::L2);
    CHECK(near.slow_load_calls.size() == 1);
    bool reads_data = false;
    for (const auto& in : near.insns)
        reads_data |= in.code == (BPF_LDX | BPF_MEM | BPF_W) && in.src_reg == BPF_REG_8 && in.off == 0;
    CHECK(reads_data);
}

TEST_CASE("a filter that reads no packet byte still calls pkt_load_slow", "[unit]") {
    // The probes carry pkt_load_slow; the kernel refuses a subprogram nobody calls.
    for (const char* expr : {"len > 100", "greater 200", "less 60"}) {
        for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) {
            auto f = translate_ok(expr, ll);
            check_structure(f);
            CHECK(f.slow_load_calls.size() == 1);
        }
    }
    // Filters that load call it anyway, with no extra reference.
    auto far = translate_ok("ether[200:4] = 0x01020304", LinkLayer::L2);
    CHECK(far.slow_load_calls.size() == 1);
}

TEST_CASE("a bad expression gives libpcap's message", "[unit]") {
    auto r = pwru::compile_pcap("tcp and and port 80", LinkLayer::L2);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().err == 0);
    CHECK(r.error().what.find("syntax error") != std::string::npos);

    auto div = pwru::compile_pcap("ip[0] / 0 > 1", LinkLayer::L2);
    REQUIRE_FALSE(div.has_value());
    CHECK(div.error().what.find("division by zero") != std::string::npos);

    auto l3 = pwru::compile_pcap("ether host 00:11:22:33:44:55", LinkLayer::L3);
    REQUIRE_FALSE(l3.has_value());
    CHECK_FALSE(l3.error().what.empty());
}

namespace {

size_t count(const pwru::TranslatedFilter& f, bool (*pred)(const bpf_insn&)) {
    size_t n = 0;
    for (const auto& in : f.insns) n += pred(in) ? 1 : 0;
    return n;
}

// The loop budget's instructions (see cbpf_translate.h): r2 = budget, then
// stored at R10-72; a backward jump loads it from there.
bool is_budget_reset(const bpf_insn& i) {
    return i.code == (BPF_ALU64 | BPF_MOV | BPF_K) && i.dst_reg == BPF_REG_2 &&
           i.imm == static_cast<int32_t>(pwru::kLoopBudget);
}

bool is_budget_store(const bpf_insn& i) {
    return i.code == (BPF_STX | BPF_MEM | BPF_DW) && i.dst_reg == BPF_REG_10 && i.src_reg == BPF_REG_2 && i.off == -72;
}

bool is_budget_load(const bpf_insn& i) {
    return i.code == (BPF_LDX | BPF_MEM | BPF_DW) && i.src_reg == BPF_REG_10 && i.off == -72;
}

// Every reset is stored; every backward jump stores what it spent.
void check_budget_stores(const pwru::TranslatedFilter& f) {
    size_t resets_stored = 0;
    for (size_t i = 0; i + 1 < f.insns.size(); ++i)
        resets_stored += is_budget_reset(f.insns[i]) && is_budget_store(f.insns[i + 1]) ? 1 : 0;
    CHECK(resets_stored == count(f, is_budget_reset));
    CHECK(count(f, is_budget_store) == count(f, is_budget_reset) + count(f, is_budget_load));
}

size_t backward_jumps(const std::vector<sock_filter>& prog) {
    size_t n = 0;
    for (const auto& f : prog) n += f.code == (BPF_JMP | BPF_JA) && static_cast<int32_t>(f.k) < 0 ? 1 : 0;
    return n;
}

}  // namespace

TEST_CASE("protochain (backward jumps) translates to a bounded loop", "[unit]") {
    for (const char* expr :
         {"ip6 protochain 58", "ip protochain 6", "protochain 17", "ip6 protochain 6 and tcp port 80"}) {
        for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) {
            auto cbpf_prog = pwru::compile_pcap(expr, ll);
            REQUIRE(cbpf_prog.has_value());
            auto f = translate_ok(expr, ll);
            check_structure(f);
            INFO(expr);
            bool has_backward = false;
            for (size_t i = 0; i < f.insns.size(); ++i) has_backward |= is_jump_class(f.insns[i]) && f.insns[i].off < 0;
            CHECK(has_backward);
            // Every backward cBPF jump spends budget; every loop (libpcap
            // emits one per protochain clause) resets it when entered.
            REQUIRE(backward_jumps(*cbpf_prog) > 0);
            CHECK(count(f, is_budget_load) == backward_jumps(*cbpf_prog));
            CHECK(count(f, is_budget_reset) >= 1);
            check_budget_stores(f);
        }
    }
    // Without backward jumps there is no budget.
    auto plain = translate_ok("tcp port 80", LinkLayer::L2);
    CHECK(count(plain, is_budget_reset) == 0);
    CHECK(count(plain, is_budget_load) == 0);
}

TEST_CASE("hand-written loops: per-loop budget, one budget for overlapping loops, bad targets", "[unit]") {
    const sock_filter ret_a = cbpf(BPF_RET | BPF_A, 0, 0, 0);
    auto add1 = cbpf(BPF_ALU | BPF_ADD | BPF_K, 0, 0, 1);
    auto ja_back = [](int distance) { return cbpf(BPF_JMP | BPF_JA, 0, 0, static_cast<uint32_t>(-distance)); };
    // Two loops one after the other: each resets the budget on entry.
    auto seq = pwru::translate_cbpf({add1, cbpf(BPF_JMP | BPF_JGT | BPF_K, 1, 0, 9), ja_back(3), add1,
                                     cbpf(BPF_JMP | BPF_JGT | BPF_K, 1, 0, 19), ja_back(3), ret_a});
    REQUIRE(seq.has_value());
    check_structure(*seq);
    CHECK(count(*seq, is_budget_reset) == 2);
    CHECK(count(*seq, is_budget_load) == 2);
    check_budget_stores(*seq);
    // Overlapping loops: one budget, set once in the prologue, before any block.
    auto overlap = pwru::translate_cbpf({add1, add1, cbpf(BPF_JMP | BPF_JGT | BPF_K, 3, 0, 60),
                                         cbpf(BPF_JMP | BPF_JSET | BPF_K, 0, 1, 1), ja_back(5), ja_back(5), ret_a});
    REQUIRE(overlap.has_value());
    check_structure(*overlap);
    CHECK(count(*overlap, is_budget_reset) == 1);
    size_t first_reset = 0;
    while (!is_budget_reset(overlap->insns[first_reset])) ++first_reset;
    CHECK(first_reset < 4);  // prologue: r8 = r1, A = 0, budget
    check_budget_stores(*overlap);
    // A loop before anything else (head = instruction 0) and `ja -1`.
    auto at_zero = pwru::translate_cbpf({add1, cbpf(BPF_JMP | BPF_JGT | BPF_K, 1, 0, 5), ja_back(3), ret_a});
    REQUIRE(at_zero.has_value());
    check_structure(*at_zero);
    auto self = pwru::translate_cbpf({cbpf(BPF_LD | BPF_IMM, 0, 0, 1), ja_back(1)});
    REQUIRE(self.has_value());
    check_structure(*self);
    // The old error stays for a target that is not an instruction.
    std::string e = translate_error({cbpf(BPF_LD | BPF_IMM, 0, 0, 1), ja_back(3), ret_a});
    CHECK(e.find("cBPF instruction 1") != std::string::npos);
    CHECK(e.find("backward jump (protochain) to instruction -1, before the start of the program") != std::string::npos);
}

TEST_CASE("untranslatable cBPF is rejected with the construct named", "[unit]") {
    const sock_filter ret0 = cbpf(BPF_RET | BPF_K, 0, 0, 0);
    CHECK(translate_error({}).find("empty") != std::string::npos);
    CHECK(translate_error({cbpf(0xff, 0, 0, 0), ret0}).find("cBPF instruction 0 (code 0x00ff") != std::string::npos);
    CHECK(translate_error({cbpf(BPF_MISC | 0x40, 0, 0, 0), ret0}).find("BPF_MISC other than TAX/TXA") !=
          std::string::npos);
    // ld [SKF_AD_OFF + SKF_AD_PKTTYPE]: what "inbound" compiles to on a live Linux handle.
    CHECK(translate_error(
              {cbpf(BPF_LD | BPF_B | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE)), ret0})
              .find("extension load") != std::string::npos);
    CHECK(translate_error({cbpf(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 1), ret0}).find("jump out of the program") !=
          std::string::npos);
    CHECK(translate_error({cbpf(BPF_JMP | BPF_JA, 0, 0, 7), ret0}).find("jump out of the program") !=
          std::string::npos);
    CHECK(translate_error({cbpf(BPF_LD | BPF_MEM, 0, 0, 16), ret0}).find("scratch memory slot") != std::string::npos);
    CHECK(translate_error({cbpf(BPF_ALU | BPF_DIV | BPF_K, 0, 0, 0), ret0}).find("division") != std::string::npos);
}

TEST_CASE("hand-written cBPF: unreachable code is dropped, falling off the end rejects", "[unit]") {
    // ret #1; ret #0 (unreachable): the verifier would refuse dead code.
    auto r = pwru::translate_cbpf({cbpf(BPF_RET | BPF_K, 0, 0, 1), cbpf(BPF_RET | BPF_K, 0, 0, 0)});
    REQUIRE(r.has_value());
    check_structure(*r);
    // r8 = r1; the pkt_load_slow reference (6 insns, see below); w0 = 1; exit
    CHECK(r->insns.size() == 9);

    // A program whose last instruction falls through: libpcap returns 0.
    auto fall = pwru::translate_cbpf({cbpf(BPF_LD | BPF_IMM, 0, 0, 5)});
    REQUIRE(fall.has_value());
    check_structure(*fall);

    // Scratch memory read before any write is zeroed at entry.
    auto mem = pwru::translate_cbpf({cbpf(BPF_LD | BPF_MEM, 0, 0, 3), cbpf(BPF_RET | BPF_A, 0, 0, 0)});
    REQUIRE(mem.has_value());
    check_structure(*mem);
    bool zeroes_slot = false;
    for (const auto& in : mem->insns)
        zeroes_slot |= in.code == (BPF_ST | BPF_MEM | BPF_W) && in.dst_reg == BPF_REG_10 && in.imm == 0;
    CHECK(zeroes_slot);
}

TEST_CASE("a jump beyond the 16-bit eBPF offset is an error", "[unit]") {
    // 0: jeq #1 -> 1 else 2; 1: ja to the end over 40000 reachable loads.
    std::vector<sock_filter> prog = {cbpf(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 1), cbpf(BPF_JMP | BPF_JA, 0, 0, 40000)};
    for (int i = 0; i < 40000; ++i) prog.push_back(cbpf(BPF_LD | BPF_IMM, 0, 0, 1));
    prog.push_back(cbpf(BPF_RET | BPF_A, 0, 0, 0));
    CHECK(translate_error(prog).find("16-bit eBPF jump offset") != std::string::npos);
}

TEST_CASE("constant_filter", "[unit]") {
    for (bool verdict : {false, true}) {
        auto f = pwru::constant_filter(verdict);
        check_structure(f);
        REQUIRE(f.insns.size() == 2);
        CHECK(f.insns[0].code == (BPF_ALU | BPF_MOV | BPF_K));
        CHECK(f.insns[0].dst_reg == BPF_REG_0);
        CHECK(f.insns[0].imm == (verdict ? 1 : 0));
        CHECK(f.slow_load_calls.empty());
        CHECK(f.cbpf_len == 0);
    }
}

TEST_CASE("join_filter_words joins like tcpdump", "[unit]") {
    CHECK(pwru::join_filter_words({}) == "");
    CHECK(pwru::join_filter_words({"tcp"}) == "tcp");
    CHECK(pwru::join_filter_words({"tcp", "and", "port", "80"}) == "tcp and port 80");
    CHECK(pwru::join_filter_words({"host 10.0.0.1", "or", "arp"}) == "host 10.0.0.1 or arp");
}
