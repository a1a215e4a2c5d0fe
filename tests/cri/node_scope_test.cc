// pwru-agent's node scope on a shared kernel, as in a kind cluster: two
// "nodes" (network namespaces joined by a veth), each with its own containerd
// (the CNI bridge and the pods in that node), its own agent running in the
// node's netns (hostNetwork), and pod-a on node-a sending to pod-b on node-b
// across the nodes. Each packet event must come from exactly one node's agent:
// a third agent with --node-scope kernel (every netns) is the witness of what
// happened, matched event for event (ktime, skb, function).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include <sys/stat.h>

#include "agent/cri_client.h"
#include "cri/agent_harness.h"
#include "cri/containerd_fixture.h"
#include "cri/pod_helpers.h"
#include "support/netns_fixture.h"

using namespace pwru::agent;
using namespace pwru::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Each agent's programs stamp their own bpf_ktime_get_ns(), microseconds
// apart for one kernel event: an event is (skb, function, netns, CPU) plus a
// time matched within kMatchNs.
using EventKey = std::tuple<std::string, std::string, uint32_t, int>;
constexpr int64_t kMatchNs = 1'000'000;

EventKey key_of(const json& e) { return {e["skb"], e["func"], e["netns"], e["cpu"]}; }

// key -> the events' kernel times, sorted.
std::map<EventKey, std::vector<int64_t>> events_by_key(const std::vector<const HttpReply*>& streams,
                                                       const std::set<uint32_t>& netns) {
    std::map<EventKey, std::vector<int64_t>> m;
    for (const auto* r : streams)
        for (const auto& e : of_type(*r, "event"))
            if (netns.count(e["netns"].get<uint32_t>())) m[key_of(e)].push_back(e["ktime_ns"].get<int64_t>());
    for (auto& [k, v] : m) std::sort(v.begin(), v.end());
    return m;
}

uint32_t inode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return static_cast<uint32_t>(st.st_ino);
}

// The stream's events whose netns is not in `allowed`, for the failure message.
std::string outside(const HttpReply& r, const std::set<uint32_t>& allowed) {
    std::ostringstream out;
    for (const auto& e : of_type(r, "event"))
        if (!allowed.count(e["netns"].get<uint32_t>())) out << e.dump() << "\n";
    return out.str();
}

void require_no_loss(const HttpReply& r, const std::string& who) {
    INFO(who << ": " << r.body.substr(0, 1500));
    REQUIRE(r.status == 200);
    REQUIRE(r.lines.size() >= 2);
    const json& summary = r.lines.back();
    REQUIRE(summary["type"] == "summary");
    // The exact comparison below needs every event: no loss of any kind.
    REQUIRE(summary["ringbuf_full"] == 0);
    REQUIRE(summary["rate_limited"] == 0);
    REQUIRE(summary["recursion_misses"] == 0);
}

}  // namespace

TEST_CASE("pwru-agent node scope: two nodes on one kernel each report only their own netns", "[cri][agent]") {
    REQUIRE_CONTAINERD();
    NetnsPair nodes;  // node-a 10.199.X.1 <-veth-> node-b 10.199.X.2
    ContainerdFixture cd_a({nodes.ns_path_a(), 0});
    ContainerdFixture cd_b({nodes.ns_path_b(), 1});
    // Each node routes the other's pod subnet to it, as kind's CNI does.
    for (const auto& [ns, peer_pods, peer] : {std::tuple{nodes.a(), cd_b.pod_ip_prefix(), nodes.addr_b()},
                                              std::tuple{nodes.b(), cd_a.pod_ip_prefix(), nodes.addr_a()}}) {
        REQUIRE(nodes.run_in(ns, {"sysctl", "-qw", "net.ipv4.ip_forward=1"}).ok());
        REQUIRE(nodes.run_in(ns, {"ip", "route", "add", peer_pods + "0/24", "via", peer}).ok());
    }
    cd_a.run_pod("default", "pod-a");
    cd_b.run_pod("default", "pod-b");
    auto cri_a = CriClient::connect(cd_a.socket());
    auto cri_b = CriClient::connect(cd_b.socket());
    REQUIRE(cri_a);
    REQUIRE(cri_b);
    const PodView a = view(*cri_a, "default", "pod-a");
    const PodView b = view(*cri_b, "default", "pod-b");
    const uint32_t node_a = inode_of(nodes.ns_path_a()), node_b = inode_of(nodes.ns_path_b());

    AgentCerts certs;
    const std::string& ca = certs.ca.cert_path();
    AgentProcess agent_a(certs.agent_args(cd_a.socket(), "node-a"), nodes.ns_path_a());
    AgentProcess agent_b(certs.agent_args(cd_b.socket(), "node-b"), nodes.ns_path_b());
    auto witness_args = certs.agent_args(cd_a.socket(), "witness");
    witness_args.insert(witness_args.end(), {"--node-scope", "kernel"});
    AgentProcess witness(witness_args);

    const json node_req = {{"node", true}, {"filter", "udp or icmp"}, {"max_duration_s", 9}};
    const json pod_a_req = {
        {"namespace", "default"}, {"pod", "pod-a"}, {"filter", "udp or icmp"}, {"max_duration_s", 9}};
    json pod_b_req = pod_a_req;
    pod_b_req["pod"] = "pod-b";
    TraceCall node_call_a(agent_a.port(), ca, certs.alice, node_req, nullptr, nodes.ns_path_a());
    TraceCall node_call_b(agent_b.port(), ca, certs.alice, node_req, nullptr, nodes.ns_path_b());
    TraceCall pod_call_a(agent_a.port(), ca, certs.alice, pod_a_req, nullptr, nodes.ns_path_a());
    TraceCall pod_call_b(agent_b.port(), ca, certs.alice, pod_b_req, nullptr, nodes.ns_path_b());
    TraceCall witness_call(witness.port(), ca, certs.alice, node_req);
    for (auto* c : {&node_call_a, &node_call_b, &pod_call_a, &pod_call_b, &witness_call}) REQUIRE(c->wait_started(90s));

    const auto t0 = std::chrono::steady_clock::now();
    send_udp(b.ip, 10, a.netns_path);  // pod-a -> node-a -> node-b -> pod-b, ICMP back
    // A pod created while the traces run joins its node's scope at the next
    // refresh (every 2 s).
    cd_a.run_pod("default", "pod-a2");
    const PodView a2 = view(*cri_a, "default", "pod-a2");
    std::this_thread::sleep_for(2500ms);
    send_udp(b.ip, 10, a2.netns_path);
    INFO("traffic took " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");

    HttpReply na = node_call_a.result(90s), nb = node_call_b.result(90s), w = witness_call.result(90s);
    HttpReply pa = pod_call_a.result(90s), pb = pod_call_b.result(90s);
    require_no_loss(na, "node-a");
    require_no_loss(nb, "node-b");
    require_no_loss(w, "witness");
    CHECK(na.lines.front()["node_scope"] == "cri");
    CHECK(na.lines.front()["node_netns"] == 2);  // node-a's own and pod-a's
    CHECK(w.lines.front()["node_scope"] == "kernel");

    const std::set<uint32_t> set_a{node_a, a.netns, a2.netns}, set_b{node_b, b.netns};
    std::set<uint32_t> both = set_a;
    both.insert(set_b.begin(), set_b.end());

    // Each node reports its own netns only.
    INFO("node-a outside its set:\n" << outside(na, set_a).substr(0, 2000));
    INFO("node-b outside its set:\n" << outside(nb, set_b).substr(0, 2000));
    CHECK(outside(na, set_a).empty());
    CHECK(outside(nb, set_b).empty());

    // Every event in the two nodes' netns is in exactly one node's stream:
    // the two nodes' events together are the witness's, one for one.
    const auto witnessed = events_by_key({&w}, both), reported = events_by_key({&na, &nb}, both);
    size_t mismatches = 0;
    std::ostringstream diff;
    auto note = [&](const EventKey& k, const std::string& what) {
        if (mismatches++ < 15)
            diff << std::get<1>(k) << " skb " << std::get<0>(k) << " netns " << std::get<2>(k) << ": " << what << "\n";
    };
    for (const auto& [k, times] : witnessed) {
        auto it = reported.find(k);
        const size_t got = it == reported.end() ? 0 : it->second.size();
        if (got != times.size()) {
            note(k, "witness " + std::to_string(times.size()) + ", the nodes " + std::to_string(got));
            continue;
        }
        for (size_t i = 0; i < got; ++i)
            if (std::llabs(it->second[i] - times[i]) > kMatchNs) note(k, "times differ by more than 1 ms");
    }
    for (const auto& [k, times] : reported)
        if (!witnessed.count(k)) note(k, "reported by a node, not seen by the witness");
    INFO(diff.str());
    CHECK(mismatches == 0);
    CHECK(witnessed.size() > 0);
    WARN("node scope: witness " << of_type(w, "event").size() << " events (" << witnessed.size()
                                << " distinct in the nodes' netns), node-a " << of_type(na, "event").size()
                                << ", node-b " << of_type(nb, "event").size());

    // Both nodes saw the packets, in the node's netns and in the pods'.
    auto netns_seen = [](const HttpReply& r) {
        std::set<uint32_t> s;
        for (const auto& e : of_type(r, "event")) s.insert(e["netns"].get<uint32_t>());
        return s;
    };
    const auto seen_a = netns_seen(na), seen_b = netns_seen(nb);
    CHECK(seen_a.count(node_a));
    CHECK(seen_a.count(a.netns));
    CHECK(seen_a.count(a2.netns));  // created during the trace: covered after the refresh
    CHECK(seen_b.count(node_b));
    CHECK(seen_b.count(b.netns));

    // Pod traces: the pod's trajectory on its own node, never the other node's
    // netns (the packet to pod-b carries pod-a's IP there, and is tracked).
    for (auto* r : {&pa, &pb}) {
        const bool is_a = r == &pa;
        INFO((is_a ? "pod-a" : "pod-b") << " stream: " << r->body.substr(0, 1500));
        REQUIRE(r->status == 200);
        const auto& own = is_a ? set_a : set_b;
        CHECK(outside(*r, own).empty());
        const auto seen = netns_seen(*r);
        CHECK(seen.count(is_a ? a.netns : b.netns));
        CHECK(seen.count(is_a ? node_a : node_b));  // the node's side of the veth
    }
}
