// Splices translated pcap filters into the probe programs at load time.
//
// The BPF object holds stub subprograms (pcap_filter_l2, pcap_filter_l3).
// libbpf calls our prog_prepare_load_fn for every program of our own
// sections after relocation, right before BPF_PROG_LOAD; there we replace
// each stub's body with the translated instructions, re-aim every BPF-to-BPF
// call that crosses the splice point, and shift func_info / line_info.
// No runtime clang, and the verifier sees the real filter.
#pragma once

#include <linux/bpf.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tracer/filter/cbpf_translate.h"
#include "tracer/util/result.h"

struct bpf_object;
struct bpf_program;
struct bpf_prog_load_opts;
struct btf;

namespace pwru {

// Our section names (bpf/pwru.bpf.c) and their program types.
inline constexpr const char* kSecKprobe = "pwru_kprobe";
inline constexpr const char* kSecKprobeMulti = "pwru_kprobe_multi";
inline constexpr const char* kSecTpBtf = "pwru_tp_btf";
inline constexpr const char* kSecTc = "pwru_tc";
inline constexpr const char* kSecFentry = "pwru_fentry";  // --filter-trace-tc / -xdp
inline constexpr const char* kSecFexit = "pwru_fexit";    // --filter-trace-xdp with --filter-track-skb

// Registers libbpf handlers for our sections, once per process. Must run
// before the skeleton is opened (libbpf resolves sections at open).
Result<void> register_section_handlers();

// Pure splice, exposed for tests: replaces the body of subprogram `stub`
// (located through func_info names) with `body`; calls recorded in
// body.slow_load_calls are aimed at subprogram `slow_loader`.
struct ProgramImage {
    std::vector<bpf_insn> insns;
    std::vector<bpf_func_info> func_info;
    std::vector<std::string> func_names;  // parallel to func_info
    std::vector<bpf_line_info> line_info;
};
Result<void> splice_subprogram(ProgramImage& image, const std::string& stub, const TranslatedFilter& body,
                               const std::string& slow_loader);

// Stub subprogram name -> the filter that replaces its body.
using StubFilters = std::vector<std::pair<std::string, TranslatedFilter>>;

// The stubs of bpf/skb_filter.bpf.h and bpf/skb_tunnel.bpf.h.
inline constexpr const char* kStubL2 = "pcap_filter_l2";
inline constexpr const char* kStubL3 = "pcap_filter_l3";
inline constexpr const char* kStubTunnelL2 = "pcap_tunnel_filter_l2";
inline constexpr const char* kStubTunnelL3 = "pcap_tunnel_filter_l3";

// The filters to inject while a load runs on this thread.
class FilterInjector {
  public:
    FilterInjector(const btf* object_btf, StubFilters stubs);
    // The outer filter only (pcap_filter_l2 / pcap_filter_l3).
    FilterInjector(const btf* object_btf, TranslatedFilter l2, TranslatedFilter l3);
    ~FilterInjector();
    FilterInjector(const FilterInjector&) = delete;
    FilterInjector& operator=(const FilterInjector&) = delete;

    // Called from the libbpf hook.
    int prepare(bpf_program* prog, bpf_prog_load_opts* opts);

    // The first splice error (kept for the user: libbpf only sees -EINVAL).
    const std::string& error() const { return error_; }
    // Instruction count of each loaded program after splicing.
    const std::map<std::string, size_t>& program_sizes() const { return sizes_; }

  private:
    const btf* btf_;
    StubFilters stubs_;
    // Kept alive until the load finishes: libbpf hands these to the kernel.
    std::map<std::string, ProgramImage> images_;
    std::map<std::string, size_t> sizes_;
    std::string error_;
};

// The one inject-and-load sequence (the session's object, each traced tc/XDP
// program's copy, pwru-filtercheck's harness): `load` (the skeleton's load)
// runs with `stubs` spliced in (none: a plain load), libbpf's messages of the
// load are collected.
struct SplicedLoad {
    int err = 0;               // the load's return value
    std::string splice_error;  // set when the splice failed (libbpf says only -EINVAL)
    std::string libbpf_log;    // libbpf's messages during the load (the verifier log)
    size_t max_insns = 0;      // the largest spliced program, in instructions
};
SplicedLoad load_with_filters(bpf_object* obj, StubFilters stubs, const std::function<int()>& load);

}  // namespace pwru
