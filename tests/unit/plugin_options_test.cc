// kubectl-pwru's command line and the agent records it reads.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "kubectl-plugin/agent_stream.h"
#include "kubectl-plugin/plugin_options.h"

using namespace pwru::plugin;

TEST_CASE("kubectl pwru: targets, the filter after --, output flags here, pwru flags to the agents", "[plugin]") {
    auto o = parse_plugin_options({"pod/httpd", "deploy/web", "-n", "shop", "--output-json", "--output-stack",
                                   "--timestamp", "absolute", "--filter-track-skb", "--direct", "--tls-dir", "/certs",
                                   "--", "tcp", "port", "80"});
    REQUIRE(o);
    REQUIRE(o->targets.size() == 2);
    CHECK(o->targets[0].kind == "pod");
    CHECK(o->targets[0].name == "httpd");
    CHECK(o->targets[1].kind == "deploy");
    CHECK(o->kube.ns == "shop");
    CHECK(o->filter == "tcp port 80");
    CHECK(o->output.json);
    CHECK(o->output.node_columns);
    CHECK(o->output.timestamp == pwru::TimestampMode::Absolute);
    CHECK(o->agents.direct);
    CHECK(o->agents.tls_cert == "/certs/tls.crt");
    CHECK(o->agents.tls_ca == "/certs/ca.crt");
    // --filter-track-skb is pwru's: passed through; --output-stack is both.
    CHECK(o->agent_args == std::vector<std::string>{"--filter-track-skb", "--output-stack"});

    auto body = nlohmann::json::parse(trace_request_body(*o, TraceTarget{"node-a", "shop", "httpd-0", {}}));
    CHECK(body["namespace"] == "shop");
    CHECK(body["pod"] == "httpd-0");
    CHECK(body["filter"] == "tcp port 80");
    auto node_body = nlohmann::json::parse(trace_request_body(*o, TraceTarget{"node-a", "", "", {}}));
    CHECK(node_body["node"] == true);
    CHECK_FALSE(node_body.contains("pod"));
    // A client-certificate user has no token: none is sent.
    CHECK_FALSE(body.contains("bearer_token"));
}

// Found by the k8s layer: agents in RBAC mode answered 403 "send the user's
// bearer token" because the plugin never sent the kubeconfig's token.
TEST_CASE("kubectl pwru: the kubeconfig user's token goes to the agents as bearer_token", "[plugin]") {
    auto o = parse_plugin_options({"pod/httpd", "--", "tcp"});
    REQUIRE(o);
    o->user_token = "token-of-shop-tracer";
    auto body = nlohmann::json::parse(trace_request_body(*o, TraceTarget{"node-a", "shop", "httpd", {}}));
    CHECK(body["bearer_token"] == "token-of-shop-tracer");
    auto node_body = nlohmann::json::parse(trace_request_body(*o, TraceTarget{"node-a", "", "", {}}));
    CHECK(node_body["bearer_token"] == "token-of-shop-tracer");
}

TEST_CASE("kubectl pwru: bad command lines get one line saying what to do", "[plugin]") {
    auto none = parse_plugin_options({"--", "tcp"});
    REQUIRE_FALSE(none);
    CHECK(none.error().message().find("nothing to trace") != std::string::npos);
    auto kind = parse_plugin_options({"cronjob/nightly"});
    REQUIRE_FALSE(kind);
    CHECK(kind.error().message().find("use pod/, deploy/") != std::string::npos);
    auto ts = parse_plugin_options({"pod/x", "--timestamp", "yesterday"});
    REQUIRE_FALSE(ts);
    CHECK(ts.error().message().find("--help") != std::string::npos);
    auto shape = parse_plugin_options({"pod/a/b"});
    REQUIRE_FALSE(shape);
    CHECK(shape.error().message().find("KIND/NAME") != std::string::npos);
}

TEST_CASE("agent records become merge messages; junk is an error, unknown types keep the stream alive", "[plugin]") {
    auto ev = parse_agent_line(
        R"({"type":"event","skb":"0xffff888003a1b200","cpu":1,"func":"ip_rcv","wall_ns":1700000000123456789,"ktime_ns":5,"node":"node-a","pod":"httpd-0","namespace":"web"})",
        3);
    REQUIRE(ev.kind == StreamMessage::Kind::Event);
    CHECK(ev.stream == 3);
    CHECK(ev.event.func == "ip_rcv");
    CHECK(ev.event.skb == 0xffff888003a1b200ull);
    CHECK(ev.event.node == "node-a");
    CHECK(ev.event.wall_ns == 1700000000123456789);
    auto hb = parse_agent_line(R"({"type":"heartbeat","node":"n","wall_ns":10,"watermark_ns":7})", 0);
    REQUIRE(hb.kind == StreamMessage::Kind::Heartbeat);
    CHECK(hb.watermark_ns == 7);
    auto sum = parse_agent_line(
        R"({"type":"summary","events":2,"drops":[{"func":"f","reason":"R","count":2}],"ended":"client"})", 0);
    REQUIRE(sum.kind == StreamMessage::Kind::Summary);
    CHECK(sum.record["drops"][0]["count"] == 2);
    CHECK(parse_agent_line("not json", 0).kind == StreamMessage::Kind::Error);
    CHECK(parse_agent_line(R"({"type":"event","cpu":1})", 0).kind == StreamMessage::Kind::Error);  // no skb/func
    CHECK(parse_agent_line(R"({"type":"from-the-future"})", 0).kind == StreamMessage::Kind::Heartbeat);
}

TEST_CASE("kubectl pwru: the agent's port comes from --agent-port, else the agent pod's spec", "[plugin]") {
    auto pod = pod_from_json(nlohmann::json::parse(R"({"metadata":{"name":"pwru-agent-x","namespace":"pwru"},
        "spec":{"nodeName":"n1","containers":[{"name":"agent","ports":[
            {"name":"health","containerPort":9090},
            {"name":"dns","containerPort":53,"protocol":"UDP"},
            {"name":"https","containerPort":8443}]}]}})"));
    REQUIRE(pod.tcp_ports.size() == 2);  // UDP ports are not the agent's

    auto dflt = parse_plugin_options({"pod/x"});
    REQUIRE(dflt);
    CHECK(agent_port_of(dflt->agents, pod) == 8443);        // the port named https
    CHECK(agent_port_of(dflt->agents, PodInfo{}) == 4245);  // nothing declared: the agent's default --listen
    PodInfo one;
    one.tcp_ports = {{"", 7000}};
    CHECK(agent_port_of(dflt->agents, one) == 7000);  // the only TCP port

    auto given = parse_plugin_options({"pod/x", "--agent-port", "4245"});
    REQUIRE(given);
    CHECK(agent_port_of(given->agents, pod) == 4245);  // the command line wins, even when equal to the default
}

TEST_CASE("kubectl pwru: --agent-server-name with {node} names each node's own certificate", "[plugin]") {
    AgentAccess shared;
    CHECK(agent_server_name(shared, "node-a") == "pwru-agent");  // the chart's one shared name
    auto o = parse_plugin_options({"pod/x", "--agent-server-name", "{node}.pwru-agent.pwru.svc"});
    REQUIRE(o);
    CHECK(agent_server_name(o->agents, "node-a") == "node-a.pwru-agent.pwru.svc");
    CHECK(agent_server_name(o->agents, "ip-10-0-0-1.ec2.internal") == "ip-10-0-0-1.ec2.internal.pwru-agent.pwru.svc");
    AgentAccess twice;
    twice.server_name = "{node}-{node}";
    CHECK(agent_server_name(twice, "n{node}") == "n{node}-n{node}");  // a node name is never re-expanded
}
