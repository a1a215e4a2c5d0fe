// Feature probing: which backends really work on this kernel. Computed once
// (each probe loads and attaches a tiny program), overridable for tests
// (--no-feature kprobe_multi forces the fallback on a kernel that has it).
#pragma once

#include <set>
#include <string>

namespace pwru {

enum class Backend { Auto, KprobeMulti, Kprobe, Tracepoint };

const char* backend_name(Backend b);  // "kprobe-multi", "kprobe", "tracepoint", "auto"

struct FeatureStatus {
    bool available = false;
    std::string why;  // when unavailable: what failed ("attach: Operation not supported")
};

struct Features {
    FeatureStatus kprobe_multi;
    FeatureStatus kprobe;
    FeatureStatus tp_btf;

    const FeatureStatus& of(Backend b) const;
};

// What the kernel offers: probed once per process (the first call), then
// the same answer. `disabled` names features to report as unavailable
// ("kprobe_multi", "kprobe", "tp_btf"), per call.
Features probe_features(const std::set<std::string>& disabled = {});

// How many times this process probed the kernel (0 or 1): for tests.
unsigned kernel_feature_probes();

// The auto choice: kprobe-multi > kprobe > tracepoint. Fills `why` with a
// one-line explanation of the choice.
Backend choose_backend(const Features& f, std::string& why);

}  // namespace pwru
