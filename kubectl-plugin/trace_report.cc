#include "kubectl-plugin/trace_report.h"

#include <fstream>
#include <ostream>
#include <regex>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tracer/events/output_format.h"

namespace pwru::plugin {
namespace {

uint8_t tcp_flags_from(const std::string& text) {
    uint8_t flags = 0;
    std::stringstream ss(text);
    for (std::string name; std::getline(ss, name, '|');)
        for (int bit = 0; bit < 8; ++bit)
            if (tcp_flags_string(uint8_t(1u << bit)) == name) flags |= uint8_t(1u << bit);
    return flags;
}

TupleRecord tuple_from(const nlohmann::json& t) {
    TupleRecord r;
    r.saddr = t.value("saddr", "");
    r.daddr = t.value("daddr", "");
    r.sport = t.value("sport", uint16_t{0});
    r.dport = t.value("dport", uint16_t{0});
    r.l4_proto = t.value("proto", uint8_t{0});
    r.tcp_flags = tcp_flags_from(t.value("flags", ""));
    // The printed form has no l3 field: an IPv6 address has colons.
    r.l3 = r.saddr.empty() ? 0 : r.saddr.find(':') != std::string::npos ? 6 : 4;
    return r;
}

std::string read_all(std::istream& in) {
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

Result<EventRecord> event_from_output_json(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("func") || !j.contains("skb"))
        return bad_input("not an event of kubectl-pwru --output-json (no func/skb)");
    try {
        EventRecord e;
        e.skb = std::stoull(j.at("skb").get<std::string>(), nullptr, 16);
        e.cpu = j.value("cpu", 0u);
        e.process = j.value("process", "");
        e.ktime_ns = j.value("ktime_ns", uint64_t{0});
        e.wall_ns = j.value("wall_ns", int64_t{0});
        e.drop_reason = j.value("drop_reason", "");
        e.location = j.value("location", "");
        e.func = j.at("func").get<std::string>();
        // "kfree_skb(SKB_DROP_REASON_X)": the reason is its own field too.
        const std::string suffix = "(" + e.drop_reason + ")";
        if (!e.drop_reason.empty() && e.func.size() > suffix.size() &&
            e.func.compare(e.func.size() - suffix.size(), suffix.size(), suffix) == 0)
            e.func.resize(e.func.size() - suffix.size());
        e.caller = j.value("caller_func", "");
        e.netns = j.value("netns", 0u);
        e.mark = j.value("mark", 0u);
        const std::string iface = j.value("iface", "");
        if (auto colon = iface.rfind(':'); colon != std::string::npos) {
            e.ifname = iface.substr(0, colon);
            e.ifindex = uint32_t(std::stoul(iface.substr(colon + 1)));
        } else if (!iface.empty()) {
            e.ifindex = uint32_t(std::stoul(iface));
        }
        e.proto = j.value("proto", uint16_t{0});
        e.mtu = j.value("mtu", 0u);
        e.len = j.value("len", 0u);
        e.cb = j.value("cb", std::vector<uint32_t>{});
        e.netns_name = j.value("netns_name", "");
        if (j.contains("tuple")) {
            e.tuple = tuple_from(j["tuple"]);
            e.has_tuple = e.tuple.l3 != 0;
        }
        if (j.contains("tunnel_tuple")) {
            e.tunnel_tuple = tuple_from(j["tunnel_tuple"]);
            e.has_tunnel_tuple = e.tunnel_tuple.l3 != 0;
        }
        std::stringstream stack(j.value("stack", ""));
        for (std::string frame; std::getline(stack, frame);)
            if (!frame.empty()) e.stack.push_back(frame);
        e.skb_dump = j.value("skb_metadata", "");
        e.shinfo_dump = j.value("skb_shared_info", "");
        e.node = j.value("node", "");
        e.pod = j.value("pod", "");
        return e;
    } catch (const std::exception& ex) {
        return bad_input(std::string("an event with a field of the wrong type: ") + ex.what());
    }
}

Result<void> TraceReport::add_line(const std::string& line) {
    if (line.empty()) return {};
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) {
        ++bad_lines_;
        return bad_input("not a JSON object");
    }
    if (j.contains("node_status")) {
        NodeReport& n = nodes_[j.value("node", "?")];
        n.state = j.value("node_status", "");
        if (j.contains("target")) n.targets.insert(j.value("target", ""));
        if (n.state == "error") n.errors.push_back(j.value("message", ""));
        return {};
    }
    auto e = event_from_output_json(j);
    if (!e) {
        ++bad_lines_;
        return std::unexpected(e.error());
    }
    NodeReport& n = nodes_[e->node.empty() ? "?" : e->node];
    ++n.events;
    n.late += j.value("late", false);
    n.trajectories.add(*e);
    return {};
}

void TraceReport::add_plugin_log(const std::string& text) {
    // plugin_run.cc's exit summary, one line per node.
    static const std::regex line(
        R"(^  (\S+): (\d+) events \((\d+) late\), lost: (\d+) ring buffer full, (\d+) over the rate limit; (.*)$)");
    std::stringstream ss(text);
    for (std::string l; std::getline(ss, l);) {
        std::smatch m;
        if (!std::regex_match(l, m, line)) continue;
        NodeReport& n = nodes_[m[1]];
        n.losses_known = true;
        n.ringbuf_full = std::stoull(m[4]);
        n.rate_limited = std::stoull(m[5]);
        if (n.state.empty()) n.state = m[6];
    }
}

std::string TraceReport::markdown() const {
    std::string md = "### kubectl pwru: where the packets went\n\n";
    if (nodes_.empty()) return md + "No node was traced and no event recorded.\n";
    md +=
        "| node | traced | events | late | lost: ring buffer full | lost: over the rate limit | trace |\n"
        "|---|---|---|---|---|---|---|\n";
    for (const auto& [node, n] : nodes_) {
        std::string targets;
        for (const auto& t : n.targets) targets += (targets.empty() ? "" : ", ") + t;
        auto lost = [&](uint64_t v) { return n.losses_known ? std::to_string(v) : std::string("unknown"); };
        md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", node, targets.empty() ? "-" : targets, n.events,
                          n.late, lost(n.ringbuf_full), lost(n.rate_limited), n.state.empty() ? "-" : n.state);
    }
    // Drops: per node, per place and reason, with one packet's path as an example.
    std::string drops;
    for (const auto& [node, n] : nodes_) {
        std::map<std::string, std::pair<uint64_t, const Trajectory*>> by_place;
        const auto all = n.trajectories.trajectories();
        for (const auto& t : all) {
            if (!t.dropped) continue;
            auto& [count, example] = by_place[t.drop_line];
            if (count++ == 0) example = &t;
        }
        for (const auto& [place, v] : by_place) {
            drops += fmt::format("- **{}**: {} packet{} {}\n", node, v.first, v.first == 1 ? "" : "s", place);
            std::string path;
            for (const auto& f : v.second->path) path += (path.empty() ? "" : " > ") + f;
            drops +=
                fmt::format("  - e.g. {}: {}\n", v.second->tuple.empty() ? "(no IP header)" : v.second->tuple, path);
        }
    }
    md += "\n**Drops**" + std::string(drops.empty() ? ": none seen.\n" : " (node: packets, where, why):\n" + drops);
    std::string errors;
    for (const auto& [node, n] : nodes_)
        for (const auto& e : n.errors) errors += "- " + node + ": " + e + "\n";
    if (!errors.empty()) md += "\n**Node errors**:\n" + errors;
    bool unknown = false;
    for (const auto& [node, n] : nodes_) unknown = unknown || !n.losses_known;
    if (unknown)
        md += "\nLosses are unknown where kubectl-pwru ended without its exit summary (killed, or still running).\n";
    if (bad_lines_)
        md += fmt::format("\n{} line(s) of the timeline were not kubectl-pwru records and were skipped.\n", bad_lines_);
    return md;
}

int run_report(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    CLI::App app{"kubectl pwru --report: render and summarize a recorded --output-json timeline", "kubectl-pwru"};
    std::string ndjson, log, text;
    app.add_option("--report", ndjson, "the NDJSON file kubectl pwru --output-json wrote")->required();
    app.add_option("--report-log", log, "kubectl-pwru's stderr of that run (its exit summary has the losses)");
    app.add_option("--report-text", text, "write the timeline as pwru's text table to this file");
    try {
        std::vector<std::string> rev(args.rbegin(), args.rend());
        app.parse(rev);
    } catch (const CLI::ParseError& e) {
        err << "kubectl-pwru: " << e.what()
            << "; usage: kubectl pwru --report FILE [--report-log FILE] [--report-text FILE]\n";
        return 2;
    }
    std::ifstream in(ndjson);
    if (!in) {
        err << "kubectl-pwru: cannot read --report '" << ndjson << "'\n";
        return 2;
    }
    std::ofstream text_out;
    if (!text.empty()) {
        text_out.open(text);
        if (!text_out) {
            err << "kubectl-pwru: cannot write --report-text '" << text << "'\n";
            return 2;
        }
    }
    TraceReport report;
    OutputOptions opts;
    opts.node_columns = true;
    opts.timestamp = TimestampMode::Absolute;  // the events' own wall time: the only clock shared by nodes
    OutputFormatter fmt(opts);
    if (text_out) text_out << fmt.header() << "\n";
    size_t lineno = 0;
    for (std::string line; std::getline(in, line);) {
        ++lineno;
        if (auto r = report.add_line(line); !r) {
            // Often the last line of a trace that was killed mid-write.
            err << "kubectl-pwru: " << ndjson << ":" << lineno << ": skipped: " << r.error().message() << "\n";
            continue;
        }
        if (!text_out || line.empty()) continue;
        auto j = nlohmann::json::parse(line);
        if (j.contains("node_status")) {
            text_out << "# " << j.value("node", "?") << " (" << j.value("target", "?")
                     << "): " << j.value("node_status", "")
                     << (j.contains("message") ? ": " + j.value("message", "") : "") << "\n";
        } else {
            text_out << fmt.format(*event_from_output_json(j)) << (j.value("late", false) ? "  (late)" : "") << "\n";
        }
    }
    if (!log.empty()) {
        std::ifstream lin(log);
        if (lin) report.add_plugin_log(read_all(lin));
    }
    out << report.markdown();
    return 0;
}

}  // namespace pwru::plugin
