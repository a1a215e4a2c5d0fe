#include "kubectl-plugin/tls_client.h"

#include "tracer/util/unique_fd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace pwru::plugin {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using Socket = asio::generic::stream_protocol::socket;

struct TlsConnection::Impl {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    std::unique_ptr<ssl::stream<Socket>> stream;
    beast::flat_buffer buffer;
    std::atomic<int> fd{-1};
    std::string peer;  // "host:port" or "tunnel", for messages
    TlsConfig tls;
    std::string leaf_names;  // the names in the server's certificate, for a name mismatch

    // Runs the io_context until `done` or the timeout (<= 0: no timeout).
    // On timeout the socket is shut down, which fails the pending operation.
    bool run(const bool& done, int timeout_ms) {
        ioc.restart();
        if (timeout_ms <= 0) {
            ioc.run();
        } else {
            ioc.run_for(std::chrono::milliseconds(timeout_ms));
            if (!done) {
                if (int f = fd.load(); f >= 0) ::shutdown(f, SHUT_RDWR);
                ioc.restart();
                ioc.run();  // let the failed operation complete
                return false;
            }
        }
        return done;
    }
};

namespace {

std::string openssl_reason(const boost::system::error_code& ec) {
    std::string msg = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
        // "sslv3 alert bad certificate (SSL routines)" -> the reason part only.
        if (const char* r = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) msg = r;
    }
    return msg;
}

// The peer sent an alert during the handshake: it did not accept our certificate.
std::string refused_message(const std::string& peer, const std::string& alert, const TlsConfig& tls) {
    return peer + " refused the TLS handshake (" + alert + "): is " + tls.cert_source +
           " signed by the CA it trusts, and still valid?";
}

bool is_ip_literal(const std::string& host) {
    in6_addr a6;
    in_addr a4;
    return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// "DNS:a, IP:10.0.0.1, CN=b": what a certificate is for, to show next to the name we expected.
std::string certificate_names(X509* cert) {
    std::string out;
    auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
        if (n->type == GEN_DNS) {
            add("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                     ASN1_STRING_length(n->d.dNSName)));
        } else if (n->type == GEN_IPADD && (n->d.iPAddress->length == 4 || n->d.iPAddress->length == 16)) {
            char buf[INET6_ADDRSTRLEN] = {};
            inet_ntop(n->d.iPAddress->length == 4 ? AF_INET : AF_INET6, n->d.iPAddress->data, buf, sizeof buf);
            add(std::string("IP:") + buf);
        }
    }
    if (sans) GENERAL_NAMES_free(sans);
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
        add(std::string("CN=") + cn);
    return out.empty() ? "no names" : out;
}

}  // namespace

Result<int> tcp_connect(const std::string& host, uint16_t port, int timeout_ms) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) return fail("cannot resolve '" + host + "': " + gai_strerror(rc));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);
    int last_err = 0;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
        if (!fd) {
            last_err = errno;
            continue;
        }
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last_err = errno;
            continue;
        }
        pollfd p{fd.get(), POLLOUT, 0};
        int n = ::poll(&p, 1, timeout_ms);
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (n == 1) getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (n == 1 && soerr == 0) {
            int flags = fcntl(fd.get(), F_GETFL);
            fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
            return fd.release();
        }
        last_err = n == 0 ? ETIMEDOUT : soerr;
    }
    return fail("cannot connect to " + host + ":" + std::to_string(port), last_err);
}

TlsConnection::TlsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsConnection::~TlsConnection() = default;

Result<std::unique_ptr<TlsConnection>> TlsConnection::connect(const std::string& host, uint16_t port,
                                                              const TlsConfig& tls, int timeout_ms) {
    auto fd = tcp_connect(host, port, timeout_ms);
    if (!fd) return std::unexpected(fd.error());
    TlsConfig t = tls;
    if (t.server_name.empty()) t.server_name = host;
    auto c = over_fd(*fd, t, timeout_ms);
    if (c) (*c)->impl_->peer = host + ":" + std::to_string(port);
    return c;
}

Result<std::unique_ptr<TlsConnection>> TlsConnection::over_fd(int fd_in, const TlsConfig& tls, int timeout_ms) {
    UniqueFd owned(fd_in);  // closed on every early return; the stream takes it at the end
    const int fd = owned.get();
    auto impl = std::make_unique<Impl>();
    impl->tls = tls;
    impl->peer = !tls.peer.empty() ? tls.peer : tls.server_name.empty() ? "the peer" : tls.server_name;
    boost::system::error_code ec;
    impl->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                          ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!tls.ca_pem.empty()) {
        impl->ctx.add_certificate_authority(asio::buffer(tls.ca_pem), ec);
        if (ec) {
            return bad_input(tls.ca_source + " is not a PEM certificate (" + ec.message() + ")");
        }
    } else {
        impl->ctx.set_default_verify_paths(ec);
    }
    if (!tls.cert_pem.empty() || !tls.key_pem.empty()) {
        impl->ctx.use_certificate_chain(asio::buffer(tls.cert_pem), ec);
        if (ec) {
            return bad_input(tls.cert_source + " is not a PEM certificate (" + ec.message() + ")");
        }
        impl->ctx.use_private_key(asio::buffer(tls.key_pem), ssl::context::pem, ec);
        if (ec) {
            return bad_input(tls.key_source + " is not a PEM private key (" + ec.message() + ")");
        }
        if (SSL_CTX_check_private_key(impl->ctx.native_handle()) != 1) {
            return bad_input(tls.key_source + " does not belong to " + tls.cert_source);
        }
    }
    impl->ctx.set_verify_mode(tls.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);

    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    impl->stream = std::make_unique<ssl::stream<Socket>>(impl->ioc, impl->ctx);
    impl->stream->next_layer().assign(asio::generic::stream_protocol(ss.ss_family, SOCK_STREAM), fd, ec);
    if (ec) return fail("cannot use the connection: " + ec.message());
    impl->fd = owned.release();  // the stream's socket owns it now
    if (!tls.server_name.empty()) {
        SSL* ssl = impl->stream->native_handle();
        const bool ip = is_ip_literal(tls.server_name);
        if (!ip) SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
        if (!tls.insecure_skip_verify) {
            // OpenSSL's own name check (RFC 6125, as Boost's host_name_verification):
            // a mismatch is then its own verify result, X509_V_ERR_HOSTNAME_MISMATCH.
            if (ip)
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), tls.server_name.c_str());
            else
                SSL_set1_host(ssl, tls.server_name.c_str());
            Impl* im = impl.get();
            impl->stream->set_verify_callback([im](bool preverified, ssl::verify_context& vc) {
                X509_STORE_CTX* sc = vc.native_handle();
                if (X509_STORE_CTX_get_error_depth(sc) == 0)
                    if (X509* leaf = X509_STORE_CTX_get_current_cert(sc)) im->leaf_names = certificate_names(leaf);
                return preverified;
            });
        }
    }

    bool done = false;
    boost::system::error_code hs_ec;
    impl->stream->async_handshake(ssl::stream_base::client, [&](const boost::system::error_code& e) {
        hs_ec = e;
        done = true;
    });
    if (!impl->run(done, timeout_ms))
        return fail("TLS handshake with " + impl->peer + " timed out after " + std::to_string(timeout_ms) + " ms");
    if (hs_ec) {
        long vr = SSL_get_verify_result(impl->stream->native_handle());
        std::string why = openssl_reason(hs_ec);
        if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
            return fail("the certificate of " + impl->peer + " does not carry the name " + tls.server_name +
                        " (it has " + impl->leaf_names + "); check " + tls.server_name_source);
        if (vr != X509_V_OK)
            return fail("the certificate of " + impl->peer + " is not trusted: " + X509_verify_cert_error_string(vr) +
                        "; check " + tls.ca_source);
        if (why.find("alert") != std::string::npos) return fail(refused_message(impl->peer, why, tls));
        return fail("TLS handshake with " + impl->peer + " failed: " + why);
    }
    return std::unique_ptr<TlsConnection>(new TlsConnection(std::move(impl)));
}

void TlsConnection::close() {
    if (int f = impl_->fd.load(); f >= 0) ::shutdown(f, SHUT_RDWR);
}

namespace {

http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                              const std::string& host, const Headers& headers,
                                              const std::string& body) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host.empty() ? "localhost" : host);
    req.set(http::field::user_agent, "kubectl-pwru");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    return req;
}

}  // namespace

Result<HttpResponse> TlsConnection::request(const std::string& method, const std::string& target,
                                            const Headers& headers, const std::string& body) {
    HttpResponse out;
    auto r = stream_lines(
        method, target, headers, body, [&](const HttpResponse& head) { out = head; },
        [&](std::string_view line) {
            out.body.append(line);
            out.body.push_back('\n');
        });
    if (!r) return std::unexpected(r.error());
    return out;
}

Result<void> TlsConnection::stream_lines(const std::string& method, const std::string& target, const Headers& headers,
                                         const std::string& body,
                                         const std::function<void(const HttpResponse&)>& on_head,
                                         const std::function<void(std::string_view)>& on_line) {
    Impl& im = *impl_;
    auto req = make_request(method, target, im.tls.server_name, headers, body);
    bool done = false;
    boost::system::error_code ec;
    http::async_write(*im.stream, req, [&](const boost::system::error_code& e, size_t) {
        ec = e;
        done = true;
    });
    im.run(done, 0);
    if (ec) return fail("cannot send the request to " + im.peer + ": " + openssl_reason(ec));

    http::response_parser<http::buffer_body> parser;
    // Not boost::none: Beast 1.74 compares the length against the optional, and none loses.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    done = false;
    http::async_read_header(*im.stream, im.buffer, parser, [&](const boost::system::error_code& e, size_t) {
        ec = e;
        done = true;
    });
    im.run(done, 0);
    if (ec) {
        // With TLS 1.3 the server checks our certificate after our side of the
        // handshake is done: its refusal is an alert on this first read.
        std::string why = openssl_reason(ec);
        if (ec.category() == asio::error::get_ssl_category() && why.find("alert") != std::string::npos)
            return fail(refused_message(im.peer, why, im.tls));
        return fail(im.peer + " closed the connection before answering: " + why);
    }

    HttpResponse head;
    head.status = int(parser.get().result_int());
    head.content_type = std::string(parser.get()[http::field::content_type]);
    const bool ok = head.status >= 200 && head.status < 300;
    if (ok) on_head(head);  // a non-2xx status is told with its whole body, below

    std::string pending;  // a line not yet terminated
    char chunk[16384];
    while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        done = false;
        // read_some, not read: read fills the whole chunk (or ends the body)
        // before it returns, which would hold a quiet stream's lines back for
        // as long as the trace runs.
        http::async_read_some(*im.stream, im.buffer, parser, [&](const boost::system::error_code& e, size_t) {
            ec = e;
            done = true;
        });
        im.run(done, 0);
        if (ec == http::error::need_buffer) ec = {};
        size_t got = sizeof chunk - parser.get().body().size;
        if (ok) {
            pending.append(chunk, got);
            size_t start = 0, nl;
            while ((nl = pending.find('\n', start)) != std::string::npos) {
                on_line(std::string_view(pending).substr(start, nl - start));
                start = nl + 1;
            }
            pending.erase(0, start);
        } else {
            head.body.append(chunk, got);
        }
        if (ec) {
            if (!ok) break;
            return fail("the stream from " + im.peer + " broke: " + openssl_reason(ec));
        }
    }
    if (!ok) {
        on_head(head);
        return {};
    }
    if (!pending.empty()) on_line(pending);
    return {};
}

Result<std::pair<std::string, uint16_t>> split_https_url(const std::string& url) {
    const std::string scheme = "https://";
    if (url.rfind(scheme, 0) != 0) return bad_input("'" + url + "' is not an https:// URL");
    std::string rest = url.substr(scheme.size());
    rest = rest.substr(0, rest.find('/'));
    std::string host;
    std::string port = "443";
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string::npos) return bad_input("'" + url + "': unterminated IPv6 address");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        host = rest.substr(0, colon);
        if (colon != std::string::npos) port = rest.substr(colon + 1);
    }
    int p = 0;
    try {
        p = std::stoi(port);
    } catch (...) {
        p = 0;
    }
    if (host.empty() || p <= 0 || p > 65535) return bad_input("'" + url + "' has no valid host and port");
    return std::pair{host, uint16_t(p)};
}

}  // namespace pwru::plugin
