// Kubernetes API access the way kubectl finds it: KUBECONFIG (colon-separated,
// merged: the first file to define a name or current-context wins),
// --kubeconfig, --context/--cluster/--user overrides, or the in-cluster
// service account. Parsed with yaml-cpp; credentials resolved to PEM/token
// strings so the API client needs no files. Exec credential plugins
// (client.authentication.k8s.io/v1) are run by resolve_credentials().
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tracer/util/result.h"

namespace pwru::plugin {

struct KubeconfigFlags {
    std::string kubeconfig;  // --kubeconfig: this one file, no merge
    std::string context;     // --context
    std::string cluster;     // --cluster
    std::string user;        // --user
    std::string ns;          // -n / --namespace
};

struct ExecCredentialConfig {
    std::string api_version;  // client.authentication.k8s.io/v1 (v1beta1 accepted)
    std::string command;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string base_dir;  // a relative command is resolved against the kubeconfig's folder
};

struct ApiAccess {
    std::string server;  // https://host:port
    std::string ca_pem;  // empty: system roots
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name;
    std::string client_cert_pem, client_key_pem;
    std::string bearer_token;
    std::optional<ExecCredentialConfig> exec;  // run to get a token / client cert
    std::string ns = "default";                // the context's namespace (or -n)
    std::string context_name;                  // for messages
    std::string source;                        // which file(s) or "in-cluster"
};

// The environment the loader reads, explicit so tests need not touch the process's.
struct KubeEnvironment {
    std::string kubeconfig_env;              // $KUBECONFIG
    std::string home;                        // $HOME (~/.kube/config)
    std::string service_host, service_port;  // $KUBERNETES_SERVICE_HOST / _PORT
    std::string sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    static KubeEnvironment from_process();
};

// Finds and merges the kubeconfig, picks the context, and reads every file it
// names (certificates, keys, token files). Errors name the file and the key.
Result<ApiAccess> load_api_access(const KubeconfigFlags& flags, const KubeEnvironment& env);

// Runs the exec plugin (if any) and fills bearer_token or the client cert/key
// from its ExecCredential. Bounded: the plugin gets `timeout_ms`.
Result<void> resolve_credentials(ApiAccess& access, int timeout_ms = 30000);

}  // namespace pwru::plugin
