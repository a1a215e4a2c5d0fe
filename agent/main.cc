// pwru-agent: the node agent of pwru-k8s. Serves docs/agent-api.md over mTLS:
// a client asks for namespace/pod (or the node) with a pcap filter and pwru
// flags, and gets the pod's packet events as NDJSON.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "agent/agent_server.h"
#include "tracer/kernel/log.h"
#include "tracer/kernel/netns.h"

using namespace pwru;
using namespace pwru::agent;

namespace {

std::string default_node_name() {
    if (const char* n = std::getenv("NODE_NAME"); n && *n) return n;
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) return host;
    return "unknown";
}

int die(const std::string& msg, int code) {
    std::fprintf(stderr, "pwru-agent: %s\n", msg.c_str());
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    AgentConfig cfg;
    cfg.node_name = default_node_name();
    std::string authz_file, kube_api, kube_ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                                      kube_token = "/var/run/secrets/kubernetes.io/serviceaccount/token", ready_file;
    double drain_s = 10;
    bool debug = false;

    CLI::App app{"pwru-agent: per-node pwru tracing over an mTLS HTTPS API (docs/agent-api.md)"};
    app.add_option("--listen", cfg.listen, "HTTPS address HOST:PORT (port 0: any free port)")->capture_default_str();
    app.add_option("--health-listen", cfg.health_listen,
                   "plain-HTTP HOST:PORT for /healthz /readyz /metrics only (kubelet probes, Prometheus)");
    app.add_option("--tls-cert", cfg.tls_cert, "server certificate (PEM, chain)")->required();
    app.add_option("--tls-key", cfg.tls_key, "server private key (PEM)")->required();
    app.add_option("--client-ca", cfg.client_ca, "CA whose client certificates are accepted (PEM)")->required();
    app.add_option("--authz-config", authz_file, "JSON file: client identities -> namespaces, node right");
    app.add_option("--kube-api", kube_api, "RBAC mode: the API server URL (TokenReview + SubjectAccessReview)");
    app.add_option("--kube-ca", kube_ca, "RBAC mode: the API server's CA")->capture_default_str();
    app.add_option("--kube-token-file", kube_token, "RBAC mode: the agent's own token")->capture_default_str();
    app.add_option("--cri-socket", cfg.cri_socket, "CRI socket (default: auto-detect containerd, k3s, k0s, CRI-O)");
    app.add_option("--node-scope", cfg.node_scope,
                   "cri: trace this node's netns only (own + CRI pod sandboxes; several nodes on one kernel, "
                   "e.g. kind); kernel: every netns of the kernel")
        ->capture_default_str()
        ->check(CLI::IsMember({"cri", "kernel"}));
    app.add_option("--node-name", cfg.node_name, "this node's name in records (default $NODE_NAME or hostname)")
        ->capture_default_str();
    app.add_option("--max-sessions", cfg.max_sessions, "concurrent trace sessions")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    app.add_option("--max-duration", cfg.request_limits.max_duration_s, "longest trace, seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--max-events", cfg.request_limits.max_events, "most events per trace")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--max-event-rate", cfg.max_event_rate, "events per second per trace; the rest count as loss")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--ring-buffer-size", cfg.ring_buffer_bytes,
                   "bytes of kernel ring buffer per trace (power of two >= 4096); small values make ring-buffer "
                   "loss easy to provoke (tests)")
        ->capture_default_str();
    app.add_option("--max-request-bytes", cfg.http_limits.body_bytes,
                   "largest POST /v1/trace body; above it 413 before it is read")
        ->capture_default_str()
        ->check(CLI::Range(size_t{1024}, size_t{16} << 20));
    app.add_option("--max-connections", cfg.http_limits.max_connections,
                   "connections per listener; at the cap the oldest one without a request yet is closed")
        ->capture_default_str()
        ->check(CLI::Range(size_t{8}, size_t{65536}));
    app.add_option("--max-connections-per-address", cfg.http_limits.max_per_source,
                   "connections per client address and listener; above it refused at accept")
        ->capture_default_str()
        ->check(CLI::Range(size_t{1}, size_t{65536}));
    app.add_option("--drain-timeout", drain_s, "on SIGTERM, seconds to let traces end")->capture_default_str();
    app.add_option("--ready-file", ready_file, "write the HTTPS port here once serving (tests, scripts)");
    app.add_flag("--debug", debug, "verbose logs");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        return die(std::string(e.what()) + "; see pwru-agent --help", 2);
    }
    init_logging(debug);
    route_libbpf_logs();

    if (!kube_api.empty()) {
        cfg.kube = KubeApiConfig{kube_api, kube_ca, kube_token};
    } else if (!authz_file.empty()) {
        auto a = Authz::load(authz_file);
        if (!a) return die(a.error().what, 2);
        cfg.authz = std::move(*a);
    }
    if (auto r = check_privileges(); !r) return die(r.error().message(), 1);

    // Signals are taken by sigwait below, not by whichever thread they hit.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto server = AgentServer::create(cfg);
    if (!server) return die(server.error().message(), server.error().users_fault() ? 2 : 1);
    auto port = (*server)->bind();
    if (!port) return die(port.error().message(), 1);
    spdlog::info("pwru-agent on node {} listening on {} (port {}), {}", cfg.node_name, cfg.listen, *port,
                 cfg.kube ? "Kubernetes RBAC via " + kube_api : "authz file " + authz_file);
    std::thread serve([&] { (*server)->run(); });
    if (!(*server)->wait_running(std::chrono::seconds(10))) {
        spdlog::error("the HTTPS server did not start serving within 10 s");
        (*server)->shutdown(std::chrono::milliseconds(0));
        serve.join();
        return 1;
    }
    if (!ready_file.empty()) {
        std::ofstream(ready_file + ".tmp") << *port << "\n";
        std::rename((ready_file + ".tmp").c_str(), ready_file.c_str());
    }

    int sig = 0;
    sigwait(&sigs, &sig);
    spdlog::info("signal {}: draining trace sessions", sig);
    (*server)->shutdown(std::chrono::milliseconds(static_cast<long>(drain_s * 1000)));
    serve.join();
    spdlog::info("stopped");
    // Everything the kernel holds for us went with the drain (each trace's BPF
    // links detached, its session closed). What is left is memory, and tearing
    // it down has aborted: the server's io_context destroys the coroutine
    // frames still suspended in it after their I/O services (a double free,
    // once in about 20 SIGTERMs under load in the cri layer, after ec741d8
    // removed the common case). Exit without those destructors.
    spdlog::shutdown();
    std::fflush(nullptr);
    std::_Exit(0);
}
