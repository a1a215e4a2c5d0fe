// What kubectl-pwru adds to pwru's lines: NODE and POD (NAMESPACE/POD when the
// targets span namespaces), "node", "pod" and "namespace" in JSON taken from
// the stream's target, and -A for selectors across namespaces. pwru's own
// output is untouched by all of it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "kubectl-plugin/plugin_options.h"
#include "kubectl-plugin/targets.h"
#include "tracer/events/output_format.h"

using namespace pwru;
using namespace pwru::plugin;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

EventRecord udp_event() {
    EventRecord e;
    e.skb = 0xffff888004a1c000ULL;
    e.process = "/usr/bin/curl:77";
    e.func = "ip_rcv";
    e.has_tuple = true;
    e.tuple = {4, 17, 0, "10.244.1.5", "10.244.2.7", 40000, 53};
    return e;
}

}  // namespace

TEST_CASE("every event carries the node, pod and namespace of the stream it came on", "[plugin]") {
    EventRecord e = udp_event();
    e.node = "what-the-agent-calls-itself";
    label_event(e, TraceTarget{"node-b", "shop", "web-0", {}});
    CHECK(e.node == "node-b");
    CHECK(e.pod == "web-0");
    CHECK(e.pod_namespace == "shop");

    OutputFormatter json({.json = true, .node_columns = true});
    auto j = nlohmann::json::parse(json.format(e));
    CHECK(j["node"] == "node-b");
    CHECK(j["pod"] == "web-0");
    CHECK(j["namespace"] == "shop");

    // Node-wide: a node, no pod, no namespace.
    EventRecord n = udp_event();
    label_event(n, TraceTarget{"node-c", "", "", {}});
    auto nj = nlohmann::json::parse(json.format(n));
    CHECK(nj["node"] == "node-c");
    CHECK_FALSE(nj.contains("pod"));
    CHECK_FALSE(nj.contains("namespace"));

    // The agent's stream record has "namespace" too: it round-trips.
    nlohmann::json wire = e;
    CHECK(wire["namespace"] == "shop");
    CHECK(wire.get<EventRecord>().pod_namespace == "shop");
}

TEST_CASE("POD shows NAMESPACE/POD only when the targets span namespaces", "[plugin]") {
    EventRecord e = udp_event();
    label_event(e, TraceTarget{"node-a", "shop", "web-0", {}});
    OutputFormatter one_ns({.meta = false, .node_columns = true});
    CHECK_THAT(one_ns.header(), StartsWith("NODE             POD                      SKB"));
    CHECK_THAT(one_ns.format(e), StartsWith("node-a           web-0                    0xffff888004a1c000"));
    OutputFormatter many({.meta = false, .node_columns = true, .pod_with_namespace = true});
    CHECK_THAT(many.format(e), StartsWith("node-a           shop/web-0               0xffff888004a1c000"));
    EventRecord n = udp_event();
    label_event(n, TraceTarget{"node-a", "", "", {}});
    CHECK_THAT(many.format(n), StartsWith("node-a                                    0xffff888004a1c000"));
}

TEST_CASE("pwru's own output has no namespace, node or pod", "[plugin]") {
    EventRecord e = udp_event();
    OutputFormatter pwru_json({.json = true});
    auto j = nlohmann::json::parse(pwru_json.format(e));
    CHECK_FALSE(j.contains("namespace"));
    CHECK_FALSE(j.contains("node"));
    CHECK_FALSE(j.contains("pod"));
    OutputFormatter pwru_text({});
    CHECK_THAT(pwru_text.header(), StartsWith("SKB "));
}

TEST_CASE("-A: a selector across namespaces; names still need one namespace", "[plugin]") {
    auto o = parse_plugin_options({"-A", "-l", "app=web", "node/node-a"});
    REQUIRE(o);
    CHECK(o->all_namespaces);
    CHECK(o->selector == "app=web");

    auto named = parse_plugin_options({"-A", "pod/web-0"});
    REQUIRE_FALSE(named);
    CHECK_THAT(named.error().message(), Contains("-A (all namespaces) goes with -l SELECTOR") && Contains("pod/web-0"));
    auto both = parse_plugin_options({"-A", "-n", "shop", "-l", "app=web"});
    REQUIRE_FALSE(both);
    CHECK_THAT(both.error().message(), Contains("-A and -n shop"));
}
