// The one line a declined pods/portforward upgrade gets: which tunnel, the
// HTTP status, the reason the API server gave (its Status message, or the
// first line of a plain-text body such as the kubelet's "406: Not
// Acceptable"), and what to do next for that status.
#pragma once

#include <cstdint>
#include <string>

namespace pwru::plugin {

struct DeclinedUpgrade {
    std::string ns, pod;
    uint16_t port = 0;
    unsigned status = 0;        // the HTTP status of the answer (not 101)
    std::string reason_phrase;  // "Forbidden", as the status line says
    std::string body;           // the answer's body as received
    std::string context_name;   // the kubeconfig context, for the hint on 401
};

std::string port_forward_refusal(const DeclinedUpgrade& d);

}  // namespace pwru::plugin
