#include "agent/agent_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "agent/cri_client.h"
#include "agent/input_checks.h"
#include "agent/peer_identity.h"
#include "tracer/kernel/log.h"

namespace pwru::agent {
namespace {

using nlohmann::json;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

std::string bearer_from_header(const std::string& h) {
    const std::string prefix = "Bearer ";
    if (h.size() > prefix.size() && h.compare(0, prefix.size(), prefix) == 0) return h.substr(prefix.size());
    return {};
}

bool any_backend(const Features& f) { return f.kprobe_multi.available || f.kprobe.available || f.tp_btf.available; }

}  // namespace

Result<std::pair<std::string, int>> parse_listen(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon + 1 == s.size())
        return bad_input("listen address '" + s + "' needs HOST:PORT, e.g. 0.0.0.0:4245");
    std::string host = s.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = 0;
    try {
        size_t used = 0;
        port = std::stoi(s.substr(colon + 1), &used);
        if (used != s.size() - colon - 1) throw std::invalid_argument("trailing");
    } catch (...) {
        return bad_input("listen address '" + s + "' has a bad port; use HOST:PORT with PORT 0-65535");
    }
    if (port < 0 || port > 65535) return bad_input("listen port " + std::to_string(port) + " is not 0-65535");
    if (host.empty()) host = "0.0.0.0";
    return std::make_pair(host, port);
}

// What a trace job takes from its request: the connection (and its TLS
// state) may be gone before the job ends.
struct TraceRequestContext {
    std::string body;
    ClientIdentity who;
    std::string bearer;
};

struct AgentServer::Handlers {
    // Before the body is read: unknown paths and methods, clients without any
    // right, declared bodies above the limit.
    static std::optional<HttpReply> gate(AgentServer& self, const RequestHead& head, SSL* ssl, bool with_trace);
    // Answers on a network thread (quick) or a job (the trace).
    static std::variant<HttpReply, HttpJob> handle(AgentServer& self, HttpRequest& req, bool with_trace);
    static void trace(AgentServer& self, const TraceRequestContext& ctx, ReplyChannel& channel);
};

Result<std::unique_ptr<AgentServer>> AgentServer::create(AgentConfig cfg) {
    if (cfg.tls_cert.empty() || cfg.tls_key.empty() || cfg.client_ca.empty())
        return bad_input("--tls-cert, --tls-key and --client-ca are all required (the API is mTLS only)");
    if (!cfg.authz && !cfg.kube)
        return bad_input(
            "give --authz-config FILE (rights per client certificate) or --kube-api URL (Kubernetes RBAC)");
    std::unique_ptr<AgentServer> self(new AgentServer());
    self->cfg_ = std::move(cfg);
    self->sessions_ = std::make_unique<SessionManager>(self->cfg_.max_sessions);
    const uint32_t rb = self->cfg_.ring_buffer_bytes;
    if (rb < 4096 || (rb & (rb - 1)) != 0)
        return bad_input("--ring-buffer-size " + std::to_string(rb) + " is not a power of two of at least 4096");
    if (self->cfg_.node_scope == "cri")
        self->node_netns_ = std::make_unique<NodeNetns>(self->cfg_.cri_socket, self->cfg_.node_refresh);
    else if (self->cfg_.node_scope != "kernel")
        return bad_input("--node-scope '" + self->cfg_.node_scope + "' is not one of: cri, kernel");

    const AgentConfig& c = self->cfg_;
    std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!ctx) return fail("cannot set up TLS: " + openssl_error());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), c.tls_cert.c_str()) != 1)
        return fail("cannot load --tls-cert " + c.tls_cert + ": " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), c.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1)
        return fail("cannot load --tls-key " + c.tls_key + " (or it does not match --tls-cert): " + openssl_error());
    if (SSL_CTX_load_verify_locations(ctx.get(), c.client_ca.c_str(), nullptr) != 1)
        return fail("cannot load --client-ca " + c.client_ca + ": " + openssl_error());
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca.c_str()))
        SSL_CTX_set_client_CA_list(ctx.get(), names);
    // No certificate from the client CA, no connection: refused in the handshake.
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    self->tls_ = std::move(ctx);

    self->features_ = probe_features();
    // Two network threads serve every connection; jobs (trace setup and
    // streams) have a thread each: every session plus a few being refused.
    self->http_ = std::make_unique<HttpServer>(2, self->cfg_.max_sessions + 4);
    return self;
}

AgentServer::~AgentServer() {
    if (http_) http_->stop();
}

HttpRoutes AgentServer::routes(bool with_trace) {
    HttpRoutes r;
    r.gate = [this, with_trace](const RequestHead& head, SSL* ssl) {
        auto refused = Handlers::gate(*this, head, ssl, with_trace);
        if (refused && head.path == "/v1/trace") metrics_.sessions_refused.fetch_add(1);
        return refused;
    };
    r.handle = [this, with_trace](HttpRequest& req) { return Handlers::handle(*this, req, with_trace); };
    return r;
}

std::optional<HttpReply> AgentServer::Handlers::gate(AgentServer& self, const RequestHead& head, SSL* ssl,
                                                     bool with_trace) {
    const bool read_only = head.method == "GET" || head.method == "HEAD";
    const bool is_trace = with_trace && head.path == "/v1/trace";
    const bool is_get = head.path == "/healthz" || head.path == "/readyz" || head.path == "/metrics";
    if (!is_trace && !is_get)
        return error_reply(404, "no endpoint " + head.path + " on this port; see docs/agent-api.md");
    if (is_get != read_only) {
        HttpReply r =
            error_reply(405, head.method + " " + head.path + " is not served; use " + (is_trace ? "POST" : "GET"));
        r.headers.emplace_back("Allow", is_trace ? "POST" : "GET, HEAD");
        return r;
    }
    if (!is_trace) return std::nullopt;

    // File mode: an identity without any grant is refused before its body is
    // read (RBAC mode needs the namespace, so it decides after the body).
    if (self.cfg_.authz && !self.cfg_.kube) {
        const ClientIdentity who = peer_identity(ssl);
        if (!self.cfg_.authz->may_trace_anything(who)) {
            spdlog::warn("refused 403: client {} holds no grant in the authz config", log_escape(who.display()));
            HttpReply r = error_reply(403, "client " + who.display() +
                                               " may not trace anything on this agent; ask the agent's operator to "
                                               "grant it in the authz config");
            r.close = true;
            return r;
        }
    }
    return std::nullopt;  // the body's size is the server's check (413)
}

std::variant<HttpReply, HttpJob> AgentServer::Handlers::handle(AgentServer& self, HttpRequest& req, bool with_trace) {
    const std::string& path = req.head.path;
    HttpReply r;
    if (path == "/healthz") {
        r.body = "{\"status\":\"ok\"}\n";
        return r;
    }
    if (path == "/readyz") {
        const Features& f = self.features_;
        json j = {{"kprobe_multi", f.kprobe_multi.available},
                  {"kprobe", f.kprobe.available},
                  {"tp_btf", f.tp_btf.available},
                  {"sessions", self.sessions_->active()},
                  {"max_sessions", self.sessions_->max()}};
        if (self.sessions_->draining()) {
            r.status = 503;
            j["status"] = "draining";
        } else if (!any_backend(f)) {
            r.status = 503;
            j["status"] = "no tracing backend: " + f.tp_btf.why;
        } else {
            j["status"] = "ready";
        }
        r.body = j.dump() + "\n";
        return r;
    }
    if (path == "/metrics") {
        r.content_type = "text/plain; version=0.0.4";
        r.body = self.metrics_.text() + self.http_metrics();
        return r;
    }
    if (!with_trace || path != "/v1/trace") return error_reply(404, "no endpoint " + path + " on this port");
    // Draining is trace()'s first check (503, counted).
    // What the job needs of the connection, taken now: the connection may
    // end (its TLS state with it) while the job still runs.
    TraceRequestContext ctx{std::move(req.body), peer_identity(req.ssl), bearer_from_header(req.head.authorization)};
    return HttpJob([&self, ctx = std::move(ctx)](ReplyChannel& channel) { Handlers::trace(self, ctx, channel); });
}

void AgentServer::Handlers::trace(AgentServer& self, const TraceRequestContext& ctx, ReplyChannel& channel) {
    const AgentConfig& cfg = self.cfg_;
    // Every refusal is counted, and answered as one JSON reply.
    auto send_error = [&](int status, const std::string& message) {
        self.metrics_.sessions_refused.fetch_add(1);
        channel.reply(error_reply(status, message));
    };
    const std::string& body = ctx.body;
    if (self.sessions_->draining()) return send_error(503, "the agent is shutting down; retry on its replacement");

    auto parsed = parse_trace_request(body, cfg.request_limits);
    if (!parsed) return send_error(400, parsed.error().what);
    TraceRequest& tr = *parsed;
    // For log lines: the names are checked Kubernetes names, escaped all the same.
    const std::string target = log_escape(tr.node_wide ? "node " + cfg.node_name : tr.ns + "/" + tr.pod);

    // Who may trace this: Kubernetes RBAC with the user's token, else the file.
    const ClientIdentity& who = ctx.who;
    if (cfg.kube) {
        RbacRequest rr{tr.bearer_token.empty() ? ctx.bearer : tr.bearer_token, tr.ns, tr.node_wide, cfg.node_name};
        auto d = KubeRbac(*cfg.kube).review(rr);
        if (!d) return send_error(503, d.error().message());
        if (!d->allowed) {
            spdlog::warn("refused 403: trace {} for {} (client {}): {}", target, log_escape(d->user),
                         log_escape(who.display()), log_escape(d->reason));
            return send_error(403, d->reason);
        }
        spdlog::info("trace {} for {} (client {})", target, log_escape(d->user), log_escape(who.display()));
    } else {
        bool ok = tr.node_wide ? cfg.authz->may_trace_node(who) : cfg.authz->may_trace_namespace(who, tr.ns);
        if (!ok) {
            spdlog::warn("refused 403: trace {} for client {}", target, log_escape(who.display()));
            return send_error(403, "client " + who.display() + " may not trace " +
                                       (tr.node_wide ? "the whole node" : "pods in namespace " + tr.ns) +
                                       "; ask the agent's operator to grant it in the authz config");
        }
        spdlog::info("trace {} for client {}", target, log_escape(who.display()));
    }

    auto slot = self.sessions_->try_acquire();
    if (!slot) {
        if (self.sessions_->draining()) return send_error(503, "the agent is shutting down; retry on its replacement");
        return send_error(429, "this agent already runs " + std::to_string(self.sessions_->max()) +
                                   " trace sessions (--max-sessions); retry when one ends");
    }

    StreamTarget st;
    st.node = cfg.node_name;
    if (!tr.node_wide) {
        auto cri = CriClient::connect(cfg.cri_socket);
        if (!cri) return send_error(503, "the container runtime cannot be asked: " + cri.error().message());
        auto pod = cri->find_pod(tr.ns, tr.pod);
        if (!pod) {
            if (pod.error().kind == ErrorKind::NotFound) return send_error(404, pod.error().message());
            return send_error(503, pod.error().message());
        }
        st.ns = tr.ns;
        st.pod = tr.pod;
        st.netns = pod->netns_inode;
        st.ips = pod->ips;
        st.host_network = pod->host_network;
        if (pod->host_network) {
            // Its netns and IPs are the node's: only its ports set its packets apart.
            if (pod->ports.empty())
                return send_error(
                    422, "pod " + target +
                             " uses the host network and declares no ports, so nothing tells "
                             "its packets from the node's; trace the node (\"node\": true) with a port filter, "
                             "e.g. \"filter\": \"port 8080\"");
            if (pod->ports.size() > PWRU_SCOPE_PORTS)
                return send_error(422, "pod " + target + " uses the host network with " +
                                           std::to_string(pod->ports.size()) + " ports, more than the " +
                                           std::to_string(PWRU_SCOPE_PORTS) +
                                           " a pod scope holds; trace the node (\"node\": true) with a port filter");
            st.netns = 0;
            st.ports = pod->ports;
            st.warning = "pod " + target +
                         " uses the host network: traced as this node's packets with source or "
                         "destination port " +
                         port_list(pod->ports) +
                         " (any process of the node on these ports "
                         "is included)";
            spdlog::warn("trace {}: {}", target, st.warning);
        }
    }

    StreamLimits limits{tr.max_duration_s, tr.max_events, cfg.max_event_rate, cfg.ring_buffer_bytes};
    // The client hanging up stops a slow filter compile at once.
    auto stream = TraceStream::start(tr.cli, st, limits, self.metrics_, self.node_netns_.get(),
                                     [&channel] { return channel.gone(); });
    if (!stream) {
        const Error& e = stream.error();
        spdlog::warn("trace {}: {}", target, log_escape(e.message()));
        // The verifier's last lines (a rejected program), for the operator.
        if (!e.context.empty()) spdlog::warn("trace {}: {}", target, log_escape(e.context));
        if (e.users_fault()) return send_error(400, e.message() + "; fix \"filter\" or \"args\" and retry");
        return send_error(500, "cannot start the trace: " + e.message());
    }
    std::unique_ptr<TraceStream>& s = *stream;
    self.metrics_.sessions_total.fetch_add(1);
    self.metrics_.sessions_active.fetch_add(1);
    std::string out = s->start_record() + "\n";
    if (channel.begin_stream("application/x-ndjson", {{"Cache-Control", "no-store"}}) &&
        channel.write(std::move(out))) {
        // step() waits up to ~100 ms for events and sends a heartbeat at
        // least twice a second, so a client that left is seen within that.
        while (!s->done()) {
            if (channel.gone()) break;
            out.clear();
            for (const auto& line : s->step(self.sessions_->draining())) out += line + "\n";
            if (!out.empty() && !channel.write(std::move(out))) break;
        }
    }
    if (!s->done()) s->abandon();
    spdlog::info("trace {} ended: {}", target, s->ended());
    s.reset();  // the Session and every BPF object it held
    self.metrics_.sessions_active.fetch_sub(1);
    slot.reset();
}

Result<int> AgentServer::bind() {
    auto l = parse_listen(cfg_.listen);
    if (!l) return std::unexpected(l.error());
    auto port = http_->listen(l->first, l->second, tls_, routes(true), cfg_.http_limits, "--listen");
    if (!port) return port;
    if (!cfg_.health_listen.empty()) {
        auto h = parse_listen(cfg_.health_listen);
        if (!h) return std::unexpected(h.error());
        // Probes and scrapes are small GETs: no body is ever admitted there.
        HttpLimits health = cfg_.http_limits;
        health.body_bytes = 0;
        auto hp = http_->listen(h->first, h->second, nullptr, routes(false), health, "--health-listen");
        if (!hp) return std::unexpected(hp.error());
    }
    return port;
}

void AgentServer::run() { http_->run(); }

bool AgentServer::wait_running(std::chrono::milliseconds timeout) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!http_->running()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void AgentServer::shutdown(std::chrono::milliseconds drain) {
    const auto deadline = std::chrono::steady_clock::now() + drain;
    sessions_->begin_drain();
    // Idle keep-alive, handshaking and half-sent requests end now; running
    // traces end with a "shutdown" summary at their next step.
    http_->begin_drain();
    if (!sessions_->wait_idle(drain))
        spdlog::warn("{} trace sessions still running after {} ms; stopping anyway", sessions_->active(),
                     drain.count());
    // Their last records (the summary) written out before the close.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    http_->wait_jobs_done(std::max(left, std::chrono::milliseconds(0)));
    http_->stop();
}

std::string AgentServer::http_metrics() const {
    const HttpServerStats st = http_->stats();
    std::string out;
    auto add = [&](const char* name, const char* type, const char* help, uint64_t v) {
        out += std::string("# HELP pwru_agent_") + name + " " + help + "\n# TYPE pwru_agent_" + name + " " + type +
               "\npwru_agent_" + name + " " + std::to_string(v) + "\n";
    };
    add("connections_open", "gauge", "Connections open on the agent's listeners.", st.connections_open);
    add("connections_refused_total", "counter", "Connections closed at accept: over a connection cap.",
        st.connections_refused);
    add("connections_evicted_total", "counter",
        "Connections closed before their first request to make room at the total cap.", st.connections_evicted);
    add("connection_deadlines_total", "counter", "TLS handshakes and requests cut by their deadline.",
        st.deadlines_passed);
    return out;
}

}  // namespace pwru::agent
