// Test-only: runs a TranslatedFilter in the kernel without the rest of the
// project (no clang, no BPF object). The program is built from raw
// instructions:
//
//   main (BPF_PROG_TYPE_SOCKET_FILTER)
//       w = bpf_map_lookup_elem(&window_map, &0); if (!w) return 0;
//       return filter(w);                       // BPF_PSEUDO_CALL
//   filter          the translated body, as the injector would place it
//   pkt_load_slow   hand-written: reads the full packet from a second array
//                   map, returns -1 when off + size > w->len
//
// so every load succeeds iff off + size <= len, exactly like libpcap, and
// both the inline fast path (w->data) and the slow path are exercised: the
// window can be limited to fewer bytes than PWRU_PKT_WINDOW.
//
// A SOCKET_FILTER program can be BPF_PROG_TEST_RUN and may make BPF-to-BPF
// calls without BTF func_info, so no BTF is generated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "pwru_abi.h"
#include "tracer/kernel/bpf_owners.h"
#include "tracer/filter/cbpf_translate.h"
#include "tracer/util/result.h"

namespace pwru::test {

// Longest packet the runner holds; longer ones must be truncated by the caller.
inline constexpr size_t kRawRunnerMaxPacket = 65536;

class RawFilterRunner {
  public:
    // Creates the two maps (needs root / CAP_BPF).
    static Result<RawFilterRunner> create();

    // Loads filter into a new program; returns its handle for run().
    // Verifier failures carry the verifier log in Error::context.
    Result<size_t> load(const TranslatedFilter& filter);

    // The packet every following run() sees. At most min(len, window_limit,
    // PWRU_PKT_WINDOW) bytes go into w->data (w->copied); all of it into the
    // slow loader's map. len = linear = packet.size().
    Result<void> set_packet(std::span<const uint8_t> packet, uint32_t window_limit = PWRU_PKT_WINDOW);

    // The verdict (0 or 1) of program `handle` on the current packet.
    Result<int> run(size_t handle) const;

    // Instruction count of the whole program `handle` (main + filter + loader).
    size_t program_insns(size_t handle) const { return sizes_.at(handle); }

    // Instructions the verifier processed to accept program `handle` (its
    // cost; loops are walked iteration by iteration). 0 if unknown.
    size_t verified_insns(size_t handle) const;

  private:
    RawFilterRunner() = default;

    UniqueFd window_map_;
    UniqueFd packet_map_;
    std::vector<UniqueFd> progs_;
    std::vector<size_t> sizes_;
};

// One-shot convenience: loads `filter` and returns its verdict per packet
// (full window).
Result<std::vector<int>> run_raw_filter(const TranslatedFilter& filter,
                                        const std::vector<std::vector<uint8_t>>& packets);

}  // namespace pwru::test
