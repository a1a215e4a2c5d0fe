#include "tracer/filter/filter_harness.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

#include "tracer/filter/filter_injector.h"
#include "tracer/filter/filter_programs.h"
#include "tracer/kernel/log.h"
#include "tracer/filter/pcap_compile.h"
#include "pwru_abi.h"
#include "tracer/kernel/pwru_skel.h"

namespace pwru {

FilterHarness::~FilterHarness() = default;

Result<std::unique_ptr<FilterHarness>> FilterHarness::create(const std::string& expr, bool l3) {
    return create(HarnessFilters{.expr = expr, .l3 = l3});
}

Result<std::unique_ptr<FilterHarness>> FilterHarness::create(const HarnessFilters& f) {
    route_libbpf_logs();
    if (auto r = register_section_handlers(); !r) return std::unexpected(r.error());

    const bool l3 = f.l3;
    StubFilters stubs;
    size_t filter_insns = 0;
    if (!f.expr.empty()) {
        auto cbpf = compile_pcap(f.expr, l3 ? LinkLayer::L3 : LinkLayer::L2);
        if (!cbpf) return bad_input(cbpf.error().what);
        auto filter = translate_cbpf(*cbpf);
        if (!filter) return bad_input("cannot translate filter '" + f.expr + "': " + filter.error().what);
        filter_insns = filter->insns.size();
        // The program starts the filter at the layer asked for: the other never runs.
        stubs.emplace_back(kStubL2, l3 ? constant_filter(false) : *filter);
        stubs.emplace_back(kStubL3, l3 ? *filter : constant_filter(false));
    }
    const bool tunnel = !f.tunnel_l2.empty() || !f.tunnel_l3.empty();
    if (tunnel) {
        auto t = build_tunnel_filter_programs(f.tunnel_l2, f.tunnel_l3);
        if (!t) return std::unexpected(t.error());
        filter_insns += t->l2.insns.size() + t->l3.insns.size();
        stubs.emplace_back(kStubTunnelL2, std::move(t->l2));
        stubs.emplace_back(kStubTunnelL3, std::move(t->l3));
    }
    const std::string what = f.expr + (tunnel ? " (tunnel: '" + f.tunnel_l2 + "' / '" + f.tunnel_l3 + "')" : "");

    std::unique_ptr<FilterHarness> h(new FilterHarness());
    h->l3_ = l3;
    h->filter_insns_ = filter_insns;
    h->skel_ = decltype(h->skel_)(pwru_bpf__open(), pwru_bpf__destroy);
    if (!h->skel_) return fail("cannot open the BPF object", errno);

    bpf_program* prog;
    bpf_object__for_each_program(prog, h->skel_->obj) bpf_program__set_autoload(
        prog, prog == h->skel_->progs.filtercheck || prog == h->skel_->progs.filtercheck_buffer);
    if (int err = bpf_map__set_max_entries(h->skel_->maps.filtercheck_packet, PWRU_FILTERCHECK_CHUNKS); err)
        return fail("cannot size the filter check's packet map", -err);
    auto* cfg = const_cast<pwru_config*>(&h->skel_->rodata->CFG);
    cfg->pcap_filter = f.expr.empty() ? 0 : 1;
    cfg->tunnel_filter = tunnel ? 1 : 0;
    // The ring buffer is not used here: keep it small.
    bpf_map__set_max_entries(h->skel_->maps.events, 4096);

    SplicedLoad loaded =
        load_with_filters(h->skel_->obj, std::move(stubs), [&] { return pwru_bpf__load(h->skel_.get()); });
    h->program_insns_ = loaded.max_insns;
    if (const int err = loaded.err) {
        if (!loaded.splice_error.empty())
            return fail("cannot place filter '" + what + "': " + loaded.splice_error, err);
        return fail("the kernel rejected the filter program for '" + what + "'", err, loaded.libbpf_log);
    }
    h->skel_->bss->filtercheck_l3 = l3 ? 1 : 0;
    h->prog_fd_ = bpf_program__fd(h->skel_->progs.filtercheck);
    h->buffer_prog_fd_ = bpf_program__fd(h->skel_->progs.filtercheck_buffer);
    h->packet_map_fd_ = bpf_map__fd(h->skel_->maps.filtercheck_packet);
    return h;
}

Result<bool> FilterHarness::run_from_buffer(const uint8_t* pkt, size_t len) {
    if (len > size_t{PWRU_FILTERCHECK_CHUNK} * PWRU_FILTERCHECK_CHUNKS)
        return bad_input("a packet of " + std::to_string(len) + " bytes is longer than the " +
                         std::to_string(PWRU_FILTERCHECK_CHUNK * PWRU_FILTERCHECK_CHUNKS) +
                         " bytes the filter check takes (libpcap's largest snap length)");
    pwru_filtercheck_chunk chunk;
    for (__u32 i = 0; size_t{i} * PWRU_FILTERCHECK_CHUNK < len; ++i) {
        const size_t at = size_t{i} * PWRU_FILTERCHECK_CHUNK;
        const size_t n = std::min<size_t>(PWRU_FILTERCHECK_CHUNK, len - at);
        std::memcpy(chunk.bytes, pkt + at, n);
        std::memset(chunk.bytes + n, 0, sizeof(chunk.bytes) - n);
        if (bpf_map_update_elem(packet_map_fd_, &i, &chunk, BPF_ANY) != 0)
            return fail("cannot write the packet into the filter check's map", errno);
    }
    skel_->bss->filtercheck_len = static_cast<__u32>(len);
    // The test run needs a frame of its own; the program does not read it.
    uint8_t frame[64] = {};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
    if (int err = bpf_prog_test_run_opts(buffer_prog_fd_, &opts); err)
        return fail("BPF_PROG_TEST_RUN of the buffer route failed for a packet of " + std::to_string(len) + " bytes",
                    -err);
    ++buffer_runs_;
    return opts.retval != 0;
}

Result<bool> FilterHarness::run(const uint8_t* pkt, size_t len) {
    // BPF_PROG_TEST_RUN builds an skb from an Ethernet frame. An IP packet gets
    // a made-up Ethernet header in front; the program then starts the filter
    // at the network header, so the filter sees exactly `pkt`.
    std::vector<uint8_t> frame;
    if (l3_) {
        // The kernel refuses an IPv4 / IPv6 ethertype followed by less than
        // that header; the filter starts at the network header whatever the
        // ethertype, so short packets get an experimental one (0x88b5).
        frame.assign(14, 0);
        unsigned version = len > 0 ? pkt[0] >> 4 : 0;
        uint16_t type = version == 6 && len >= 40 ? 0x86dd : version == 4 && len >= 20 ? 0x0800 : 0x88b5;
        frame[12] = static_cast<uint8_t>(type >> 8);
        frame[13] = static_cast<uint8_t>(type);
    }
    frame.insert(frame.end(), pkt, pkt + len);
    // The kernel's skb route when it takes the frame (it refuses frames
    // above its page and below the header an ethertype announces: -EINVAL),
    // else the buffer route; both run the same spliced filter.
    if (frame.size() >= 14 && frame.size() <= skb_route_max_) {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
                    .repeat = 1);
        const int err = bpf_prog_test_run_opts(prog_fd_, &opts);
        if (err == 0) return opts.retval != 0;
        if (err != -EINVAL && err != -E2BIG && err != -ENOMEM)
            return fail("BPF_PROG_TEST_RUN failed for a packet of " + std::to_string(len) + " bytes", -err);
        // Too long for the skb route: the next longer ones go to the buffer at once.
        if (frame.size() > 1500) skb_route_max_ = std::min(skb_route_max_, frame.size() - 1);
    }
    return run_from_buffer(pkt, len);
}

}  // namespace pwru
