#include "agent/kube_rbac.h"

#include <fstream>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace pwru::agent {
namespace {

using nlohmann::json;

Result<std::string> read_token(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail("cannot read the agent's API token " + path + "; check --kube-token-file", errno);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = ss.str();
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    if (t.empty()) return fail("the agent's API token " + path + " is empty; check --kube-token-file");
    return t;
}

}  // namespace

Result<std::string> KubeRbac::post(const std::string& path, const std::string& body) const {
    auto token = read_token(cfg_.token_file);  // re-read: projected tokens rotate
    if (!token) return std::unexpected(token.error());
    httplib::Client cli(cfg_.url);
    if (!cli.is_valid()) return fail("--kube-api " + cfg_.url + " is not a valid URL; use https://HOST:PORT");
    cli.enable_server_certificate_verification(true);
    if (!cfg_.ca_file.empty()) cli.set_ca_cert_path(cfg_.ca_file.c_str());
    cli.set_connection_timeout(5);
    cli.set_read_timeout(10);
    cli.set_bearer_token_auth(token->c_str());
    auto res = cli.Post(path.c_str(), body, "application/json");
    if (!res)
        return fail("the Kubernetes API at " + cfg_.url + " did not answer " + path + " (" +
                    httplib::to_string(res.error()) + "); check --kube-api and --kube-ca");
    if (res->status < 200 || res->status > 299)
        return fail("the Kubernetes API answered " + path + " with HTTP " + std::to_string(res->status) +
                    "; does the agent's service account may create tokenreviews and subjectaccessreviews?");
    return res->body;
}

Result<RbacDecision> KubeRbac::review(const RbacRequest& req) const {
    RbacDecision d;
    if (req.token.empty()) {
        d.reason =
            "this agent checks Kubernetes RBAC: send the user's bearer token (\"bearer_token\" or an "
            "Authorization header)";
        return d;
    }
    json tr = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", {{"token", req.token}}}};
    auto tr_body = post("/apis/authentication.k8s.io/v1/tokenreviews", tr.dump());
    if (!tr_body) return std::unexpected(tr_body.error());
    json trr = json::parse(*tr_body, nullptr, false);
    if (trr.is_discarded() || !trr.is_object())
        return fail("the Kubernetes API's TokenReview answer is not JSON; check --kube-api points at the API server");
    const json status = trr.value("status", json::object());
    if (!status.value("authenticated", false)) {
        d.reason = "the bearer token was not accepted by the Kubernetes API" +
                   (status.contains("error") ? ": " + status["error"].get<std::string>() : std::string()) +
                   "; log in again (kubectl) and retry";
        return d;
    }
    const json user = status.value("user", json::object());
    d.user = user.value("username", "");

    json attrs = req.node_wide
                     ? json{{"verb", "get"}, {"resource", "nodes"}, {"subresource", "proxy"}, {"name", req.node}}
                     : json{{"verb", "get"}, {"resource", "pods"}, {"namespace", req.ns}};
    json spec = {{"user", d.user}, {"resourceAttributes", attrs}};
    if (user.contains("groups")) spec["groups"] = user["groups"];
    if (user.contains("uid")) spec["uid"] = user["uid"];
    if (user.contains("extra")) spec["extra"] = user["extra"];
    json sar = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
    auto sar_body = post("/apis/authorization.k8s.io/v1/subjectaccessreviews", sar.dump());
    if (!sar_body) return std::unexpected(sar_body.error());
    json sarr = json::parse(*sar_body, nullptr, false);
    if (sarr.is_discarded() || !sarr.is_object())
        return fail("the Kubernetes API's SubjectAccessReview answer is not JSON; check --kube-api");
    const json sst = sarr.value("status", json::object());
    d.allowed = sst.value("allowed", false) && !sst.value("denied", false);
    if (!d.allowed) {
        std::string what = req.node_wide ? "get nodes/proxy " + req.node : "get pods in namespace " + req.ns;
        d.reason = "Kubernetes RBAC does not allow " + d.user + " to " + what;
        if (sst.contains("reason") && sst["reason"].is_string() && !sst["reason"].get<std::string>().empty())
            d.reason += " (" + sst["reason"].get<std::string>() + ")";
    }
    return d;
}

}  // namespace pwru::agent
