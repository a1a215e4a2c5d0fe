// RBAC mode against a local HTTPS server that answers as the Kubernetes API
// does (the real TokenReview / SubjectAccessReview response shapes, 201
// Created); no API server runs here.
#include <catch2/catch.hpp>

#include <fstream>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/kube_rbac.h"
#include "support/test_certs.h"
#include "support/test_files.h"

using namespace pwru::agent;
using namespace pwru::test;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

// The API server's side: users by token, and which (user, resource, ns) RBAC allows.
class FakeKubeApi {
public:
    FakeKubeApi(const CertFiles& server) : srv_(server.cert.c_str(), server.key.c_str()) {
        srv_.Post("/apis/authentication.k8s.io/v1/tokenreviews", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock(mu_);
            auth_headers.push_back(req.get_header_value("Authorization"));
            if (forbid_agent) return forbidden(res, "tokenreviews.authentication.k8s.io");
            json in = json::parse(req.body);
            token_reviews.push_back(in);
            std::string token = in["spec"]["token"];
            json status;
            if (token == "alice-token") {
                status = {{"authenticated", true},
                          {"user",
                           {{"username", "alice"},
                            {"uid", "4f1c2d9e-0000-4000-8000-000000000001"},
                            {"groups", {"devs", "system:authenticated"}},
                            {"extra", {{"authentication.kubernetes.io/credential-id", {"JTI=1f2e"}}}}}},
                          {"audiences", {"https://kubernetes.default.svc.cluster.local"}}};
            } else {
                status = {{"user", json::object()}, {"error", "[invalid bearer token, token lookup failed]"}};
            }
            json out = {{"kind", "TokenReview"},
                        {"apiVersion", "authentication.k8s.io/v1"},
                        {"metadata", {{"creationTimestamp", nullptr}}},
                        {"spec", in["spec"]},
                        {"status", status}};
            res.status = 201;
            res.set_content(out.dump(), "application/json");
        });
        srv_.Post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                  [this](const httplib::Request& req, httplib::Response& res) {
                      std::lock_guard lock(mu_);
                      auth_headers.push_back(req.get_header_value("Authorization"));
                      json in = json::parse(req.body);
                      access_reviews.push_back(in);
                      const json& ra = in["spec"]["resourceAttributes"];
                      bool allowed = in["spec"]["user"] == "alice" && ra.value("resource", "") == "pods" &&
                                     ra.value("namespace", "") == "shop" && ra.value("verb", "") == "get";
                      json status = {{"allowed", allowed}};
                      if (allowed) status["reason"] = "RBAC: allowed by RoleBinding \"tracers/shop\" of Role \"pod-reader\" to User \"alice\"";
                      json out = {{"kind", "SubjectAccessReview"},
                                  {"apiVersion", "authorization.k8s.io/v1"},
                                  {"metadata", {{"creationTimestamp", nullptr}}},
                                  {"spec", in["spec"]},
                                  {"status", status}};
                      res.status = 201;
                      res.set_content(out.dump(), "application/json");
                  });
        port = srv_.bind_to_any_port("127.0.0.1");
        REQUIRE(port > 0);
        thread_ = std::thread([this] { srv_.listen_after_bind(); });
        // stop() is a no-op until the loop runs: wait for it (bounded).
        for (int i = 0; i < 500 && !srv_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        REQUIRE(srv_.is_running());
    }
    ~FakeKubeApi() {
        srv_.stop();
        thread_.join();
    }

    int port = 0;
    bool forbid_agent = false;
    std::vector<json> token_reviews, access_reviews;
    std::vector<std::string> auth_headers;

private:
    static void forbidden(httplib::Response& res, const std::string& what) {
        json out = {{"kind", "Status"},
                    {"apiVersion", "v1"},
                    {"metadata", json::object()},
                    {"status", "Failure"},
                    {"message", what + " is forbidden: User \"system:serviceaccount:pwru:pwru-agent\" cannot create "
                                       "resource \"" + what + "\" at the cluster scope"},
                    {"reason", "Forbidden"},
                    {"code", 403}};
        res.status = 403;
        res.set_content(out.dump(), "application/json");
    }

    std::mutex mu_;
    httplib::SSLServer srv_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("RBAC: TokenReview then SubjectAccessReview decide, with the agent's own token", "[unit][agent]") {
    TempDir dir("pwru-rbac");
    TestCa ca(dir.path, "kube");
    FakeKubeApi api(ca.issue("kube-apiserver", {"DNS:localhost", "IP:127.0.0.1"}));
    std::string agent_token = (dir.path / "token").string();
    std::ofstream(agent_token) << "agent-sa-token\n";
    KubeRbac rbac({"https://127.0.0.1:" + std::to_string(api.port), ca.cert_path(), agent_token});

    SECTION("allowed: get pods in the namespace") {
        auto d = rbac.review({"alice-token", "shop", false, "node-1"});
        REQUIRE(d);
        CHECK(d->allowed);
        CHECK(d->user == "alice");
        REQUIRE(api.token_reviews.size() == 1);
        CHECK(api.token_reviews[0]["apiVersion"] == "authentication.k8s.io/v1");
        CHECK(api.token_reviews[0]["kind"] == "TokenReview");
        CHECK(api.token_reviews[0]["spec"]["token"] == "alice-token");
        REQUIRE(api.access_reviews.size() == 1);
        const json& spec = api.access_reviews[0]["spec"];
        CHECK(api.access_reviews[0]["kind"] == "SubjectAccessReview");
        CHECK(spec["user"] == "alice");
        CHECK(spec["groups"] == json({"devs", "system:authenticated"}));
        CHECK(spec["uid"] == "4f1c2d9e-0000-4000-8000-000000000001");
        CHECK(spec["extra"]["authentication.kubernetes.io/credential-id"][0] == "JTI=1f2e");
        CHECK(spec["resourceAttributes"] == json({{"verb", "get"}, {"resource", "pods"}, {"namespace", "shop"}}));
        for (const auto& h : api.auth_headers) CHECK(h == "Bearer agent-sa-token");
    }
    SECTION("denied: another namespace, with a reason naming the user") {
        auto d = rbac.review({"alice-token", "kube-system", false, "node-1"});
        REQUIRE(d);
        CHECK_FALSE(d->allowed);
        CHECK_THAT(d->reason, Contains("alice") && Contains("get pods in namespace kube-system"));
    }
    SECTION("node-wide asks for get nodes/proxy on this node") {
        auto d = rbac.review({"alice-token", "", true, "node-1"});
        REQUIRE(d);
        CHECK_FALSE(d->allowed);
        REQUIRE(api.access_reviews.size() == 1);
        CHECK(api.access_reviews[0]["spec"]["resourceAttributes"] ==
              json({{"verb", "get"}, {"resource", "nodes"}, {"subresource", "proxy"}, {"name", "node-1"}}));
    }
    SECTION("a token the API does not know is refused before any access review") {
        auto d = rbac.review({"stolen", "shop", false, "node-1"});
        REQUIRE(d);
        CHECK_FALSE(d->allowed);
        CHECK_THAT(d->reason, Contains("not accepted") && Contains("invalid bearer token"));
        CHECK(api.access_reviews.empty());
    }
    SECTION("no token at all is refused without asking") {
        auto d = rbac.review({"", "shop", false, "node-1"});
        REQUIRE(d);
        CHECK_FALSE(d->allowed);
        CHECK_THAT(d->reason, Contains("bearer token"));
        CHECK(api.token_reviews.empty());
    }
    SECTION("the agent's service account lacking rights is an error, not a denial") {
        api.forbid_agent = true;
        auto d = rbac.review({"alice-token", "shop", false, "node-1"});
        REQUIRE_FALSE(d);
        CHECK_THAT(d.error().what, Contains("HTTP 403"));
    }
}

TEST_CASE("RBAC: an API server that cannot be reached or trusted is an error naming the flag", "[unit][agent]") {
    TempDir dir("pwru-rbac");
    TestCa ca(dir.path, "kube");
    TestCa other(dir.path, "other");
    FakeKubeApi api(ca.issue("kube-apiserver", {"DNS:localhost", "IP:127.0.0.1"}));
    std::string agent_token = (dir.path / "token").string();
    std::ofstream(agent_token) << "agent-sa-token";

    KubeRbac wrong_ca({"https://127.0.0.1:" + std::to_string(api.port), other.cert_path(), agent_token});
    auto d = wrong_ca.review({"alice-token", "shop", false, "n"});
    REQUIRE_FALSE(d);
    CHECK_THAT(d.error().what, Contains("--kube-api"));
    CHECK(api.token_reviews.empty());

    // A port nothing listens on: bind one, close it.
    int closed_port;
    {
        httplib::Server s;
        closed_port = s.bind_to_any_port("127.0.0.1");
    }
    KubeRbac nowhere({"https://127.0.0.1:" + std::to_string(closed_port), ca.cert_path(), agent_token});
    auto n = nowhere.review({"alice-token", "shop", false, "n"});
    REQUIRE_FALSE(n);
    CHECK_THAT(n.error().what, Contains("did not answer"));

    KubeRbac no_token({"https://127.0.0.1:" + std::to_string(api.port), ca.cert_path(), "/nonexistent/token"});
    auto t = no_token.review({"alice-token", "shop", false, "n"});
    REQUIRE_FALSE(t);
    CHECK_THAT(t.error().what, Contains("--kube-token-file"));
}
