// A small HTTPS server on 127.0.0.1 that answers like the Kubernetes API for
// the calls kubectl-pwru makes: pods (get, list with label and field
// selectors), apps/v1 workloads, Status errors, bearer-token checks, and
// pods/portforward over WebSocket (v4.channel.k8s.io) bridged to a local TCP
// port. The response shapes are the API's own (kept small); the k8s layer
// covers a real API server. The port-forward upgrade is answered as a real
// one answers it: RBAC first (403 Status), then the pod (404 Status), then
// the kubelet's streaming route, which produces no media type and so answers
// any Accept but */* with a plain-text "406: Not Acceptable" (go-restful),
// passed back by the API server.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_certs.h"

namespace pwru::test {

class LocalKubeApi {
  public:
    // Serves with `server` (files signed by the test's CA); requires `token`
    // as a bearer token when non-empty.
    LocalKubeApi(const CertFiles& server, std::string token);
    ~LocalKubeApi();

    uint16_t port() const { return port_; }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

    // A pod: name, namespace, node, labels, IP.
    void add_pod(const std::string& ns, const std::string& name, const std::string& node,
                 const std::map<std::string, std::string>& labels, const std::string& ip);
    // Declares a TCP container port (name, number) on an added pod's first container.
    void add_container_port(const std::string& ns, const std::string& pod, const std::string& name, uint16_t port);
    // The pod's Ready condition (added pods on a node start Ready), and the
    // reason its container waits (e.g. "ImagePullBackOff") when not empty.
    void set_pod_ready(const std::string& ns, const std::string& pod, bool ready,
                       const std::string& waiting_reason = "");
    // Any other object, by its exact path (e.g. an apps/v1 deployment).
    void add_object(const std::string& path, nlohmann::json obj);
    // pods/portforward to ns/pod:port goes to 127.0.0.1:local_port, in the
    // network namespace at netns_path when given (an agent in a node's netns).
    void forward(const std::string& ns, const std::string& pod, uint16_t port, uint16_t local_port,
                 const std::string& netns_path = "");

    // RBAC denies `user` pods/portforward in namespace `ns` (403 and the API
    // server's Status message).
    void forbid_port_forward(const std::string& ns, const std::string& user);

    // Request targets seen so far ("GET /api/v1/...").
    std::vector<std::string> requests() const;
    // The headers of the last pods/portforward request (lower-case names).
    std::map<std::string, std::string> last_port_forward_headers() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint16_t port_ = 0;
};

}  // namespace pwru::test
