// The whole `pwru` run on top of a Session: the log lines pwru prints, the
// progress bar, the ready file, the event loop with live loss reports, the
// exit summary. The CLI's main is a thin wrapper around run_pwru().
#pragma once

#include <atomic>
#include <cstdio>

#include "tracer/cli_options.h"
#include "tracer/output/event_sink.h"

namespace pwru {

// Exit codes scripts can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

// Runs pwru as configured until `stop` is set, the line limit is reached or
// an error occurs. Events go to `out`, logs to stderr.
int run_pwru(CliConfig& cfg, const std::atomic<bool>& stop, EventSink& out);

}  // namespace pwru
