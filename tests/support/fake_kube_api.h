// A local HTTPS server that answers as the Kubernetes API does for
// TokenReview and SubjectAccessReview (the real response shapes, 201
// Created), for RBAC-mode tests: no API server runs here. Header-only: the
// binaries that include it link cpp-httplib through pwru_agent.
//
// Users: token "alice-token" is alice (groups devs, system:authenticated);
// RBAC allows alice `get pods` in namespace "shop" (or `allowed_ns`).
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/test_certs.h"

namespace pwru::test {

// The API server's side: users by token, and which (user, resource, ns) RBAC allows.
class FakeKubeApi {
  public:
    FakeKubeApi(const CertFiles& server) : srv_(server.cert.c_str(), server.key.c_str()) {
        srv_.Post("/apis/authentication.k8s.io/v1/tokenreviews", [this](const httplib::Request& req,
                                                                        httplib::Response& res) {
            std::lock_guard lock(mu_);
            auth_headers.push_back(req.get_header_value("Authorization"));
            if (forbid_agent) return forbidden(res, "tokenreviews.authentication.k8s.io");
            nlohmann::json in = nlohmann::json::parse(req.body);
            token_reviews.push_back(in);
            std::string token = in["spec"]["token"];
            nlohmann::json status;
            if (token == "alice-token") {
                status = {{"authenticated", true},
                          {"user",
                           {{"username", "alice"},
                            {"uid", "4f1c2d9e-0000-4000-8000-000000000001"},
                            {"groups", {"devs", "system:authenticated"}},
                            {"extra", {{"authentication.kubernetes.io/credential-id", {"JTI=1f2e"}}}}}},
                          {"audiences", {"https://kubernetes.default.svc.cluster.local"}}};
            } else {
                status = {{"user", nlohmann::json::object()}, {"error", "[invalid bearer token, token lookup failed]"}};
            }
            nlohmann::json out = {{"kind", "TokenReview"},
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
                      nlohmann::json in = nlohmann::json::parse(req.body);
                      access_reviews.push_back(in);
                      const nlohmann::json& ra = in["spec"]["resourceAttributes"];
                      bool allowed = in["spec"]["user"] == "alice" && ra.value("resource", "") == "pods" &&
                                     ra.value("namespace", "") == allowed_ns && ra.value("verb", "") == "get";
                      nlohmann::json status = {{"allowed", allowed}};
                      if (allowed)
                          status["reason"] = "RBAC: allowed by RoleBinding \"tracers/" + allowed_ns +
                                             "\" of Role \"pod-reader\" to User \"alice\"";
                      nlohmann::json out = {{"kind", "SubjectAccessReview"},
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
    std::atomic<bool> forbid_agent{false};  // answer 403 to the agent itself
    std::string allowed_ns = "shop";
    std::vector<nlohmann::json> token_reviews, access_reviews;
    std::vector<std::string> auth_headers;

  private:
    static void forbidden(httplib::Response& res, const std::string& what) {
        nlohmann::json out = {
            {"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", nlohmann::json::object()},
            {"status", "Failure"},
            {"message", what +
                            " is forbidden: User \"system:serviceaccount:pwru:pwru-agent\" cannot create "
                            "resource \"" +
                            what + "\" at the cluster scope"},
            {"reason", "Forbidden"},
            {"code", 403}};
        res.status = 403;
        res.set_content(out.dump(), "application/json");
    }

    std::mutex mu_;
    httplib::SSLServer srv_;
    std::thread thread_;
};

}  // namespace pwru::test
