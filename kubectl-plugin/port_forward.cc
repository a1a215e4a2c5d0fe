#include "kubectl-plugin/port_forward.h"
#include "kubectl-plugin/port_forward_refusal.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace pwru::plugin {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using Socket = asio::generic::stream_protocol::socket;
using Ws = websocket::stream<ssl::stream<Socket>>;

namespace {

// Binary frames, a channel byte first: what kubelets answer since Kubernetes
// 1.6, and current API servers still pass it through (their own WebSocket
// translation only takes the SPDY-tunnelling subprotocol kubectl uses).
constexpr const char* kChannelProtocol = "v4.channel.k8s.io";

// Shuts a socket down if not disarmed in time: bounds the blocking handshakes.
class Watchdog {
  public:
    Watchdog(int fd, int timeout_ms)
        : thread_([this, fd, timeout_ms] {
              std::unique_lock lock(mu_);
              if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return disarmed_; })) {
                  fired_ = true;
                  ::shutdown(fd, SHUT_RDWR);
              }
          }) {}
    ~Watchdog() { disarm(); }
    // Returns whether it fired before being disarmed.
    bool disarm() {
        {
            std::lock_guard lock(mu_);
            disarmed_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
        return fired_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool disarmed_ = false;
    bool fired_ = false;
    std::thread thread_;
};

}  // namespace

struct PortForward::Impl {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    std::unique_ptr<Ws> ws;
    std::unique_ptr<asio::local::stream_protocol::socket> local;
    int caller_fd = -1;
    std::thread thread;

    beast::flat_buffer ws_in;
    std::array<char, 16384> local_in{};
    std::vector<uint8_t> ws_out;
    bool seen_port[2] = {false, false};
    mutable std::mutex mu;
    std::string error_text;

    void close_all() {
        boost::system::error_code ec;
        if (local) local->shutdown(asio::socket_base::shutdown_both, ec);
        if (ws) ws->next_layer().next_layer().shutdown(asio::socket_base::shutdown_both, ec);
    }

    // Tunnel -> local: strip the channel byte (and each channel's port preamble).
    void read_ws() {
        ws->async_read(ws_in, [this](boost::system::error_code ec, size_t) {
            if (ec) return close_all();
            auto data = ws_in.cdata();
            const auto* p = static_cast<const uint8_t*>(data.data());
            size_t n = data.size();
            if (n == 0) {
                ws_in.consume(n);
                return read_ws();
            }
            uint8_t channel = p[0];
            size_t skip = 1;
            if (channel < 2 && !seen_port[channel]) {
                seen_port[channel] = true;
                skip = std::min<size_t>(n, 3);
            }
            if (channel == 1) {
                std::lock_guard lock(mu);
                error_text.append(reinterpret_cast<const char*>(p + skip), n - skip);
                ws_in.consume(n);
                return read_ws();
            }
            if (channel != 0 || n == skip) {
                ws_in.consume(n);
                return read_ws();
            }
            asio::async_write(*local, asio::buffer(p + skip, n - skip), [this, n](boost::system::error_code e, size_t) {
                ws_in.consume(n);
                if (e) return close_all();
                read_ws();
            });
        });
    }

    // Local -> tunnel: each chunk as one binary frame on the data channel.
    void read_local() {
        local->async_read_some(asio::buffer(local_in), [this](boost::system::error_code ec, size_t n) {
            if (ec) {
                // The caller is done: close the WebSocket politely, then everything.
                ws->async_close(websocket::close_code::normal, [this](boost::system::error_code) { close_all(); });
                return;
            }
            ws_out.assign(1, 0);
            ws_out.insert(ws_out.end(), local_in.begin(), local_in.begin() + n);
            ws->binary(true);
            ws->async_write(asio::buffer(ws_out), [this](boost::system::error_code e, size_t) {
                if (e) return close_all();
                read_local();
            });
        });
    }
};

PortForward::PortForward(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PortForward::~PortForward() {
    if (impl_->thread.joinable()) {
        asio::post(impl_->ioc, [this] { impl_->close_all(); });
        impl_->thread.join();
    }
    if (impl_->caller_fd >= 0) ::close(impl_->caller_fd);
}

int PortForward::take_fd() {
    int fd = impl_->caller_fd;
    impl_->caller_fd = -1;
    return fd;
}

std::string PortForward::error() const {
    std::lock_guard lock(impl_->mu);
    return impl_->error_text;
}

Result<std::unique_ptr<PortForward>> PortForward::open(const KubeApi& api, const std::string& ns,
                                                       const std::string& pod, uint16_t port, int timeout_ms) {
    auto impl = std::make_unique<Impl>();
    TlsConfig t = api.tls();
    boost::system::error_code ec;
    impl->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3);
    if (!t.ca_pem.empty())
        impl->ctx.add_certificate_authority(asio::buffer(t.ca_pem), ec);
    else
        impl->ctx.set_default_verify_paths(ec);
    if (ec) return bad_input(t.ca_source + " is not a PEM certificate");
    if (!t.cert_pem.empty()) {
        impl->ctx.use_certificate_chain(asio::buffer(t.cert_pem), ec);
        if (ec) return bad_input(t.cert_source + " is not a PEM certificate");
        impl->ctx.use_private_key(asio::buffer(t.key_pem), ssl::context::pem, ec);
        if (ec) return bad_input(t.key_source + " is not a PEM private key");
    }
    impl->ctx.set_verify_mode(t.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);

    auto fd = tcp_connect(api.host(), api.port(), timeout_ms);
    if (!fd) return std::unexpected(fd.error());
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(*fd, reinterpret_cast<sockaddr*>(&ss), &len);
    impl->ws = std::make_unique<Ws>(impl->ioc, impl->ctx);
    impl->ws->next_layer().next_layer().assign(asio::generic::stream_protocol(ss.ss_family, SOCK_STREAM), *fd, ec);
    if (ec) {
        ::close(*fd);
        return fail("cannot use the connection to the API server");
    }
    if (!t.insecure_skip_verify) impl->ws->next_layer().set_verify_callback(ssl::host_name_verification(t.server_name));

    // Handshakes are blocking here, bounded by the watchdog: nothing else runs yet.
    Watchdog watchdog(*fd, timeout_ms);
    const std::string timed_out = "the API server " + api.access().server +
                                  " did not complete the port-forward within " + std::to_string(timeout_ms) + " ms";
    if (!t.server_name.empty()) SSL_set_tlsext_host_name(impl->ws->next_layer().native_handle(), t.server_name.c_str());
    impl->ws->next_layer().handshake(ssl::stream_base::client, ec);
    if (ec && watchdog.disarm()) return fail(timed_out);
    if (ec) return fail("TLS handshake with the API server " + api.access().server + " failed: " + ec.message());

    const std::string target = "/api/v1/namespaces/" + url_escape(ns) + "/pods/" + url_escape(pod) +
                               "/portforward?ports=" + std::to_string(port);
    // The upgrade as client-go's WebSocket clients send it: the credentials,
    // the channel subprotocol, and no Accept (the kubelet's streaming route
    // produces no media type and answers an Accept it cannot match with 406,
    // through the API server). No Origin: a browser's header, and an API
    // server that checks it would refuse ours. Host carries the port when it
    // is not 443, as Go's client sends it.
    Headers credentials = api.credential_headers();
    const std::string host_header = (api.host().find(':') != std::string::npos ? "[" + api.host() + "]" : api.host()) +
                                    (api.port() == 443 ? "" : ":" + std::to_string(api.port()));
    impl->ws->set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
        for (const auto& [k, v] : credentials) req.set(k, v);
        req.set(http::field::sec_websocket_protocol, kChannelProtocol);
        req.set(http::field::user_agent, "kubectl-pwru");
    }));
    // Asynchronous only to keep the answer of a declined upgrade: Beast 1.74's
    // blocking handshake drops it, its asynchronous one hands it over.
    websocket::response_type res;
    impl->ws->async_handshake(res, host_header, target, [&ec](boost::system::error_code e) { ec = e; });
    impl->ioc.run();
    impl->ioc.restart();
    if (watchdog.disarm()) return fail(timed_out);
    if (ec == websocket::error::upgrade_declined) {
        return fail(port_forward_refusal(
            {ns, pod, port, res.result_int(), std::string(res.reason()), res.body(), api.access().context_name}));
    }
    if (ec) {
        // No HTTP answer to show (the connection ended, or the answer was not
        // a WebSocket upgrade): ask for the pod itself to get the API's reason
        // (not found, forbidden), else say what broke.
        std::string why = ec.message();
        if (auto p = api.get_pod(ns, pod); !p) why = p.error().message();
        return fail("port-forward to " + ns + "/" + pod + ":" + std::to_string(port) + " refused: " + why);
    }
    // The server picks one of the offered subprotocols, or none (the kubelet's
    // unnamed protocol: the same binary channels and port preamble).
    if (auto chosen = std::string(res[http::field::sec_websocket_protocol]);
        !chosen.empty() && chosen != kChannelProtocol)
        return fail("port-forward to " + ns + "/" + pod + ":" + std::to_string(port) +
                    ": the API server chose the "
                    "subprotocol '" +
                    chosen + "', not " + kChannelProtocol + "; use --direct");
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) return fail("socketpair", errno);
    impl->local = std::make_unique<asio::local::stream_protocol::socket>(impl->ioc);
    impl->local->assign(asio::local::stream_protocol(), sp[0], ec);
    impl->caller_fd = sp[1];
    Impl* raw = impl.get();
    raw->read_ws();
    raw->read_local();
    raw->thread = std::thread([raw] { raw->ioc.run(); });
    return std::unique_ptr<PortForward>(new PortForward(std::move(impl)));
}

}  // namespace pwru::plugin
