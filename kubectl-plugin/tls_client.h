// An HTTPS client connection (Boost.Beast over Asio's OpenSSL stream): to the
// Kubernetes API server and to the agents, directly over TCP or over an
// already-connected socket (the port-forward tunnel's local end), so the
// agent's mutual TLS runs end to end whichever way the bytes travel.
//
// Blocking on purpose: each agent stream has its own thread; close() from
// another thread unblocks a read in progress.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracer/util/result.h"

namespace pwru::plugin {

struct TlsConfig {
    std::string ca_pem;                                  // trust anchors; empty = the system's
    std::string cert_pem, key_pem;                       // our client certificate, if any
    bool insecure_skip_verify = false;                   // kubeconfig's insecure-skip-tls-verify
    std::string server_name;                             // SNI and the name the certificate must carry
    std::string peer;                                    // who we talk to, for messages (default: server_name)
    std::string server_name_source = "the server name";  // where server_name came from, for a mismatch
    // Where each PEM came from, for errors ("the client key in FILE ...").
    std::string ca_source = "the CA", cert_source = "the client certificate", key_source = "the client key";
};

struct HttpResponse {
    int status = 0;
    std::string content_type;
    std::string body;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class TlsConnection {
  public:
    // TCP to host:port, then the TLS handshake. `host` may be a name, an IPv4
    // or an IPv6 literal (without brackets).
    static Result<std::unique_ptr<TlsConnection>> connect(const std::string& host, uint16_t port, const TlsConfig& tls,
                                                          int timeout_ms);
    // TLS over a socket someone else connected (takes ownership of fd).
    static Result<std::unique_ptr<TlsConnection>> over_fd(int fd, const TlsConfig& tls, int timeout_ms);
    ~TlsConnection();

    // One request, the whole response body read.
    Result<HttpResponse> request(const std::string& method, const std::string& target, const Headers& headers,
                                 const std::string& body = {});
    // One request whose response is read as it arrives: `on_head` sees the
    // status (and, for a non-2xx status, the whole body); then `on_line` gets
    // every newline-terminated line of a 2xx body until the end or close().
    // Returns when the body ends; an error when the connection fails midway.
    Result<void> stream_lines(const std::string& method, const std::string& target, const Headers& headers,
                              const std::string& body, const std::function<void(const HttpResponse&)>& on_head,
                              const std::function<void(std::string_view)>& on_line);

    // Unblocks a read in progress from another thread; the connection is done.
    void close();

  private:
    struct Impl;
    explicit TlsConnection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// A blocking TCP connection to host:port within timeout_ms (the fd is the caller's).
Result<int> tcp_connect(const std::string& host, uint16_t port, int timeout_ms);

// "https://host:port" -> host, port (443 by default). IPv6 in brackets.
Result<std::pair<std::string, uint16_t>> split_https_url(const std::string& url);

}  // namespace pwru::plugin
