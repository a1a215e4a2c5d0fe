#include "tracer/kernel/features.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>

#include "features.skel.h"
#include "tracer/kernel/bpf_owners.h"
#include "tracer/kernel/log.h"

namespace pwru {
namespace {

using FeaturesSkel = SkeletonPtr<features_bpf, features_bpf__destroy>;

// A function every kernel with networking has, and that is not inlined.
constexpr const char* kProbeFunction = "consume_skb";
constexpr const char* kProbeTracepoint = "consume_skb";

std::string errno_text(const char* step, int err) {
    return std::string(step) + ": " + std::strerror(err < 0 ? -err : err);
}

// Opens the features object with only `keep` loadable, lets `configure` set
// it up, loads it, and runs `attach`. Returns "" on success, else why not.
std::string probe_one(bpf_program* (*pick)(features_bpf*), const std::function<void(bpf_program*)>& configure,
                      const std::function<bpf_link*(bpf_program*)>& attach) {
    FeaturesSkel skel(features_bpf__open());
    if (!skel) return errno_text("open", errno);
    bpf_program* keep = pick(skel.get());
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, prog == keep);
    if (configure) configure(keep);
    if (int err = features_bpf__load(skel.get()); err) return errno_text("load", err);
    LinkPtr link(attach(keep));
    if (!link) return errno_text("attach", errno);
    return "";
}

FeatureStatus status(const std::string& failure) { return FeatureStatus{failure.empty(), failure}; }

}  // namespace

const char* backend_name(Backend b) {
    switch (b) {
        case Backend::Auto: return "auto";
        case Backend::KprobeMulti: return "kprobe-multi";
        case Backend::Kprobe: return "kprobe";
        case Backend::Tracepoint: return "tracepoint";
    }
    return "?";
}

const FeatureStatus& Features::of(Backend b) const {
    switch (b) {
        case Backend::KprobeMulti: return kprobe_multi;
        case Backend::Kprobe: return kprobe;
        default: return tp_btf;
    }
}

namespace {

// The kernel's answer, without any --no-feature: probed on the first call of
// the process only. Each probe loads and attaches a program (tens of ms, and a
// BPF object per call); pwru-agent starts many sessions on one kernel.
std::atomic<unsigned> kernel_probes{0};

const Features& kernel_features() {
    static const Features f = [] {
        ++kernel_probes;
        route_libbpf_logs();
        Features k;
        auto run = [](auto&& probe) {
            auto s = status(probe());
            take_libbpf_messages();  // expected failures are not the user's concern
            return s;
        };
        k.kprobe_multi = run([] {
            return probe_one([](features_bpf* s) { return s->progs.probe_kprobe_multi; }, nullptr,
                             [](bpf_program* p) {
                                 const char* syms[] = {kProbeFunction};
                                 LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .syms = syms, .cnt = 1);
                                 return bpf_program__attach_kprobe_multi_opts(p, nullptr, &opts);
                             });
        });
        k.kprobe = run([] {
            return probe_one([](features_bpf* s) { return s->progs.probe_kprobe; }, nullptr,
                             [](bpf_program* p) { return bpf_program__attach_kprobe(p, false, kProbeFunction); });
        });
        k.tp_btf = run([] {
            return probe_one([](features_bpf* s) { return s->progs.probe_tp_btf; },
                             [](bpf_program* p) { bpf_program__set_attach_target(p, 0, kProbeTracepoint); },
                             [](bpf_program* p) { return bpf_program__attach_trace(p); });
        });
        return k;
    }();  // thread-safe: C++ static initialisation
    return f;
}

}  // namespace

Features probe_features(const std::set<std::string>& disabled) {
    Features f = kernel_features();
    auto off = [&](const char* name, FeatureStatus& s) {
        if (disabled.count(name)) s = FeatureStatus{false, "disabled with --no-feature " + std::string(name)};
    };
    off("kprobe_multi", f.kprobe_multi);
    off("kprobe", f.kprobe);
    off("tp_btf", f.tp_btf);
    return f;
}

unsigned kernel_feature_probes() { return kernel_probes.load(); }

Backend choose_backend(const Features& f, std::string& why) {
    if (f.kprobe_multi.available) {
        why = "kprobe-multi attaches on this kernel";
        return Backend::KprobeMulti;
    }
    if (f.kprobe.available) {
        why = "kprobe-multi unavailable (" + f.kprobe_multi.why + "), kprobe attaches";
        return Backend::Kprobe;
    }
    why = "kprobes are unavailable on this kernel (kprobe-multi " + f.kprobe_multi.why + "; kprobe " + f.kprobe.why +
          "): tracing the kernel's skb tracepoints instead";
    return Backend::Tracepoint;
}

}  // namespace pwru
