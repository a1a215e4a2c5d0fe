// What the running kernel lets us trace, read from its BTF: the functions that
// take a struct sk_buff * (kprobe targets) and the tracepoints that carry one
// (tp_btf targets). Also the BTF owner type the other kernel readers share.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tracer/util/result.h"

struct btf;

namespace pwru {

struct BtfFree {
    void operator()(struct btf* b) const noexcept;
};
// One owner per parsed BTF object (DESIGN.md: kernel objects, one owner each).
using BtfPtr = std::unique_ptr<struct btf, BtfFree>;

// Parses a kernel BTF file, raw (/sys/kernel/btf/vmlinux) or an ELF with .BTF.
Result<BtfPtr> load_kernel_btf(const std::string& path);

// The BTF file of kernel module `name` in btf_dir; NotFound (the user named
// it, --kmods) when there is none.
Result<std::string> module_btf_path(const std::string& btf_dir, const std::string& name);

// Parses module BTF `btf_dir/name`, split on the kernel's BTF.
Result<BtfPtr> load_module_btf(const std::string& btf_dir, const std::string& name, const struct btf* vmlinux);

// Every module with BTF in btf_dir (everything but "vmlinux"), sorted.
std::vector<std::string> list_module_btfs(const std::string& btf_dir);

struct SkbFunction {
    std::string name;
    int skb_pos = 0;     // 1..5: which argument is the struct sk_buff *
    int reason_pos = 0;  // 1..5 position of its drop verdict (a drop function of drop_verdict.h), 0 if none
    std::string module;  // "" for vmlinux, else the module name
};

struct DiscoveryOptions {
    std::string kernel_btf = "/sys/kernel/btf/vmlinux";
    std::string btf_dir = "/sys/kernel/btf";  // module BTF lives here, split on vmlinux
    std::vector<std::string> kmods;           // --kmods
    bool all_kmods = false;                   // --all-kmods
    std::string filter_func;                  // --filter-func: RE2, whole-name match; empty = all
};

// Every BTF FUNC with a struct sk_buff * among arguments 1..5 (as pwru: the
// probe programs read at most 5 argument registers), in vmlinux and in the
// selected modules; unique by name (first seen wins, vmlinux first), sorted.
Result<std::vector<SkbFunction>> discover_skb_functions(const DiscoveryOptions&);

struct SkbTracepoint {
    std::string name;       // e.g. "kfree_skb"
    int skb_arg = -1;       // 0-based index among the TP_PROTO args (without `void *__data`)
    int reason_arg = -1;    // index of its drop verdict (kfree_skb: drop_verdict.h), -1 if none
    int location_arg = -1;  // kfree_skb / consume_skb: the `void *location` after skb, else -1
};

// Every vmlinux tracepoint whose `btf_trace_<name>` prototype has a struct
// sk_buff * argument, sorted by name. Only vmlinux: tp_btf programs for module
// tracepoints would need the module's BTF object fd, which no caller plans for.
// --filter-func applies to the tracepoint names.
Result<std::vector<SkbTracepoint>> discover_skb_tracepoints(const DiscoveryOptions&);

}  // namespace pwru
