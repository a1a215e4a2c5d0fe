// Differential test of the filter the probes run, against libpcap.
//
// Every expression of tests/support/packet_corpus.h is compiled by libpcap
// for each link layer, translated and spliced into the REAL `filtercheck`
// program of bpf/pwru.bpf.c (pwru::FilterHarness: the same filter_pcap()
// window fill and pkt_load_slow() the probes use), loaded through the
// verifier, and run by BPF_PROG_TEST_RUN on a real sk_buff for every packet
// the kernel makes one of, through the harness's buffer route for the rest
// (GSO, BIG TCP, jumbograms, packets shorter than their headers): L2
// (DLT_EN10MB) on Ethernet frames, L3 (DLT_RAW) on IP packets. Each verdict
// must equal pcap_offline_filter() on the same bytes.
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

constexpr size_t kShownPerFilter = 3;       // disagreements shown per (expression, layer) ...
constexpr size_t kShownDisagreements = 60;  // ... and in all
constexpr size_t kHexShown = 64;

const char* layer_name(LinkLayer ll) { return ll == LinkLayer::L2 ? "L2" : "L3"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct PacketSet {
    std::vector<Bytes> packets;
    size_t generated = 0;  // packets [0, generated) are generated, the rest come from captures
};

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
    size_t buffer_runs = 0;                  // verdicts of the harness's buffer route
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
    job.buffer_runs = (*harness)->buffer_runs();
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

// Generated packets plus the captures, whole: the harness takes any length.
PacketSet packets_for(LinkLayer ll, std::vector<Bytes> generated) {
    PacketSet set;
    size_t longest = 0, shortest = SIZE_MAX;
    for (Bytes& p : generated) {
        longest = std::max(longest, p.size());
        shortest = std::min(shortest, p.size());
        set.packets.push_back(std::move(p));
    }
    set.generated = set.packets.size();
    std::printf("%s: %zu generated packets (%zu to %zu bytes)\n", layer_name(ll), set.generated, shortest, longest);

    auto corpus = pwru::test::read_captures(ll, size_t{PWRU_FILTERCHECK_CHUNK} * PWRU_FILTERCHECK_CHUNKS);
    if (!corpus.found) {
        std::printf("%s: capture corpus %s missing: corpus part skipped\n", layer_name(ll), corpus.dir.c_str());
        return set;
    }
    for (Bytes& p : corpus.packets) set.packets.push_back(std::move(p));
    std::printf("%s: %zu packets from %zu capture files in %s (%zu cut to 256 KiB)\n", layer_name(ll),
                set.packets.size() - set.generated, corpus.files, corpus.dir.c_str(), corpus.truncated);
    return set;
}

}  // namespace

TEST_CASE("the probes' filter decides exactly as libpcap (probe-path differential)", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto t0 = std::chrono::steady_clock::now();

    // --- packets: the corpus, and what the kernel's test skb cannot hold
    pwru::test::PacketSets generated = pwru::test::make_packets();
    pwru::test::PacketSets odd = pwru::test::big_and_short_packets();
    for (auto& p : odd.l2) generated.l2.push_back(std::move(p));
    for (auto& p : odd.l3) generated.l3.push_back(std::move(p));
    PacketSet l2 = packets_for(LinkLayer::L2, std::move(generated.l2));
    PacketSet l3 = packets_for(LinkLayer::L3, std::move(generated.l3));

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

    size_t comparisons = 0, disagreements = 0, shown = 0, buffer_l2 = 0, buffer_l3 = 0;
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
        (job.ll == LinkLayer::L2 ? buffer_l2 : buffer_l3) += job.buffer_runs;
    }
    if (!errors.empty()) FAIL("filters that compile but cannot be loaded or run:\n" << errors);

    size_t printed = std::min(shown, kShownDisagreements);
    if (disagreements > printed) std::printf("(%zu more disagreements not shown)\n", disagreements - printed);
    std::printf(
        "filter differential (probe path): %zu expressions, L2 %zu packets, L3 %zu packets, %zu comparisons, "
        "%zu disagreements\n",
        expressions, l2.packets.size(), l3.packets.size(), comparisons, disagreements);
    std::printf("time: %.1f s (setup %.1f s, load + compare %.1f s)\n", seconds_since(t0), setup_s, run_s);
    std::printf("verdicts through the buffer route (no test skb possible): L2 %zu, L3 %zu\n", buffer_l2, buffer_l3);
    // the big and short packets took it, at both layers
    CHECK(buffer_l2 > 0);
    CHECK(buffer_l3 > 0);
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

TEST_CASE("the harness's buffer route decides as the kernel's test skb on every packet both can take", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    pwru::test::PacketSets sets = pwru::test::make_packets();
    for (LinkLayer ll : {LinkLayer::L2, LinkLayer::L3}) {
        size_t compared = 0;
        for (const char* expr : {"tcp and dst port 80", "ip[6:2] & 0x1fff = 0 and len > 100", "ip6 protochain 58",
                                 "udp[8:4] = 0x01020304 or icmp", "len >= 1000"}) {
            auto harness = pwru::FilterHarness::create(expr, ll == LinkLayer::L3);
            if (!harness) FAIL(harness.error().message() << "\n" << harness.error().context);
            for (const Bytes& p : ll == LinkLayer::L2 ? sets.l2 : sets.l3) {
                const size_t before = (*harness)->buffer_runs();
                auto ours = (*harness)->run(p.data(), p.size());
                REQUIRE(ours);
                if ((*harness)->buffer_runs() != before) continue;  // the kernel made no skb of it
                auto via_buffer = (*harness)->run_from_buffer(p.data(), p.size());
                REQUIRE(via_buffer);
                INFO(layer_name(ll) << " '" << expr << "' packet of " << p.size()
                                    << " bytes: " << pwru::test::hex(p, kHexShown));
                CHECK(*via_buffer == *ours);
                ++compared;
            }
        }
        std::printf("%s: buffer route = test skb route on %zu (expression, packet) pairs\n", layer_name(ll), compared);
        CHECK(compared > 1000);
    }
}
