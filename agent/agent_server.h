// pwru-agent's HTTPS API (docs/agent-api.md): mTLS on every connection,
// POST /v1/trace streaming NDJSON, /healthz, /readyz, /metrics; optionally
// the last three also on a plain-HTTP port for the kubelet's probes and
// Prometheus (they carry no trace data).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/authz.h"
#include "agent/http_server.h"
#include "agent/kube_rbac.h"
#include "agent/metrics.h"
#include "agent/node_netns.h"
#include "agent/session_manager.h"
#include "agent/trace_request.h"
#include "agent/trace_stream.h"
#include "tracer/kernel/features.h"
#include "tracer/util/result.h"

namespace pwru::agent {

struct AgentConfig {
    std::string listen = "0.0.0.0:4245";  // HOST:PORT; port 0 picks one
    std::string health_listen;            // plain HTTP for /healthz /readyz /metrics; "" = off
    std::string tls_cert, tls_key, client_ca;
    std::optional<Authz> authz;         // file mode
    std::optional<KubeApiConfig> kube;  // RBAC mode (takes precedence)
    std::string cri_socket;             // "" = auto-detect
    std::string node_name;
    size_t max_sessions = 4;
    RequestLimits request_limits;
    double max_event_rate = 10'000;
    uint32_t ring_buffer_bytes = 8u << 20;  // per trace; a power of two, >= 4096
    // "cri": a trace covers this node's netns only (the agent's own and its
    // pods', from CRI, refreshed every node_refresh); "kernel": every netns
    // of the kernel. See docs/agent-api.md "Node scope".
    std::string node_scope = "cri";
    std::chrono::milliseconds node_refresh{2000};
    // Each listener's connection bounds (--max-request-bytes,
    // --max-connections, --max-connections-per-address; the deadlines are
    // fixed: docs/agent-api.md "Limits").
    HttpLimits http_limits;
};

class AgentServer {
  public:
    // Loads the certificates and probes the tracer's features; an Error says
    // which file or flag is wrong.
    static Result<std::unique_ptr<AgentServer>> create(AgentConfig cfg);
    ~AgentServer();

    // Binds the listening socket(s); returns the HTTPS port.
    Result<int> bind();
    // Serves until shutdown(); call from its own thread.
    void run();
    // Whether run()'s loops have started (bounded wait): stop() before that
    // would be lost, so callers wait before they announce or accept SIGTERM.
    bool wait_running(std::chrono::milliseconds timeout) const;
    // SIGTERM: refuse new traces, let running ones end with a "shutdown"
    // summary (detached), wait up to `drain` for them, then stop serving.
    void shutdown(std::chrono::milliseconds drain);

    Metrics& metrics() { return metrics_; }

  private:
    AgentServer() = default;
    HttpRoutes routes(bool with_trace);
    std::string http_metrics() const;  // the HTTP server's counters, Prometheus text
    struct Handlers;

    AgentConfig cfg_;
    Features features_;
    Metrics metrics_;
    std::unique_ptr<SessionManager> sessions_;
    std::unique_ptr<NodeNetns> node_netns_;  // null with --node-scope kernel
    std::shared_ptr<SSL_CTX> tls_;
    std::unique_ptr<HttpServer> http_;
};

// "HOST:PORT" -> (host, port). Bad input names the flag's value.
Result<std::pair<std::string, int>> parse_listen(const std::string& s);

}  // namespace pwru::agent
