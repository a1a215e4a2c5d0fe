#include "kubectl-plugin/kube_api.h"

#include <fmt/format.h>

namespace pwru::plugin {

std::string url_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out.push_back(char(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

PodInfo pod_from_json(const nlohmann::json& pod) {
    PodInfo p;
    const auto& md = pod.value("metadata", nlohmann::json::object());
    p.ns = md.value("namespace", "");
    p.name = md.value("name", "");
    if (md.contains("labels") && md["labels"].is_object())
        for (const auto& [k, v] : md["labels"].items())
            if (v.is_string()) p.labels[k] = v.get<std::string>();
    const auto& spec = pod.value("spec", nlohmann::json::object());
    p.node = spec.value("nodeName", "");
    p.host_network = spec.value("hostNetwork", false);
    for (const auto& c : spec.value("containers", nlohmann::json::array())) {
        if (!c.is_object() || !c.contains("ports") || !c["ports"].is_array()) continue;
        for (const auto& port : c["ports"]) {
            if (!port.is_object() || port.value("protocol", "TCP") != "TCP") continue;
            int n = port.value("containerPort", 0);
            if (n > 0 && n < 65536) p.tcp_ports.emplace_back(port.value("name", ""), uint16_t(n));
        }
    }
    const auto& st = pod.value("status", nlohmann::json::object());
    p.phase = st.value("phase", "");
    if (st.contains("podIPs") && st["podIPs"].is_array()) {
        for (const auto& ip : st["podIPs"])
            if (ip.is_object() && ip.contains("ip")) p.ips.push_back(ip["ip"].get<std::string>());
    } else if (st.contains("podIP") && st["podIP"].is_string()) {
        p.ips.push_back(st["podIP"].get<std::string>());
    }
    return p;
}

KubeApi::KubeApi(ApiAccess access, int timeout_ms) : access_(std::move(access)), timeout_ms_(timeout_ms) {
    auto hp = split_https_url(access_.server);
    if (hp) {
        host_ = hp->first;
        port_ = hp->second;
    } else {
        url_error_ = hp.error().message();
    }
}

TlsConfig KubeApi::tls() const {
    TlsConfig t;
    t.ca_pem = access_.ca_pem;
    t.cert_pem = access_.client_cert_pem;
    t.key_pem = access_.client_key_pem;
    t.insecure_skip_verify = access_.insecure_skip_tls_verify;
    t.server_name = access_.tls_server_name.empty() ? host_ : access_.tls_server_name;
    t.ca_source = "the cluster CA of context '" + access_.context_name + "'";
    t.cert_source = "the client certificate of context '" + access_.context_name + "'";
    t.key_source = "the client key of context '" + access_.context_name + "'";
    return t;
}

Headers KubeApi::credential_headers() const {
    Headers h;
    if (!access_.bearer_token.empty()) h.emplace_back("Authorization", "Bearer " + access_.bearer_token);
    return h;
}

Headers KubeApi::auth_headers() const {
    Headers h{{"Accept", "application/json"}};
    for (auto& kv : credential_headers()) h.push_back(std::move(kv));
    return h;
}

Result<nlohmann::json> KubeApi::get_json(const std::string& path) const {
    if (!url_error_.empty())
        return bad_input("the API server URL of context '" + access_.context_name + "': " + url_error_);
    auto conn = TlsConnection::connect(host_, port_, tls(), timeout_ms_);
    if (!conn) {
        Error e = conn.error();
        e.what = "the Kubernetes API (" + access_.server + "): " + e.what;
        return std::unexpected(e);
    }
    auto resp = (*conn)->request("GET", path, auth_headers());
    if (!resp) return std::unexpected(resp.error());
    auto j = nlohmann::json::parse(resp->body, nullptr, false);
    if (resp->status < 200 || resp->status >= 300) {
        // The API answers errors with a Status object: its message is the one to show.
        std::string msg = (!j.is_discarded() && j.is_object()) ? j.value("message", "") : "";
        if (msg.empty()) msg = "HTTP " + std::to_string(resp->status) + " for GET " + path;
        if (resp->status == 401) msg += " (the credentials of context '" + access_.context_name + "' were refused)";
        Error e{0, msg};
        if (resp->status == 404) e.kind = ErrorKind::NotFound;
        return std::unexpected(e);
    }
    if (j.is_discarded()) return fail("the Kubernetes API answered GET " + path + " with something that is not JSON");
    return j;
}

Result<PodInfo> KubeApi::get_pod(const std::string& ns, const std::string& name) const {
    auto j = get_json("/api/v1/namespaces/" + url_escape(ns) + "/pods/" + url_escape(name));
    if (!j) return std::unexpected(j.error());
    return pod_from_json(*j);
}

Result<std::vector<PodInfo>> KubeApi::list_pods(const std::string& ns, const std::string& label_selector,
                                                const std::string& field_selector) const {
    std::string path = ns.empty() ? "/api/v1/pods" : "/api/v1/namespaces/" + url_escape(ns) + "/pods";
    std::string sep = "?";
    if (!label_selector.empty()) {
        path += sep + "labelSelector=" + url_escape(label_selector);
        sep = "&";
    }
    if (!field_selector.empty()) path += sep + "fieldSelector=" + url_escape(field_selector);
    auto j = get_json(path);
    if (!j) return std::unexpected(j.error());
    std::vector<PodInfo> out;
    if (j->contains("items") && (*j)["items"].is_array())
        for (const auto& item : (*j)["items"]) out.push_back(pod_from_json(item));
    return out;
}

Result<std::string> KubeApi::workload_selector(const std::string& kind, const std::string& ns,
                                               const std::string& name) const {
    std::string resource;
    if (kind == "deploy" || kind == "deployment" || kind == "deployments")
        resource = "deployments";
    else if (kind == "ds" || kind == "daemonset" || kind == "daemonsets")
        resource = "daemonsets";
    else if (kind == "sts" || kind == "statefulset" || kind == "statefulsets")
        resource = "statefulsets";
    else if (kind == "rs" || kind == "replicaset" || kind == "replicasets")
        resource = "replicasets";
    else
        return bad_input("unknown target kind '" + kind + "'; use pod/, deploy/, ds/, sts/, rs/ or node/");
    auto j = get_json("/apis/apps/v1/namespaces/" + url_escape(ns) + "/" + resource + "/" + url_escape(name));
    if (!j) return std::unexpected(j.error());
    const auto sel = j->value("spec", nlohmann::json::object()).value("selector", nlohmann::json::object());
    std::string out;
    auto add = [&](const std::string& term) { out += (out.empty() ? "" : ",") + term; };
    if (sel.contains("matchLabels"))
        for (const auto& [k, v] : sel["matchLabels"].items()) add(k + "=" + v.get<std::string>());
    if (sel.contains("matchExpressions")) {
        for (const auto& ex : sel["matchExpressions"]) {
            std::string key = ex.value("key", ""), op = ex.value("operator", "");
            std::string values;
            for (const auto& v : ex.value("values", nlohmann::json::array()))
                values += (values.empty() ? "" : ",") + v.get<std::string>();
            if (op == "In")
                add(key + " in (" + values + ")");
            else if (op == "NotIn")
                add(key + " notin (" + values + ")");
            else if (op == "Exists")
                add(key);
            else if (op == "DoesNotExist")
                add("!" + key);
        }
    }
    if (out.empty()) return fail(kind + "/" + name + " has no pod selector");
    return out;
}

}  // namespace pwru::plugin
