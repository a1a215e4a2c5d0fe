#include "tracer/session.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tracer/kernel/pwru_skel.h"
#include "tracer/attach/kprobe_teardown.h"
#include "tracer/events/drop_verdict.h"
#include "tracer/filter/filter_injector.h"
#include "tracer/filter/filter_programs.h"
#include "tracer/filter/member_compare.h"
#include "tracer/kernel/kallsyms.h"
#include "tracer/kernel/log.h"
#include "tracer/pod_scope.h"
#include "tracer/kernel/resource_errors.h"
#include "tracer/session_filters.h"
#include "tracer/kernel/tracefs.h"
#include "tracer/kernel/verifier_log.h"

namespace pwru {

namespace {

Result<Backend> pick_backend(const TraceOptions& opts, std::string& why) {
    Features f = probe_features(opts.no_features);
    if (opts.backend == Backend::Auto) return choose_backend(f, why);
    const FeatureStatus& s = f.of(opts.backend);
    if (!s.available)
        return fail(std::string("backend ") + backend_name(opts.backend) + " is not available on this kernel (" +
                    s.why + "); use --backend auto to pick one that works");
    why = "chosen with --backend";
    return opts.backend;
}

// Keeps only the functions tracefs says can be probed, when it can be read.
void keep_traceable(Plan& plan) {
    auto available = read_available_filter_functions();
    if (!available) {
        plan.tracefs_note = "cannot read available_filter_functions (" + available.error().message() +
                            "): attaching to every BTF function, unprobeable ones are skipped";
        return;
    }
    auto& fns = plan.functions;
    size_t before = fns.size();
    std::erase_if(fns, [&](const SkbFunction& f) { return !available->count(f.name); });
    plan.not_traceable = before - fns.size();
}

// --output-skb-metadata ... into `fields` (a member named twice, maybe
// spelled with spaces once, is printed once) and --filter-skb-expr ... into
// `expr`, for the object `root` (skb, xdp) points to.
Result<void> resolve_members(const struct btf* b, const char* root, const char* root_struct,
                             const std::vector<std::string>& outputs, const std::string& filter,
                             std::vector<MemberAccess>& fields, pwru_field_cmp& expr) {
    const std::string out_flag = std::string("--output-") + root + "-metadata";
    const std::string filter_flag = std::string("--filter-") + root + "-expr";
    if (outputs.size() > PWRU_MAX_FIELDS)
        return bad_input(out_flag + " names more than " + std::to_string(PWRU_MAX_FIELDS) + " members");
    for (const std::string& e : outputs) {
        auto m = resolve_member_access(b, root, root_struct, e, out_flag);
        if (!m) return std::unexpected(m.error());
        if (std::none_of(fields.begin(), fields.end(), [&](const MemberAccess& f) { return f.expr == m->expr; }))
            fields.push_back(std::move(*m));
    }
    if (!filter.empty()) {
        auto c = compile_member_compare(b, root, root_struct, filter, filter_flag);
        if (!c) return std::unexpected(c.error());
        expr = c->cmp;
    }
    return {};
}

// The member options, against the kernel's BTF (read only when one is given).
Result<void> resolve_all_members(const TraceOptions& opts, Plan& plan) {
    if (opts.output_skb_metadata.empty() && opts.filter_skb_expr.empty() && opts.output_xdp_metadata.empty() &&
        opts.filter_xdp_expr.empty())
        return {};
    if ((!opts.output_xdp_metadata.empty() || !opts.filter_xdp_expr.empty()) && !opts.trace_xdp)
        spdlog::warn("--output-xdp-metadata / --filter-xdp-expr apply to XDP programs' events: add --filter-trace-xdp");
    auto btf = load_kernel_btf(opts.discovery.kernel_btf);
    if (!btf) return std::unexpected(btf.error());
    if (auto r = resolve_members(btf->get(), "skb", "sk_buff", opts.output_skb_metadata, opts.filter_skb_expr,
                                 plan.skb_fields, plan.skb_expr);
        !r)
        return r;
    return resolve_members(btf->get(), "xdp", "xdp_buff", opts.output_xdp_metadata, opts.filter_xdp_expr,
                           plan.xdp_fields, plan.xdp_expr);
}

}  // namespace

Result<std::unique_ptr<Session>> Session::create(const TraceOptions& opts) {
    std::string why;
    auto backend = pick_backend(opts, why);
    if (!backend) return std::unexpected(backend.error());
    return create_for(opts, *backend, why);
}

Result<std::unique_ptr<Session>> Session::create_unprobed(const TraceOptions& opts) {
    if (opts.backend == Backend::Auto) return fail("create_unprobed needs an explicit backend");
    return create_for(opts, opts.backend, "chosen without probing");
}

Result<std::unique_ptr<Session>> Session::create_for(const TraceOptions& opts, Backend backend,
                                                     const std::string& why) {
    route_libbpf_logs();
    if (auto r = register_section_handlers(); !r) return std::unexpected(r.error());

    std::unique_ptr<Session> s(new Session());
    s->opts_ = opts;
    s->filters_ = std::make_unique<Filters>();
    // One budget for every expression of the session (outer and tunnel).
    CompileBudget budget;
    budget.cancelled = opts.cancelled;
    if (!opts.pcap_expr.empty()) {
        auto programs = build_filter_programs(opts.pcap_expr, budget);
        if (!programs) return std::unexpected(programs.error());
        s->filters_->programs = std::move(*programs);
        if (!s->filters_->programs.note.empty()) spdlog::debug("filter: {}", s->filters_->programs.note);
        for (const auto& w : s->filters_->programs.warnings)
            spdlog::warn("filter '{}': {}; check the expression", opts.pcap_expr, w);
    }
    if (opts.tunnel_filter()) {
        auto tunnel = build_tunnel_filter_programs(opts.tunnel_pcap_l2, opts.tunnel_pcap_l3, budget);
        if (!tunnel) return std::unexpected(tunnel.error());
        s->filters_->tunnel = std::move(*tunnel);
    }
    if (auto r = resolve_all_members(opts, s->plan_); !r) return std::unexpected(r.error());
    s->plan_.backend = backend;
    s->plan_.backend_why = why;
    if (opts.kprobe_batch) set_kprobe_batch(opts.kprobe_batch);

    if (backend == Backend::Tracepoint) {
        // Tracepoints are the kernel's own: --kmods selects nothing here. A
        // module that does not exist is still the user's mistake, as on the
        // kprobe backends; one that does is a warning, not silence.
        for (const std::string& mod : opts.discovery.kmods)
            if (auto found = module_btf_path(opts.discovery.btf_dir, mod); !found)
                return std::unexpected(found.error());
        if (!opts.discovery.kmods.empty() || opts.discovery.all_kmods)
            spdlog::warn(
                "--kmods / --all-kmods have no effect on the tracepoint backend: its tracepoints are the "
                "kernel's own");
        auto tps = discover_skb_tracepoints(opts.discovery);
        if (!tps) return std::unexpected(tps.error());
        s->plan_.tracepoints = std::move(*tps);
        if (s->plan_.tracepoints.size() > PWRU_MAX_TP_SLOTS) {
            spdlog::warn("{} skb tracepoints found, tracing the first {}", s->plan_.tracepoints.size(),
                         PWRU_MAX_TP_SLOTS);
            s->plan_.tracepoints.resize(PWRU_MAX_TP_SLOTS);
        }
    } else {
        auto fns = discover_skb_functions(opts.discovery);
        if (!fns) return std::unexpected(fns.error());
        s->plan_.functions = std::move(*fns);
        // PWRU_NO_TRACEFS_FILTER=1 (for tests) keeps the functions tracefs says
        // cannot be probed, so that the attach itself has to find and skip them.
        const char* no_filter = std::getenv("PWRU_NO_TRACEFS_FILTER");
        if (no_filter && std::string(no_filter) == "1")
            s->plan_.tracefs_note = "PWRU_NO_TRACEFS_FILTER=1: available_filter_functions not consulted";
        else
            keep_traceable(s->plan_);
    }
    // pwru #394: with --filter-trace-tc / -xdp, the BPF programs alone are a trace.
    if (s->plan_.target_count() == 0 && !opts.trace_tc && !opts.trace_xdp)
        return bad_input("no skb function or tracepoint matches; check --filter-func");
    return s;
}

Session::~Session() { detach(); }

Result<void> Session::configure() {
    auto* cfg = const_cast<pwru_config*>(&skel_->rodata->CFG);
    std::memset(cfg, 0, sizeof(*cfg));
    if (opts_.netns_inode) {
        cfg->filter_netns = 1;
        cfg->netns = *opts_.netns_inode;
    }
    if (opts_.ifindex) {
        // An ifindex means something only within its netns.
        cfg->filter_ifindex = 1;
        cfg->ifindex = *opts_.ifindex;
        if (!opts_.netns_inode) {
            cfg->filter_netns = 1;
            cfg->netns = opts_.ifindex_netns;
        }
    }
    if (opts_.mark) {
        cfg->filter_mark = 1;
        cfg->mark = opts_.mark->mark & opts_.mark->mask;
        cfg->mark_mask = opts_.mark->mask;
    }
    cfg->pcap_filter = opts_.pcap_expr.empty() ? 0 : 1;
    cfg->output_tuple = opts_.output_tuple ? 1 : 0;
    // The caller is the stack's second frame: both need the stack in the record.
    cfg->output_stack = opts_.output_stack || opts_.output_caller ? 1 : 0;
    cfg->track_skb = opts_.track_skb ? 1 : 0;
    cfg->track_by_stackid = opts_.track_skb_by_stackid ? 1 : 0;
    cfg->track_xdp = opts_.track_skb && opts_.trace_xdp ? 1 : 0;
    cfg->output_skb_cb = opts_.output_skb_cb ? 1 : 0;
    cfg->output_skb = opts_.output_skb ? 1 : 0;
    cfg->output_shinfo = opts_.output_shinfo ? 1 : 0;
    // --set-percpu-buf: both texts' room (pwru's one size); ours by default
    // 4 KiB for the sk_buff and 2 KiB for its shared info.
    cfg->skb_dump_size = opts_.output_skb ? (opts_.dump_bytes ? opts_.dump_bytes : PWRU_SKB_DUMP) : 0;
    cfg->shinfo_dump_size = opts_.output_shinfo ? (opts_.dump_bytes ? opts_.dump_bytes : PWRU_SHINFO_DUMP) : 0;
    cfg->output_pcap = opts_.output_pcap ? 1 : 0;
    cfg->output_bpfmap = opts_.output_bpfmap && plan_.kprobes() ? 1 : 0;
    cfg->tunnel_filter = opts_.tunnel_filter() ? 1 : 0;
    cfg->output_tunnel = opts_.output_tunnel ? 1 : 0;
    cfg->n_skb_fields = static_cast<__u8>(plan_.skb_fields.size());
    for (size_t i = 0; i < plan_.skb_fields.size(); ++i) cfg->skb_fields[i] = plan_.skb_fields[i].field;
    cfg->skb_expr = plan_.skb_expr;
    cfg->n_xdp_fields = static_cast<__u8>(plan_.xdp_fields.size());
    for (size_t i = 0; i < plan_.xdp_fields.size(); ++i) cfg->xdp_fields[i] = plan_.xdp_fields[i].field;
    cfg->xdp_expr = plan_.xdp_expr;
    if ((opts_.track_skb || opts_.track_skb_by_stackid) && plan_.kprobes()) {
        // The skb's memory is freed in kfree_skbmem: forget it there.
        auto ks = kallsyms();
        if (!ks) return fail("--filter-track-skb needs /proc/kallsyms: " + ks.error().message());
        cfg->kfree_skbmem_addr = (*ks)->address_of("kfree_skbmem").value_or(0);
    }
    for (auto& slot : cfg->tp) slot = {PWRU_NO_ARG, PWRU_NO_ARG, PWRU_NO_ARG, 0};

    if (int err = bpf_map__set_max_entries(skel_->maps.events, opts_.ringbuf_bytes); err)
        return fail("cannot size the event ring buffer", err);

    // Only the chosen backend's programs load.
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel_->obj) bpf_program__set_autoload(prog, false);

    if (plan_.backend == Backend::Tracepoint) {
        for (size_t i = 0; i < plan_.tracepoints.size(); ++i) {
            const SkbTracepoint& tp = plan_.tracepoints[i];
            cfg->tp[i].skb_arg = static_cast<__u8>(tp.skb_arg);
            if (tp.reason_arg >= 0) cfg->tp[i].reason_arg = static_cast<__u8>(tp.reason_arg);
            if (tp.location_arg >= 0) cfg->tp[i].location_arg = static_cast<__u8>(tp.location_arg);
            // The last tracepoints an skb passes: freed (kfree_skb) or consumed.
            cfg->tp[i].frees_skb = tracepoint_ends_skb(tp.name);
            std::string prog_name = "tp_slot_" + std::to_string(i);
            bpf_program* p = bpf_object__find_program_by_name(skel_->obj, prog_name.c_str());
            if (!p) return fail("BPF object lacks program " + prog_name);
            bpf_program__set_autoload(p, true);
            if (int err = bpf_program__set_attach_target(p, 0, tp.name.c_str()); err)
                return fail("cannot target tracepoint " + tp.name, err);
        }
        return {};
    }

    // Both kprobe backends: one program per skb position in use (kprobe-multi:
    // one link per program, see bpf/pwru.bpf.c for why not a cookie).
    const char* prefix = plan_.backend == Backend::KprobeMulti ? "kprobe_multi_skb_" : "kprobe_skb_";
    for (int pos = 1; pos <= PWRU_MAX_SKB_POS; ++pos) {
        bool used = std::any_of(plan_.functions.begin(), plan_.functions.end(),
                                [&](const SkbFunction& f) { return f.skb_pos == pos; });
        if (!used) continue;
        std::string prog_name = prefix + std::to_string(pos);
        bpf_program* p = bpf_object__find_program_by_name(skel_->obj, prog_name.c_str());
        if (!p) return fail("BPF object lacks program " + prog_name);
        bpf_program__set_autoload(p, true);
    }
    if (!opts_.non_skb_funcs.empty() || opts_.track_bpf_helpers)
        bpf_program__set_autoload(skel_->progs.kprobe_non_skb, true);
    if (opts_.output_bpfmap && plan_.kprobes())
        for (bpf_program* p : {skel_->progs.kprobe_bpfmap_update, skel_->progs.kprobe_bpfmap_delete,
                               skel_->progs.kprobe_bpfmap_lookup, skel_->progs.kretprobe_bpfmap_lookup})
            bpf_program__set_autoload(p, true);
    // --filter-track-skb follows clones and copies (attach_clone_tracking()),
    // with kprobes: not loaded for the tracepoint backend, which cannot attach them.
    if (opts_.track_skb && plan_.kprobes()) {
        bpf_program__set_autoload(skel_->progs.kprobe_skb_clone_entry, true);
        bpf_program__set_autoload(skel_->progs.kretprobe_skb_clone, true);
        bpf_program__set_autoload(skel_->progs.kprobe_veth_rcv_entry, true);
        bpf_program__set_autoload(skel_->progs.kretprobe_veth_rcv, true);
    }
    return {};
}

Result<void> Session::load() {
    skel_ = decltype(skel_)(pwru_bpf__open(), pwru_bpf__destroy);
    if (!skel_) return fail("cannot open the BPF object", errno);
    if (auto r = configure(); !r) return r;
    if (auto r = write_pod_scope(opts_.pod_scope, *const_cast<pwru_config*>(&skel_->rodata->CFG)); !r) return r;
    if (opts_.node_netns) const_cast<pwru_config*>(&skel_->rodata->CFG)->scope_node = 1;

    SplicedLoad loaded =
        load_with_filters(skel_->obj, filters_->stubs(opts_), [&] { return pwru_bpf__load(skel_.get()); });
    max_insns_ = loaded.max_insns;
    if (const int err = loaded.err) {
        if (!loaded.splice_error.empty())
            return fail("cannot place the pcap filter '" + opts_.pcap_expr + "': " + loaded.splice_error, err);
        if (auto limit = explain_resource_error(err, "cannot load the probe programs")) return fail(*limit);
        std::string what = opts_.pcap_expr.empty()
                               ? std::string("the kernel rejected the probe programs")
                               : "the kernel rejected the probe programs with filter '" + opts_.pcap_expr + "'";
        if (opts_.tunnel_filter())
            what += " and tunnel filters '" + opts_.tunnel_pcap_l2 + "' (L2) / '" + opts_.tunnel_pcap_l3 + "' (L3)";
        return fail(what + " (" + opts_.verifier_log_hint + ")", err, verifier_log_tail(loaded.libbpf_log, 15));
    }

    ringbuf_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), &Session::on_sample, this, nullptr));
    if (!ringbuf_) {
        const int e = errno;
        if (auto limit = explain_resource_error(e, "cannot open the event ring buffer")) return fail(*limit);
        return fail("cannot open the event ring buffer", e);
    }
    if (opts_.node_netns)
        if (auto r = set_node_netns(*opts_.node_netns); !r) return r;
    return {};
}

Result<void> Session::set_node_netns(const std::set<uint32_t>& netns) {
    if (!skel_ || !opts_.node_netns) return fail("set_node_netns without a loaded node-scoped session");
    if (netns.size() > PWRU_NODE_NETNS_MAX)
        return fail("the node has " + std::to_string(netns.size()) + " network namespaces; the node scope holds " +
                    std::to_string(PWRU_NODE_NETNS_MAX));
    const int fd = bpf_map__fd(skel_->maps.node_netns);
    // Additions first: a netns is never briefly missing while the set changes.
    const __u8 one = 1;
    for (uint32_t ns : netns)
        if (!node_netns_.count(ns) && bpf_map_update_elem(fd, &ns, &one, BPF_ANY) != 0)
            return fail("cannot add netns " + std::to_string(ns) + " to the node scope", errno);
    for (uint32_t ns : node_netns_)
        if (!netns.count(ns)) bpf_map_delete_elem(fd, &ns);
    node_netns_ = netns;
    return {};
}

void Session::start() {
    if (skel_) skel_->bss->ready = 1;
}

namespace {
// on_sample's "max_records reached": no libbpf or kernel error is -ECANCELED here.
constexpr int kPollBatchFull = -ECANCELED;
}  // namespace

int Session::on_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Session*>(ctx);
    if (size < sizeof(pwru_event) || !self->current_fn_) return 0;
    pwru_event ev;
    std::memcpy(&ev, data, sizeof(ev));
    // The layout record_size() in bpf/skb_event.bpf.h gives it, read from the
    // same frozen configuration the programs see.
    const pwru_config& cfg = self->skel_->rodata->CFG;
    const char* p = static_cast<const char*>(data);
    size_t off = sizeof(pwru_event);
    RecordExtras extras;
    if (cfg.n_skb_fields || cfg.n_xdp_fields) {  // records_have_fields()
        if (size >= off + sizeof(pwru_field_values))
            extras.fields = reinterpret_cast<const pwru_field_values*>(p + off);
        off += sizeof(pwru_field_values);
    }
    if (cfg.output_bpfmap) {
        if (size >= off + sizeof(pwru_bpfmap)) extras.bpfmap = reinterpret_cast<const pwru_bpfmap*>(p + off);
        off += sizeof(pwru_bpfmap);
    }
    if (cfg.output_stack) {
        if (size >= off + sizeof(pwru_stack)) extras.stack = reinterpret_cast<const pwru_stack*>(p + off);
        off += sizeof(pwru_stack);
    }
    if (cfg.output_skb || cfg.output_shinfo) {
        const size_t skb_room = cfg.skb_dump_size, shinfo_room = cfg.shinfo_dump_size;
        if (size >= off + sizeof(pwru_dumps) + skb_room + shinfo_room) {
            pwru_dumps d;
            std::memcpy(&d, p + off, sizeof(d));
            const char* text = p + off + sizeof(pwru_dumps);
            auto view = [](const char* t, size_t room, uint32_t len) {
                return std::string_view(t, strnlen(t, std::min<size_t>(len, room)));
            };
            extras.skb_dump = view(text, skb_room, d.skb_len);
            extras.shinfo_dump = view(text + skb_room, shinfo_room, d.shinfo_len);
        }
        off += sizeof(pwru_dumps) + skb_room + shinfo_room;
    }
    if (cfg.output_pcap && size >= off + sizeof(pwru_packet))
        extras.packet = reinterpret_cast<const pwru_packet*>(p + off);
    (*self->current_fn_)(ev, extras);
    // A negative return ends libbpf's ring_buffer__poll() after this record
    // (already consumed); poll() tells it from a real error.
    if (self->poll_limit_ && ++self->polled_ >= self->poll_limit_) return kPollBatchFull;
    return 0;
}

Result<int> Session::poll(int timeout_ms, const EventFn& fn, size_t max_records) {
    if (!ringbuf_) return fail("poll before load");
    current_fn_ = &fn;
    poll_limit_ = max_records;
    polled_ = 0;
    int n = ring_buffer__poll(ringbuf_.get(), timeout_ms);
    current_fn_ = nullptr;
    if (n == kPollBatchFull) return static_cast<int>(polled_);
    if (n == -EINTR) return 0;
    if (n < 0) return fail("reading the event ring buffer failed", n);
    return n;
}

LossCounters Session::counters() const {
    LossCounters total;
    if (!skel_) return total;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return total;
    std::vector<pwru_counters> per_cpu(static_cast<size_t>(ncpu));
    __u32 zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &zero, per_cpu.data()) != 0) return total;
    for (const auto& c : per_cpu) {
        total.events += c.events;
        total.ringbuf_full += c.ringbuf_full;
        total.ringbuf_full_per_cpu.push_back(c.ringbuf_full);
        total.filtered_out += c.filtered_out;
        total.filter_nonlinear += c.filter_nonlinear;
    }
    // The kernel counts, per program, the hits it skipped because a BPF
    // program was already running on that CPU (e.g. a probe on a function
    // our own program calls): loss too, which no counter of ours can see.
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel_->obj) {
        int fd = bpf_program__fd(prog);
        if (fd < 0) continue;
        bpf_prog_info info{};
        __u32 len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) total.recursion_misses += info.recursion_misses;
    }
    return total;
}

void Session::detach() {
    if (skel_ && skel_->bss) skel_->bss->ready = 0;
    // Newest first: the prog tracers, non-skb and clone probes, then the skb probes.
    while (!attachments_.empty()) attachments_.pop_back();
}

const std::vector<std::string>& Session::filter_warnings() const { return filters_->programs.warnings; }

int Session::program_fd(const std::string& name) const {
    if (!skel_) return -1;
    bpf_program* p = bpf_object__find_program_by_name(skel_->obj, name.c_str());
    return p ? bpf_program__fd(p) : -1;
}

Result<std::shared_ptr<const Kallsyms>> Session::kallsyms() {
    if (!kallsyms_) {
        auto loaded = Kallsyms::load();
        if (loaded)
            kallsyms_ = std::make_shared<const Kallsyms>(std::move(*loaded));
        else
            kallsyms_ = std::unexpected(loaded.error());
    }
    return *kallsyms_;
}

}  // namespace pwru
