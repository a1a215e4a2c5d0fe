// How a mass attach went: what attached, what was skipped and why (retsnoop's
// habit: a function that cannot be probed is counted, never fatal).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace pwru {

struct AttachStats {
    size_t attached = 0;
    size_t ignored = 0;                 // skipped: not probeable (ENOENT, EADDRNOTAVAIL, ...)
    std::vector<std::string> failures;  // "name: reason", for --debug / the summary
    size_t batch_splits = 0;            // kprobe-multi: failed batches split in two
    unsigned threads = 1;               // attaching in parallel (classic kprobes)
    double seconds = 0;
};

// --filter-trace-tc / --filter-trace-xdp for one kind of program.
struct BpfProgAttachStats {
    size_t found = 0;  // loaded programs of the kind, with BTF
    size_t attached = 0;
    std::vector<std::string> without_btf;  // "name (id N)": fentry cannot attach to these
    std::vector<std::string> failures;     // "name (id N): reason"
    std::string refused;                   // set when the kernel refuses fentry itself: why (nothing was attached)
};

// Called as targets attach (the progress bar): done of total.
using ProgressFn = std::function<void(size_t done, size_t total)>;

}  // namespace pwru
