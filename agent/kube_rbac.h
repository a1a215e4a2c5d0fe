// RBAC mode: rights come from Kubernetes instead of the authz file. The
// client forwards the user's bearer token; the agent asks the API server who
// that is (TokenReview) and whether they may `get pods` in the namespace
// (SubjectAccessReview; node-wide tracing: `get nodes/proxy` on this node),
// authenticating itself with its service account token.
#pragma once

#include <string>
#include <vector>

#include "tracer/util/result.h"

namespace pwru::agent {

struct KubeApiConfig {
    std::string url;         // "https://10.96.0.1:443" (--kube-api)
    std::string ca_file;     // the API server's CA (the service account's ca.crt)
    std::string token_file;  // the agent's own token (the service account's token)
};

struct RbacDecision {
    bool allowed = false;
    std::string user;    // from the TokenReview
    std::string reason;  // one line: why not (or the API's reason)
};

// What the reviews ask for one trace: `get pods` in ns, or node-wide
// `get nodes/proxy` named node.
struct RbacRequest {
    std::string token;
    std::string ns;  // pod tracing
    bool node_wide = false;
    std::string node;  // node-wide tracing
};

class KubeRbac {
  public:
    explicit KubeRbac(KubeApiConfig cfg) : cfg_(std::move(cfg)) {}
    // An Error when the API server cannot be asked (unreachable, TLS, not
    // 2xx): the caller answers 503. A denial is a decision, not an Error.
    Result<RbacDecision> review(const RbacRequest& req) const;

  private:
    Result<std::string> post(const std::string& path, const std::string& body) const;
    KubeApiConfig cfg_;
};

}  // namespace pwru::agent
