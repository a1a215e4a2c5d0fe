// Runs the probes' own filter code on test packets: the `filtercheck`
// program of bpf/pwru.bpf.c, with the translated filter spliced in exactly
// as in a tracing session, executed by BPF_PROG_TEST_RUN on a real sk_buff
// the kernel builds from each packet. Used by pwru-filtercheck and the
// filter differential tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tracer/util/result.h"

struct pwru_bpf;

namespace pwru {

// What the harness filters with: the outer filter as the probes run it, and
// the tunnel filters (--filter-tunnel-pcap-l2 / -l3) on VXLAN / Geneve packets.
struct HarnessFilters {
    std::string expr;       // "" = no outer filter
    bool l3 = false;        // packets are IP packets (DLT_RAW), not Ethernet frames
    std::string tunnel_l2;  // "" = no tunnel filter of that layer
    std::string tunnel_l3;
};

class FilterHarness {
  public:
    // Compiles `expr` for L2 (DLT_EN10MB) or, with l3, for L3 (DLT_RAW);
    // a libpcap error is a bad_input Error carrying libpcap's message.
    static Result<std::unique_ptr<FilterHarness>> create(const std::string& expr, bool l3);
    static Result<std::unique_ptr<FilterHarness>> create(const HarnessFilters& filters);
    ~FilterHarness();

    // The verdict for one packet of any length up to 256 KiB: link-layer
    // bytes (an Ethernet frame, or with l3 an IP packet). The kernel builds a
    // real skb of it when it can (BPF_PROG_TEST_RUN: up to about 3.5 KB, and
    // not shorter than the IP header its ethertype announces); otherwise the
    // bytes go through a map (the buffer route, bpf/pwru.bpf.c). The same
    // translated filter decides either way.
    Result<bool> run(const uint8_t* pkt, size_t len);
    // The buffer route alone (tests compare it with the skb route).
    Result<bool> run_from_buffer(const uint8_t* pkt, size_t len);
    // How many verdicts came from the buffer route.
    size_t buffer_runs() const { return buffer_runs_; }

    // Instructions of the translated filter, and of the whole loaded program.
    size_t filter_insns() const { return filter_insns_; }
    size_t program_insns() const { return program_insns_; }

  private:
    FilterHarness() = default;
    bool l3_ = false;
    size_t filter_insns_ = 0;
    size_t program_insns_ = 0;
    int prog_fd_ = -1;
    int buffer_prog_fd_ = -1;
    int packet_map_fd_ = -1;
    size_t skb_route_max_ = SIZE_MAX;  // learnt: longer frames go to the buffer route
    size_t buffer_runs_ = 0;
    std::unique_ptr<pwru_bpf, void (*)(pwru_bpf*)> skel_{nullptr, nullptr};
};

}  // namespace pwru
