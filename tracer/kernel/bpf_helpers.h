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

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "tracer/kernel/kallsyms.h"
#include "tracer/util/result.h"

struct btf;

namespace pwru {

struct BpfHelperCalls {
    std::vector<std::string> functions;  // sorted, unique: what the programs call
    size_t programs = 0;                 // programs read
    size_t unreadable = 0;               // programs whose instructions the kernel did not give
};

// Every kernel function a loaded BPF program calls. Fails when the kernel
// hides addresses (not root, kptr_restrict): the calls cannot be named then.
// Programs in `skip` (pwru's own) are not read: probing what they call
// would only count recursion misses.
Result<BpfHelperCalls> bpf_helper_calls(const Kallsyms& kallsyms, const std::set<uint32_t>& skip = {});

// --output-bpfmap: whether `name` is a map operation pwru shows: a function
// whose first argument is a struct bpf_map * (in the kernel's BTF) and whose
// name ends in _lookup_elem, _update_elem or _delete_elem.
enum class BpfMapOp { None, Lookup, Update, Delete };
BpfMapOp bpf_map_op_of(const struct btf* vmlinux, const std::string& name);

}  // namespace pwru
