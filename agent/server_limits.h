// The bounds every connection of the agent's HTTP listeners lives within
// (issue #23; docs/agent-api.md "Limits"). A client that has not proven who
// it is can hold a connection for at most `tls_handshake` plus
// `request_head`, and at most `max_per_source` of them.
#pragma once

#include <chrono>
#include <cstddef>

namespace pwru::agent {

struct HttpLimits {
    // The whole TLS handshake, from accept (not per read: a ClientHello
    // trickled one byte every 2 s is cut at 5 s).
    std::chrono::milliseconds tls_handshake{5000};
    // From the moment a connection may send a request (after the handshake,
    // or after the previous reply) to the end of its head: idle keep-alive
    // and header trickling alike.
    std::chrono::milliseconds request_head{10000};
    // The whole body, once admitted.
    std::chrono::milliseconds request_body{10000};
    // One reply, or one batch of a stream, written to a client that reads
    // nothing: the connection (and a stream's trace) ends.
    std::chrono::milliseconds reply_write{30000};
    // After a refusal that leaves input unread, that input is discarded for
    // this long before the socket closes (closing with unread data sends a
    // RST that can destroy the reply before the client reads it).
    std::chrono::milliseconds linger{2000};

    size_t head_bytes = 16 * 1024;   // request line + headers: 431 above
    size_t target_bytes = 8 * 1024;  // the request target alone: 414 above
    size_t body_bytes = 64 * 1024;   // 413 above, from Content-Length before reading

    // Connections of one listener, and of one client address. At the total
    // cap the oldest connection that has not sent a request head yet is
    // closed to make room, so a flood of idle sockets cannot lock others out.
    size_t max_connections = 256;
    size_t max_per_source = 32;

    // Bytes a stream's producer may have written ahead of the socket before
    // it waits (a slow client costs ring-buffer loss, not agent memory).
    size_t stream_queue_bytes = 256 * 1024;
};

}  // namespace pwru::agent
