#include "agent/request_reader.h"

#include <limits>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace pwru::agent {
namespace http = boost::beast::http;

void reset_parser(std::optional<RequestParser>& parser, const HttpLimits& limits) {
    parser.emplace();
    parser->header_limit(static_cast<std::uint32_t>(limits.head_bytes));
    // Unbounded until admitted: a route may refuse (404, 403) a request whose
    // declared body is large without reading it. Not boost::none: Beast 1.74
    // compares the declared length with the optional itself (`len_ >
    // body_limit_`), and any number is greater than an empty optional.
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
}

std::expected<RequestHead, HttpRefusal> check_head(const RequestParser& parser, const HttpLimits& limits) {
    const auto& req = parser.get();
    RequestHead h;
    h.method = std::string(req.method_string());
    h.target = std::string(req.target());
    h.version = req.version();
    h.keep_alive = req.keep_alive();
    h.has_body = parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
    if (parser.content_length()) h.content_length = *parser.content_length();
    if (auto it = req.find(http::field::expect); it != req.end())
        h.expect_continue = boost::beast::iequals(it->value(), "100-continue");
    if (auto it = req.find(http::field::authorization); it != req.end()) h.authorization = std::string(it->value());
    if (auto it = req.find(http::field::content_type); it != req.end()) h.content_type = std::string(it->value());
    if (req.method() == http::verb::unknown)
        return std::unexpected(HttpRefusal{400,
                                           "malformed HTTP request: method is not one HTTP defines; see "
                                           "docs/agent-api.md"});
    if (h.target.size() > limits.target_bytes)
        return std::unexpected(HttpRefusal{414, "request target of " + std::to_string(h.target.size()) +
                                                    " bytes is too long (limit " + std::to_string(limits.target_bytes) +
                                                    "); see docs/agent-api.md"});
    h.path = h.target.substr(0, h.target.find('?'));
    return h;
}

std::optional<HttpRefusal> admit_body(RequestParser& parser, const RequestHead& head, const HttpLimits& limits) {
    if (head.content_length && *head.content_length > limits.body_bytes)
        return HttpRefusal{413, "request body of " + std::to_string(*head.content_length) +
                                    " bytes is above the agent's limit of " + std::to_string(limits.body_bytes) +
                                    " bytes; a trace request is a small JSON object"};
    parser.body_limit(limits.body_bytes);
    return std::nullopt;
}

std::optional<HttpRefusal> refusal_for_read_error(const boost::beast::error_code& ec, const HttpLimits& limits) {
    if (ec == http::error::header_limit)
        return HttpRefusal{431, "request head above " + std::to_string(limits.head_bytes) +
                                    " bytes (request line and headers); send fewer or shorter headers"};
    if (ec == http::error::body_limit)
        return HttpRefusal{413, "request body above " + std::to_string(limits.body_bytes) +
                                    " bytes; a trace request is a small JSON object"};
    // The client left, the deadline passed, the agent closes: nobody to answer.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == boost::beast::error::timeout ||
        ec == boost::asio::error::operation_aborted || ec == boost::asio::error::eof ||
        ec.category() == boost::asio::error::get_system_category() ||
        ec.category() == boost::asio::error::get_ssl_category() || ec == boost::asio::ssl::error::stream_truncated)
        return std::nullopt;
    return HttpRefusal{400, "malformed HTTP request (" + ec.message() + "); see docs/agent-api.md"};
}

ParsedRequest parse_request_bytes(std::string_view bytes, const HttpLimits& limits) {
    ParsedRequest out;
    std::optional<RequestParser> parser;
    reset_parser(parser, limits);
    boost::beast::error_code ec;
    std::string_view rest = bytes;
    // One put() step; false: stop (incomplete, or refused into out.head).
    auto step = [&] {
        if (rest.empty()) {
            if (!parser->is_header_done()) return false;
            parser->put_eof(ec);  // the client closed: a body without its end
            if (!ec && !parser->is_done()) return false;
        } else {
            size_t used = parser->put(boost::asio::buffer(rest.data(), rest.size()), ec);
            rest.remove_prefix(used);
            if (ec == http::error::need_more) {
                ec = {};
                return used > 0;
            }
        }
        if (!ec) return true;
        out.refused = refusal_for_read_error(ec, limits);
        return false;
    };
    while (!parser->is_header_done())
        if (!step()) return out;
    auto head = check_head(*parser, limits);
    if (!head) {
        out.refused = head.error();
        return out;
    }
    out.head = *head;
    if ((out.refused = admit_body(*parser, *out.head, limits))) return out;
    while (!parser->is_done())
        if (!step()) return out;
    out.complete = true;
    out.body = parser->release().body();
    return out;
}

}  // namespace pwru::agent
