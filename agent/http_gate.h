// What the agent's HTTP servers do around the handlers, against hostile
// clients (issue #23): one listener per port (no SO_REUSEPORT), a bounded
// request body read through a counting receiver, refusals that close the
// connection without reading what the client still sends, and the
// documented JSON error body on every non-2xx answer, the library's own too.
#pragma once

#include <cstddef>
#include <string>

#include <httplib.h>

namespace pwru::agent {

// The largest POST /v1/trace body (docs/agent-api.md "Limits"): a request is
// a few hundred bytes; 64 KiB leaves room for long filters and args.
inline constexpr size_t kMaxTraceBodyBytes = 64 * 1024;

// {"error": message, "status": status} as the reply.
void send_error(httplib::Response& res, int status, const std::string& message);

// The reply closes the connection once written: what the client still sends
// (an unread body) is drained for at most a moment, never parsed.
void close_after_reply(httplib::Response& res);

// Socket options (SO_REUSEADDR only: a second agent on the port fails to
// bind), the library's own body ceiling, JSON error bodies, and the
// close-after-reply mechanics. `tls`: the connection's fd is reachable
// through the request's SSL; without TLS every connection serves one request.
void harden(httplib::Server& s, bool tls);

// Reads the body through `reader`, at most `limit` bytes, Content-Length or
// chunked alike. false: over the limit (413 sent, connection closed) or a
// broken body (400 sent).
bool read_bounded_body(httplib::Response& res, const httplib::ContentReader& reader,
                       size_t limit, std::string& body);

}  // namespace pwru::agent
