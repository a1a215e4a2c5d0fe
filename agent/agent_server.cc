#include "agent/agent_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/cri_client.h"
#include "agent/http_gate.h"
#include "agent/input_checks.h"
#include "agent/peer_identity.h"
#include "tracer/log.h"

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

// The client closed its end (FIN, RST): poll sees it without reading.
bool client_gone(const httplib::Request& req) {
    if (!req.ssl) return false;
    int fd = SSL_get_fd(req.ssl);
    if (fd < 0) return true;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    char c;
    return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

std::string bearer_from_header(const httplib::Request& req) {
    std::string h = req.get_header_value("Authorization");
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

struct AgentServer::Handlers {
    // Before the body is read: unknown paths and methods, clients without any
    // right, declared bodies above the limit. false: refused (reply set).
    static bool gate(AgentServer& self, const httplib::Request& req, httplib::Response& res, bool with_trace);
    static void trace(AgentServer& self, const httplib::Request& req, const std::string& body,
                      httplib::Response& res);
};

Result<std::unique_ptr<AgentServer>> AgentServer::create(AgentConfig cfg) {
    if (cfg.tls_cert.empty() || cfg.tls_key.empty() || cfg.client_ca.empty())
        return bad_input("--tls-cert, --tls-key and --client-ca are all required (the API is mTLS only)");
    if (!cfg.authz && !cfg.kube)
        return bad_input("give --authz-config FILE (rights per client certificate) or --kube-api URL (Kubernetes RBAC)");
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

    std::string tls_error;
    const AgentConfig& c = self->cfg_;
    self->https_ = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
        SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
        if (SSL_CTX_use_certificate_chain_file(&ctx, c.tls_cert.c_str()) != 1) {
            tls_error = "cannot load --tls-cert " + c.tls_cert + ": " + openssl_error();
            return false;
        }
        if (SSL_CTX_use_PrivateKey_file(&ctx, c.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(&ctx) != 1) {
            tls_error = "cannot load --tls-key " + c.tls_key + " (or it does not match --tls-cert): " + openssl_error();
            return false;
        }
        if (SSL_CTX_load_verify_locations(&ctx, c.client_ca.c_str(), nullptr) != 1) {
            tls_error = "cannot load --client-ca " + c.client_ca + ": " + openssl_error();
            return false;
        }
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca.c_str()))
            SSL_CTX_set_client_CA_list(&ctx, names);
        // No certificate from the client CA, no connection: refused in the handshake.
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        return true;
    });
    if (!self->https_->is_valid()) return fail(tls_error.empty() ? "cannot set up TLS: " + openssl_error() : tls_error);

    self->features_ = probe_features();
    // Streams hold a worker each: room for every session plus the short requests.
    const size_t workers = self->cfg_.max_sessions + 4;
    self->https_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    harden(*self->https_, true);
    self->install_routes(*self->https_, true);
    if (!self->cfg_.health_listen.empty()) {
        self->health_ = std::make_unique<httplib::Server>();
        harden(*self->health_, false);
        self->health_->new_task_queue = [] { return new httplib::ThreadPool(2); };
        self->install_routes(*self->health_, false);
    }
    return self;
}

AgentServer::~AgentServer() = default;

void AgentServer::install_routes(httplib::Server& s, bool with_trace) {
    s.set_pre_routing_handler([this, with_trace](const httplib::Request& req, httplib::Response& res) {
        bool pass = Handlers::gate(*this, req, res, with_trace);
        if (!pass && req.path == "/v1/trace") metrics_.sessions_refused.fetch_add(1);
        return pass ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
    });
    s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("{\"status\":\"ok\"}\n", "application/json");
    });
    s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
        json j = {{"kprobe_multi", features_.kprobe_multi.available},
                  {"kprobe", features_.kprobe.available},
                  {"tp_btf", features_.tp_btf.available},
                  {"sessions", sessions_->active()},
                  {"max_sessions", sessions_->max()}};
        if (sessions_->draining()) {
            res.status = 503;
            j["status"] = "draining";
        } else if (!any_backend(features_)) {
            res.status = 503;
            j["status"] = "no tracing backend: " + features_.tp_btf.why;
        } else {
            j["status"] = "ready";
        }
        res.set_content(j.dump() + "\n", "application/json");
    });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics_.text(), "text/plain; version=0.0.4");
    });
    if (!with_trace) return;
    // A content-reader route: the body is read here, bounded, after gate().
    s.Post("/v1/trace", [this](const httplib::Request& req, httplib::Response& res,
                               const httplib::ContentReader& reader) {
        std::string body;
        if (read_bounded_body(res, reader, kMaxTraceBodyBytes, body)) Handlers::trace(*this, req, body, res);
        if (res.status != 200) metrics_.sessions_refused.fetch_add(1);
    });
}

bool AgentServer::Handlers::gate(AgentServer& self, const httplib::Request& req, httplib::Response& res,
                                 bool with_trace) {
    const bool read_only = req.method == "GET" || req.method == "HEAD";
    const bool is_trace = with_trace && req.path == "/v1/trace";
    const bool is_get = req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics";
    if (!is_trace && !is_get) {
        if (!read_only) close_after_reply(res);
        send_error(res, 404, "no endpoint " + req.path + " on this port; see docs/agent-api.md");
        return false;
    }
    if (is_get != read_only) {
        if (!read_only) close_after_reply(res);
        res.set_header("Allow", is_trace ? "POST" : "GET, HEAD");
        send_error(res, 405, req.method + " " + req.path + " is not served; use " + (is_trace ? "POST" : "GET"));
        return false;
    }
    if (!is_trace) return true;

    // File mode: an identity without any grant is refused before its body is
    // read (RBAC mode needs the namespace, so it decides after the body).
    if (self.cfg_.authz && !self.cfg_.kube) {
        const ClientIdentity who = peer_identity(req.ssl);
        if (!self.cfg_.authz->may_trace_anything(who)) {
            spdlog::warn("refused 403: client {} holds no grant in the authz config", log_escape(who.display()));
            close_after_reply(res);
            send_error(res, 403,
                       "client " + who.display() +
                           " may not trace anything on this agent; ask the agent's operator to grant it in the "
                           "authz config");
            return false;
        }
    }
    const std::string length = req.get_header_value("Content-Length");
    if (!length.empty()) {
        errno = 0;
        char* end = nullptr;
        unsigned long long n = std::strtoull(length.c_str(), &end, 10);
        if (errno == ERANGE || n > kMaxTraceBodyBytes) {
            close_after_reply(res);
            send_error(res, 413,
                       "request body of " + length + " bytes is above the agent's limit of " +
                           std::to_string(kMaxTraceBodyBytes) + " bytes; a trace request is a small JSON object");
            return false;
        }
    }
    return true;
}

void AgentServer::Handlers::trace(AgentServer& self, const httplib::Request& req, const std::string& body,
                                  httplib::Response& res) {
    const AgentConfig& cfg = self.cfg_;
    if (self.sessions_->draining()) return send_error(res, 503, "the agent is shutting down; retry on its replacement");

    auto parsed = parse_trace_request(body, cfg.request_limits);
    if (!parsed) return send_error(res, 400, parsed.error().what);
    TraceRequest& tr = *parsed;
    // For log lines: the names are checked Kubernetes names, escaped all the same.
    const std::string target = log_escape(tr.node_wide ? "node " + cfg.node_name : tr.ns + "/" + tr.pod);

    // Who may trace this: Kubernetes RBAC with the user's token, else the file.
    const ClientIdentity who = peer_identity(req.ssl);
    if (cfg.kube) {
        RbacRequest rr{tr.bearer_token.empty() ? bearer_from_header(req) : tr.bearer_token, tr.ns, tr.node_wide,
                       cfg.node_name};
        auto d = KubeRbac(*cfg.kube).review(rr);
        if (!d) return send_error(res, 503, d.error().message());
        if (!d->allowed) {
            spdlog::warn("refused 403: trace {} for {} (client {}): {}", target, log_escape(d->user),
                         log_escape(who.display()), log_escape(d->reason));
            return send_error(res, 403, d->reason);
        }
        spdlog::info("trace {} for {} (client {})", target, log_escape(d->user), log_escape(who.display()));
    } else {
        bool ok = tr.node_wide ? cfg.authz->may_trace_node(who) : cfg.authz->may_trace_namespace(who, tr.ns);
        if (!ok) {
            spdlog::warn("refused 403: trace {} for client {}", target, log_escape(who.display()));
            return send_error(res, 403,
                              "client " + who.display() + " may not trace " +
                                  (tr.node_wide ? "the whole node" : "pods in namespace " + tr.ns) +
                                  "; ask the agent's operator to grant it in the authz config");
        }
        spdlog::info("trace {} for client {}", target, log_escape(who.display()));
    }

    auto slot = self.sessions_->try_acquire();
    if (!slot) {
        if (self.sessions_->draining()) return send_error(res, 503, "the agent is shutting down; retry on its replacement");
        return send_error(res, 429,
                          "this agent already runs " + std::to_string(self.sessions_->max()) +
                              " trace sessions (--max-sessions); retry when one ends");
    }

    StreamTarget st;
    st.node = cfg.node_name;
    if (!tr.node_wide) {
        auto cri = CriClient::connect(cfg.cri_socket);
        if (!cri) return send_error(res, 503, "the container runtime cannot be asked: " + cri.error().message());
        auto pod = cri->find_pod(tr.ns, tr.pod);
        if (!pod) {
            if (pod.error().kind == ErrorKind::NotFound) return send_error(res, 404, pod.error().message());
            return send_error(res, 503, pod.error().message());
        }
        st.ns = tr.ns;
        st.pod = tr.pod;
        st.netns = pod->netns_inode;
        st.ips = pod->ips;
        st.host_network = pod->host_network;
        if (pod->host_network) {
            // Its netns and IPs are the node's: only its ports set its packets apart.
            if (pod->ports.empty())
                return send_error(res, 422,
                                  "pod " + target + " uses the host network and declares no ports, so nothing tells "
                                  "its packets from the node's; trace the node (\"node\": true) with a port filter, "
                                  "e.g. \"filter\": \"port 8080\"");
            if (pod->ports.size() > PWRU_SCOPE_PORTS)
                return send_error(res, 422,
                                  "pod " + target + " uses the host network with " + std::to_string(pod->ports.size()) +
                                      " ports, more than the " + std::to_string(PWRU_SCOPE_PORTS) +
                                      " a pod scope holds; trace the node (\"node\": true) with a port filter");
            st.netns = 0;
            st.ports = pod->ports;
            st.warning = "pod " + target + " uses the host network: traced as this node's packets with source or "
                         "destination port " + port_list(pod->ports) + " (any process of the node on these ports "
                         "is included)";
            spdlog::warn("trace {}: {}", target, st.warning);
        }
    }

    StreamLimits limits{tr.max_duration_s, tr.max_events, cfg.max_event_rate, cfg.ring_buffer_bytes};
    auto stream = TraceStream::start(tr.cli, st, limits, self.metrics_, self.node_netns_.get());
    if (!stream) {
        const Error& e = stream.error();
        spdlog::warn("trace {}: {}", target, log_escape(e.message()));
        if (e.users_fault()) return send_error(res, 400, e.message() + "; fix \"filter\" or \"args\" and retry");
        return send_error(res, 500, "cannot start the trace: " + e.message());
    }
    std::shared_ptr<TraceStream> s(std::move(*stream));
    self.metrics_.sessions_total.fetch_add(1);
    self.metrics_.sessions_active.fetch_add(1);
    auto start_line = std::make_shared<std::string>(s->start_record());

    Metrics* metrics = &self.metrics_;
    SessionManager* sessions = self.sessions_.get();
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    auto provider = [s, start_line, sessions, &req](size_t, httplib::DataSink& sink) -> bool {
            auto write = [&](const std::string& line) {
                std::string l = line + "\n";
                return sink.write(l.data(), l.size());
            };
            if (!start_line->empty()) {
                if (!write(*start_line)) return s->abandon(), false;
                start_line->clear();
            }
            if (client_gone(req)) return s->abandon(), false;
            for (const auto& line : s->step(sessions->draining()))
                if (!write(line)) return s->abandon(), false;
            if (s->done()) sink.done();
            return true;
        };
    auto release = [s, slot, metrics, target](bool) mutable {
            if (!s->done()) s->abandon();
            spdlog::info("trace {} ended: {}", target, s->ended());
            s.reset();  // the Session and every BPF object it held
            metrics->sessions_active.fetch_sub(1);
            slot.reset();
        };
    // HTTP/1.0 has no chunked encoding: the stream ends with the connection.
    if (req.version == "HTTP/1.0")
        res.set_content_provider("application/x-ndjson", std::move(provider), std::move(release));
    else
        res.set_chunked_content_provider("application/x-ndjson", std::move(provider), std::move(release));
}

Result<int> AgentServer::bind() {
    auto l = parse_listen(cfg_.listen);
    if (!l) return std::unexpected(l.error());
    int port = l->second;
    if (port == 0)
        port = https_->bind_to_any_port(l->first.c_str());
    else if (!https_->bind_to_port(l->first.c_str(), port))
        port = -1;
    if (port < 0) return fail("cannot listen on " + cfg_.listen + "; is the port in use? change --listen");
    if (health_) {
        auto h = parse_listen(cfg_.health_listen);
        if (!h) return std::unexpected(h.error());
        health_port_ = h->second == 0 ? health_->bind_to_any_port(h->first.c_str())
                                      : (health_->bind_to_port(h->first.c_str(), h->second) ? h->second : -1);
        if (health_port_ < 0)
            return fail("cannot listen on " + cfg_.health_listen + "; is the port in use? change --health-listen");
    }
    return port;
}

void AgentServer::run() {
    std::thread health;
    if (health_) health = std::thread([this] { health_->listen_after_bind(); });
    https_->listen_after_bind();
    if (health.joinable()) health.join();
}

bool AgentServer::wait_running(std::chrono::milliseconds timeout) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!(https_->is_running() && (!health_ || health_->is_running()))) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void AgentServer::shutdown(std::chrono::milliseconds drain) {
    sessions_->begin_drain();
    if (!sessions_->wait_idle(drain))
        spdlog::warn("{} trace sessions still running after {} ms; stopping anyway", sessions_->active(), drain.count());
    https_->stop();
    if (health_) health_->stop();
}

}  // namespace pwru::agent
