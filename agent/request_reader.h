// Reading one HTTP/1.x request within HttpLimits: Boost.Beast's parser plus
// the checks the agent adds (method, target length, declared body length),
// and the refusal for each way a read can fail. The server reads through
// these asynchronously; parse_request_bytes() runs the same steps over a
// buffer (the fuzz target and the unit tests).
#pragma once

#include <utility>  // Boost 1.74's asio/awaitable.hpp needs std::exchange

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "agent/server_limits.h"

namespace pwru::agent {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// A reply the server gives on its own: {"error": message, "status": status}.
struct HttpRefusal {
    int status = 400;
    std::string message;
};

// What a connection knows of a request once its head is in.
struct RequestHead {
    std::string method;  // as sent
    std::string target;  // as sent
    std::string path;    // target without ?query
    unsigned version = 11;
    bool keep_alive = true;
    bool has_body = false;  // a Content-Length above 0, or chunked
    std::optional<uint64_t> content_length;
    bool expect_continue = false;
    std::string authorization;  // the header's value, "" without
    std::string content_type;
};

// A fresh parser for the next request: the head is bounded now, the body
// only once admit_body() let it come.
void reset_parser(std::optional<RequestParser>& parser, const HttpLimits& limits);

// After the head was read: the head, or a refusal no route could undo
// (a method HTTP does not define, a target above limits.target_bytes).
std::expected<RequestHead, HttpRefusal> check_head(const RequestParser& parser, const HttpLimits& limits);

// Before the body is read: 413 when the declared length is above the limit
// (a chunked body is cut when it passes the limit, by the parser).
std::optional<HttpRefusal> admit_body(RequestParser& parser, const RequestHead& head, const HttpLimits& limits);

// The refusal for a failed read; nullopt when nobody is left to answer (the
// client closed, the deadline passed, the agent stops).
std::optional<HttpRefusal> refusal_for_read_error(const boost::beast::error_code& ec, const HttpLimits& limits);

// One request parsed from `bytes` by the steps a connection takes: the
// refusal when one was due, else the head once it is in; `complete` is false
// when the bytes end before the request does.
struct ParsedRequest {
    std::optional<HttpRefusal> refused;
    std::optional<RequestHead> head;
    std::string body;
    bool complete = false;
};
ParsedRequest parse_request_bytes(std::string_view bytes, const HttpLimits& limits);

}  // namespace pwru::agent
