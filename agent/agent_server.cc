#include "agent/agent_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/cri_client.h"
#include "agent/peer_identity.h"
#include "tracer/log.h"

namespace pwru::agent {
namespace {

using nlohmann::json;

void send_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", message}, {"status", status}}.dump() + "\n", "application/json");
}

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
    static void trace(AgentServer& self, const httplib::Request& req, httplib::Response& res);
};

Result<std::unique_ptr<AgentServer>> AgentServer::create(AgentConfig cfg) {
    if (cfg.tls_cert.empty() || cfg.tls_key.empty() || cfg.client_ca.empty())
        return bad_input("--tls-cert, --tls-key and --client-ca are all required (the API is mTLS only)");
    if (!cfg.authz && !cfg.kube)
        return bad_input("give --authz-config FILE (rights per client certificate) or --kube-api URL (Kubernetes RBAC)");
    std::unique_ptr<AgentServer> self(new AgentServer());
    self->cfg_ = std::move(cfg);
    self->sessions_ = std::make_unique<SessionManager>(self->cfg_.max_sessions);
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
    self->install_routes(*self->https_, true);
    if (!self->cfg_.health_listen.empty()) {
        self->health_ = std::make_unique<httplib::Server>();
        self->health_->new_task_queue = [] { return new httplib::ThreadPool(2); };
        self->install_routes(*self->health_, false);
    }
    return self;
}

AgentServer::~AgentServer() = default;

void AgentServer::install_routes(httplib::Server& s, bool with_trace) {
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
    s.Post("/v1/trace", [this](const httplib::Request& req, httplib::Response& res) {
        Handlers::trace(*this, req, res);
        if (res.status != 200) metrics_.sessions_refused.fetch_add(1);
    });
}

void AgentServer::Handlers::trace(AgentServer& self, const httplib::Request& req, httplib::Response& res) {
    const AgentConfig& cfg = self.cfg_;
    if (self.sessions_->draining()) return send_error(res, 503, "the agent is shutting down; retry on its replacement");

    auto parsed = parse_trace_request(req.body, cfg.request_limits);
    if (!parsed) return send_error(res, 400, parsed.error().what);
    TraceRequest& tr = *parsed;
    const std::string target = tr.node_wide ? "node " + cfg.node_name : tr.ns + "/" + tr.pod;

    // Who may trace this: Kubernetes RBAC with the user's token, else the file.
    const ClientIdentity who = peer_identity(req.ssl);
    if (cfg.kube) {
        RbacRequest rr{tr.bearer_token.empty() ? bearer_from_header(req) : tr.bearer_token, tr.ns, tr.node_wide,
                       cfg.node_name};
        auto d = KubeRbac(*cfg.kube).review(rr);
        if (!d) return send_error(res, 503, d.error().message());
        if (!d->allowed) return send_error(res, 403, d->reason);
        spdlog::info("trace {} for {} (client {})", target, d->user, who.display());
    } else {
        bool ok = tr.node_wide ? cfg.authz->may_trace_node(who) : cfg.authz->may_trace_namespace(who, tr.ns);
        if (!ok)
            return send_error(res, 403,
                              "client " + who.display() + " may not trace " +
                                  (tr.node_wide ? "the whole node" : "pods in namespace " + tr.ns) +
                                  "; ask the agent's operator to grant it in the authz config");
        spdlog::info("trace {} for client {}", target, who.display());
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
            if (pod.error().bad_input) return send_error(res, 404, pod.error().message());
            return send_error(res, 503, pod.error().message());
        }
        st.ns = tr.ns;
        st.pod = tr.pod;
        st.netns = pod->netns_inode;
        st.ips = pod->ips;
        st.host_network = pod->host_network;
        if (pod->host_network) {
            if (pod->ips.empty())
                return send_error(res, 422,
                                  "pod " + target + " uses the host network and the runtime reports no IP for it; "
                                  "trace the node (node: true) with a filter on its ports");
            st.netns = 0;
            st.warning = "pod " + target + " uses the host network: traced by its host IPs only, which every "
                         "hostNetwork pod and the node share; narrow with a filter on its ports";
        }
    }

    StreamLimits limits{tr.max_duration_s, tr.max_events, cfg.max_event_rate};
    auto stream = TraceStream::start(tr.cli, st, limits, self.metrics_, self.node_netns_.get());
    if (!stream) {
        const Error& e = stream.error();
        spdlog::warn("trace {}: {}", target, e.message());
        if (e.bad_input) return send_error(res, 400, e.message() + "; fix \"filter\" or \"args\" and retry");
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
    res.set_chunked_content_provider(
        "application/x-ndjson",
        [s, start_line, sessions, &req](size_t, httplib::DataSink& sink) -> bool {
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
        },
        [s, slot, metrics, target](bool) mutable {
            if (!s->done()) s->abandon();
            spdlog::info("trace {} ended: {}", target, s->ended());
            s.reset();  // the Session and every BPF object it held
            metrics->sessions_active.fetch_sub(1);
            slot.reset();
        });
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
