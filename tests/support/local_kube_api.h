// A small HTTPS server on 127.0.0.1 that answers like the Kubernetes API for
// the calls kubectl-pwru makes: pods (get, list with label and field
// selectors), apps/v1 workloads, Status errors, bearer-token checks, and
// pods/portforward over WebSocket (v4.channel.k8s.io) bridged to a local TCP
// port. No kube-apiserver can run on this machine; the response shapes are
// the API's own (kept small). The kind e2e covers the real one.
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

    // Request targets seen so far ("GET /api/v1/...").
    std::vector<std::string> requests() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint16_t port_ = 0;
};

}  // namespace pwru::test
