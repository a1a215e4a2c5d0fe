// Loss is never silent: with a tiny ring buffer and nobody reading, a flood
// of matching packets overflows it, and every event is either delivered or
// counted as lost, exactly.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <catch2/catch.hpp>

#include "support/root_guard.h"
#include "tracer/session.h"

using namespace pwru;

namespace {

void udp_flood(uint16_t port, int count) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char payload[32] = {};
    for (int i = 0; i < count; ++i)
        sendto(fd, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
    close(fd);
}

}  // namespace

TEST_CASE("ring buffer overflow is counted exactly", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    TraceOptions opts;
    opts.backend = Backend::Tracepoint;
    opts.pcap_expr = "udp and dst port 47999";
    opts.ringbuf_bytes = 4096;  // room for a few dozen events
    auto s = Session::create(opts);
    REQUIRE(s);
    REQUIRE((*s)->load());
    auto st = (*s)->attach();
    REQUIRE(st);
    (*s)->start();

    udp_flood(47999, 500);  // several tracepoints per packet, nobody reading

    uint64_t delivered = 0;
    EventFn count = [&](const pwru_event&, const RecordExtras&) { ++delivered; };
    for (int i = 0; i < 50; ++i) {  // bounded drain
        auto n = (*s)->poll(20, count);
        REQUIRE(n);
        if (*n == 0 && i > 2) break;
    }
    (*s)->detach();
    LossCounters c = (*s)->counters();
    INFO("delivered " << delivered << ", counted " << c.events << ", lost " << c.ringbuf_full);
    CHECK(c.ringbuf_full > 0);
    CHECK(delivered == c.events);
    CHECK(c.events + c.ringbuf_full >= 500);  // at least one hit per packet reached the output stage
    // The total is the per-CPU counts' sum, one entry per possible CPU.
    CHECK(c.ringbuf_full_per_cpu.size() == size_t(libbpf_num_possible_cpus()));
    uint64_t sum = 0;
    for (uint64_t n : c.ringbuf_full_per_cpu) sum += n;
    CHECK(sum == c.ringbuf_full);
    CHECK(c.lost() == c.ringbuf_full + c.recursion_misses);
}
