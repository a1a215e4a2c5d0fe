// End to end, with real traffic in namespaces this test makes: an iptables
// DROP of TCP to port 80, and `pwru` must show that packet's trajectory
// ending in the netfilter drop; filters must include and exclude it.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "support/test_files.h"
#include "support/child_process.h"
#include "support/netns_fixture.h"
#include "support/root_guard.h"
#include "support/text_lines.h"

using namespace pwru::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kDrop = "kfree_skb(SKB_DROP_REASON_NETFILTER_DROP)";

// pwru running in the background, started and ready (attached).
class PwruRun {
  public:
    explicit PwruRun(std::vector<std::string> args) : proc_(make_argv(std::move(args), ready_path())) {
        if (!proc_.wait_for_file(ready_path_, 60s))
            FAIL("pwru did not become ready within 60 s; stderr:\n" << proc_.stderr_text());
    }

    // Waits (bounded) until stdout holds `needle`, or the time is up.
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
        return proc_.wait_for_stdout({needle}, timeout);
    }

    // SIGINT, as a user's Ctrl-C; returns stdout. pwru must exit 0.
    std::string stop() {
        proc_.interrupt();
        auto status = proc_.wait(30s);
        INFO("stderr:\n" << proc_.stderr_text());
        REQUIRE(status);
        CHECK(*status == 0);
        return proc_.stdout_text();
    }

    std::string stderr_text() const { return proc_.stderr_text(); }
    // For a pwru that ends by itself: its exit code, nullopt if still running.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) { return proc_.wait(timeout); }

  private:
    const std::string& ready_path() {
        ready_path_ = pwru::test::fresh_ready_file("drop");
        return ready_path_;
    }
    static std::vector<std::string> make_argv(std::vector<std::string> args, const std::string& ready) {
        std::vector<std::string> argv = {PWRU_BIN, "--ready-file", ready};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }

    std::string ready_path_;
    ChildProcess proc_;
};

uint64_t own_netns_inode() {
    struct stat st {};
    REQUIRE(stat("/proc/self/ns/net", &st) == 0);
    return st.st_ino;
}

std::string skb_of(const std::string& line) { return line.substr(0, line.find(' ')); }

// Sends SYNs to B:80 (dropped) from A; the attempt times out.
void send_dropped_syn(const NetnsPair& ns) { CHECK_FALSE(ns.tcp_connect_from_a(80, 1200)); }

}  // namespace

TEST_CASE("an iptables DROP is traced to the netfilter drop", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});

    PwruRun pwru({"tcp and dst port 80"});
    send_dropped_syn(ns);
    CHECK(pwru.wait_for_output(kDrop, 5s));
    std::string out = pwru.stop();
    INFO("pwru output:\n" << out);

    const std::string to80 = ns.addr_b() + ":80(tcp)";
    auto events = lines_with(out, to80);
    REQUIRE(events.size() >= 3);
    // Every printed event is this flow's: the filter ran in the kernel.
    CHECK(lines_with(out, "->").size() == events.size());
    auto drops = lines_with(out, kDrop);
    REQUIRE_FALSE(drops.empty());
    CHECK(drops[0].find(to80) != std::string::npos);
    // The drop ends its skb's trajectory, which went out through the veth first.
    std::string skb = skb_of(drops[0]);
    auto same_skb = lines_with(out, skb + " ");
    CHECK(same_skb.back().find(kDrop) != std::string::npos);
    CHECK_FALSE(lines_with(out, "net_dev_xmit").empty());
    // The drop is located in netfilter (nf_hook_slow, or nft_do_chain with nftables).
    auto at = drops[0].find(" at nf");
    CHECK(at != std::string::npos);
    // The exit summary names where and why it was dropped.
    std::string err = pwru.stderr_text();
    CHECK(err.find("dropped in nf") != std::string::npos);
    CHECK(err.find(" in netns " + std::to_string(ns.netns_inode_b()) + ": SKB_DROP_REASON_NETFILTER_DROP") !=
          std::string::npos);
    CHECK(out.rfind("SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   "
                    "TUPLE FUNC",
                    0) == 0);
}

TEST_CASE("a filter for another port prints nothing of that packet", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});

    PwruRun pwru({"tcp and dst port 81"});
    send_dropped_syn(ns);
    std::string out = pwru.stop();
    INFO("pwru output:\n" << out);
    CHECK(lines_with(out, ns.addr_b()).empty());
    CHECK(lines_with(out, kDrop).empty());
}

TEST_CASE("--filter-netns includes its netns and excludes the others", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    const std::string b_inode = std::to_string(ns.netns_inode_b());

    SECTION("the drop's netns, by path: events, all in that netns") {
        PwruRun pwru({"--filter-netns", ns.ns_path_b(), "tcp and dst port 80"});
        send_dropped_syn(ns);
        CHECK(pwru.wait_for_output(kDrop, 5s));
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        auto events = lines_with(out, ns.addr_b());
        REQUIRE_FALSE(events.empty());
        CHECK(lines_with(out, " " + b_inode + " ").size() == events.size());
        CHECK_FALSE(lines_with(out, kDrop).empty());
    }
    SECTION("the root netns, by inode: the packet never passes there") {
        PwruRun pwru({"--filter-netns", "inode:" + std::to_string(own_netns_inode()), "tcp and dst port 80"});
        send_dropped_syn(ns);
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        CHECK(lines_with(out, ns.addr_b()).empty());
    }
}

TEST_CASE("--filter-mark includes marked skbs and excludes others", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    ns.set_mark_rule_a(0x2a, 80);  // mangle OUTPUT in A

    SECTION("the mark set in A matches, with a mask") {
        PwruRun pwru({"--filter-mark", "0x2a/0xff", "tcp and dst port 80"});
        send_dropped_syn(ns);
        CHECK(pwru.wait_for_output(ns.addr_b(), 5s));
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        auto events = lines_with(out, ns.addr_b());
        REQUIRE_FALSE(events.empty());
        CHECK(lines_with(out, " 2a       ").size() == events.size());
    }
    SECTION("another mark matches nothing") {
        PwruRun pwru({"--filter-mark", "0x2b", "tcp and dst port 80"});
        send_dropped_syn(ns);
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        CHECK(lines_with(out, ns.addr_b()).empty());
    }
}

TEST_CASE("--filter-track-skb follows a packet through DNAT to its drop", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    // Port 80 is rewritten to 8080 on the way in, and 8080 is dropped.
    ns.iptables_b({"-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination",
                   ns.addr_b() + ":8080"});
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"});
    const std::string after_nat = ns.addr_b() + ":8080(tcp)";

    SECTION("tracked: the rewritten packet and its drop are shown") {
        PwruRun pwru({"--filter-track-skb", "tcp and dst port 80"});
        send_dropped_syn(ns);
        CHECK(pwru.wait_for_output(kDrop, 5s));
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        CHECK_FALSE(lines_with(out, ns.addr_b() + ":80(tcp)").empty());
        auto drops = lines_with(out, kDrop);
        REQUIRE_FALSE(drops.empty());
        CHECK(drops[0].find(after_nat) != std::string::npos);
    }
    SECTION("untracked: the filter loses the packet once its port changed") {
        PwruRun pwru({"tcp and dst port 80"});
        send_dropped_syn(ns);
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        CHECK_FALSE(lines_with(out, ns.addr_b() + ":80(tcp)").empty());
        CHECK(lines_with(out, after_nat).empty());
        CHECK(lines_with(out, kDrop).empty());
    }
}

TEST_CASE("--output-stack and --output-caller show where each event came from", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    PwruRun pwru({"--output-stack", "--output-caller", "tcp and dst port 80"});
    send_dropped_syn(ns);
    CHECK(pwru.wait_for_output(kDrop, 5s));
    std::string out = pwru.stop();
    INFO("pwru output:\n" << out);
    // The frames under the drop: the netfilter hook that dropped it.
    auto at = out.find(kDrop);
    REQUIRE(at != std::string::npos);
    std::string after = out.substr(at, out.find("\n0x", at) - at);
    CHECK(after.find("\nnf_hook_slow+0x") != std::string::npos);
    // CALLER: the function that queued the packet for transmission.
    CHECK(out.find(" FUNC CALLER\n") != std::string::npos);
    auto queued = lines_with(out, " net_dev_queue ");
    REQUIRE_FALSE(queued.empty());
    CHECK(queued[0].ends_with(" __dev_queue_xmit"));
}

TEST_CASE("--output-json --output-file: every event a JSON object, then loss and summary records", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    const std::string file = "/tmp/pwru-test-json-" + std::to_string(getpid());
    {
        PwruRun pwru({"--output-json", "--output-file", file, "tcp and dst port 80"});
        send_dropped_syn(ns);
        std::this_thread::sleep_for(300ms);
        CHECK(pwru.stop().empty());  // nothing on stdout: it all went to the file
    }
    std::ifstream in(file);
    std::vector<nlohmann::json> records;
    for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
    std::remove(file.c_str());
    INFO(records.size() << " records");
    REQUIRE(records.size() >= 3);
    bool saw_drop = false;
    for (size_t i = 0; i + 2 < records.size(); ++i) {
        const auto& r = records[i];
        CHECK(r.contains("skb"));
        CHECK(r["tuple"]["daddr"] == ns.addr_b());
        CHECK(r["tuple"]["dport"] == 80);
        CHECK(r["wall_ns"].get<int64_t>() > 1700000000000000000);  // wall time of the event, in ns
        saw_drop |= r.value("drop_reason", "") == "SKB_DROP_REASON_NETFILTER_DROP";
    }
    CHECK(saw_drop);
    CHECK(records[records.size() - 2]["type"] == "loss");
    CHECK(records[records.size() - 2]["ringbuf_full"] == 0);
    CHECK(records.back()["type"] == "summary");
    size_t drops = 0;
    for (const auto& p : records.back()["packets"])
        drops += p.value("drop", "").find("SKB_DROP_REASON_NETFILTER_DROP") != std::string::npos;
    CHECK(drops >= 1);
}

TEST_CASE("--output-json-pwru: events only, in cilium/pwru's field order, the summary on stderr", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    PwruRun pwru({"--output-json-pwru", "--timestamp", "current", "tcp and dst port 80"});
    send_dropped_syn(ns);
    CHECK(pwru.wait_for_output(kDrop, 5s));
    std::string out = pwru.stop();
    INFO("pwru stdout:\n" << out << "\nstderr:\n" << pwru.stderr_text());
    // pwru's jsonPrinter order, checked on the raw line (nlohmann sorts); a
    // field is there only when not empty ("proto" left out: the tuple has one too)
    const std::vector<std::string> order = {
        "skb",  "skb_shared_info", "cpu", "process", "func", "caller_func", "time",         "netns", "netns_name",
        "mark", "iface",           "mtu", "len",     "cb",   "tuple",       "tunnel_tuple", "stack", "skb_metadata"};
    std::istringstream in(out);
    size_t events = 0;
    for (std::string line; std::getline(in, line);) {
        INFO(line);
        auto j = nlohmann::json::parse(line);
        REQUIRE(j.contains("func"));  // no loss or summary records
        CHECK_FALSE(j.contains("wall_ns"));
        CHECK_FALSE(j.contains("drop_reason"));
        CHECK(j["tuple"]["dport"] == 80);
        size_t last = 0;
        for (const std::string& key : order) {
            size_t at = line.find("\"" + key + "\":");
            if (at == std::string::npos) continue;
            CHECK(at >= last);
            last = at;
        }
        ++events;
    }
    CHECK(events >= 2);
    CHECK(pwru.stderr_text().find("dropped in") != std::string::npos);  // the summary, as text
}

TEST_CASE("--output-netns-names, --output-skb-cb, --output-skb, --output-skb-shared-info", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    PwruRun pwru(
        {"--output-netns-names", "--output-skb-cb", "--output-skb", "--output-skb-shared-info", "tcp and dst port 80"});
    send_dropped_syn(ns);
    CHECK(pwru.wait_for_output(kDrop, 5s));
    std::string out = pwru.stop();
    INFO("pwru output:\n" << out);
    CHECK(out.find(" __sk_buff->cb[]") != std::string::npos);
    CHECK(out.find("NETNS NAME") != std::string::npos);
    auto drops = lines_with(out, kDrop);
    REQUIRE_FALSE(drops.empty());
    // The namespace was created by name: its name is shown (cut to 16 characters).
    CHECK(drops[0].find(ns.b().substr(0, 16)) != std::string::npos);
    CHECK(drops[0].find(" [0x") != std::string::npos);
    auto sent = lines_with(out, " net_dev_queue");
    REQUIRE_FALSE(sent.empty());
    CHECK(sent[0].find(ns.a().substr(0, 16)) != std::string::npos);
    // The structs follow each event, as the kernel's BTF prints them.
    auto at = out.find(kDrop);
    CHECK(out.find("\n(struct sk_buff){", at) != std::string::npos);
    CHECK(out.find(".len = (unsigned int)60", at) != std::string::npos);
    CHECK(out.find("\n(struct skb_shared_info){", at) != std::string::npos);
}

TEST_CASE("--set-percpu-buf sizes the --output-skb text, as pwru's; out of range is refused", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    // JSON: each dump is one string, its length easy to see
    auto dumps = [&](std::vector<std::string> size) {
        std::vector<std::string> args = {"--output-json", "--output-skb", "--output-skb-shared-info"};
        args.insert(args.end(), size.begin(), size.end());
        args.push_back("tcp and dst port 80");
        PwruRun pwru(args);
        send_dropped_syn(ns);
        CHECK(pwru.wait_for_output("NETFILTER_DROP", 5s));
        std::string out = pwru.stop();
        INFO("pwru output:\n" << out);
        std::vector<std::pair<size_t, size_t>> sizes;
        std::istringstream in(out);
        for (std::string line; std::getline(in, line);) {
            auto j = nlohmann::json::parse(line);
            if (!j.contains("func")) continue;
            REQUIRE(j.contains("skb_metadata"));
            REQUIRE(j.contains("skb_shared_info"));
            CHECK(j["skb_metadata"].get<std::string>().rfind("(struct sk_buff){", 0) == 0);
            sizes.emplace_back(j["skb_metadata"].get<std::string>().size(),
                               j["skb_shared_info"].get<std::string>().size());
        }
        REQUIRE_FALSE(sizes.empty());
        return sizes;
    };
    for (auto [skb, shinfo] : dumps({"--set-percpu-buf", "256"})) {
        CHECK(skb == 255);  // cut: the sk_buff prints far more
        CHECK(shinfo <= 255);
    }
    for (auto [skb, shinfo] : dumps({"--set-percpu-buf", "65536"})) {
        CHECK(skb > 1000);  // far more room than the 256 above
        CHECK(skb < 65535);
        CHECK(shinfo < 65535);
    }
    // --output-bpfmap adds a record part on the kprobe backends only: on any
    // backend the dumps after it are read from the right place
    for (auto [skb, shinfo] : dumps({"--output-bpfmap", "--set-percpu-buf", "256"})) CHECK(skb == 255);
    CommandResult bad = run_command({PWRU_BIN, "--set-percpu-buf", "100", "icmp"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--set-percpu-buf") != std::string::npos);
}

TEST_CASE("--output-pcap writes the traced packets, commented with their functions", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
    const std::string file = "/tmp/pwru-test-pcap-" + std::to_string(getpid()) + ".pcapng";
    std::string out;
    {
        PwruRun pwru({"--output-pcap", file, "tcp and dst port 80"});
        send_dropped_syn(ns);
        CHECK(pwru.wait_for_output(kDrop, 5s));
        out = pwru.stop();
    }
    std::ifstream in(file, std::ios::binary);
    std::string raw((std::istreambuf_iterator<char>(in)), {});
    std::remove(file.c_str());
    INFO("pwru output:\n" << out);
    // One packet per event, each with its event's function as the comment.
    size_t events = lines_with(out, ns.addr_b() + ":80(tcp)").size();
    size_t packets = 0;
    for (size_t at = 0; (at = raw.find(" skb=0x", at)) != std::string::npos; ++at) ++packets;
    CHECK(packets == events);
    CHECK(raw.find(std::string(kDrop) + " at nf") != std::string::npos);
    // The bytes are the SYN: IPv4 (ethertype 0x0800), TCP, to port 80.
    auto ip = raw.find(std::string("\x08\x00\x45", 3));
    REQUIRE(ip != std::string::npos);
    CHECK(static_cast<uint8_t>(raw[ip + 2 + 9]) == 6);
    CHECK(static_cast<uint8_t>(raw[ip + 2 + 22]) == 0);
    CHECK(static_cast<uint8_t>(raw[ip + 2 + 23]) == 80);
}

// ---------------------------------------------------------------------------
// What is a drop (tracer/events/drop_verdict.h): only the kernel's verdict, and a
// packet's first. On this host's tracepoint backend the verdict is the
// kfree_skb tracepoint's reason; the vm layer checks the same on kprobes.
namespace {

const std::string kTraffic = std::string(PWRU_SOURCE_DIR) + "/tests/support/traffic.py";

// The exit summary on stderr: "Trajectories: N packets, M dropped" and its
// "  dropped in ..." lines.
struct ExitSummary {
    long packets = -1, dropped = -1;
    std::vector<std::string> drop_lines;
};

ExitSummary exit_summary(const std::string& err) {
    ExitSummary s;
    auto at = err.rfind("Trajectories: ");
    if (at == std::string::npos) return s;
    std::sscanf(err.c_str() + at, "Trajectories: %ld packets, %ld dropped", &s.packets, &s.dropped);
    for (const auto& l : lines_with(err.substr(at), "  dropped in ")) s.drop_lines.push_back(l);
    return s;
}

// Event lines (not the header) that show a drop reason in their FUNC column.
std::vector<std::string> lines_with_reason(const std::string& out) {
    std::vector<std::string> got;
    for (const auto& l : lines_with(out, "(SKB_"))
        if (l.starts_with("0x")) got.push_back(l);
    return got;
}

// Exactly one drop, on the event lines and in the exit summary: `reason` on
// the kfree_skb line, the summary's place starting with `place` in netns B.
void check_one_drop(const std::string& out, const std::string& err, const std::string& reason, const std::string& place,
                    const std::string& b_netns) {
    INFO("pwru output:\n" << out << "\nstderr:\n" << err);
    auto reasons = lines_with_reason(out);
    REQUIRE(reasons.size() == 1);
    CHECK(reasons[0].find("kfree_skb(" + reason + ")") != std::string::npos);
    ExitSummary s = exit_summary(err);
    CHECK(s.dropped == 1);
    REQUIRE(s.drop_lines.size() == 1);
    CHECK(s.drop_lines[0].starts_with("  dropped in " + place + " at veth-b:"));
    CHECK(s.drop_lines[0].ends_with(b_netns + reason));
}

// B forwards: 192.0.2.0/24 behind a link of MTU 1000 (too small for a
// 1428-byte DF datagram), 198.51.100.0/24 nowhere (no route). A routes both via B.
void make_b_a_router(const NetnsPair& ns) {
    auto must = [](const CommandResult& r, const char* what) {
        INFO(what << ": " << r.err);
        REQUIRE(r.ok());
    };
    must(ns.run_in(ns.b(), {"sysctl", "-qw", "net.ipv4.ip_forward=1"}), "ip_forward in B");
    // A veth pair inside B (not a dummy: this host's kernel has no dummy driver).
    must(ns.run_in(ns.b(),
                   {"ip", "link", "add", "d0", "mtu", "1000", "type", "veth", "peer", "name", "d1", "mtu", "1000"}),
         "small-MTU veth in B");
    must(ns.run_in(ns.b(), {"ip", "link", "set", "d0", "up"}), "d0 up");
    must(ns.run_in(ns.b(), {"ip", "link", "set", "d1", "up"}), "d1 up");
    must(ns.run_in(ns.b(), {"ip", "route", "add", "192.0.2.0/24", "dev", "d0"}), "route via d0");
    for (const char* net : {"192.0.2.0/24", "198.51.100.0/24"})
        must(ns.run_in(ns.a(), {"ip", "route", "add", net, "via", ns.addr_b()}), "route in A via B");
}

}  // namespace

TEST_CASE("drops: TCP, UDP and ICMP both ways, nothing dropped, no reason on any line", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    PwruRun pwru({"--output-tuple", "ip and host " + ns.addr_b()});
    auto r = run_command({"python3", kTraffic, "exchange", ns.ns_path_a(), ns.ns_path_b(), ns.addr_b(), "5555"}, 30s);
    INFO("traffic.py: " << r.out << r.err);
    REQUIRE(r.ok());
    std::this_thread::sleep_for(300ms);
    std::string out = pwru.stop();
    std::string err = pwru.stderr_text();
    INFO("pwru output:\n" << out << "\nstderr:\n" << err);
    // All three were traced, both ways ...
    for (const std::string& flow :
         std::vector<std::string>{"->" + ns.addr_b() + ":5555(tcp)", ns.addr_b() + ":5555->" + ns.addr_a(),
                                  "->" + ns.addr_b() + ":5555(udp)", "(icmp)"})
        CHECK_FALSE(lines_with(out, flow).empty());
    CHECK_FALSE(lines_with(out, "consume_skb").empty());
    // ... and none of it is called dropped.
    CHECK(lines_with_reason(out).empty());
    ExitSummary s = exit_summary(err);
    CHECK(s.packets >= 3);
    CHECK(s.dropped == 0);
    CHECK(s.drop_lines.empty());
}

TEST_CASE(
    "drops: a closed port, an iptables DROP, a too-big DF datagram and no route, each with the kernel's reason and "
    "place",
    "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    const std::string b_netns = " in netns " + std::to_string(ns.netns_inode_b()) + ": ";

    SECTION("a SYN to a closed port: NO_SOCKET in tcp_v4_rcv, once") {
        PwruRun pwru({"--output-tuple", "tcp and dst port 81"});
        CHECK_FALSE(ns.tcp_connect_from_a(81, 1200));  // refused by the RST
        std::this_thread::sleep_for(300ms);
        std::string out = pwru.stop();
        check_one_drop(out, pwru.stderr_text(), "SKB_DROP_REASON_NO_SOCKET", "tcp_v4_rcv", b_netns);
    }
    SECTION("iptables DROP: every SYN (and retransmit) dropped by netfilter, nothing else") {
        ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});
        PwruRun pwru({"--output-tuple", "tcp and dst port 80"});
        send_dropped_syn(ns);
        std::this_thread::sleep_for(300ms);
        std::string out = pwru.stop();
        std::string err = pwru.stderr_text();
        INFO("pwru output:\n" << out << "\nstderr:\n" << err);
        auto reasons = lines_with_reason(out);
        REQUIRE_FALSE(reasons.empty());
        for (const auto& l : reasons) CHECK(l.find("kfree_skb(SKB_DROP_REASON_NETFILTER_DROP)") != std::string::npos);
        ExitSummary s = exit_summary(err);
        CHECK(s.dropped == long(reasons.size()));
        REQUIRE(s.drop_lines.size() == reasons.size());
        for (const auto& l : s.drop_lines) {
            CHECK(l.starts_with("  dropped in nf"));
            CHECK(l.ends_with(b_netns + "SKB_DROP_REASON_NETFILTER_DROP"));
        }
    }
    SECTION("a DF datagram too big for the next hop: PKT_TOO_BIG in ip_forward") {
        make_b_a_router(ns);
        PwruRun pwru({"--output-tuple", "udp and dst port 4444"});
        auto r = run_command({"python3", kTraffic, "udp", ns.ns_path_a(), "192.0.2.7", "4444", "1400", "df"}, 10s);
        INFO("traffic.py: " << r.out << r.err);
        REQUIRE(r.ok());
        std::this_thread::sleep_for(300ms);
        std::string out = pwru.stop();
        check_one_drop(out, pwru.stderr_text(), "SKB_DROP_REASON_PKT_TOO_BIG", "ip_forward", b_netns);
    }
    SECTION("no route in the forwarding netns: IP_INNOROUTES in ip_error") {
        make_b_a_router(ns);
        PwruRun pwru({"--output-tuple", "udp and dst port 4444"});
        auto r = run_command({"python3", kTraffic, "udp", ns.ns_path_a(), "198.51.100.7", "4444", "64"}, 10s);
        INFO("traffic.py: " << r.out << r.err);
        REQUIRE(r.ok());
        std::this_thread::sleep_for(300ms);
        std::string out = pwru.stop();
        check_one_drop(out, pwru.stderr_text(), "SKB_DROP_REASON_IP_INNOROUTES", "ip_error", b_netns);
    }
}

TEST_CASE("an output that fails (disk full): pwru stops with one line, the summary counts what was not printed",
          "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    ns.iptables_b({"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"});

    PwruRun pwru({"--output-file", "/dev/full", "tcp and dst port 80"});
    send_dropped_syn(ns);
    auto status = pwru.wait_exit(10s);
    const std::string err = pwru.stderr_text();
    INFO("stderr:\n" << err);
    REQUIRE(status);
    CHECK(*status == 1);
    CHECK(lines_with(err, "cannot write events to /dev/full: No space left on device").size() >= 1);
    // Nothing reached /dev/full: the summary must not claim any event printed.
    auto summary = lines_with(err, "Summary: 0 events printed (");
    REQUIRE(summary.size() == 1);
    CHECK(summary[0].find(" more traced but not printed: cannot write events to /dev/full") != std::string::npos);
}
