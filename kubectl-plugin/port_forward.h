// A pod port-forward through the API server (pods/portforward over WebSocket,
// subprotocol v4.channel.k8s.io): a raw byte tunnel to one port of one pod,
// handed to the caller as a local socket. The agent's mutual TLS runs inside
// it end to end: the API server sees only encrypted bytes (unlike pods/proxy,
// which terminates HTTP and would not verify the agent).
//
// Wire format: binary frames, first byte the channel (0 = data, 1 = error for
// the first port); the first frame on each channel from the server carries
// the port number (2 bytes, little endian) and nothing else.
//
// A declined upgrade is one line with the HTTP status, the API server's reason
// and what to do next (port_forward_refusal.h).
#pragma once

#include <memory>
#include <string>

#include "kubectl-plugin/kube_api.h"
#include "tracer/util/result.h"

namespace pwru::plugin {

class PortForward {
  public:
    static Result<std::unique_ptr<PortForward>> open(const KubeApi& api, const std::string& ns, const std::string& pod,
                                                     uint16_t port, int timeout_ms);
    ~PortForward();

    // The local end of the tunnel (owned by the caller once taken).
    int take_fd();
    // What the API server sent on the error channel, if anything.
    std::string error() const;

    struct Impl;

  private:
    explicit PortForward(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pwru::plugin
