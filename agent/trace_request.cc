#include "agent/trace_request.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "agent/input_checks.h"

namespace pwru::agent {
namespace {

using nlohmann::json;

std::string flag_name(const std::string& arg) {
    auto eq = arg.find('=');
    return eq == std::string::npos ? arg : arg.substr(0, eq);
}

Result<std::string> string_field(const json& j, const char* key, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        if (required) return bad_input(std::string("missing \"") + key + "\": add it to the request");
        return std::string();
    }
    if (!it->is_string()) return bad_input(std::string("\"") + key + "\" must be a string");
    return it->get<std::string>();
}

// A positive number, or the ceiling when absent/0; more than the ceiling is refused.
Result<double> number_field(const json& j, const char* key, double ceiling) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return ceiling;
    if (!it->is_number()) return bad_input(std::string("\"") + key + "\" must be a number");
    double v = it->get<double>();
    if (!std::isfinite(v) || v < 0) return bad_input(std::string("\"") + key + "\" must be >= 0");
    if (v == 0) return ceiling;
    if (v > ceiling)
        return bad_input(std::string("\"") + key + "\" is above this agent's limit of " + json(ceiling).dump() +
                         ": ask for less");
    return v;
}

// A whole number >= 0, or the ceiling when absent/0; more is refused.
Result<uint64_t> count_field(const json& j, const char* key, uint64_t ceiling) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return ceiling;
    if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0))
        return bad_input(std::string("\"") + key + "\" must be >= 0 and a whole number (0: the agent's limit of " +
                         std::to_string(ceiling) + ")");
    uint64_t v = it->get<uint64_t>();
    if (v == 0) return ceiling;
    if (v > ceiling)
        return bad_input(std::string("\"") + key + "\" is above this agent's limit of " + std::to_string(ceiling) +
                         ": ask for less");
    return v;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& refused_flags() {
    static const std::vector<std::pair<std::string, std::string>> flags = {
        {"--output-file", "events come back on the response; save them on the client"},
        {"--output-file-max-size", "events come back on the response; save them on the client"},
        {"--output-file-max-backups", "events come back on the response; save them on the client"},
        {"--output-pcap", "the agent writes no files on the node"},
        {"--ready-file", "the \"start\" record says when the trace is attached"},
        {"--filter-netns", "the pod sets the netns; trace another pod instead"},
        {"--filter-ifname", "interface names depend on the netns; use a pcap filter on addresses"},
        {"--kernel-btf", "the agent uses the node's own kernel BTF"},
        {"--dry-run", "not supported remotely"},
        {"--version", "not supported remotely; GET /healthz"},
        {"--help", "see docs/agent-api.md and pwru --help"},
        {"-h", "see docs/agent-api.md and pwru --help"},
        {"--debug", "libbpf's log goes to the agent's own log; ask the node's operator"},
        {"--filter-non-skb-funcs", "the agent does not attach non-skb functions yet; run pwru on the node"},
        {"--filter-track-bpf-helpers", "the agent does not attach non-skb functions yet; run pwru on the node"},
        // Map keys and values of every BPF program on the packet's path (a CNI's
        // conntrack, other tenants' state) are the node's, not a pod's.
        {"--output-bpfmap", "BPF map contents belong to the node's operator; run pwru on the node"},
        // Silently without effect before: the agent attaches no fentry to BPF
        // programs, and an XDP frame (no skb yet) is outside any pod scope.
        {"--filter-trace-tc", "the agent does not trace tc programs yet; run pwru on the node"},
        {"--filter-trace-xdp", "the agent does not trace XDP programs; run pwru on the node"},
        {"--filter-xdp-expr", "the agent does not trace XDP programs; run pwru on the node"},
        {"--output-xdp-metadata", "the agent does not trace XDP programs; run pwru on the node"},
    };
    return flags;
}

namespace {

Result<TraceRequest> parse_unescaped(const std::string& body, const RequestLimits& limits) {
    // A trace request nests two levels (the object, its "args" array). A
    // deeper value is skipped while parsing, never built, then refused: 64 KiB
    // of `[` would otherwise be 65536 nested arrays in memory.
    bool too_deep = false;
    json j = json::parse(
        body,
        [&too_deep](int depth, json::parse_event_t event, json&) {
            if (depth < kMaxRequestJsonDepth) return true;
            if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)
                too_deep = true;
            return !too_deep;
        },
        false);
    if (too_deep)
        return bad_input("the request body nests deeper than " + std::to_string(kMaxRequestJsonDepth) +
                         " levels; a trace request is a flat object (see docs/agent-api.md)");
    if (j.is_discarded()) return bad_input("the request body is not valid JSON");
    if (!j.is_object()) return bad_input("the request body must be a JSON object");

    static const std::vector<std::string> known = {"namespace",      "pod",        "node",        "filter", "args",
                                                   "max_duration_s", "max_events", "bearer_token"};
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
            return bad_input("unknown field \"" + it.key() + "\" in the request; see docs/agent-api.md");
    }

    TraceRequest r;
    auto ns = string_field(j, "namespace", false);
    if (!ns) return std::unexpected(ns.error());
    auto pod = string_field(j, "pod", false);
    if (!pod) return std::unexpected(pod.error());
    auto filter = string_field(j, "filter", false);
    if (!filter) return std::unexpected(filter.error());
    auto token = string_field(j, "bearer_token", false);
    if (!token) return std::unexpected(token.error());
    r.ns = *ns;
    r.pod = *pod;
    r.filter = *filter;
    r.bearer_token = *token;
    if (auto it = j.find("node"); it != j.end() && !it->is_null()) {
        if (!it->is_boolean()) return bad_input("\"node\" must be true or false");
        r.node_wide = it->get<bool>();
    }
    if (r.pod.empty()) r.node_wide = true;
    if (r.node_wide && !r.pod.empty())
        return bad_input("\"node\": true traces the whole node: leave \"pod\" empty, or drop \"node\"");
    if (!r.node_wide && r.ns.empty()) return bad_input("missing \"namespace\" for pod " + log_escape(r.pod));
    // Kubernetes' own name rules: anything else names no pod, and would only
    // reach the runtime, the logs and the records.
    if (!r.ns.empty())
        if (auto why = check_dns1123_label(r.ns); !why.empty()) return bad_input("\"namespace\" " + why);
    if (!r.pod.empty())
        if (auto why = check_dns1123_subdomain(r.pod); !why.empty()) return bad_input("\"pod\" " + why);
    // libpcap reads a C string: a NUL would cut the expression short.
    if (size_t at = find_control_char(r.filter); at != std::string::npos)
        return bad_input("\"filter\" holds a control character (byte " + std::to_string(at) +
                         "); a pcap expression is printable text");

    if (auto it = j.find("args"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) return bad_input("\"args\" must be an array of strings");
        for (const auto& a : *it) {
            if (!a.is_string()) return bad_input("\"args\" must be an array of strings");
            r.args.push_back(a.get<std::string>());
        }
    }
    auto dur = number_field(j, "max_duration_s", limits.max_duration_s);
    if (!dur) return std::unexpected(dur.error());
    r.max_duration_s = *dur;
    auto events = count_field(j, "max_events", limits.max_events);
    if (!events) return std::unexpected(events.error());
    r.max_events = *events;

    for (const auto& a : r.args) {
        for (const auto& [flag, why] : refused_flags())
            if (flag_name(a) == flag) return bad_input("flag " + flag + " is not accepted by pwru-agent: " + why);
    }

    // pwru's own parser: the same flag names, values and messages as the CLI.
    std::vector<const char*> argv{"pwru"};
    for (const auto& a : r.args) argv.push_back(a.c_str());
    auto cli = parse_cli(static_cast<int>(argv.size()), argv.data());
    if (!cli) return bad_input("bad \"args\": " + cli.error().what);
    if (!cli->filter_words.empty())
        return bad_input("\"args\" holds a pcap expression ('" + cli->filter_words.front() +
                         "'): put it in \"filter\"");
    r.cli = std::move(*cli);
    r.cli.trace.pcap_expr = r.filter;
    if (r.cli.output_limit_lines && r.cli.output_limit_lines < r.max_events) r.max_events = r.cli.output_limit_lines;
    return r;
}

}  // namespace

Result<TraceRequest> parse_trace_request(const std::string& body, const RequestLimits& limits) {
    // Messages quote the client's keys, flags and words: escaped, so a
    // newline in a field name cannot make the one-line error two (found by
    // tests/fuzz: {"max_ev\nts": 0.5}).
    auto r = parse_unescaped(body, limits);
    if (!r) r.error().what = log_escape(r.error().what);
    return r;
}

}  // namespace pwru::agent
