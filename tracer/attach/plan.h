// What a session will attach, decided before touching the kernel's probes
// (`pwru --dry-run` prints it and stops). Plain data: tests build plans
// without root.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "pwru_abi.h"
#include "tracer/kernel/bpf_prog_list.h"
#include "tracer/kernel/btf_member_access.h"
#include "tracer/kernel/btf_discovery.h"
#include "tracer/kernel/features.h"

namespace pwru {

struct Plan {
    Backend backend = Backend::Tracepoint;
    std::string backend_why;
    std::vector<SkbFunction> functions;      // kprobe backends
    std::vector<SkbTracepoint> tracepoints;  // tracepoint backend: slot = index
    size_t not_traceable = 0;                // dropped: not in available_filter_functions
    std::string tracefs_note;                // why that list could not be used, if so

    // --filter-trace-tc / --filter-trace-xdp: the programs traced so far; an
    // event's probe_id is the index here (filled by Session::attach_bpf_programs()).
    std::vector<LoadedBpfProg> bpf_programs;

    // --output-skb-metadata: what each record's pwru_field_values hold, in
    // order; --filter-skb-expr: the comparison the probes make (op 0: none).
    std::vector<MemberAccess> skb_fields;
    pwru_field_cmp skb_expr{};
    // --output-xdp-metadata / --filter-xdp-expr: the same for XDP events.
    std::vector<MemberAccess> xdp_fields;
    pwru_field_cmp xdp_expr{};

    // The kprobe backends, where clone tracking, --filter-non-skb-funcs and
    // kfree_skbmem exist; the tracepoint backend has none of them.
    bool kprobes() const { return backend != Backend::Tracepoint; }
    size_t target_count() const { return backend == Backend::Tracepoint ? tracepoints.size() : functions.size(); }
};

}  // namespace pwru
