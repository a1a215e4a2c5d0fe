#include "agent/http_gate.h"

#include <poll.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <chrono>

#include <nlohmann/json.hpp>

namespace pwru::agent {
namespace {

using nlohmann::json;

// How long a refused connection's unread data is drained before the socket
// closes: closing with unread data sends a RST that can destroy the reply
// before the client reads it; draining longer would let a client hold a worker.
constexpr auto kLingerDrain = std::chrono::seconds(2);

// Marks the reply for the logger hook, which runs once it is written.
constexpr const char* kCloseMark = "Connection";

std::string default_message(const httplib::Request& req, int status) {
    switch (status) {
    case 400: return "malformed HTTP request (request line, headers or chunked body); see docs/agent-api.md";
    case 404: return "no endpoint " + req.path + " on this port; see docs/agent-api.md";
    case 413: return "request body above " + std::to_string(kMaxTraceBodyBytes) + " bytes; send a smaller request";
    case 414: return "request line too long; see docs/agent-api.md";
    case 416: return "Range requests are not supported; drop the Range header";
    default: return "HTTP status " + std::to_string(status) + "; see docs/agent-api.md";
    }
}

// Half-closes, reads and discards what the client still sends for at most
// kLingerDrain, then shuts reading too so the server's loop ends the connection.
void linger_close(int fd) {
    ::shutdown(fd, SHUT_WR);
    const auto end = std::chrono::steady_clock::now() + kLingerDrain;
    char buf[16384];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
    }
    ::shutdown(fd, SHUT_RD);
}

}  // namespace

void send_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    // replace: a client's invalid UTF-8 echoed in a message must not throw.
    res.set_content(json{{"error", message}, {"status", status}}.dump(-1, ' ', false, json::error_handler_t::replace) +
                        "\n",
                    "application/json");
}

void close_after_reply(httplib::Response& res) { res.set_header(kCloseMark, "close"); }

void harden(httplib::Server& s, bool tls) {
    // httplib sets SO_REUSEPORT on Linux: a second agent would share the port.
    s.set_socket_options([](int sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    s.set_payload_max_length(kMaxTraceBodyBytes);
    // The library's own refusals (parser 400/414, 404, 413) get the documented body.
    s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.content_length_ > 0) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 400 || res.status == 413 || res.status == 414) close_after_reply(res);
        send_error(res, res.status, default_message(req, res.status));
        return httplib::Server::HandlerResponse::Handled;
    }));
    if (!tls) {
        // Plain HTTP (probes): one request per connection, so nothing unread is parsed.
        s.set_keep_alive_max_count(1);
        return;
    }
    s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
        if (res.get_header_value(kCloseMark) != "close" || !req.ssl) return;
        int fd = SSL_get_fd(req.ssl);
        if (fd >= 0) linger_close(fd);
    });
}

bool read_bounded_body(httplib::Response& res, const httplib::ContentReader& reader,
                       size_t limit, std::string& body) {
    bool over = false;
    bool ok = reader([&](const char* data, size_t n) {
        if (body.size() + n > limit) {
            over = true;
            return false;
        }
        body.append(data, n);
        return true;
    });
    if (over || res.status == 413) {
        body.clear();
        close_after_reply(res);
        send_error(res, 413,
                   "request body above " + std::to_string(limit) + " bytes; a trace request is a small JSON object");
        return false;
    }
    if (!ok) {
        close_after_reply(res);
        send_error(res, 400, "the request body could not be read (broken chunked encoding or a short body)");
        return false;
    }
    return true;
}

}  // namespace pwru::agent
