// What a Session attaches: the skb probes of its plan (attach()), clone
// tracking, --filter-non-skb-funcs, and (the rest of this file)
// --filter-trace-tc / --filter-trace-xdp: an fentry program on every loaded
// tc / XDP BPF program, as pwru does. fentry names its target when it is
// loaded, so each traced program gets its own copy of our object: every map
// is the main copy's (events, counters, filters' scratch, the ready flag),
// the read-only configuration is copied, and the same pcap filter is spliced
// in. Events carry the program's index in Plan::bpf_programs.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "tracer/attach/skb_probes.h"
#include "tracer/filter/filter_injector.h"
#include "tracer/kernel/log.h"
#include "tracer/kernel/pwru_skel.h"
#include "tracer/session.h"

#include "tracer/kernel/bpf_helpers.h"
#include "tracer/session_filters.h"

namespace pwru {
namespace {

// Load errors that say "this kernel does not do fentry", not "this target"
// (the verifier's rejections are EACCES or EINVAL: those are per target).
bool kernel_refuses(int err) {
    err = err < 0 ? -err : err;
    return err == EPERM || err == EOPNOTSUPP || err == 524 /* ENOTSUPP */;
}

// How the kprobe attach went, for the log (the test layer reads these lines).
void log_attach_summary(const AttachStats& st) {
    spdlog::info("Attached {} functions in {:.2f} s ({} threads{}), skipped {}", st.attached, st.seconds, st.threads,
                 st.batch_splits ? ", " + std::to_string(st.batch_splits) + " failed batches split" : "", st.ignored);
    constexpr size_t kShown = 10;
    for (size_t i = 0; i < st.failures.size() && i < kShown; ++i) spdlog::info("  skipped {}", st.failures[i]);
    if (st.failures.size() > kShown)
        spdlog::info("  ... and {} more (--debug lists them)", st.failures.size() - kShown);
}

// One traced tc / XDP program: its own copy of the object (sharing the main
// copy's maps) and the fentry (and fexit) link on it. The links go first.
// Members are destroyed in reverse order: the links, then the copy.
class ProgTracer final : public Attachment {
  public:
    SkeletonPtr<pwru_bpf, pwru_bpf__destroy> skel;
    LinkPtr link;
    LinkPtr exit_link;  // XDP with --filter-track-skb: fexit too, as pwru
};

}  // namespace

Result<AttachStats> Session::attach(const ProgressFn& progress) {
    if (!skel_) return fail("attach before load");
    // Only tc / XDP programs to trace (no skb function matched): nothing here.
    if (plan_.target_count() == 0) return AttachStats{};
    const Kallsyms* names = nullptr;
    if (plan_.backend == Backend::KprobeMulti)
        if (auto ks = kallsyms()) names = ks->get();
    auto attached = attach_skb_probes(skel_->obj, plan_, names, progress);
    if (!attached) return std::unexpected(attached.error());  // what did attach is gone with it
    AttachStats& stats = attached->stats;
    if (stats.attached == 0) {
        std::string why = stats.failures.empty() ? "" : " (first failure: " + stats.failures.front() + ")";
        return fail(std::string("nothing could be attached with backend ") + backend_name(plan_.backend) + why +
                    "; try --backend auto");
    }
    attachments_.push_back(std::move(attached->owner));
    if (plan_.kprobes()) log_attach_summary(stats);
    if (opts_.track_skb) attach_clone_tracking();
    return stats;
}

void Session::attach_clone_tracking() {
    if (!skel_ || !opts_.track_skb) return;
    if (!plan_.kprobes()) {
        spdlog::info(
            "Notice: --filter-track-skb does not follow clones and copies of an skb with the "
            "tracepoint backend (no tracepoint marks them)");
        return;
    }
    attachments_.push_back(attach_clone_probes({skel_->progs.kprobe_skb_clone_entry, skel_->progs.kretprobe_skb_clone,
                                                skel_->progs.kprobe_veth_rcv_entry, skel_->progs.kretprobe_veth_rcv}));
}

Result<AttachStats> Session::attach_non_skb_funcs() {
    if (!skel_) return fail("attach_non_skb_funcs before load");
    if (!plan_.kprobes())
        return fail("--filter-non-skb-funcs needs kprobes, which this kernel lacks (tracing its tracepoints instead)");
    std::vector<std::string> names = opts_.non_skb_funcs;
    if (opts_.track_bpf_helpers) {
        auto ks = kallsyms();
        if (!ks) return std::unexpected(ks.error());
        std::set<uint32_t> ours;
        bpf_program* prog;
        bpf_object__for_each_program(prog, skel_->obj) {
            bpf_prog_info info{};
            uint32_t len = sizeof(info);
            if (bpf_program__fd(prog) >= 0 && bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
                ours.insert(info.id);
        }
        auto helpers = bpf_helper_calls(**ks, ours);
        if (!helpers) return std::unexpected(helpers.error());
        spdlog::info("--filter-track-bpf-helpers: {} kernel functions called by {} BPF programs",
                     helpers->functions.size(), helpers->programs);
        names.insert(names.end(), helpers->functions.begin(), helpers->functions.end());
    }
    // --output-bpfmap: the map operations get programs of their own
    auto maps = std::make_unique<LinkSet>();
    size_t map_ops = 0;
    std::vector<std::string> map_failures;
    if (opts_.output_bpfmap) {
        auto vmlinux = load_kernel_btf(opts_.discovery.kernel_btf);
        if (!vmlinux) return std::unexpected(vmlinux.error());
        std::erase_if(names, [&](const std::string& fn) {
            const BpfMapOp op = bpf_map_op_of(vmlinux->get(), fn);
            if (op == BpfMapOp::None) return false;
            bpf_program* entry = op == BpfMapOp::Lookup   ? skel_->progs.kprobe_bpfmap_lookup
                                 : op == BpfMapOp::Update ? skel_->progs.kprobe_bpfmap_update
                                                          : skel_->progs.kprobe_bpfmap_delete;
            LinkPtr in(bpf_program__attach_kprobe(entry, false, fn.c_str()));
            LinkPtr out(in && op == BpfMapOp::Lookup
                            ? bpf_program__attach_kprobe(skel_->progs.kretprobe_bpfmap_lookup, true, fn.c_str())
                            : nullptr);
            if (!in || (op == BpfMapOp::Lookup && !out)) {
                map_failures.push_back(fn + ": " + std::strerror(errno));
                return true;
            }
            maps->add(std::move(in));
            if (out) maps->add(std::move(out));
            ++map_ops;
            return true;
        });
        take_libbpf_messages();
        spdlog::info("--output-bpfmap: {} map operations probed", map_ops);
    }
    Attached attached = attach_non_skb_probes(skel_->progs.kprobe_non_skb, names, plan_.functions);
    attached.stats.attached += map_ops;
    attached.stats.ignored += map_failures.size();
    attached.stats.failures.insert(attached.stats.failures.end(), map_failures.begin(), map_failures.end());
    attachments_.push_back(std::move(maps));
    attachments_.push_back(std::move(attached.owner));
    return attached.stats;
}

Result<std::unique_ptr<Attachment>> Session::load_prog_tracer(const LoadedBpfProg& target, uint32_t index) {
    UniqueFd fd(bpf_prog_get_fd_by_id(target.id));
    if (!fd) return fail("program id " + std::to_string(target.id) + " is gone", errno);

    auto owner = std::make_unique<ProgTracer>();
    ProgTracer& t = *owner;
    t.skel.reset(pwru_bpf__open());
    if (!t.skel) return fail("cannot open the BPF object", errno);
    bpf_program* keep = target.kind == BpfProgKind::Xdp ? t.skel->progs.fentry_xdp : t.skel->progs.fentry_tc;
    // pwru follows a matched XDP frame into its skb with an fexit program.
    bpf_program* exit = target.kind == BpfProgKind::Xdp && opts_.track_skb ? t.skel->progs.fexit_xdp : nullptr;
    bpf_program* prog;
    bpf_object__for_each_program(prog, t.skel->obj)
        bpf_program__set_autoload(prog, prog == keep || (exit && prog == exit));
    for (bpf_program* p : {keep, exit}) {
        if (!p) continue;
        if (int err = bpf_program__set_attach_target(p, fd.get(), target.func.c_str()); err)
            return fail("cannot target " + target.func, err);
    }

    // The main copy's maps; only the configuration is this copy's own.
    bpf_map* map;
    bpf_object__for_each_map(map, t.skel->obj) {
        const std::string name = bpf_map__name(map);
        if (name.ends_with(".rodata")) continue;
        bpf_map* main = bpf_object__find_map_by_name(skel_->obj, name.c_str());
        if (!main) return fail("the main BPF object has no map " + name);
        if (int err = bpf_map__reuse_fd(map, bpf_map__fd(main)); err) return fail("cannot share map " + name, err);
    }
    *t.skel->rodata = *skel_->rodata;
    t.skel->rodata->traced_prog = index;

    SplicedLoad loaded =
        load_with_filters(t.skel->obj, filters_->stubs(opts_), [&] { return pwru_bpf__load(t.skel.get()); });
    if (loaded.err) {
        if (!loaded.splice_error.empty())
            return fail("cannot place the pcap filter: " + loaded.splice_error, loaded.err);
        return fail("load", loaded.err, loaded.libbpf_log);
    }
    t.link.reset(bpf_program__attach_trace(keep));
    if (t.link && exit) t.exit_link.reset(bpf_program__attach_trace(exit));
    if (!t.link || (exit && !t.exit_link)) {
        int e = errno;
        take_libbpf_messages();
        return fail(t.link ? "attach fexit" : "attach", e);
    }
    return owner;
}

Result<BpfProgAttachStats> Session::attach_bpf_programs(BpfProgKind kind) {
    if (!skel_) return fail("attach_bpf_programs before load");
    BpfProgAttachStats st;
    auto listing = list_bpf_programs(kind);
    if (!listing) return std::unexpected(listing.error());
    st.without_btf = listing->without_btf;
    st.found = listing->progs.size();
    for (const LoadedBpfProg& target : listing->progs) {
        auto index = static_cast<uint32_t>(plan_.bpf_programs.size());
        auto t = load_prog_tracer(target, index);
        if (!t) {
            const Error& e = t.error();
            // The first refusal of fentry itself ends it: every other would be refused alike.
            if (st.attached == 0 && kernel_refuses(e.err)) {
                st.refused = e.message();
                if (!e.context.empty()) spdlog::debug("{}", e.context);
                return st;
            }
            st.failures.push_back(target.ksym + " (id " + std::to_string(target.id) + "): " + e.message());
            continue;
        }
        plan_.bpf_programs.push_back(target);
        attachments_.push_back(std::move(*t));
        ++st.attached;
    }
    return st;
}

}  // namespace pwru
