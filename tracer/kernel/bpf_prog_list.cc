#include "tracer/kernel/bpf_prog_list.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "tracer/kernel/bpf_owners.h"

namespace pwru {
namespace {

bool of_kind(uint32_t type, BpfProgKind kind) {
    if (kind == BpfProgKind::Xdp) return type == BPF_PROG_TYPE_XDP;
    return type == BPF_PROG_TYPE_SCHED_CLS || type == BPF_PROG_TYPE_SCHED_ACT;
}

struct BtfDeleter {
    void operator()(btf* b) const { btf__free(b); }
};

// The name of the program's first function (func_info[0]) in its BTF: what
// bpf_program__set_attach_target() looks up. The kernel names the program's
// kallsyms symbol after the same function.
std::string entry_function(const bpf_prog_info& info, int fd) {
    if (info.btf_id == 0 || info.nr_func_info == 0) return "";
    bpf_func_info first{};
    bpf_prog_info again{};
    again.nr_func_info = 1;
    again.func_info_rec_size = sizeof(bpf_func_info);
    again.func_info = reinterpret_cast<uint64_t>(&first);
    uint32_t len = sizeof(again);
    if (bpf_obj_get_info_by_fd(fd, &again, &len) != 0) return "";
    std::unique_ptr<btf, BtfDeleter> b(btf__load_from_kernel_by_id(info.btf_id));
    if (!b) return "";
    const btf_type* t = btf__type_by_id(b.get(), first.type_id);
    if (!t) return "";
    const char* name = btf__name_by_offset(b.get(), t->name_off);
    return name ? name : "";
}

}  // namespace

const char* bpf_prog_kind_name(BpfProgKind kind) { return kind == BpfProgKind::Xdp ? "xdp" : "tc"; }

Result<BpfProgListing> list_bpf_programs(BpfProgKind kind) {
    BpfProgListing out;
    uint32_t id = 0;
    // Bounded: ids only grow, and a program gone between two calls is skipped.
    for (int guard = 0; guard < 1 << 20; ++guard) {
        if (bpf_prog_get_next_id(id, &id) != 0) {
            if (errno == ENOENT) return out;
            return fail("cannot list the loaded BPF programs", errno);
        }
        UniqueFd fd(bpf_prog_get_fd_by_id(id));
        if (!fd) continue;  // unloaded meanwhile
        bpf_prog_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        if (!of_kind(info.type, kind)) continue;
        std::string func = entry_function(info, fd.get());
        if (func.empty()) {
            out.without_btf.push_back(fmt::format("{} (id {})", info.name, id));
            continue;
        }
        std::string tag;
        for (uint8_t byte : info.tag) tag += fmt::format("{:02x}", byte);
        out.progs.push_back({id, kind, func, "bpf_prog_" + tag + "_" + func});
    }
    return fail("too many BPF programs to list");
}

}  // namespace pwru
