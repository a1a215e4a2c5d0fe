// pwru's text columns, to the character, against lines of real pwru output
// (../shared/reference/pwru-sample-output.md), plus the JSON shape.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tracer/events/output_format.h"

using namespace pwru;

namespace {

EventRecord sample_event() {
    EventRecord e;
    e.skb = 0xff4a626c020ef4e8ULL;
    e.cpu = 1;
    e.pid = 306;
    e.process = "/usr/bin/bash:306";
    e.netns = 4026531840u;
    e.mark = 0;
    e.ifindex = 0;
    e.proto = 0;
    e.mtu = 1500;
    e.len = 60;
    e.has_tuple = true;
    e.tuple = {4, 6, 0x02, "10.99.0.1", "10.99.0.2", 39096, 8080};
    e.func = "ip_local_out";
    return e;
}

}  // namespace

TEST_CASE("header matches pwru's byte for byte", "[unit]") {
    OutputFormatter f({});
    CHECK(f.header() ==
          "SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   TUPLE FUNC");
}

TEST_CASE("event lines match pwru's recorded output", "[unit]") {
    OutputFormatter f({});
    EventRecord e = sample_event();
    CHECK(f.format(e) ==
          "0xff4a626c020ef4e8 1   ~sr/bin/bash:306 4026531840 0               0         0x0000 1500  60    "
          "10.99.0.1:39096->10.99.0.2:8080(tcp) ip_local_out");

    e.ifname = "v0";
    e.ifindex = 3;
    e.proto = 0x0800;
    e.func = "nf_hook_slow";
    CHECK(f.format(e) ==
          "0xff4a626c020ef4e8 1   ~sr/bin/bash:306 4026531840 0              v0:3       0x0800 1500  60    "
          "10.99.0.1:39096->10.99.0.2:8080(tcp) nf_hook_slow");

    e.ifname.clear();
    e.ifindex = 2;
    e.netns = 4026532142u;
    e.mtu = 65536;
    e.func = "sk_skb_reason_drop";
    e.drop_reason = "SKB_DROP_REASON_NETFILTER_DROP";
    CHECK(f.format(e) ==
          "0xff4a626c020ef4e8 1   ~sr/bin/bash:306 4026532142 0               2         0x0800 65536 60    "
          "10.99.0.1:39096->10.99.0.2:8080(tcp) sk_skb_reason_drop(SKB_DROP_REASON_NETFILTER_DROP)");
}

TEST_CASE("columns follow the output options", "[unit]") {
    EventRecord e = sample_event();
    OutputFormatter bare({.meta = false, .tuple = false});
    CHECK(bare.header() == "SKB                CPU PROCESS          FUNC");
    CHECK(bare.format(e) == "0xff4a626c020ef4e8 1   ~sr/bin/bash:306 ip_local_out");

    OutputFormatter flags({.meta = false, .tuple = true, .tcp_flags = true});
    CHECK(flags.format(e).find("10.99.0.1:39096->10.99.0.2:8080(tcp:SYN) ip_local_out") != std::string::npos);
}

TEST_CASE("tuples: IPv6 in brackets, no IP header prints pwru's empty tuple", "[unit]") {
    EventRecord e = sample_event();
    e.tuple = {6, 17, 0, "fd00::1", "fd00::2", 53, 5353};
    CHECK(tuple_string(e, false) == "[fd00::1]:53->[fd00::2]:5353(udp)");
    e.tuple = {};
    CHECK(tuple_string(e, false) == ":0->:0()");
    CHECK(tcp_flags_string(0x12) == "SYN|ACK");
    CHECK(tcp_flags_string(0x11) == "FIN|ACK");
    CHECK(l4_proto_name(58) == "icmp6");
}

TEST_CASE("process names are shortened from the left with ~", "[unit]") {
    CHECK(shorten_left("/usr/bin/bash:306", 16) == "~sr/bin/bash:306");
    CHECK(shorten_left("curl:1", 16) == "curl:1");
    CHECK(center("v0:3", 16) == "      v0:3      ");
    CHECK(center("0", 16) == "       0        ");
}

TEST_CASE("relative timestamps are per skb", "[unit]") {
    OutputFormatter f({.meta = false, .tuple = false, .timestamp = TimestampMode::Relative});
    CHECK(f.header() == "SKB                CPU PROCESS          TIMESTAMP        FUNC");
    EventRecord a = sample_event(), b = sample_event();
    b.skb = 0x1000;
    a.ktime_ns = 1000;
    CHECK(f.format(a).find(" 0                ip_local_out") != std::string::npos);
    b.ktime_ns = 1500;
    CHECK(f.format(b).find(" 0                ip_local_out") != std::string::npos);
    a.ktime_ns = 1700;
    CHECK(f.format(a).find(" 700              ip_local_out") != std::string::npos);
}

TEST_CASE("--output-json has pwru's fields and types, plus ours", "[unit]") {
    EventRecord e = sample_event();
    e.drop_reason = "SKB_DROP_REASON_NETFILTER_DROP";
    e.location = "nf_hook_slow+0x9c";
    e.wall_ns = 1764000000123456789;
    e.ktime_ns = 42;
    e.ifname = "v0";
    e.ifindex = 3;
    e.stack = {"nf_hook_slow+0x9c", "ip_local_deliver+0x9b"};
    OutputFormatter f({.tcp_flags = true, .json = true});
    CHECK(f.header().empty());
    auto j = nlohmann::json::parse(f.format(e));
    CHECK(j["skb"] == "0xff4a626c020ef4e8");
    CHECK(j["func"] == "ip_local_out(SKB_DROP_REASON_NETFILTER_DROP)");
    CHECK(j["drop_reason"] == "SKB_DROP_REASON_NETFILTER_DROP");
    CHECK(j["location"] == "nf_hook_slow+0x9c");
    CHECK(j["iface"] == "v0:3");
    CHECK(j["tuple"]["dport"] == 8080);
    CHECK(j["tuple"]["flags"] == "SYN");
    CHECK(j["stack"] == "\nnf_hook_slow+0x9c\nip_local_deliver+0x9b");
    CHECK_FALSE(j.contains("time"));  // --timestamp none, as pwru
    CHECK(j["wall_ns"] == e.wall_ns);

    OutputFormatter current({.json = true, .timestamp = TimestampMode::Current});
    CHECK(nlohmann::json::parse(current.format(e))["time"] == 42);
}

TEST_CASE("the transport JSON round-trips every field", "[unit]") {
    EventRecord e = sample_event();
    e.drop_reason = "SKB_DROP_REASON_NETFILTER_DROP";
    e.location = "nf_hook_slow+0x9c";
    e.wall_ns = 1764000000123456789;
    e.ifname = "v0";
    e.cb = {1, 2, 3, 4, 5};
    e.stack = {"a+0x1"};
    e.skb_dump = "(struct sk_buff){...}";
    e.caller = "ip_output";
    e.node = "node-1";
    e.skb_fields = {{"skb->mark", "mark", "42"}, {"skb->dev", "dev", "?"}};
    nlohmann::json j = e;
    EventRecord back = j.get<EventRecord>();
    OutputFormatter text({.caller = true, .skb_cb = true});
    OutputFormatter text2({.caller = true, .skb_cb = true});
    CHECK(text.format(back) == text2.format(e));
    CHECK(back.wall_ns == e.wall_ns);
    CHECK(back.node == "node-1");
    CHECK(back.skb_dump == e.skb_dump);
    CHECK(back.skb_fields == e.skb_fields);
}

TEST_CASE("absolute time is the event's, in pwru's layout", "[unit]") {
    setenv("TZ", "UTC", 1);
    tzset();
    OutputFormatter f({.meta = false, .tuple = false, .timestamp = TimestampMode::Absolute});
    CHECK(f.header() == "TIME                    SKB                CPU PROCESS          FUNC");
    EventRecord e = sample_event();
    e.wall_ns = 1764043062123456789;  // 2025-11-25T03:57:42.123 UTC
    CHECK(f.format(e) == "2025-11-25T03:57:42.123 0xff4a626c020ef4e8 1   ~sr/bin/bash:306 ip_local_out");

    // pwru's own CLI: TIME, then the kernel time in TIMESTAMP (cilium/pwru's PrintHeader / Print)
    OutputFormatter pwru_cols(
        {.meta = false, .tuple = false, .timestamp = TimestampMode::Absolute, .absolute_with_ktime = true});
    CHECK(pwru_cols.header() ==
          "TIME                    SKB                CPU PROCESS          TIMESTAMP        FUNC");
    e.ktime_ns = 804115495290;
    CHECK(pwru_cols.format(e) ==
          "2025-11-25T03:57:42.123 0xff4a626c020ef4e8 1   ~sr/bin/bash:306 804115495290     ip_local_out");
}

TEST_CASE("--output-json-pwru: cilium/pwru's field order, empty fields left out, nothing of ours", "[unit]") {
    EventRecord e = sample_event();
    e.drop_reason = "SKB_DROP_REASON_NETFILTER_DROP";
    e.location = "nf_hook_slow+0x9c";
    e.wall_ns = 1764000000123456789;
    e.ktime_ns = 42;
    e.ifname = "v0";
    e.ifindex = 3;
    e.skb_fields = {{"skb->mark", "mark", "0"}};
    OutputFormatter f({.tcp_flags = true, .json = true, .json_pwru_shape = true});
    // Go's encoding/json of pwru's jsonPrinter: mark 0 and proto 0 omitted
    CHECK(f.format(e) ==
          R"j({"skb":"0xff4a626c020ef4e8","cpu":1,"process":"/usr/bin/bash:306",)j"
          R"j("func":"ip_local_out(SKB_DROP_REASON_NETFILTER_DROP)","netns":4026531840,"iface":"v0:3","mtu":1500,)j"
          R"j("len":60,"tuple":{"saddr":"10.99.0.1","daddr":"10.99.0.2","sport":39096,"dport":8080,"proto":6,)j"
          R"j("flags":"SYN"}})j");
    e.cpu = 0;
    e.stack = {"a+0x1", "b+0x2"};
    e.tuple.tcp_flags = 0;
    e.tuple.sport = 0;
    OutputFormatter current(
        {.meta = false, .json = true, .timestamp = TimestampMode::Current, .json_pwru_shape = true});
    CHECK(
        current.format(e) ==
        R"j({"skb":"0xff4a626c020ef4e8","process":"/usr/bin/bash:306","func":"ip_local_out(SKB_DROP_REASON_NETFILTER_DROP)",)j"
        R"j("time":42,"tuple":{"saddr":"10.99.0.1","daddr":"10.99.0.2","dport":8080,"proto":6},)j"
        R"j("stack":"\na+0x1\nb+0x2"})j");
}

TEST_CASE("TUPLE and FUNC pad to the widest seen, CALLER follows", "[unit]") {
    OutputFormatter f({.meta = false, .tuple = true, .caller = true});
    CHECK(f.header() == "SKB                CPU PROCESS          TUPLE FUNC CALLER");
    EventRecord e = sample_event();
    e.caller = "ip_finish_output2";
    e.func = "__dev_queue_xmit";
    std::string first = f.format(e);
    CHECK(first.ends_with("10.99.0.1:39096->10.99.0.2:8080(tcp) __dev_queue_xmit ip_finish_output2"));
    e.tuple.sport = 1;
    e.func = "ip_rcv";
    e.caller = "__netif_receive_skb_one_core";
    CHECK(f.format(e).ends_with("10.99.0.1:1->10.99.0.2:8080(tcp)     ip_rcv           __netif_receive_skb_one_core"));
}

TEST_CASE("stack frames follow their event, one a line", "[unit]") {
    OutputFormatter f({.meta = false, .tuple = false});
    EventRecord e = sample_event();
    e.stack = {"nf_hook_slow+0x44", "ip_local_deliver+0x9b [vmlinux]"};
    CHECK(f.format(e) ==
          "0xff4a626c020ef4e8 1   ~sr/bin/bash:306 ip_local_out\nnf_hook_slow+0x44\nip_local_deliver+0x9b [vmlinux]");
}

TEST_CASE("cb and netns name columns, as pwru lays them out", "[unit]") {
    OutputFormatter f({.meta = true, .tuple = false, .skb_cb = true, .netns_names = true, .netns_name_width = 10});
    CHECK(f.header() ==
          "SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   "
          "__sk_buff->cb[]                                         NETNS NAME FUNC");
    EventRecord e = sample_event();
    e.cb = {1, 0xdeadbeef, 0, 0, 0x2a};
    e.netns_name = "client";
    std::string line = f.format(e);
    CHECK(line.find(" [0x00000001,0xDEADBEEF,0x00000000,0x00000000,0x0000002A]  client   ip_local_out") !=
          std::string::npos);
    CHECK(cb_string({}) == "[]");
}

TEST_CASE("--output-bpfmap: pwru's block with Go's hex dump, and a JSON object of ours", "[unit]") {
    // Go's encoding/hex Dump, byte for byte: the gap after the 8th byte, the
    // padding of a short last line, the ASCII column
    CHECK(go_hex_dump({}).empty());
    CHECK(go_hex_dump({0x0a, 0, 0, 0}) == "00000000  0a 00 00 00                                       |....|\n");
    std::vector<uint8_t> bytes;
    for (int i = 0; i < 18; ++i) bytes.push_back(static_cast<uint8_t>(0x2e + i));
    CHECK(go_hex_dump(bytes) ==
          "00000000  2e 2f 30 31 32 33 34 35  36 37 38 39 3a 3b 3c 3d  |./0123456789:;<=|\n"
          "00000010  3e 3f                                             |>?|\n");

    EventRecord e = sample_event();
    e.bpfmap = BpfMapRecord{"update", 7, "pwru_test_lens", 4, 8, {0x3c, 0, 0, 0}, true, {1, 0, 0, 0, 0, 0, 0, 0}};
    OutputFormatter text({.meta = false, .tuple = false});
    CHECK(text.format(e) ==
          "0xff4a626c020ef4e8 1   ~sr/bin/bash:306 ip_local_out\n"
          "map_id: 7\nmap_name: pwru_test_lens\nkey(4):\n"
          "00000000  3c 00 00 00                                       |<...|\n"
          "value(8):\n"
          "00000000  01 00 00 00 00 00 00 00                           |........|");
    OutputFormatter json({.meta = false, .tuple = false, .json = true});
    auto j = nlohmann::json::parse(json.format(e));
    CHECK(j["bpfmap"]["op"] == "update");
    CHECK(j["bpfmap"]["key"] == "3c000000");
    CHECK(j["bpfmap"]["value"] == "0100000000000000");
    nlohmann::json transport = e;
    CHECK(transport.get<EventRecord>().bpfmap == e.bpfmap);
    // a delete has no value
    e.bpfmap->op = "delete";
    e.bpfmap->has_value = false;
    e.bpfmap->value.clear();
    CHECK(text.format(e).find("value(") == std::string::npos);
    CHECK_FALSE(nlohmann::json::parse(json.format(e))["bpfmap"].contains("value"));
}
