// Bench 3b: decode + format throughput of recorded events, per core.
//
// Records real events first: a tracepoint-backend session (the probes as
// pwru runs them) with the filter `udp and dst port PORT`, and UDP datagrams
// sent to 127.0.0.1:PORT from this process (loopback only). Then replays the
// recording through EventDecoder::decode + OutputFormatter::format, text and
// JSON, timing the thread's CPU time: events per CPU-second is the
// per-core throughput, free of the machine's load.
//
//   pwru-bench-decode [EVENTS_TO_RECORD] [REPLAYS]
// Prints `RESULT\t...` lines (bench/lib.sh's format).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tracer/events/output_format.h"
#include "tracer/trace_pipeline.h"

using namespace pwru;

namespace {

constexpr uint16_t kPort = 47999;

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void send_udp(int n) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kPort);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char payload[64] = "pwru-bench-decode";
    for (int i = 0; i < n; ++i)
        (void)sendto(fd, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    const size_t want = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
    const int replays = argc > 2 ? std::atoi(argv[2]) : 50;

    TraceOptions opts;
    opts.backend = Backend::Tracepoint;
    opts.pcap_expr = "udp and dst port " + std::to_string(kPort);
    auto p = TracePipeline::create(opts);
    if (!p) {
        std::fprintf(stderr, "decode-bench: %s\n", p.error().message().c_str());
        return 1;
    }
    if (auto r = (*p)->load(OutputOptions{}); !r) {
        std::fprintf(stderr, "decode-bench: %s\n", r.error().message().c_str());
        return 1;
    }
    if (auto r = (*p)->attach(); !r) {
        std::fprintf(stderr, "decode-bench: %s\n", r.error().message().c_str());
        return 1;
    }
    (*p)->start();

    std::vector<pwru_event> recorded;
    recorded.reserve(want);
    EventFn keep = [&](const pwru_event& ev, const RecordExtras&) {
        if (recorded.size() < want) recorded.push_back(ev);
    };
    for (int round = 0; round < 200 && recorded.size() < want; ++round) {
        send_udp(500);
        (void)(*p)->poll(50, keep);
    }
    (*p)->detach_and_drain(nullptr);
    if (recorded.empty()) {
        std::fprintf(stderr, "decode-bench: no event recorded\n");
        return 1;
    }

    for (bool json : {false, true}) {
        OutputOptions oo;
        oo.json = json;
        OutputFormatter fmt(oo);
        size_t bytes = 0, n = 0;
        std::string line;  // reused, as tracer_run.cc does
        double t0 = thread_cpu_seconds();
        for (int r = 0; r < replays; ++r) {
            for (const auto& ev : recorded) {
                EventRecord rec = (*p)->decoder().decode(ev);
                line.clear();
                fmt.format_to(line, rec);
                bytes += line.size();
                ++n;
            }
        }
        double cpu = thread_cpu_seconds() - t0;
        double rate = cpu > 0 ? static_cast<double>(n) / cpu : 0;
        std::printf(
            "RESULT\tdecode\tdecode+format %s, events per CPU-second (%zu recorded x %d)\t%.0f/s\t1000000/s "
            "target\t%.3f\t%.0f bytes/event; >= 1 meets the target\n",
            json ? "JSON" : "text", recorded.size(), replays, rate, rate / 1e6,
            static_cast<double>(bytes) / static_cast<double>(n));
    }
    return 0;
}
