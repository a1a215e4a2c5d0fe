#include "kubectl-plugin/plugin_run.h"

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "kubectl-plugin/agent_stream.h"
#include "kubectl-plugin/kube_api.h"
#include "kubectl-plugin/ready_file.h"
#include "kubectl-plugin/timeline_merge.h"
#include "tracer/output_format.h"

namespace pwru::plugin {
namespace {

int64_t wall_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Result<std::string> read_pem(const std::string& path, const std::string& flag) {
    if (path.empty()) return bad_input(flag + " is required to reach the agents (or --tls-dir with tls.crt, tls.key, ca.crt)");
    std::ifstream in(path);
    if (!in) return bad_input("cannot read " + flag + " '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Result<TlsConfig> agent_tls(const AgentAccess& a) {
    TlsConfig t;
    auto cert = read_pem(a.tls_cert, "--tls-cert");
    if (!cert) return std::unexpected(cert.error());
    auto key = read_pem(a.tls_key, "--tls-key");
    if (!key) return std::unexpected(key.error());
    auto ca = read_pem(a.tls_ca, "--tls-ca");
    if (!ca) return std::unexpected(ca.error());
    t.cert_pem = *cert;
    t.key_pem = *key;
    t.ca_pem = *ca;
    t.server_name = a.server_name;
    t.cert_source = "the client certificate (--tls-cert " + a.tls_cert + ")";
    t.key_source = "the client key (--tls-key " + a.tls_key + ")";
    t.ca_source = "the agents' CA (--tls-ca " + a.tls_ca + ")";
    return t;
}

struct NodeTally {
    uint64_t events = 0, late = 0, ringbuf_full = 0, rate_limited = 0;
    std::map<std::string, uint64_t> drops;  // "func: reason" -> count
    std::string state = "connecting", last_message;
};

}  // namespace

int run_plugin(const PluginOptions& o, const KubeEnvironment& env, std::ostream& out, std::ostream& err,
               const std::atomic<bool>& interrupted) {
    auto access = load_api_access(o.kube, env);
    if (!access) {
        err << "kubectl-pwru: " << access.error().message() << "\n";
        return access.error().bad_input ? 2 : 1;
    }
    if (auto r = resolve_credentials(*access); !r) {
        err << "kubectl-pwru: " << r.error().message() << "\n";
        return 1;
    }
    auto tls = agent_tls(o.agents);
    if (!tls) {
        err << "kubectl-pwru: " << tls.error().message() << "\n";
        return 2;
    }
    KubeApi api(*access);
    const std::string ns = o.kube.ns.empty() ? access->ns : o.kube.ns;

    ResolvedTargets resolved = resolve_targets(api, ns, o.targets, o.selector);
    for (const auto& p : resolved.problems) err << "kubectl-pwru: " << p << "\n";
    // Targets that could not be traced (not found, no agent, refused, failed):
    // the others still are, and the exit code says that not everything was.
    size_t untraced = resolved.problems.size();

    MessageQueue queue;
    TimelineMerge merge;
    std::vector<std::unique_ptr<AgentStream>> streams;
    std::map<std::string, NodeTally> tally;
    const int64_t t0 = wall_now_ns();
    for (const auto& t : resolved.targets) {
        auto agents = api.list_pods(o.agents.ns, o.agents.selector, "spec.nodeName=" + t.node);
        if (!agents || agents->empty()) {
            err << "kubectl-pwru: " << t.label() << ": no pwru agent on node " << t.node << " ("
                << (agents ? "no pod matches " + o.agents.selector + " in namespace " + o.agents.ns
                           : agents.error().message())
                << "); is the chart installed and the agent running there?\n";
            ++untraced;
            continue;
        }
        PodInfo agent = agents->front();
        AgentConnector connect;
        TlsConfig agent_cfg = *tls;
        if (o.agents.direct) {
            if (agent.ips.empty()) {
                err << "kubectl-pwru: " << t.label() << ": the agent pod " << agent.name << " has no address yet\n";
                ++untraced;
                continue;
            }
            std::string ip = agent.ips.front();
            uint16_t port = agent_port_of(o.agents, agent);
            connect = [ip, port, agent_cfg]() -> Result<AgentConnection> {
                auto c = TlsConnection::connect(ip, port, agent_cfg, 10000);
                if (!c) return std::unexpected(c.error());
                return AgentConnection{nullptr, std::move(*c)};
            };
        } else {
            std::string agent_ns = o.agents.ns, agent_pod = agent.name;
            uint16_t port = agent_port_of(o.agents, agent);
            connect = [&api, agent_ns, agent_pod, port, agent_cfg]() -> Result<AgentConnection> {
                auto pf = PortForward::open(api, agent_ns, agent_pod, port, 10000);
                if (!pf) return std::unexpected(pf.error());
                auto c = TlsConnection::over_fd((*pf)->take_fd(), agent_cfg, 10000);
                if (!c) return std::unexpected(c.error());
                return AgentConnection{std::move(*pf), std::move(*c)};
            };
        }
        size_t id = merge.add_stream(t.node, wall_now_ns());
        streams.push_back(std::make_unique<AgentStream>(id, t, connect, trace_request_body(o, t), queue));
        tally[t.node];
    }
    if (streams.empty()) {
        err << "kubectl-pwru: nothing to trace: none of the targets could be traced (see above)\n";
        // Not one target named a scheduled pod (or node): the input was wrong.
        // Targets that resolved but whose agents could not be reached: 1.
        return resolved.targets.empty() && !resolved.problems.empty() ? 2 : 1;
    }
    for (auto& s : streams) s->start();
    ReadyFile ready(o.ready_file, streams.size());
    bool ready_file_failed = false;

    OutputFormatter fmt(o.output);
    if (!o.output.json) out << fmt.header() << "\n";
    uint64_t printed = 0;
    size_t failed_streams = 0;
    size_t open_streams = streams.size();
    bool stopping = false;
    auto stop_all = [&] {
        if (stopping) return;
        stopping = true;
        for (auto& s : streams) s->stop();
    };
    auto emit = [&](const std::vector<MergedItem>& items) {
        for (const auto& it : items) {
            const auto& s = *streams.at(it.stream);
            NodeTally& nt = tally[s.target().node];
            if (it.kind == MergedItem::Kind::Status) {
                nt.state = stream_state_name(it.state);
                if (!it.message.empty()) nt.last_message = it.message;
                if (it.state == StreamState::Error) {
                    // For the user, on stderr like the other problems; stdout keeps the in-band status.
                    err << "kubectl-pwru: " << s.target().label() << " on node " << s.target().node << ": "
                        << it.message << "\n";
                    ++failed_streams;
                }
                if (o.output.json) {
                    nlohmann::json j = {{"node_status", stream_state_name(it.state)}, {"node", s.target().node},
                                        {"target", s.target().label()}};
                    if (!it.message.empty()) j["message"] = it.message;
                    out << j.dump() << "\n";
                } else {
                    out << "# " << s.target().node << " (" << s.target().label() << "): " << stream_state_name(it.state)
                        << (it.message.empty() ? "" : ": " + it.message) << "\n";
                }
                continue;
            }
            if (o.limit_lines && printed >= o.limit_lines) continue;
            ++nt.events;
            if (it.late) ++nt.late;
            std::string line = fmt.format(it.event);
            if (it.late) {
                if (o.output.json && !line.empty() && line.back() == '}') line.insert(line.size() - 1, ",\"late\":true");
                else if (!o.output.json) line += "  (late)";
            }
            out << line << "\n";
            if (++printed == o.limit_lines) stop_all();
        }
        out.flush();
    };

    auto deadline_after_stop = std::chrono::steady_clock::time_point::max();
    // The agents end their traces after --max-duration; should one not (a cut
    // tunnel that never errors), the plugin still ends: attach time plus a margin.
    const auto hard_deadline = o.max_duration_s > 0
                                   ? std::chrono::steady_clock::now() +
                                         std::chrono::milliseconds(int64_t(o.max_duration_s * 1000) + 60'000)
                                   : std::chrono::steady_clock::time_point::max();
    while (open_streams > 0) {
        if (interrupted && !stopping) {
            stop_all();
        }
        if (!stopping && std::chrono::steady_clock::now() > hard_deadline) {
            err << "kubectl-pwru: not every agent ended its trace within --max-duration plus 60 s; stopping\n";
            stop_all();
        }
        if (stopping && deadline_after_stop == std::chrono::steady_clock::time_point::max())
            deadline_after_stop = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        if (std::chrono::steady_clock::now() > deadline_after_stop) break;
        StreamMessage m;
        // Drain at least every 100 ms: a steady flow of events (no 100 ms gap)
        // would otherwise keep this loop reading and print nothing until it stops.
        const auto batch_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
        while (std::chrono::steady_clock::now() < batch_end && queue.pop(m, 100)) {
            const int64_t now = wall_now_ns();
            NodeTally& nt = tally[streams.at(m.stream)->target().node];
            switch (m.kind) {
                case StreamMessage::Kind::Event:
                    merge.on_event(m.stream, std::move(m.event), now);
                    break;
                case StreamMessage::Kind::Heartbeat:
                    merge.on_heartbeat(m.stream, m.watermark_ns, now);
                    break;
                case StreamMessage::Kind::Start:
                    ready.on_attached(m.stream, streams.at(m.stream)->target().node);
                    merge.on_status(m.stream, StreamState::Connected,
                                    fmt::format("{} functions attached with {} in {:.1f} s", m.record.value("attached", 0),
                                                m.record.value("backend", "?"), m.record.value("attach_seconds", 0.0)) +
                                        (m.record.contains("warning") ? "; " + m.record.value("warning", "") : ""),
                                    now);
                    break;
                case StreamMessage::Kind::Loss:
                    nt.ringbuf_full = m.record.value("ringbuf_full", nt.ringbuf_full);
                    nt.rate_limited = m.record.value("rate_limited", nt.rate_limited);
                    break;
                case StreamMessage::Kind::Summary:
                    nt.ringbuf_full = std::max<uint64_t>(nt.ringbuf_full, m.record.value("ringbuf_full", uint64_t{0}));
                    nt.rate_limited = std::max<uint64_t>(nt.rate_limited, m.record.value("rate_limited", uint64_t{0}));
                    if (m.record.contains("drops"))
                        for (const auto& d : m.record["drops"])
                            nt.drops[d.value("func", "?") + ": " + d.value("reason", "?")] += d.value("count", uint64_t{0});
                    merge.on_status(m.stream, StreamState::Ended, "trace ended (" + m.record.value("ended", "?") + ")", now);
                    break;
                case StreamMessage::Kind::Error:
                    ready.on_failed(m.stream);
                    merge.on_status(m.stream, StreamState::Error, m.message, now);
                    break;
                case StreamMessage::Kind::Closed:
                    ready.on_failed(m.stream);
                    --open_streams;
                    if (merge.stream_state(m.stream) != StreamState::Ended &&
                        merge.stream_state(m.stream) != StreamState::Error)
                        merge.on_status(m.stream, StreamState::Ended, m.message, now);
                    break;
            }
            if (open_streams == 0) break;
        }
        emit(merge.drain(wall_now_ns()));
        // After the batch's status lines are out: a reader of FILE finds the
        // nodes' "connected" lines already printed.
        if (ready.due()) {
            if (auto r = ready.write(); !r) {
                err << "kubectl-pwru: " << r.error().message() << "\n";
                ready_file_failed = true;
                stop_all();
            }
        }
    }
    stop_all();
    queue.close();
    emit(merge.finish());
    streams.clear();  // joins the threads

    if (o.summary) {
        err << fmt::format("kubectl-pwru: {:.1f} s\n", double(wall_now_ns() - t0) / 1e9);
        for (const auto& [node, nt] : tally) {
            err << fmt::format("  {}: {} events ({} late), lost: {} ring buffer full, {} over the rate limit; {}{}\n",
                               node, nt.events, nt.late, nt.ringbuf_full, nt.rate_limited, nt.state,
                               nt.last_message.empty() ? "" : " (" + nt.last_message + ")");
            for (const auto& [what, n] : nt.drops) err << fmt::format("    dropped x{}: {}\n", n, what);
        }
    }
    return untraced + failed_streams > 0 || ready_file_failed ? 1 : 0;
}

}  // namespace pwru::plugin
