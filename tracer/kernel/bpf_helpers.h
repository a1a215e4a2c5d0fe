// --filter-track-bpf-helpers (pwru v1.0.8): the kernel functions that the
// loaded BPF programs call (helpers, and map operations the verifier calls
// directly), so that they can be probed like --filter-non-skb-funcs and their
// calls attributed to the skb on the same stack. pwru decodes each JITed
// program's x86 code from /proc/kcore; here the kernel's own record of the
// calls is read instead: each program's translated instructions
// (BPF_OBJ_GET_INFO_BY_FD, xlated_prog_insns), where a call to a kernel
// function keeps its target as an offset from __bpf_call_base once the
// verifier has fixed it up (kernel/bpf/syscall.c, bpf_insn_prepare_dump:
// kept for a caller that may see kernel addresses).
#pragma once

#include <string>
#include <vector>

#include "tracer/kernel/kallsyms.h"
#include "tracer/util/result.h"

namespace pwru {

struct BpfHelperCalls {
    std::vector<std::string> functions;  // sorted, unique: what the programs call
    size_t programs = 0;                 // programs read
    size_t unreadable = 0;               // programs whose instructions the kernel did not give
};

// Every kernel function a loaded BPF program calls. Fails when the kernel
// hides addresses (not root, kptr_restrict): the calls cannot be named then.
Result<BpfHelperCalls> bpf_helper_calls(const Kallsyms& kallsyms);

}  // namespace pwru
