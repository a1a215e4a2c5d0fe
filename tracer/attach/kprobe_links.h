// Classic kprobes as two descriptors we own: the perf event (the kprobe
// itself) and the BPF link that runs our program on it. Owning both, rather
// than libbpf's opaque bpf_link, lets teardown disable every event first and
// then close them from several threads (see kprobe_teardown.h).
#pragma once

#include <string>

#include "tracer/kernel/bpf_owners.h"
#include "tracer/util/result.h"

namespace pwru {

struct KprobeLink {
    UniqueFd perf_event;  // the kprobe (perf_event_open on the kprobe PMU)
    UniqueFd bpf_link;    // BPF_LINK_CREATE(BPF_PERF_EVENT) of the program on it
    int cpu = 0;          // the CPU the perf event lives on
};

// The kprobe PMU's type from sysfs, read once (libbpf reads it per attach).
// An Error when the kernel has no kprobe PMU.
Result<int> kprobe_pmu_type();

// A kprobe at the entry of `func` running `prog_fd`. The program runs on every
// CPU whatever `cpu` is; the perf event lives on `cpu`, and a caller running
// there installs, enables and removes it without a cross-CPU call (each one a
// wait for the other vCPU under emulation). The Error's err is the errno of
// the step that failed (ENOENT: no such function, EADDRNOTAVAIL: the name is
// ambiguous, EMFILE: out of descriptors, ...).
//
// The BPF program runs from the kprobe itself (the event's trace_event_call),
// whether the perf event is enabled or not: left disabled (enable_event false),
// the event costs perf nothing on install, on every hit and on removal.
Result<KprobeLink> open_kprobe_link(int pmu_type, int prog_fd, const std::string& func, int cpu, bool enable_event);

}  // namespace pwru
