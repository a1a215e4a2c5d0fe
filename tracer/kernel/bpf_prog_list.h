// --filter-trace-tc / --filter-trace-xdp: the loaded tc and XDP BPF programs
// that fentry can attach to, and the names pwru prints for them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tracer/util/result.h"

namespace pwru {

enum class BpfProgKind { Tc, Xdp };

// "tc" or "xdp": the suffix of the FUNC column, "bpf_prog_..._name(tc)".
const char* bpf_prog_kind_name(BpfProgKind kind);

struct LoadedBpfProg {
    uint32_t id = 0;
    BpfProgKind kind = BpfProgKind::Tc;
    std::string func;  // its entry function in its own BTF: the fentry target
    std::string ksym;  // "bpf_prog_<tag>_<func>", as /proc/kallsyms (and pwru) names it
};

struct BpfProgListing {
    std::vector<LoadedBpfProg> progs;
    // Of that kind but without BTF: fentry cannot attach to them.
    std::vector<std::string> without_btf;
};

// Every loaded program of `kind` (tc: SCHED_CLS and SCHED_ACT; xdp: XDP), by id.
Result<BpfProgListing> list_bpf_programs(BpfProgKind kind);

}  // namespace pwru
