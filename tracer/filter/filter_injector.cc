#include "tracer/filter/filter_injector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "tracer/kernel/log.h"

namespace pwru {
namespace {

// The injector of the load running on this thread (a load is synchronous).
thread_local FilterInjector* t_active = nullptr;

int prepare_load_hook(bpf_program* prog, bpf_prog_load_opts* opts, long /*cookie*/) {
    if (!t_active) return 0;  // a load outside a tracer session: leave it alone
    return t_active->prepare(prog, opts);
}

bool is_pseudo_call(const bpf_insn& in) { return in.code == (BPF_JMP | BPF_CALL) && in.src_reg == BPF_PSEUDO_CALL; }

bool is_pseudo_func(const bpf_insn& in) {
    return in.code == (BPF_LD | BPF_IMM | BPF_DW) && in.src_reg == BPF_PSEUDO_FUNC;
}

struct SubprogRange {
    size_t start = 0, end = 0;
};

Result<SubprogRange> find_subprog(const ProgramImage& image, const std::string& name) {
    for (size_t i = 0; i < image.func_info.size(); ++i) {
        if (image.func_names[i] != name) continue;
        SubprogRange r;
        r.start = image.func_info[i].insn_off;
        r.end = image.insns.size();
        for (const auto& fi : image.func_info)
            if (fi.insn_off > r.start) r.end = std::min<size_t>(r.end, fi.insn_off);
        return r;
    }
    return fail("subprogram '" + name + "' not found in the program's func info");
}

}  // namespace

Result<void> register_section_handlers() {
    static std::once_flag once;
    static Result<void> result;
    std::call_once(once, [] {
        struct Def {
            const char* sec;
            bpf_prog_type type;
            bpf_attach_type attach;
        };
        const Def defs[] = {
            {kSecKprobe, BPF_PROG_TYPE_KPROBE, static_cast<bpf_attach_type>(0)},
            {kSecKprobeMulti, BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI},
            {kSecTpBtf, BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP},
            {kSecTc, BPF_PROG_TYPE_SCHED_CLS, static_cast<bpf_attach_type>(0)},
            {kSecFentry, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY},
            {kSecFexit, BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT},
        };
        for (const auto& d : defs) {
            LIBBPF_OPTS(libbpf_prog_handler_opts, opts, .prog_prepare_load_fn = prepare_load_hook);
            int id = libbpf_register_prog_handler(d.sec, d.type, d.attach, &opts);
            if (id < 0) {
                result = fail(std::string("cannot register the libbpf handler for section ") + d.sec, -id);
                return;
            }
        }
    });
    return result;
}

Result<void> splice_subprogram(ProgramImage& image, const std::string& stub, const TranslatedFilter& body,
                               const std::string& slow_loader) {
    auto range = find_subprog(image, stub);
    if (!range) return std::unexpected(range.error());
    std::optional<SubprogRange> slow;
    if (!body.slow_load_calls.empty()) {
        auto s = find_subprog(image, slow_loader);
        if (!s) return std::unexpected(s.error());
        slow = *s;
    }

    const size_t S = range->start, E = range->end;
    const long delta = static_cast<long>(body.insns.size()) - static_cast<long>(E - S);
    // Old instruction index -> new one (targets inside the stub may only be its start).
    auto remap = [&](size_t x) -> size_t { return x < E ? (x <= S ? x : S) : x + delta; };

    std::vector<bpf_insn> out;
    out.reserve(image.insns.size() + body.insns.size());
    for (size_t i = 0; i < S; ++i) out.push_back(image.insns[i]);
    for (const auto& in : body.insns) out.push_back(in);
    for (size_t i = E; i < image.insns.size(); ++i) out.push_back(image.insns[i]);

    // Re-aim BPF-to-BPF calls and callback references outside the body.
    for (size_t i = 0; i < image.insns.size(); ++i) {
        if (i >= S && i < E) continue;
        const bpf_insn& in = image.insns[i];
        if (!is_pseudo_call(in) && !is_pseudo_func(in)) continue;
        long target = static_cast<long>(i) + in.imm + 1;
        if (target < 0 || static_cast<size_t>(target) >= image.insns.size())
            return fail("call at instruction " + std::to_string(i) + " points outside the program");
        size_t ni = remap(i), nt = remap(static_cast<size_t>(target));
        out[ni].imm = static_cast<int>(static_cast<long>(nt) - static_cast<long>(ni) - 1);
    }
    for (size_t k : body.slow_load_calls) {
        if (k >= body.insns.size() || !is_pseudo_call(body.insns[k]))
            return fail("translated filter names a slow-load call that is not a call");
        size_t ni = S + k, nt = remap(slow->start);
        out[ni].imm = static_cast<int>(static_cast<long>(nt) - static_cast<long>(ni) - 1);
    }

    for (auto& fi : image.func_info) fi.insn_off = static_cast<__u32>(remap(fi.insn_off));
    std::vector<bpf_line_info> lines;
    for (auto li : image.line_info) {
        if (li.insn_off > S && li.insn_off < E) continue;  // the stub's own lines go
        li.insn_off = static_cast<__u32>(remap(li.insn_off));
        lines.push_back(li);
    }
    image.line_info = std::move(lines);
    image.insns = std::move(out);
    return {};
}

FilterInjector::FilterInjector(const btf* object_btf, StubFilters stubs) : btf_(object_btf), stubs_(std::move(stubs)) {
    t_active = this;
}

FilterInjector::FilterInjector(const btf* object_btf, TranslatedFilter l2, TranslatedFilter l3)
    : FilterInjector(object_btf, StubFilters{{kStubL2, std::move(l2)}, {kStubL3, std::move(l3)}}) {}

FilterInjector::~FilterInjector() {
    if (t_active == this) t_active = nullptr;
}

int FilterInjector::prepare(bpf_program* prog, bpf_prog_load_opts* opts) {
    const std::string name = bpf_program__name(prog);
    ProgramImage& image = images_[name];
    const bpf_insn* insns = bpf_program__insns(prog);
    image.insns.assign(insns, insns + bpf_program__insn_cnt(prog));

    if (!opts->func_info || opts->func_info_cnt == 0 || !btf_) {
        error_ = "program " + name + " has no BTF func info: cannot place the pcap filter";
        return -EINVAL;
    }
    // Records are copied by their declared size (the kernel may know larger ones).
    auto copy_records = [](const void* src, __u32 cnt, __u32 rec_size, auto& dst) {
        using T = typename std::decay_t<decltype(dst)>::value_type;
        dst.resize(cnt);
        for (__u32 i = 0; i < cnt; ++i)
            std::memcpy(&dst[i], static_cast<const char*>(src) + size_t(i) * rec_size,
                        std::min<size_t>(rec_size, sizeof(T)));
    };
    copy_records(opts->func_info, opts->func_info_cnt, opts->func_info_rec_size, image.func_info);
    if (opts->line_info) copy_records(opts->line_info, opts->line_info_cnt, opts->line_info_rec_size, image.line_info);
    image.func_names.clear();
    for (const auto& fi : image.func_info) {
        const btf_type* t = btf__type_by_id(btf_, fi.type_id);
        image.func_names.push_back(t ? btf__name_by_offset(btf_, t->name_off) : "");
    }

    for (const auto& [stub, body] : stubs_) {
        // Programs that never call the filter have no stub: nothing to do.
        if (std::find(image.func_names.begin(), image.func_names.end(), stub) == image.func_names.end()) continue;
        if (auto r = splice_subprogram(image, stub, body, "pkt_load_slow"); !r) {
            error_ = "program " + name + ": " + r.error().what;
            return -EINVAL;
        }
    }

    if (int err = bpf_program__set_insns(prog, image.insns.data(), image.insns.size()); err) {
        error_ = "program " + name + ": cannot replace its instructions";
        return err;
    }
    opts->func_info = image.func_info.data();
    opts->func_info_rec_size = sizeof(bpf_func_info);
    opts->func_info_cnt = static_cast<__u32>(image.func_info.size());
    opts->line_info = image.line_info.empty() ? nullptr : image.line_info.data();
    opts->line_info_rec_size = sizeof(bpf_line_info);
    opts->line_info_cnt = static_cast<__u32>(image.line_info.size());
    sizes_[name] = image.insns.size();
    return 0;
}

}  // namespace pwru

namespace pwru {

SplicedLoad load_with_filters(bpf_object* obj, StubFilters stubs, const std::function<int()>& load) {
    SplicedLoad out;
    take_libbpf_messages();  // not this load's
    {
        std::optional<FilterInjector> injector;
        if (!stubs.empty()) injector.emplace(bpf_object__btf(obj), std::move(stubs));
        out.err = load();
        if (injector) {
            out.splice_error = injector->error();
            for (const auto& [name, n] : injector->program_sizes()) out.max_insns = std::max(out.max_insns, n);
        }
    }
    out.libbpf_log = take_libbpf_messages();
    return out;
}

}  // namespace pwru
