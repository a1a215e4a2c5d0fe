#include "tracer/trace_pipeline.h"

#include "tracer/events/drop_verdict.h"
#include "tracer/kernel/drop_reasons.h"
#include "tracer/kernel/log.h"

namespace pwru {

Result<std::unique_ptr<TracePipeline>> TracePipeline::create(const TraceOptions& opts) {
    auto session = Session::create(opts);
    if (!session) return std::unexpected(session.error());
    std::unique_ptr<TracePipeline> p(new TracePipeline());
    p->session_ = std::move(*session);
    return p;
}

Result<void> TracePipeline::load(const OutputOptions& output) {
    // Names before the load (loading them after attach would delay the first
    // events). The session's own copy of kallsyms: kprobe-multi's addresses
    // and --filter-track-skb read it too, one read per trace.
    auto kallsyms = session_->kallsyms();
    if (!kallsyms) spdlog::warn("{}: function names will be addresses", kallsyms.error().message());
    auto reasons = DropReasons::load(session_->options().discovery.kernel_btf);
    if (!reasons) spdlog::warn("{}: drop reasons will be numbers", reasons.error().message());
    decoder_ =
        std::make_unique<EventDecoder>(session_->plan(), kallsyms ? *kallsyms : nullptr,
                                       reasons ? std::make_shared<const DropReasons>(std::move(*reasons)) : nullptr);

    if (auto r = session_->load(); !r) return r;
    decoder_->set_extras(output.netns_names, output.skb_cb);
    decoder_->set_stack_output(session_->options().output_stack, session_->options().output_caller);
    return {};
}

void TracePipeline::refresh_clock_if_due() {
    auto now = std::chrono::steady_clock::now();
    if (!decoder_ || now - last_clock_refresh_ < std::chrono::seconds(10)) return;
    decoder_->clock().refresh();
    last_clock_refresh_ = now;
}

std::set<std::string> TracePipeline::skb_ends() const {
    return skb_end_functions(plan().backend == Backend::Tracepoint);
}

void TracePipeline::detach_and_drain(const EventFn& drain) {
    session_->detach();
    if (drain) (void)session_->poll(0, drain);
}

}  // namespace pwru
