// The plugin's k-way merge of agent streams: order by event time with
// per-stream watermarks, silent and dying streams, late events, bounded memory.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "kubectl-plugin/timeline_merge.h"

using namespace pwru;
using namespace pwru::plugin;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

EventRecord at(int64_t wall_ns, std::string func = "ip_rcv") {
    EventRecord e;
    e.wall_ns = wall_ns;
    e.func = std::move(func);
    return e;
}

std::vector<int64_t> event_times(const std::vector<MergedItem>& items) {
    std::vector<int64_t> out;
    for (const auto& i : items)
        if (i.kind == MergedItem::Kind::Event) out.push_back(i.event.wall_ns);
    return out;
}

size_t count_status(const std::vector<MergedItem>& items, StreamState s) {
    return std::count_if(items.begin(), items.end(),
                         [&](const MergedItem& i) { return i.kind == MergedItem::Kind::Status && i.state == s; });
}

}  // namespace

TEST_CASE("events wait for the slowest stream's watermark, then come out in time order", "[merge]") {
    TimelineMerge m;
    int64_t now = 100 * kSec;
    size_t a = m.add_stream("node-a", now);
    size_t b = m.add_stream("node-b", now);

    // Node A is ahead; B's events arrive later although they happened earlier.
    m.on_event(a, at(now + 30 * kMs), now + 31 * kMs);
    m.on_event(a, at(now + 10 * kMs), now + 31 * kMs);  // out of order within a stream too
    m.on_heartbeat(a, now + 40 * kMs, now + 41 * kMs);
    auto out = m.drain(now + 42 * kMs);
    CHECK(event_times(out).empty());                        // B has said nothing: A's events are held
    CHECK(count_status(out, StreamState::Connected) == 1);  // A, on its first message

    m.on_event(b, at(now + 20 * kMs), now + 50 * kMs);
    m.on_heartbeat(b, now + 25 * kMs, now + 51 * kMs);
    out = m.drain(now + 52 * kMs);
    // Released up to min(40, 25) ms: A's 10 and B's 20, not A's 30.
    CHECK(event_times(out) == std::vector<int64_t>{now + 10 * kMs, now + 20 * kMs});
    CHECK(count_status(out, StreamState::Connected) == 1);  // B

    m.on_heartbeat(b, now + 45 * kMs, now + 60 * kMs);
    out = m.drain(now + 61 * kMs);
    CHECK(event_times(out) == std::vector<int64_t>{now + 30 * kMs});
    for (const auto& i : out) CHECK_FALSE(i.late);
}

TEST_CASE("skewed streams: a node whose events arrive a second late still merges in order", "[merge]") {
    TimelineMerge m;
    int64_t t0 = 50 * kSec;
    size_t fast = m.add_stream("fast", t0);
    size_t slow = m.add_stream("slow", t0);
    std::vector<MergedItem> all;
    // Both see an event every 10 ms; the slow one delivers with 800 ms lag.
    for (int i = 0; i < 300; ++i) {
        int64_t now = t0 + i * 10 * kMs;
        m.on_event(fast, at(now + 1), now);
        m.on_heartbeat(fast, now, now);
        if (now - 800 * kMs >= t0) {
            int64_t then = now - 800 * kMs;
            m.on_event(slow, at(then + 2), now);
            m.on_heartbeat(slow, then, now);
        }
        auto out = m.drain(now);
        all.insert(all.end(), out.begin(), out.end());
    }
    auto rest = m.finish();
    all.insert(all.end(), rest.begin(), rest.end());
    auto times = event_times(all);
    CHECK(times.size() == 300 + 220);
    CHECK(std::is_sorted(times.begin(), times.end()));
    for (const auto& i : all) CHECK_FALSE(i.late);
}

TEST_CASE("a silent stream stops holding the others after the silence timeout and is reported", "[merge]") {
    TimelineMerge::Options o;
    o.silence_ns = 2 * kSec;
    o.max_delay_ns = 10 * kSec;  // so that only the silence rule can release
    TimelineMerge m(o);
    int64_t t0 = 10 * kSec;
    size_t a = m.add_stream("a", t0);
    size_t quiet = m.add_stream("quiet", t0);
    m.on_heartbeat(quiet, t0, t0);
    m.on_event(a, at(t0 + 100 * kMs), t0 + 100 * kMs);
    m.on_heartbeat(a, t0 + 200 * kMs, t0 + 200 * kMs);
    auto out = m.drain(t0 + 1 * kSec);
    CHECK(event_times(out).empty());

    out = m.drain(t0 + 2 * kSec + 1);
    CHECK(event_times(out) == std::vector<int64_t>{t0 + 100 * kMs});
    REQUIRE(count_status(out, StreamState::Unavailable) == 1);
    CHECK(m.stream_state(quiet) == StreamState::Unavailable);

    // It speaks again: reported connected, and it holds the others again.
    m.on_heartbeat(quiet, t0 + 2 * kSec, t0 + 3 * kSec);
    m.on_event(a, at(t0 + 2500 * kMs), t0 + 3 * kSec);
    m.on_heartbeat(a, t0 + 3 * kSec, t0 + 3 * kSec);
    out = m.drain(t0 + 3 * kSec);
    CHECK(count_status(out, StreamState::Connected) == 1);
    CHECK(event_times(out).empty());  // 2.5 s > quiet's watermark of 2 s
}

TEST_CASE("a dying stream: its error is shown in the stream and the rest goes on", "[merge]") {
    TimelineMerge m;
    int64_t t0 = 10 * kSec;
    size_t a = m.add_stream("a", t0);
    size_t dying = m.add_stream("dying", t0);
    m.on_event(dying, at(t0 + 5 * kMs), t0 + 5 * kMs);
    m.on_event(a, at(t0 + 7 * kMs), t0 + 7 * kMs);
    m.on_heartbeat(a, t0 + 20 * kMs, t0 + 20 * kMs);
    m.on_status(dying, StreamState::Error, "connection reset by peer", t0 + 21 * kMs);
    auto out = m.drain(t0 + 22 * kMs);
    // What the dying node sent before it died is kept, in order.
    CHECK(event_times(out) == std::vector<int64_t>{t0 + 5 * kMs, t0 + 7 * kMs});
    REQUIRE(count_status(out, StreamState::Error) == 1);
    auto it = std::find_if(out.begin(), out.end(), [](const MergedItem& i) {
        return i.kind == MergedItem::Kind::Status && i.state == StreamState::Error;
    });
    CHECK(it->message == "connection reset by peer");
    CHECK(m.stream_name(it->stream) == "dying");
}

TEST_CASE("an event older than what was already shown is shown, marked late, not dropped", "[merge]") {
    TimelineMerge m;
    int64_t t0 = 10 * kSec;
    size_t a = m.add_stream("a", t0);
    m.on_event(a, at(t0 + 50 * kMs), t0 + 50 * kMs);
    m.on_heartbeat(a, t0 + 60 * kMs, t0 + 60 * kMs);
    CHECK(event_times(m.drain(t0 + 61 * kMs)) == std::vector<int64_t>{t0 + 50 * kMs});
    // The agent broke its own promise (or a clock stepped back).
    m.on_event(a, at(t0 + 40 * kMs, "late_func"), t0 + 70 * kMs);
    auto out = m.drain(t0 + 71 * kMs);
    REQUIRE(event_times(out) == std::vector<int64_t>{t0 + 40 * kMs});
    CHECK(out.back().late);
    CHECK(out.back().event.func == "late_func");
}

TEST_CASE("nothing waits longer than max_delay for a stream that never sends a watermark", "[merge]") {
    TimelineMerge::Options o;
    o.max_delay_ns = 1 * kSec;
    TimelineMerge m(o);
    int64_t t0 = 10 * kSec;
    size_t a = m.add_stream("a", t0);
    m.add_stream("connecting", t0);  // heard once at start, then only within silence
    m.on_event(a, at(t0 + 10 * kMs), t0 + 10 * kMs);
    CHECK(event_times(m.drain(t0 + 500 * kMs)).empty());
    CHECK(event_times(m.drain(t0 + 1010 * kMs)) == std::vector<int64_t>{t0 + 10 * kMs});
}

TEST_CASE("10 streams x 100k events: memory stays bounded and the output stays ordered", "[merge]") {
    TimelineMerge::Options o;
    o.max_buffered = 4096;
    TimelineMerge m(o);
    constexpr int kStreams = 10, kPerStream = 100'000;
    int64_t t0 = 1000 * kSec;
    std::vector<size_t> ids;
    for (int s = 0; s < kStreams; ++s) ids.push_back(m.add_stream("node-" + std::to_string(s), t0));
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> jitter(0, 999);
    size_t events_out = 0, late = 0;
    int64_t last = INT64_MIN;
    bool ordered = true;
    auto consume = [&](const std::vector<MergedItem>& items) {
        for (const auto& i : items) {
            if (i.kind != MergedItem::Kind::Event) continue;
            ++events_out;
            if (i.late) {
                ++late;
                continue;
            }
            if (i.event.wall_ns < last) ordered = false;
            last = i.event.wall_ns;
        }
    };
    // 100k events per stream over 1 s of event time (100k events/s each);
    // node 9 heartbeats only every 100 ms, so the others pile up behind it.
    for (int k = 0; k < kPerStream; ++k) {
        int64_t now = t0 + int64_t(k) * 10'000;  // 10 us per round
        for (int s = 0; s < kStreams; ++s) {
            m.on_event(ids[s], at(now - jitter(rng)), now);
            if (s != 9 || k % 10'000 == 0) m.on_heartbeat(ids[s], now - 1000, now);
        }
        if (k % 64 == 0) consume(m.drain(now));
    }
    consume(m.finish());
    CHECK(events_out == size_t(kStreams) * kPerStream);
    CHECK(m.peak_buffered() <= o.max_buffered);
    CHECK(ordered);
    // The cap released some events early; any that then arrived older are
    // marked, never lost.
    INFO("late events: " << late);
    CHECK(late < events_out / 10);
}

TEST_CASE("a stream with no start record yet is reported as still attaching, not as gone quiet", "[merge]") {
    TimelineMerge::Options o;
    o.silence_ns = 2 * kSec;
    TimelineMerge m(o);
    int64_t t0 = 10 * kSec;
    size_t slow = m.add_stream("slow", t0);
    size_t quiet = m.add_stream("quiet", t0);
    m.on_status(quiet, StreamState::Connected, "", t0);
    auto out = m.drain(t0 + 3 * kSec);
    REQUIRE(count_status(out, StreamState::Unavailable) == 2);
    for (const auto& i : out) {
        if (i.kind != MergedItem::Kind::Status || i.state != StreamState::Unavailable) continue;
        CHECK(i.message ==
              (i.stream == slow ? "no start record after 3 s (still attaching?)" : "no heartbeat for 3 s"));
    }
}
