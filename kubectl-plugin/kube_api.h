// The few Kubernetes API calls the plugin makes: read pods and workloads, list
// pods by label and field selectors, and open a pod port-forward. Every call
// is its own HTTPS connection authenticated as kubeconfig says; a failure
// carries the API's own Status message ("pods \"x\" not found").
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kubectl-plugin/kubeconfig.h"
#include "kubectl-plugin/tls_client.h"
#include "tracer/util/result.h"

namespace pwru::plugin {

struct PodInfo {
    std::string ns, name;
    std::string node;   // spec.nodeName; empty = not scheduled yet
    std::string phase;  // status.phase
    std::vector<std::string> ips;
    std::map<std::string, std::string> labels;
    bool host_network = false;
    // Declared container ports: name ("" if unnamed) -> port, TCP only.
    std::vector<std::pair<std::string, uint16_t>> tcp_ports;
};

PodInfo pod_from_json(const nlohmann::json& pod);

class KubeApi {
  public:
    explicit KubeApi(ApiAccess access, int timeout_ms = 10000);

    // GET a path (with query) and parse the JSON body.
    Result<nlohmann::json> get_json(const std::string& path_and_query) const;

    Result<PodInfo> get_pod(const std::string& ns, const std::string& name) const;
    Result<std::vector<PodInfo>> list_pods(const std::string& ns, const std::string& label_selector,
                                           const std::string& field_selector = {}) const;
    // deploy|deployment, ds|daemonset, sts|statefulset, rs|replicaset -> "k=v,k2=v2"
    // from spec.selector.matchLabels (matchExpressions turned into set-based terms).
    Result<std::string> workload_selector(const std::string& kind, const std::string& ns,
                                          const std::string& name) const;

    // The TLS settings every connection uses (the port-forward reuses them).
    TlsConfig tls() const;
    // The headers of a JSON GET: Accept: application/json and the credentials.
    Headers auth_headers() const;
    // The credentials alone (a bearer token, when the context has one): what
    // the port-forward upgrade sends. No Accept there: the kubelet's streaming
    // route produces no media type, and it answers 406 Not Acceptable to an
    // Accept it cannot match, which the API server passes back.
    Headers credential_headers() const;
    const ApiAccess& access() const { return access_; }
    std::string host() const { return host_; }
    uint16_t port() const { return port_; }

  private:
    ApiAccess access_;
    std::string host_;
    uint16_t port_ = 443;
    std::string url_error_;
    int timeout_ms_;
};

// URL query escaping for selector values.
std::string url_escape(const std::string& s);

}  // namespace pwru::plugin
