#include "tracer/kernel/bpf_helpers.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "tracer/kernel/bpf_owners.h"

namespace pwru {
namespace {

// The program's translated instructions, empty when the kernel gives none.
std::vector<bpf_insn> xlated_insns(int fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.xlated_prog_len == 0) return {};
    std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
    bpf_prog_info again{};
    again.xlated_prog_len = static_cast<uint32_t>(insns.size() * sizeof(bpf_insn));
    again.xlated_prog_insns = reinterpret_cast<uint64_t>(insns.data());
    len = sizeof(again);
    if (bpf_obj_get_info_by_fd(fd, &again, &len) != 0) return {};
    insns.resize(std::min<size_t>(insns.size(), again.xlated_prog_len / sizeof(bpf_insn)));
    return insns;
}

}  // namespace

Result<BpfHelperCalls> bpf_helper_calls(const Kallsyms& kallsyms, const std::set<uint32_t>& skip) {
    if (!kallsyms.addresses_visible())
        return fail("--filter-track-bpf-helpers needs kernel addresses: run as root with kernel.kptr_restrict < 2");
    auto base = kallsyms.address_of("__bpf_call_base");
    if (!base) return fail("--filter-track-bpf-helpers: /proc/kallsyms has no __bpf_call_base");
    BpfHelperCalls out;
    std::set<std::string> names;
    uint32_t id = 0;
    // Bounded: ids only grow, and a program gone between two calls is skipped.
    for (int guard = 0; guard < 1 << 20; ++guard) {
        if (bpf_prog_get_next_id(id, &id) != 0) {
            if (errno != ENOENT) return fail("cannot list the loaded BPF programs", errno);
            out.functions.assign(names.begin(), names.end());
            return out;
        }
        if (skip.count(id)) continue;
        UniqueFd fd(bpf_prog_get_fd_by_id(id));
        if (!fd) continue;  // unloaded meanwhile
        ++out.programs;
        std::vector<bpf_insn> insns = xlated_insns(fd.get());
        if (insns.empty()) {
            ++out.unreadable;
            continue;
        }
        for (const bpf_insn& insn : insns) {
            // A call to a kernel function: BPF_JMP|BPF_CALL with src_reg 0
            // (a helper, or a map operation called directly) or
            // BPF_PSEUDO_KFUNC_CALL; BPF_PSEUDO_CALL is a call inside the
            // program. imm 0: hidden, or a call the JIT resolves itself.
            if (insn.code != (BPF_JMP | BPF_CALL) || insn.imm == 0) continue;
            if (insn.src_reg != 0 && insn.src_reg != BPF_PSEUDO_KFUNC_CALL) continue;
            const uint64_t target = *base + static_cast<uint64_t>(static_cast<int64_t>(insn.imm));
            const Kallsyms::Symbol* sym = kallsyms.find(target);
            if (sym && sym->addr == target) names.emplace(sym->name);
        }
    }
    return fail("too many BPF programs to list");
}

BpfMapOp bpf_map_op_of(const struct btf* b, const std::string& name) {
    BpfMapOp op = name.ends_with("_lookup_elem")   ? BpfMapOp::Lookup
                  : name.ends_with("_update_elem") ? BpfMapOp::Update
                  : name.ends_with("_delete_elem") ? BpfMapOp::Delete
                                                   : BpfMapOp::None;
    if (op == BpfMapOp::None || !b) return BpfMapOp::None;
    const int id = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_FUNC);
    if (id <= 0) return BpfMapOp::None;
    auto skip = [&](uint32_t t) {
        for (int hops = 0; hops < 32 && t; ++hops) {
            const btf_type* bt = btf__type_by_id(b, t);
            if (!bt || !(btf_is_mod(bt) || btf_is_typedef(bt))) break;
            t = bt->type;
        }
        return t;
    };
    const btf_type* proto = btf__type_by_id(b, btf__type_by_id(b, id)->type);
    if (!proto || !btf_is_func_proto(proto) || btf_vlen(proto) == 0) return BpfMapOp::None;
    const btf_type* ptr = btf__type_by_id(b, skip(btf_params(proto)[0].type));
    if (!ptr || !btf_is_ptr(ptr)) return BpfMapOp::None;
    const btf_type* target = btf__type_by_id(b, skip(ptr->type));
    if (!target || !btf_is_struct(target)) return BpfMapOp::None;
    const char* sname = btf__name_by_offset(b, target->name_off);
    return sname && std::string(sname) == "bpf_map" ? op : BpfMapOp::None;
}

}  // namespace pwru
