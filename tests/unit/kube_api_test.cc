// The plugin's Kubernetes API client and port-forward tunnel, against a local
// HTTPS server answering with the API's response shapes (no kube-apiserver
// runs here): discovery calls, the API's own error messages, credentials,
// and mutual TLS to an "agent" carried end to end through pods/portforward.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <set>
#include <thread>

#include "kubectl-plugin/kube_api.h"
#include "kubectl-plugin/port_forward.h"
#include "kubectl-plugin/port_forward_refusal.h"
#include "kubectl-plugin/targets.h"
#include "kubectl-plugin/tls_client.h"
#include "support/local_kube_api.h"
#include "support/test_certs.h"
#include "support/test_files.h"

#include <fstream>
#include <sstream>

using namespace pwru::plugin;
using pwru::test::CertFiles;
using pwru::test::LocalKubeApi;
using pwru::test::TempDir;
using pwru::test::TestCa;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ApiAccess access_for(const LocalKubeApi& api, const TestCa& ca, const std::string& token) {
    ApiAccess a;
    a.server = api.url();
    a.ca_pem = slurp(ca.cert_path());
    a.bearer_token = token;
    a.context_name = "test";
    return a;
}

// A stand-in for an agent's TLS endpoint: requires a client certificate from
// `client_ca`, answers one request with NDJSON lines naming the client's CN.
class MtlsEndpoint {
  public:
    MtlsEndpoint(const CertFiles& server, const std::string& client_ca_file) {
        namespace ssl = boost::asio::ssl;
        ctx_.use_certificate_chain_file(server.cert);
        ctx_.use_private_key_file(server.key, ssl::context::pem);
        ctx_.load_verify_file(client_ca_file);
        ctx_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
        acceptor_.open(boost::asio::ip::tcp::v4());
        acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { serve_one(); });
    }
    ~MtlsEndpoint() {
        boost::system::error_code ec;
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes a blocking accept
        acceptor_.close(ec);
        if (thread_.joinable()) thread_.join();
    }
    uint16_t port() const { return port_; }
    std::string client_cn() const { return client_cn_; }

  private:
    void serve_one() {
        namespace http = boost::beast::http;
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket s(ioc_);
        acceptor_.accept(s, ec);
        if (ec) return;
        boost::asio::ssl::stream<boost::asio::ip::tcp::socket> tls(std::move(s), ctx_);
        tls.handshake(boost::asio::ssl::stream_base::server, ec);
        if (ec) return;
        X509* peer = SSL_get1_peer_certificate(tls.native_handle());
        char cn[256] = {};
        if (peer) X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        X509_free(peer);
        client_cn_ = cn;
        boost::beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(tls, buf, req, ec);
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/x-ndjson");
        res.body() = "{\"type\":\"start\",\"client\":\"" + client_cn_ + "\"}\n{\"type\":\"heartbeat\"}\n";
        res.chunked(true);
        http::write(tls, res, ec);
        tls.shutdown(ec);
    }
    boost::asio::io_context ioc_;
    boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};
    boost::asio::ip::tcp::acceptor acceptor_{ioc_};
    uint16_t port_ = 0;
    std::string client_cn_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("API client: pods, selectors, workloads, and the API's own error messages", "[kubeapi]") {
    TempDir dir;
    TestCa ca(dir.path, "test-cluster");
    LocalKubeApi api(ca.issue("kube-apiserver", {"IP:127.0.0.1", "DNS:localhost"}), "tok");
    api.add_pod("web", "httpd-0", "node-a", {{"app", "httpd"}}, "10.244.1.5");
    api.add_pod("web", "httpd-1", "node-b", {{"app", "httpd"}}, "10.244.2.7");
    api.add_pod("web", "client", "node-a", {{"app", "client"}}, "10.244.1.9");
    api.add_pod("pwru", "pwru-agent-x1", "node-a", {{"app.kubernetes.io/name", "pwru-agent"}}, "10.0.0.11");
    api.add_pod("pwru", "pwru-agent-x2", "node-b", {{"app.kubernetes.io/name", "pwru-agent"}}, "10.0.0.12");
    api.add_object("/apis/apps/v1/namespaces/web/deployments/httpd",
                   {{"kind", "Deployment"},
                    {"apiVersion", "apps/v1"},
                    {"spec", {{"selector", {{"matchLabels", {{"app", "httpd"}}}}}}}});
    KubeApi k(access_for(api, ca, "tok"));

    auto pod = k.get_pod("web", "httpd-1");
    REQUIRE(pod);
    CHECK(pod->node == "node-b");
    CHECK(pod->ips == std::vector<std::string>{"10.244.2.7"});
    CHECK(pod->labels.at("app") == "httpd");

    auto missing = k.get_pod("web", "nope");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message() == "pods \"nope\" not found");
    CHECK(missing.error().kind == pwru::ErrorKind::NotFound);

    auto sel = k.workload_selector("deploy", "web", "httpd");
    REQUIRE(sel);
    CHECK(*sel == "app=httpd");
    auto pods = k.list_pods("web", *sel);
    REQUIRE(pods);
    CHECK(pods->size() == 2);

    // The agent on a node: the DaemonSet's labels plus spec.nodeName.
    auto agents = k.list_pods("pwru", "app.kubernetes.io/name=pwru-agent", "spec.nodeName=node-b");
    REQUIRE(agents);
    REQUIRE(agents->size() == 1);
    CHECK(agents->front().name == "pwru-agent-x2");
    CHECK(api.requests().back() ==
          "GET "
          "/api/v1/namespaces/pwru/"
          "pods?labelSelector=app.kubernetes.io%2Fname%3Dpwru-agent&fieldSelector=spec.nodeName%3Dnode-b");

    auto kind = k.workload_selector("cronjob", "web", "x");
    REQUIRE_FALSE(kind);
    CHECK(kind.error().message().find("use pod/, deploy/") != std::string::npos);
}

TEST_CASE("API client: a refused token and an untrusted server each get their own message", "[kubeapi]") {
    TempDir dir;
    TestCa ca(dir.path, "test-cluster");
    TestCa other(dir.path, "some-other");
    LocalKubeApi api(ca.issue("kube-apiserver", {"IP:127.0.0.1"}), "right");
    api.add_pod("web", "httpd-0", "node-a", {}, "10.244.1.5");

    auto bad_token = KubeApi(access_for(api, ca, "wrong")).get_pod("web", "httpd-0");
    REQUIRE_FALSE(bad_token);
    CHECK(bad_token.error().message().find("credentials of context 'test' were refused") != std::string::npos);

    ApiAccess a = access_for(api, other, "right");
    auto untrusted = KubeApi(a).get_pod("web", "httpd-0");
    REQUIRE_FALSE(untrusted);
    CHECK(untrusted.error().message().find("is not trusted") != std::string::npos);
    CHECK(untrusted.error().message().find("cluster CA of context 'test'") != std::string::npos);

    a.ca_pem = "not a certificate";
    auto garbage = KubeApi(a).get_pod("web", "httpd-0");
    REQUIRE_FALSE(garbage);
    CHECK(garbage.error().message().find("is not a PEM certificate") != std::string::npos);
}

TEST_CASE("port-forward: the agent's mutual TLS runs end to end through the API server's tunnel", "[kubeapi]") {
    TempDir dir;
    TestCa cluster_ca(dir.path, "test-cluster");
    TestCa agent_ca(dir.path, "agents");  // not the leaf's CN: same names read as self-signed
    LocalKubeApi api(cluster_ca.issue("kube-apiserver", {"IP:127.0.0.1"}), "tok");
    MtlsEndpoint agent(agent_ca.issue("pwru-agent", {"DNS:pwru-agent"}), agent_ca.cert_path());
    api.forward("pwru", "pwru-agent-x1", 4443, agent.port());
    KubeApi k(access_for(api, cluster_ca, "tok"));
    // Alice's certificate from the agents' CA, expecting the agent to be `name`.
    auto alice_to = [&](const std::string& name) {
        TlsConfig t;
        t.ca_pem = slurp(agent_ca.cert_path());
        CertFiles client = agent_ca.issue("alice", {});
        t.cert_pem = slurp(client.cert);
        t.key_pem = slurp(client.key);
        t.server_name = name;
        return t;
    };

    SECTION("a client certificate from the agents' CA: the stream arrives") {
        auto pf = PortForward::open(k, "pwru", "pwru-agent-x1", 4443, 5000);
        REQUIRE(pf);
        TlsConfig t = alice_to("pwru-agent");
        auto conn = TlsConnection::over_fd((*pf)->take_fd(), t, 5000);
        REQUIRE(conn);
        std::vector<std::string> lines;
        int status = 0;
        auto r = (*conn)->stream_lines(
            "POST", "/v1/trace", {}, "{}", [&](const HttpResponse& h) { status = h.status; },
            [&](std::string_view l) { lines.emplace_back(l); });
        REQUIRE(r);
        CHECK(status == 200);
        REQUIRE(lines.size() == 2);
        CHECK(lines[0] == "{\"type\":\"start\",\"client\":\"alice\"}");
        CHECK(agent.client_cn() == "alice");
    }
    SECTION("the agent's name is checked inside the tunnel") {
        auto pf = PortForward::open(k, "pwru", "pwru-agent-x1", 4443, 5000);
        REQUIRE(pf);
        TlsConfig t = alice_to("someone-else");
        t.peer = "the agent on node x1";
        t.server_name_source = "--agent-server-name";
        auto conn = TlsConnection::over_fd((*pf)->take_fd(), t, 5000);
        REQUIRE_FALSE(conn);
        // Which peer, the name expected, the names it has, and the flag to check.
        CHECK(conn.error().message() ==
              "the certificate of the agent on node x1 does not carry the name someone-else (it has DNS:pwru-agent, "
              "CN=pwru-agent); check --agent-server-name");
    }
    SECTION("a pod without a forward: the API's message") {
        auto pf = PortForward::open(k, "pwru", "pwru-agent-zz", 4443, 5000);
        REQUIRE_FALSE(pf);
        CHECK(pf.error().message().find("pods \"pwru-agent-zz\" not found") != std::string::npos);
        CHECK(pf.error().message().find("HTTP 404 Not Found") != std::string::npos);
    }
    SECTION("the upgrade carries the credentials, the channel subprotocol and Host with the port; no Accept") {
        auto pf = PortForward::open(k, "pwru", "pwru-agent-x1", 4443, 5000);
        REQUIRE(pf);
        auto h = api.last_port_forward_headers();
        CHECK_FALSE(h.contains("accept"));
        CHECK_FALSE(h.contains("origin"));
        CHECK(h["authorization"] == "Bearer tok");
        CHECK(h["sec-websocket-protocol"] == "v4.channel.k8s.io");
        CHECK(h["host"] == "127.0.0.1:" + std::to_string(api.port()));
        CHECK(api.requests().back() == "GET /api/v1/namespaces/pwru/pods/pwru-agent-x1/portforward?ports=4443");
    }
    SECTION("RBAC refuses the tunnel: the status, the API server's message and what to do, in one line") {
        api.forbid_port_forward("pwru", "bob");
        auto pf = PortForward::open(k, "pwru", "pwru-agent-x1", 4443, 5000);
        REQUIRE_FALSE(pf);
        CHECK(pf.error().message() ==
              "port-forward to pwru/pwru-agent-x1:4443 declined by the API server: HTTP 403 Forbidden: pods "
              "\"pwru-agent-x1\" is forbidden: User \"bob\" cannot get resource \"pods/portforward\" in API group "
              "\"\" in the namespace \"pwru\"; your user needs get and create on pods/portforward in namespace pwru "
              "(check: kubectl auth can-i create pods/portforward -n pwru), or use --direct to reach the agents at "
              "their pod addresses");
    }
}

// The real chain (API server -> kubelet -> CRI streaming server) answers an
// upgrade with Accept: application/json with 406, as kube-apiserver 1.20 did
// here: the local server must too, or the tunnel tests above could not fail
// on that header. A declined upgrade then reads as the user sees it.
TEST_CASE("port-forward: an upgrade with Accept: application/json gets 406 Not Acceptable, as from a real API server",
          "[kubeapi]") {
    TempDir dir;
    TestCa ca(dir.path, "test-cluster");
    LocalKubeApi api(ca.issue("kube-apiserver", {"IP:127.0.0.1"}), "tok");
    api.forward("pwru", "pwru-agent-x1", 4443, 1);
    TlsConfig t;
    t.ca_pem = slurp(ca.cert_path());
    t.server_name = "127.0.0.1";
    const Headers upgrade{{"Authorization", "Bearer tok"},
                          {"Connection", "Upgrade"},
                          {"Upgrade", "websocket"},
                          {"Sec-WebSocket-Version", "13"},
                          {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                          {"Sec-WebSocket-Protocol", "v4.channel.k8s.io"}};
    const std::string target = "/api/v1/namespaces/pwru/pods/pwru-agent-x1/portforward?ports=4443";
    auto ask = [&](const Headers& extra) {
        Headers h = upgrade;
        h.insert(h.end(), extra.begin(), extra.end());
        auto conn = TlsConnection::connect("127.0.0.1", api.port(), t, 5000);
        REQUIRE(conn);
        auto r = (*conn)->request("GET", target, h);
        REQUIRE(r);
        return *r;
    };
    auto json_only = ask({{"Accept", "application/json"}});
    CHECK(json_only.status == 406);
    CHECK(json_only.body == "406: Not Acceptable");
    CHECK(ask({{"Accept", "application/json, */*;q=0.8"}}).status != 406);
    CHECK(ask({}).status != 406);

    DeclinedUpgrade d{"pwru", "pwru-agent-x1", 4443, 406, "Not Acceptable", json_only.body, "test"};
    CHECK(port_forward_refusal(d) ==
          "port-forward to pwru/pwru-agent-x1:4443 declined by the API server: HTTP 406 Not Acceptable: 406: Not "
          "Acceptable; the API server (or a proxy in front of it) would not open the tunnel; use --direct to reach the "
          "agents at their pod addresses");
}

TEST_CASE("targets: -l across all namespaces (-A) finds pods in each, one problem line when none match", "[kubeapi]") {
    TempDir dir;
    TestCa ca(dir.path, "test-cluster");
    LocalKubeApi api(ca.issue("kube-apiserver", {"IP:127.0.0.1", "DNS:localhost"}), "tok");
    api.add_pod("shop", "web-0", "node-a", {{"app", "web"}}, "10.244.1.5");
    api.add_pod("blog", "web-0", "node-b", {{"app", "web"}}, "10.244.2.7");
    api.add_pod("blog", "db-0", "node-b", {{"app", "db"}}, "10.244.2.8");
    KubeApi k(access_for(api, ca, "tok"));

    auto all = resolve_targets(k, "", {}, "app=web");
    CHECK(all.problems.empty());
    REQUIRE(all.targets.size() == 2);
    std::set<std::string> labels;
    for (const auto& t : all.targets) labels.insert(t.label());
    CHECK(labels == std::set<std::string>{"shop/web-0", "blog/web-0"});
    CHECK(api.requests().back() == "GET /api/v1/pods?labelSelector=app%3Dweb");

    auto none = resolve_targets(k, "", {}, "app=nothing");
    CHECK(none.targets.empty());
    REQUIRE(none.problems.size() == 1);
    CHECK(none.problems[0] == "-l app=nothing: no pods in any namespace match app=nothing");
}
