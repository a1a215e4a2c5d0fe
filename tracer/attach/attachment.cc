#include "tracer/attach/attachment.h"

#include <string>

#include "tracer/attach/kprobe_teardown.h"
#include "tracer/kernel/log.h"

namespace pwru {

LinkSet::~LinkSet() {
    while (!links_.empty()) links_.pop_back();
}

KprobeMultiLinks::~KprobeMultiLinks() {
    if (links_.empty()) return;
    TeardownStats st = tear_down_links(links_, kprobe_threads());
    spdlog::info("Detached {} kprobe-multi links in {:.2f} s ({} threads)", st.links, st.seconds, st.threads);
}

KprobeSet::~KprobeSet() {
    if (links_.empty()) return;
    KprobePlacement placement = kprobe_placement();
    TeardownStats st = tear_down_kprobes(links_, placement);
    spdlog::info("Detached {} kprobes in {:.2f} s ({} threads, {}{})", st.links, st.seconds, st.threads,
                 placement.cpus.front() < 0 ? std::string("unpinned")
                                            : "pinned on " + std::to_string(placement.cpus.size()) + " CPU",
                 placement.enable_events ? fmt::format("; disabling the events took {:.2f} s", st.disable_seconds)
                                         : std::string());
}

}  // namespace pwru
