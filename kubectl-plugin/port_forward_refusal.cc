#include "kubectl-plugin/port_forward_refusal.h"

#include <nlohmann/json.hpp>

namespace pwru::plugin {

namespace {

// The API server's reason: a Status object's message (and its reason when the
// message is empty), else the body's first non-empty line, bounded so that
// an HTML error page from a proxy stays one readable line.
std::string reason_in_body(const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
        std::string msg = j.value("message", "");
        if (msg.empty()) msg = j.value("reason", "");
        for (char& c : msg)
            if (c == '\n' || c == '\r') c = ' ';
        if (!msg.empty()) return msg;
    }
    size_t start = body.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) return "";
    std::string line = body.substr(start, body.find_first_of("\r\n", start) - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    constexpr size_t kMax = 200;
    if (line.size() > kMax) line = line.substr(0, kMax) + "...";
    return line;
}

std::string next_step(const DeclinedUpgrade& d) {
    const std::string can_i = "kubectl auth can-i create pods/portforward -n " + d.ns;
    switch (d.status) {
        case 401:
            return "the credentials of context '" + d.context_name +
                   "' were refused; renew them (kubectl get pods -n " + d.ns + " tells the same)";
        case 403:
            // GET upgrades are authorized as verb get on pods/portforward;
            // newer API servers also require create on WebSocket upgrades.
            return "your user needs get and create on pods/portforward in namespace " + d.ns + " (check: " + can_i +
                   "), or use --direct to reach the agents at their pod addresses";
        case 404:
            return "the agent pod is gone or in another namespace; check --agent-namespace and kubectl get pods -n " +
                   d.ns;
        default:
            return "the API server (or a proxy in front of it) would not open the tunnel; use --direct to reach the "
                   "agents at their pod addresses";
    }
}

}  // namespace

std::string port_forward_refusal(const DeclinedUpgrade& d) {
    std::string out = "port-forward to " + d.ns + "/" + d.pod + ":" + std::to_string(d.port) +
                      " declined by the API server: HTTP " + std::to_string(d.status);
    if (!d.reason_phrase.empty()) out += " " + d.reason_phrase;
    if (std::string why = reason_in_body(d.body); !why.empty()) out += ": " + why;
    return out + "; " + next_step(d);
}

}  // namespace pwru::plugin
