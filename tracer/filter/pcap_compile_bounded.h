// compile_pcap() bounded in size and time, and cancellable (issue #23,
// item 4). libpcap's optimizer grows much faster than the expression: 1000
// `host` terms (18.5 KB) took 67 s of CPU, and pcap_compile() cannot be
// interrupted. So the compile runs in a forked child that the caller can
// kill: at the deadline, or as soon as `cancelled()` says the user is gone
// (SIGINT, the agent's client hung up).
#pragma once

#include <linux/filter.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tracer/filter/pcap_compile.h"
#include "tracer/util/result.h"

namespace pwru {

// The longest filter expression pwru and pwru-agent take (docs/pwru.md
// "Limits"). Real filters are tens of bytes; a long host list is a few KB.
inline constexpr size_t kMaxFilterBytes = 16 * 1024;
// How long one filter (both link layers) may take to compile.
inline constexpr std::chrono::milliseconds kFilterCompileTimeout{10'000};

struct CompileBudget {
    // One budget covers every compile of one filter (both link layers): the
    // deadline message names the whole budget, not the last compile's share.
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point deadline = started + kFilterCompileTimeout;
    // Polled every few tens of milliseconds while the child compiles; true
    // stops it. Empty: never cancelled.
    std::function<bool()> cancelled;
};

// What stopped a compile that did not finish, for the caller's message.
inline constexpr const char* kCompileCancelled = "the filter's compilation was cancelled";

// What the compile gave: the program, or libpcap's refusal of the expression
// for this link layer (its own message: `arp` has no meaning from an IP
// header), which leaves the other layer's program valid.
struct PcapOutcome {
    std::vector<struct sock_filter> insns;
    std::optional<std::string> refused;
};

// compile_pcap(expr, ll), run in a child process. An Error means the compile
// did not finish: `expr` above kMaxFilterBytes or past the deadline (BadInput,
// saying what to shorten), cancelled (Failure, kCompileCancelled), the child
// could not run, died or failed on its own (Failure, e.g. pcap_open_dead out
// of memory: never reported as libpcap refusing the expression).
Result<PcapOutcome> compile_pcap_bounded(const std::string& expr, LinkLayer ll, const CompileBudget& budget);

// The size check alone (the CLI and the agent refuse before any work).
Result<void> check_filter_size(const std::string& expr, const char* what);

}  // namespace pwru
