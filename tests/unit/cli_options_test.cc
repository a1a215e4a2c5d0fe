// Flag parsing: pwru's names and defaults, and one-line errors for bad values.
#include <catch2/catch.hpp>

#include "tracer/cli_options.h"
#include "tracer/kernel/netns.h"

using namespace pwru;

namespace {

Result<CliConfig> parse(std::vector<const char*> args) {
    args.insert(args.begin(), "pwru");
    return parse_cli(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("defaults are pwru's", "[unit]") {
    auto c = parse({});
    REQUIRE(c);
    CHECK(c->trace.backend == Backend::Auto);
    CHECK(c->trace.discovery.kernel_btf == "/sys/kernel/btf/vmlinux");
    CHECK(c->output.meta);
    CHECK(c->output.tuple);
    CHECK_FALSE(c->output.json);
    CHECK(c->output.timestamp == TimestampMode::None);
    CHECK(c->trace.pcap_expr.empty());
}

TEST_CASE("positional words become one tcpdump expression", "[unit]") {
    auto c = parse({"--output-limit-lines", "5", "tcp", "and", "dst", "port", "80"});
    REQUIRE(c);
    CHECK(c->trace.pcap_expr == "tcp and dst port 80");
    CHECK(c->output_limit_lines == 5);
    auto quoted = parse({"--", "host 10.0.0.1"});
    REQUIRE(quoted);
    CHECK(quoted->trace.pcap_expr == "host 10.0.0.1");
}

TEST_CASE("flags map to options", "[unit]") {
    auto c = parse({"--backend", "tracepoint", "--kmods", "veth,br_netfilter", "--filter-func", "ip_.*",
                    "--output-json", "--timestamp", "absolute", "--no-feature", "kprobe_multi", "--no-output-meta",
                    "--output-tcp-flags", "--ready-file", "/tmp/r"});
    REQUIRE(c);
    CHECK(c->trace.backend == Backend::Tracepoint);
    CHECK(c->trace.discovery.kmods == std::vector<std::string>{"veth", "br_netfilter"});
    CHECK(c->trace.discovery.filter_func == "ip_.*");
    CHECK(c->output.json);
    CHECK(c->output.timestamp == TimestampMode::Absolute);
    CHECK(c->trace.no_features.count("kprobe_multi"));
    CHECK_FALSE(c->output.meta);
    CHECK(c->output.tcp_flags);
    CHECK(c->ready_file == "/tmp/r");
}

TEST_CASE("--kmods is taken repeated and comma-separated, as pwru's string slice; the filter words still follow",
          "[unit]") {
    auto c = parse({"--kmods", "veth", "--kmods", "br_netfilter,nf_tables", "--kmods", "veth", "tcp", "port", "80"});
    REQUIRE(c);
    CHECK(c->trace.discovery.kmods == std::vector<std::string>{"veth", "br_netfilter", "nf_tables"});
    CHECK(c->trace.pcap_expr == "tcp port 80");
}

TEST_CASE("--filter-kprobe-batch sets the kprobes in flight; out of range is refused with the range", "[unit]") {
    auto c = parse({"--filter-kprobe-batch", "4", "icmp"});
    REQUIRE(c);
    CHECK(c->trace.kprobe_batch == 4);
    CHECK(c->trace.pcap_expr == "icmp");
    auto dflt = parse({"icmp"});
    REQUIRE(dflt);
    CHECK(dflt->trace.kprobe_batch == 0);
    for (const char* bad : {"0", "257", "-1", "ten"}) {
        auto r = parse({"--filter-kprobe-batch", bad});
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("--filter-kprobe-batch") != std::string::npos);
    }
}

TEST_CASE("pwru's --flag=false form works for boolean flags", "[unit]") {
    auto c = parse({"--output-tuple=false", "--output-meta=false"});
    REQUIRE(c);
    CHECK_FALSE(c->output.tuple);
    CHECK_FALSE(c->trace.output_tuple);
    CHECK_FALSE(c->output.meta);
}

TEST_CASE("bad flags are bad input with a hint", "[unit]") {
    auto unknown = parse({"--no-such-flag"});
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().kind == pwru::ErrorKind::BadInput);
    CHECK(unknown.error().what.find("pwru --help") != std::string::npos);
    auto backend = parse({"--backend", "fentry"});
    REQUIRE_FALSE(backend);
    CHECK(backend.error().kind == pwru::ErrorKind::BadInput);
    CHECK(parse({"--help"})->help);
}

TEST_CASE("marks parse as MARK[/MASK] in decimal or hex", "[unit]") {
    CHECK(parse_mark("42")->mark == 42);
    CHECK(parse_mark("42")->mask == 0xffffffffu);
    auto m = parse_mark("0x2a/0xff");
    REQUIRE(m);
    CHECK(m->mark == 0x2a);
    CHECK(m->mask == 0xff);
    for (const char* bad : {"", "zz", "0x", "1/", "/1", "0x1ffffffff", "12abc"}) {
        auto r = parse_mark(bad);
        INFO(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == pwru::ErrorKind::BadInput);
        CHECK(r.error().what.find("MARK/MASK") != std::string::npos);
    }
}

TEST_CASE("netns arguments: paths and inode:N", "[unit]") {
    auto self = parse_netns("/proc/self/ns/net");
    REQUIRE(self);
    CHECK(self->inode != 0);
    auto by_inode = parse_netns("inode:" + std::to_string(self->inode));
    REQUIRE(by_inode);
    CHECK(by_inode->inode == self->inode);
    auto missing = parse_netns("/proc/999999999/ns/net");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().what.find("/proc/PID/ns/net") != std::string::npos);
    auto bad = parse_netns("inode:abc");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == pwru::ErrorKind::BadInput);
}

TEST_CASE("hostile CLI values are refused at start: negative or huge limits, files that are no netns", "[unit]") {
    for (const char* v : {"--output-limit-lines=-1", "--output-limit-lines=18446744073709551616",
                          "--output-limit-lines=0.5", "--output-limit-lines=1e3"}) {
        INFO(v);
        const char* argv[] = {"pwru", v};
        auto r = parse_cli(2, argv);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == pwru::ErrorKind::BadInput);
        CHECK_THAT(r.error().what, Catch::Matchers::Contains("is not a whole number"));
    }
    const char* max[] = {"pwru", "--output-limit-lines=18446744073709551615"};
    auto ok = parse_cli(2, max);
    REQUIRE(ok);
    CHECK(ok->output_limit_lines == UINT64_MAX);

    auto passwd = parse_netns("/etc/passwd");
    REQUIRE_FALSE(passwd);
    CHECK(passwd.error().kind == pwru::ErrorKind::BadInput);
    CHECK_THAT(passwd.error().what, Catch::Matchers::Contains("is not a network namespace"));
    auto mnt = parse_netns("/proc/self/ns/mnt");  // a namespace, of another type
    REQUIRE_FALSE(mnt);
    CHECK_THAT(mnt.error().what, Catch::Matchers::Contains("is not a network namespace"));
    auto no_such = parse_netns("inode:1");
    REQUIRE_FALSE(no_such);
    CHECK_THAT(no_such.error().what, Catch::Matchers::Contains("no network namespace with that inode"));
}

TEST_CASE("--help lists the flags taken from pwru v1.0.6 to v1.0.12", "[unit]") {
    auto c = parse({"--help"});
    REQUIRE(c);
    REQUIRE(c->help);
    for (const char* flag :
         {"--filter-skb-expr", "--filter-xdp-expr", "--output-skb-metadata", "--output-xdp-metadata", "--output-bpfmap",
          "--filter-track-bpf-helpers", "--filter-kprobe-batch", "--set-percpu-buf", "--output-json-pwru", "--kmods"})
        CHECK(c->help_text.find(flag) != std::string::npos);
}
