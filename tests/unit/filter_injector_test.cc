// The splice that places a translated filter in place of a stub subprogram:
// calls across the splice point are re-aimed, func/line info shifted.
#include <catch2/catch.hpp>

#include "tracer/filter/filter_injector.h"

using namespace pwru;

namespace {

bpf_insn mov_r0(int v) { return bpf_insn{BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, v}; }
bpf_insn call_rel(int imm) { return bpf_insn{BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, imm}; }
bpf_insn exit_insn() { return bpf_insn{BPF_JMP | BPF_EXIT, 0, 0, 0, 0}; }

// main [0,5) calls the stub and the slow loader; stub [5,8); slow [8,10).
ProgramImage sample_image() {
    ProgramImage img;
    img.insns = {mov_r0(0), call_rel(3), call_rel(5), mov_r0(0), exit_insn(),  // main
                 mov_r0(1), call_rel(1), exit_insn(),                          // pcap_filter_l2
                 mov_r0(0), exit_insn()};                                      // pkt_load_slow
    img.func_info = {{0, 1}, {5, 2}, {8, 3}};
    img.func_names = {"main", "pcap_filter_l2", "pkt_load_slow"};
    for (__u32 off : {0u, 2u, 5u, 6u, 8u}) img.line_info.push_back(bpf_line_info{off, 0, 0, 0});
    return img;
}

size_t target(const ProgramImage& img, size_t i) { return i + img.insns[i].imm + 1; }

}  // namespace

TEST_CASE("a longer body shifts what follows and re-aims the calls", "[unit]") {
    ProgramImage img = sample_image();
    TranslatedFilter body;
    body.insns = {mov_r0(2), call_rel(0), mov_r0(1), exit_insn()};
    body.slow_load_calls = {1};
    REQUIRE(splice_subprogram(img, "pcap_filter_l2", body, "pkt_load_slow"));

    REQUIRE(img.insns.size() == 11);
    CHECK(target(img, 1) == 5);  // main -> filter
    CHECK(target(img, 2) == 9);  // main -> slow, moved by one
    CHECK(target(img, 6) == 9);  // filter -> slow, patched from the body's record
    CHECK(img.insns[5].imm == 2);
    CHECK(img.func_info[1].insn_off == 5);
    CHECK(img.func_info[2].insn_off == 9);
    std::vector<__u32> lines;
    for (const auto& l : img.line_info) lines.push_back(l.insn_off);
    CHECK(lines == std::vector<__u32>{0, 2, 5, 9});
}

TEST_CASE("a shorter body works too (constant filter)", "[unit]") {
    ProgramImage img = sample_image();
    REQUIRE(splice_subprogram(img, "pcap_filter_l2", constant_filter(false), "pkt_load_slow"));
    CHECK(img.insns.size() == 9);
    CHECK(target(img, 2) == 7);
    CHECK(img.func_info[2].insn_off == 7);
}

TEST_CASE("a missing stub is an error naming it", "[unit]") {
    ProgramImage img = sample_image();
    auto r = splice_subprogram(img, "pcap_filter_l3", constant_filter(true), "pkt_load_slow");
    REQUIRE_FALSE(r);
    CHECK(r.error().what.find("pcap_filter_l3") != std::string::npos);
}
