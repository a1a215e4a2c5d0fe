// Bench 5c: kubectl-pwru's merge of many agent streams into one timeline.
//
// In-process, without TLS or sockets: STREAMS generated agent streams of
// EVENTS NDJSON event lines each (the agent's wire records: docs/agent-api.md,
// heartbeats with watermarks every 500 events, a node's CPUs slightly out of
// order), interleaved round-robin the way concurrent connections arrive. Each
// line goes through the plugin's own parse_agent_line, TimelineMerge and the
// text OutputFormatter with NODE/POD columns, as kubectl-pwru does. The lines
// are generated before the clock starts.
//
//   pwru-bench-merge [STREAMS] [EVENTS_PER_STREAM]
// Prints `RESULT\t...` lines (bench/lib.sh's format).
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kubectl-plugin/agent_stream.h"
#include "kubectl-plugin/timeline_merge.h"
#include "tracer/events/event_record.h"
#include "tracer/events/output_format.h"

using namespace pwru;
using namespace pwru::plugin;

namespace {
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double wall_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
// The current resident set (not the peak: the generated input is the peak).
long rss_kb() {
    FILE* f = std::fopen("/proc/self/statm", "re");
    if (!f) return 0;
    long pages = 0, resident = 0;
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
    return resident * 4;
}
}  // namespace

int main(int argc, char** argv) {
    const size_t streams = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10;
    const size_t per = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 100000;
    const int64_t t0 = 1'800'000'000'000'000'000;
    const char* funcs[] = {"ip_rcv", "ip_local_deliver", "tcp_v4_rcv", "__dev_queue_xmit", "kfree_skbmem"};

    // lines[s]: stream s, in sending order.
    std::vector<std::vector<std::string>> lines(streams);
    size_t bytes = 0;
    for (size_t s = 0; s < streams; ++s) {
        auto& out = lines[s];
        out.reserve(per + per / 500 + 1);
        for (size_t i = 0; i < per; ++i) {
            // 10 us apart per stream; CPUs share one ring buffer: +-30 us jitter.
            int64_t ts =
                t0 + static_cast<int64_t>(i) * 10'000 + static_cast<int64_t>((i * 7919 + s * 31) % 61) * 1000 - 30'000;
            // The agent's wire form: the tracer's lossless record (to_json) + type.
            EventRecord e;
            e.skb = 0xffff888000000000ull + (i % 512) * 256;
            e.cpu = static_cast<uint32_t>(i % 2);
            e.pid = static_cast<uint32_t>(1000 + s);
            e.process = "/usr/bin/curl:" + std::to_string(1000 + s);
            e.ktime_ns = static_cast<uint64_t>(ts - t0);
            e.wall_ns = ts;
            e.func = funcs[i % 5];
            e.netns = static_cast<uint32_t>(4026532000u + s);
            e.ifindex = 2;
            e.ifname = "eth0";
            e.proto = 0x0800;
            e.mtu = 1500;
            e.len = 60;
            e.has_tuple = true;
            e.tuple.l3 = 4;
            e.tuple.l4_proto = 6;
            e.tuple.saddr = "10.244.1." + std::to_string(s);
            e.tuple.daddr = "10.244.2.9";
            e.tuple.sport = static_cast<uint16_t>(40000 + i % 1000);
            e.tuple.dport = 80;
            nlohmann::json j = e;
            j["type"] = "event";
            j["node"] = "node-" + std::to_string(s);
            j["namespace"] = "default";
            j["pod"] = "pod-" + std::to_string(s);
            out.push_back(j.dump());
            bytes += out.back().size() + 1;
            if (i % 500 == 499) {
                nlohmann::json hb = {{"type", "heartbeat"},
                                     {"node", "node-" + std::to_string(s)},
                                     {"wall_ns", ts},
                                     {"watermark_ns", ts - 100'000}};
                out.push_back(hb.dump());
            }
        }
    }
    const long rss_generated = rss_kb();
    long rss_peak = rss_generated;

    TimelineMerge merge;
    OutputOptions oo;
    oo.node_columns = true;
    OutputFormatter fmt(oo);
    std::vector<size_t> ids;
    for (size_t s = 0; s < streams; ++s) ids.push_back(merge.add_stream("node-" + std::to_string(s), t0));
    size_t shown = 0, late = 0, out_bytes = 0, parse_errors = 0;
    auto show = [&](std::vector<MergedItem> items) {
        for (auto& it : items) {
            if (it.kind != MergedItem::Kind::Event) continue;
            out_bytes += fmt.format(it.event).size() + 1;
            ++shown;
            late += it.late;
        }
    };
    double c0 = cpu_seconds(), w0 = wall_seconds();
    std::vector<size_t> pos(streams, 0);
    bool more = true;
    int64_t now = t0;
    while (more) {
        more = false;
        for (size_t s = 0; s < streams; ++s) {  // 50 lines of each stream in turn
            for (int k = 0; k < 50 && pos[s] < lines[s].size(); ++k) {
                StreamMessage m = parse_agent_line(lines[s][pos[s]++], ids[s]);
                if (m.kind == StreamMessage::Kind::Event) {
                    now = std::max(now, m.event.wall_ns);
                    merge.on_event(ids[s], std::move(m.event), now);
                } else if (m.kind == StreamMessage::Kind::Heartbeat) {
                    merge.on_heartbeat(ids[s], m.watermark_ns, now);
                } else {
                    if (parse_errors++ == 0)
                        std::fprintf(stderr, "merge-bench: first bad line: %s\n", m.message.c_str());
                }
            }
            more = more || pos[s] < lines[s].size();
        }
        show(merge.drain(now));
        rss_peak = std::max(rss_peak, rss_kb());
    }
    show(merge.finish());
    double cpu = cpu_seconds() - c0, wall = wall_seconds() - w0;
    const size_t total = streams * per;
    std::printf(
        "RESULT\tmerge\tkubectl-pwru merge %zu streams x %zu events: events/s per CPU-second (in-process, no "
        "TLS)\t%.0f/s\t%zu events\tn/a\twall %.2f s, %zu shown, %zu late, %zu parse errors; peak held %zu events\n",
        streams, per, total / cpu, total, wall, shown, late, parse_errors, merge.peak_buffered());
    std::printf(
        "RESULT\tmerge\tmerge RSS growth (peak while merging) vs the NDJSON merged\t%.1f MB\t%.1f MB input\t%.3f\tRSS "
        "%ld KB with the input generated, peak %ld KB while merging\n",
        (rss_peak - rss_generated) / 1024.0, bytes / 1048576.0,
        (rss_peak - rss_generated) / 1024.0 / (bytes / 1048576.0), rss_generated, rss_peak);
    return shown == total && parse_errors == 0 ? 0 : 1;
}
