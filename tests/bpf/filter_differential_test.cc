// Differential test of the filter the probes run, against libpcap.
//
// Every expression of tests/support/packet_corpus.h is compiled by libpcap
// for each link layer, translated and spliced into the REAL `filtercheck`
// program of bpf/pwru.bpf.c (pwru::FilterHarness: the same filter_pcap()
// window fill and pkt_load_slow() the probes use), loaded through the
// verifier, and run by BPF_PROG_TEST_RUN on a real sk_buff for every packet:
// L2 (DLT_EN10MB) on Ethernet frames, L3 (DLT_RAW) on IP packets. Each
// verdict must equal pcap_offline_filter() on the same bytes.
// tests/bpf/cbpf_translate_run_test.cc is the fast translator-only layer
// over the same inputs.
#include <linux/filter.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pwru_abi.h"
#include "support/packet_corpus.h"
#include "support/root_guard.h"
#include "tracer/filter/cbpf_translate.h"
#include "tracer/filter/filter_harness.h"
#include "tracer/filter/pcap_compile.h"

using pwru::LinkLayer;
using pwru::test::Bytes;

namespace {

constexpr size_t kEthHeader = 14;
constexpr size_t kShownPerFilter = 3;       // disagreements shown per (expression, layer) ...
constexpr size_t kShownDisagreements = 60;  // ... and in all
constexpr size_t kHexShown = 64;

const char* layer_name(LinkLayer ll) { return ll == LinkLayer::L2 ? "L2" : "L3"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The largest frame BPF_PROG_TEST_RUN accepts for the program (tc: a page
// minus the skb headroom and the shared info), found by bisection.
size_t test_run_limit(pwru::FilterHarness& l2) {
    auto fits = [&](size_t n) {
        Bytes frame(n, 0);
        return l2.run(frame.data(), frame.size()).has_value();
    };
    size_t lo = kEthHeader, hi = 1 << 20;  // fits(lo); !fits(hi) assumed, checked by the caller
    if (fits(hi)) return hi;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        (fits(mid) ? lo : hi) = mid;
    }
    return lo;
}

struct PacketSet {
    std::vector<Bytes> packets;
    size_t generated = 0;  // packets [0, generated) are generated, the rest come from captures
};

// BPF_PROG_TEST_RUN (tc) refuses a frame whose ethertype announces IPv4 or
// IPv6 when fewer bytes than that header follow the Ethernet header (found
// on this kernel: 0x0800 needs 20, 0x86dd 40). For L3, FilterHarness makes
// up the ethertype from the version nibble (0x86dd for 6, else 0x0800).
bool announced_ip_header_missing(LinkLayer ll, const Bytes& pkt) {
    size_t ip_len;
    uint16_t ethertype;
    if (ll == LinkLayer::L2) {
        ethertype = static_cast<uint16_t>(pkt[12] << 8 | pkt[13]);
        ip_len = pkt.size() - kEthHeader;
    } else {
        ethertype = !pkt.empty() && pkt[0] >> 4 == 6 ? 0x86dd : 0x0800;
        ip_len = pkt.size();
    }
    return (ethertype == 0x0800 && ip_len < 20) || (ethertype == 0x86dd && ip_len < 40);
}

// One (expression, layer): its cBPF and, after the run, what happened.
struct Job {
    std::string expr;
    LinkLayer ll;
    std::vector<sock_filter> cbpf;
    // results
    std::string error;
    size_t filter_insns = 0;
    size_t program_insns = 0;
    size_t comparisons = 0;
    size_t matches = 0;
    std::vector<std::string> disagreements;  // the first kShownPerFilter
    size_t disagreement_count = 0;
};

std::string describe_disagreement(const Job& job, const PacketSet& set, size_t index, bool ours, bool libpcap) {
    const Bytes& pkt = set.packets[index];
    char head[160];
    std::snprintf(head, sizeof(head), "DISAGREE %s packet #%zu (%s, %zu bytes): probe filter %d, libpcap %d\n  ",
                  layer_name(job.ll), index, index < set.generated ? "generated" : "capture", pkt.size(), ours,
                  libpcap);
    return "[" + job.expr + "] " + head + pwru::test::hex(pkt, kHexShown);
}

// Loads the harness for a job and compares every packet of its layer.
void run_job(Job& job, const PacketSet& set, const std::atomic<bool>& abort) {
    auto harness = pwru::FilterHarness::create(job.expr, job.ll == LinkLayer::L3);
    if (!harness) {
        const std::string& log = harness.error().context;
        constexpr size_t kTail = 3000;  // the end of the verifier log says what failed
        job.error = harness.error().message();
        if (log.size() > kTail)
            job.error += "\n..." + log.substr(log.size() - kTail);
        else if (!log.empty())
            job.error += "\n" + log;
        return;
    }
    job.filter_insns = (*harness)->filter_insns();
    job.program_insns = (*harness)->program_insns();
    for (size_t i = 0; i < set.packets.size() && !abort; ++i) {
        const Bytes& pkt = set.packets[i];
        auto ours = (*harness)->run(pkt.data(), pkt.size());
        if (!ours) {
            job.error = "packet #" + std::to_string(i) + ": " + ours.error().message();
            return;
        }
        bool want = pwru::test::libpcap_matches(job.cbpf, pkt);
        ++job.comparisons;
        job.matches += want ? 1 : 0;
        if (*ours == want) continue;
        if (job.disagreement_count++ < kShownPerFilter)
            job.disagreements.push_back(describe_disagreement(job, set, i, *ours, want));
    }
}

// Runs the jobs on every CPU (each BPF_PROG_LOAD and test run is a syscall;
// every harness has its own maps). Stops early after an error.
void run_jobs(std::vector<Job>& jobs, const PacketSet& l2, const PacketSet& l3) {
    std::atomic<size_t> next{0};
    std::atomic<bool> abort{false};
    auto worker = [&] {
        while (!abort) {
            size_t j = next++;
            if (j >= jobs.size()) return;
            run_job(jobs[j], jobs[j].ll == LinkLayer::L2 ? l2 : l3, abort);
            if (!jobs[j].error.empty()) abort = true;
        }
    };
    unsigned n = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < n; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
}

// Whether the harness can run `pkt`: true, false for the refusal above
// (counted), a test failure for anything else.
bool runnable(pwru::FilterHarness& probe, LinkLayer ll, const Bytes& pkt, size_t& refused) {
    auto r = probe.run(pkt.data(), pkt.size());
    if (r) return true;
    INFO(layer_name(ll) << " packet of " << pkt.size() << " bytes: " << pwru::test::hex(pkt, kHexShown));
    if (!announced_ip_header_missing(ll, pkt)) FAIL(r.error().message());
    ++refused;
    return false;
}

void report_refused(LinkLayer ll, size_t refused) {
    if (refused == 0) return;
    std::printf(
        "%s: %zu packets skipped: shorter than the IP header their ethertype announces (%s), which "
        "BPF_PROG_TEST_RUN refuses; the raw-runner differential covers them\n",
        layer_name(ll), refused,
        ll == LinkLayer::L2 ? "bytes 12-13 of the frame" : "made up by FilterHarness from the version nibble");
}

// Generated packets plus the captures, as the harness can take them.
PacketSet packets_for(LinkLayer ll, std::vector<Bytes> generated, size_t max_len) {
    auto probe = pwru::FilterHarness::create("len >= 0", ll == LinkLayer::L3);
    if (!probe) FAIL(probe.error().message() << "\n" << probe.error().context);
    PacketSet set;
    size_t too_short = 0, refused = 0, longest = 0;
    for (Bytes& p : generated) {
        // An skb shorter than an Ethernet header never reaches the L2 filter
        // (the probes choose L2 only with >= 14 bytes from the MAC header);
        // BPF_PROG_TEST_RUN refuses it too.
        if (ll == LinkLayer::L2 && p.size() < kEthHeader) {
            ++too_short;
            continue;
        }
        if (!runnable(**probe, ll, p, refused)) continue;
        longest = std::max(longest, p.size());
        set.packets.push_back(std::move(p));
    }
    INFO(layer_name(ll) << ": the longest generated packet (" << longest << " bytes) must fit the test run (" << max_len
                        << ")");
    REQUIRE(longest <= max_len);
    set.generated = set.packets.size();
    std::printf("%s: %zu generated packets (longest %zu bytes)", layer_name(ll), set.generated, longest);
    if (too_short) std::printf(", %zu shorter than 14 bytes skipped (never filtered at L2)", too_short);
    std::printf("\n");

    auto corpus = pwru::test::read_captures(ll, max_len);
    if (!corpus.found) {
        std::printf("%s: capture corpus %s missing: corpus part skipped\n", layer_name(ll), corpus.dir.c_str());
        report_refused(ll, refused);
        return set;
    }
    for (Bytes& p : corpus.packets)
        if ((ll == LinkLayer::L3 || p.size() >= kEthHeader) && runnable(**probe, ll, p, refused))
            set.packets.push_back(std::move(p));
    std::printf("%s: %zu packets from %zu capture files in %s (%zu longer than %zu bytes cut to it)\n", layer_name(ll),
                set.packets.size() - set.generated, corpus.files, corpus.dir.c_str(), corpus.truncated, max_len);
    report_refused(ll, refused);
    return set;
}

}  // namespace

TEST_CASE("the probes' filter decides exactly as libpcap (probe-path differential)", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto t0 = std::chrono::steady_clock::now();

    // --- the largest packet BPF_PROG_TEST_RUN takes
    auto probe = pwru::FilterHarness::create("len > 0", false);
    if (!probe) FAIL(probe.error().message() << "\n" << probe.error().context);
    size_t limit = test_run_limit(**probe);
    std::printf(
        "BPF_PROG_TEST_RUN (tc) takes frames up to %zu bytes: L2 frames up to %zu, L3 packets up to %zu "
        "(behind the harness's 14-byte Ethernet header); the filter window is %d bytes\n",
        limit, limit, limit - kEthHeader, PWRU_PKT_WINDOW);
    REQUIRE(limit > 2 * PWRU_PKT_WINDOW);

    // --- packets
    pwru::test::PacketSets generated = pwru::test::make_packets();
    PacketSet l2 = packets_for(LinkLayer::L2, std::move(generated.l2), limit);
    PacketSet l3 = packets_for(LinkLayer::L3, std::move(generated.l3), limit - kEthHeader);

    // --- expressions: compile and translate everything first, so that a
    // construct we cannot handle fails here, named, before any run.
    std::vector<Job> jobs;
    size_t expressions = 0, not_l2 = 0, not_l3 = 0;
    for (const std::string& expr : pwru::test::filter_expressions()) {
        bool compiled = false;
        for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) {
            auto cbpf = pwru::compile_pcap(expr, ll);
            if (!cbpf) {
                ++(ll == LinkLayer::L2 ? not_l2 : not_l3);
                continue;
            }
            compiled = true;
            auto ebpf = pwru::translate_cbpf(*cbpf);
            if (!ebpf)
                FAIL("'" << expr << "' compiles for " << layer_name(ll)
                         << " but cannot be translated: " << ebpf.error().what);
            jobs.push_back(Job{expr, ll, std::move(*cbpf)});
        }
        if (!compiled) FAIL("'" << expr << "' compiles for neither link layer");
        ++expressions;
    }
    std::printf(
        "%zu distinct expressions: %zu (expression, layer) filters; %zu do not compile for L2, %zu for "
        "L3 (DLT_RAW has no link header: arp, vlan, ether ...), skipped there\n",
        expressions, jobs.size(), not_l2, not_l3);
    double setup_s = seconds_since(t0);

    // --- load each filter once (verifier), run it on every packet of its layer
    auto t1 = std::chrono::steady_clock::now();
    run_jobs(jobs, l2, l3);
    double run_s = seconds_since(t1);

    size_t comparisons = 0, disagreements = 0, shown = 0;
    std::string errors;
    std::printf("layer  filter_insns  program_insns  libpcap matches  expression\n");
    for (const Job& job : jobs) {
        if (!job.error.empty()) {
            errors += "'" + job.expr + "' (" + layer_name(job.ll) + "): " + job.error + "\n";
            continue;
        }
        if (job.program_insns == 0 && job.comparisons == 0) continue;  // not run: stopped after an error
        std::printf("%-6s %12zu  %13zu  %7zu / %-6zu  %s\n", layer_name(job.ll), job.filter_insns, job.program_insns,
                    job.matches, job.comparisons, job.expr.c_str());
        for (const std::string& d : job.disagreements)
            if (shown++ < kShownDisagreements) std::printf("%s\n", d.c_str());
        comparisons += job.comparisons;
        disagreements += job.disagreement_count;
    }
    if (!errors.empty()) FAIL("filters that compile but cannot be loaded or run:\n" << errors);

    size_t printed = std::min(shown, kShownDisagreements);
    if (disagreements > printed) std::printf("(%zu more disagreements not shown)\n", disagreements - printed);
    std::printf(
        "filter differential (probe path): %zu expressions, L2 %zu packets, L3 %zu packets, %zu comparisons, "
        "%zu disagreements\n",
        expressions, l2.packets.size(), l3.packets.size(), comparisons, disagreements);
    std::printf("time: %.1f s (setup %.1f s, load + compare %.1f s)\n", seconds_since(t0), setup_s, run_s);
    CHECK(expressions >= 300);
    CHECK(disagreements == 0);
}

TEST_CASE("protochain through the probe path: same verdict as libpcap up to the loop budget", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    // One protochain step (one backward jump) per hop-by-hop header; the
    // chain ends in ICMPv6. libpcap follows any chain; we follow
    // pwru::kLoopBudget steps, then reject: the one documented difference.
    const size_t budget = pwru::kLoopBudget;
    for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) {
        auto cbpf = pwru::compile_pcap("ip6 protochain 58", ll);
        REQUIRE(cbpf.has_value());
        auto harness = pwru::FilterHarness::create("ip6 protochain 58", ll == LinkLayer::L3);
        if (!harness) FAIL(harness.error().message() << "\n" << harness.error().context);
        for (size_t headers : {size_t{0}, size_t{1}, size_t{8}, budget - 1, budget, budget + 1, 3 * budget}) {
            Bytes pkt = pwru::test::ipv6_hop_by_hop_chain(headers);
            if (ll == LinkLayer::L2) {
                Bytes frame = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x86, 0xdd};
                frame.insert(frame.end(), pkt.begin(), pkt.end());
                pkt = std::move(frame);
            }
            auto ours = (*harness)->run(pkt.data(), pkt.size());
            REQUIRE(ours.has_value());
            INFO(layer_name(ll) << ", " << headers << " extension headers, " << pkt.size() << " bytes");
            CHECK(pwru::test::libpcap_matches(*cbpf, pkt));
            CHECK(*ours == (headers <= budget));
        }
    }
}
