// pwru's command line (flag-compatible with cilium/pwru), parsed with CLI11
// into TraceOptions + OutputOptions. Lives in the library so that the agent
// accepts the same option names and tests can parse without running.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tracer/output/event_sink.h"
#include "tracer/events/output_format.h"
#include "tracer/util/result.h"
#include "tracer/trace_options.h"

namespace pwru {

struct CliConfig {
    TraceOptions trace;
    OutputOptions output;
    // Raw values resolved by resolve_cli() (they need the system).
    std::string filter_netns;
    std::string filter_mark;
    std::string filter_ifname;
    std::vector<std::string> filter_words;

    std::string ready_file;
    std::string output_file;
    std::string output_pcap;  // --output-pcap FILE
    RotationOptions rotation;
    uint64_t output_limit_lines = 0;
    bool summary = true;  // trajectories and drops on exit
    bool dry_run = false;
    bool debug = false;
    bool version = false;
    bool help = false;
    std::string help_text;
};

// Parses argv. --help fills help_text and sets help. A bad flag is a
// bad_input Error with CLI11's message and a hint.
Result<CliConfig> parse_cli(int argc, const char* const* argv);

// Resolves netns / mark / ifname against the running system into cfg.trace.
Result<void> resolve_cli(CliConfig& cfg);

}  // namespace pwru
