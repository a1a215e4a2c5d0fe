// Turns a raw pwru_event into an EventRecord: function and drop-reason names
// from kallsyms and BTF, process from /proc, kernel time to wall time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "pwru_abi.h"
#include "tracer/kernel/drop_reasons.h"
#include "tracer/events/event_record.h"
#include "tracer/kernel/kallsyms.h"
#include "tracer/kernel/netns_names.h"
#include "tracer/session.h"

namespace pwru {

// CLOCK_MONOTONIC (the BPF side's clock) to wall time: the offset is
// measured now and can be refreshed, so events carry their own time rather
// than the time they were printed.
class WallClock {
  public:
    WallClock() { refresh(); }
    void refresh();
    int64_t to_wall_ns(uint64_t mono_ns) const { return static_cast<int64_t>(mono_ns) + offset_ns_; }

  private:
    int64_t offset_ns_ = 0;
};

class EventDecoder {
  public:
    EventDecoder(const Plan& plan, std::shared_ptr<const Kallsyms> kallsyms,
                 std::shared_ptr<const DropReasons> reasons);

    EventRecord decode(const pwru_event& ev, const RecordExtras& extras = {});
    // Which of --output-stack / --output-caller the output wants (the frames
    // come with each record).
    void set_stack_output(bool keep_stack, bool caller) {
        keep_stack_ = keep_stack;
        want_caller_ = caller;
    }
    WallClock& clock() { return clock_; }
    // --output-netns-names / --output-skb-cb: fill those fields.
    void set_extras(bool netns_names, bool skb_cb) {
        netns_names_ = netns_names;
        skb_cb_ = skb_cb;
    }

  private:
    struct FuncInfo {
        std::string name;
        bool reason_after_skb = false;  // the argument after the skb is its drop verdict (drop_verdict.h)
    };
    const FuncInfo& func_info(uint64_t addr);
    std::string process_name(uint32_t pid, const char* comm);
    std::vector<std::string> symbolize_stack(const std::vector<uint64_t>& frames) const;

    const Plan& plan_;
    std::shared_ptr<const Kallsyms> kallsyms_;
    std::shared_ptr<const DropReasons> reasons_;
    std::unordered_map<std::string, const SkbFunction*> by_name_;
    std::unordered_map<uint64_t, FuncInfo> funcs_;
    std::unordered_map<uint32_t, std::pair<std::string, std::string>> processes_;  // pid -> (comm, name)
    WallClock clock_;
    bool keep_stack_ = false;
    bool netns_names_ = false;
    bool skb_cb_ = false;
    NetnsNames names_;
    bool want_caller_ = false;
};

}  // namespace pwru
