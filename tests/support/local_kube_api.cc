#include "support/local_kube_api.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <tuple>

namespace pwru::test {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

namespace {

nlohmann::json status_error(int code, const std::string& reason, const std::string& message) {
    return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason},
            {"code", code}};
}

std::map<std::string, std::string> parse_query(const std::string& q) {
    std::map<std::string, std::string> out;
    std::stringstream ss(q);
    std::string kv;
    auto unescape = [](const std::string& s) {
        std::string o;
        for (size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '%' && i + 2 < s.size()) {
                o.push_back(char(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
                i += 2;
            } else {
                o.push_back(s[i] == '+' ? ' ' : s[i]);
            }
        }
        return o;
    };
    while (std::getline(ss, kv, '&')) {
        auto eq = kv.find('=');
        out[unescape(kv.substr(0, eq))] = eq == std::string::npos ? "" : unescape(kv.substr(eq + 1));
    }
    return out;
}

// "a=b,c=d" (equality terms only: what the plugin's tests use).
bool labels_match(const nlohmann::json& labels, const std::string& selector) {
    std::stringstream ss(selector);
    std::string term;
    while (std::getline(ss, term, ',')) {
        auto eq = term.find('=');
        if (eq == std::string::npos) return false;
        std::string k = term.substr(0, eq), v = term.substr(eq + 1);
        if (!labels.contains(k) || labels[k] != v) return false;
    }
    return true;
}

// go-restful's Accept check for a route that declares no Produces (the
// kubelet's and the CRI streaming server's port-forward routes): only an
// absent Accept or one listing */* matches.
bool accept_matches_streaming_route(const std::string& accept) {
    if (accept.empty()) return true;
    std::stringstream ss(accept);
    std::string type;
    while (std::getline(ss, type, ',')) {
        type = type.substr(0, type.find(';'));
        type.erase(0, type.find_first_not_of(" \t"));
        type.erase(type.find_last_not_of(" \t") + 1);
        if (type == "*/*") return true;
    }
    return false;
}

// Opens `sock` in the network namespace at `netns_path` ("" = ours): a
// socket belongs to the netns it was created in, so only this thread visits
// it, and comes back before connecting.
void open_in_netns(tcp::socket& sock, const std::string& netns_path, boost::system::error_code& ec) {
    if (netns_path.empty()) {
        sock.open(tcp::v4(), ec);
        return;
    }
    int target = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (target < 0 || home < 0 || ::setns(target, CLONE_NEWNET) != 0) {
        ec = boost::system::error_code(errno, boost::system::system_category());
    } else {
        sock.open(tcp::v4(), ec);
        if (::setns(home, CLONE_NEWNET) != 0) ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (target >= 0) ::close(target);
    if (home >= 0) ::close(home);
}

}  // namespace

struct LocalKubeApi::Impl {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_server};
    tcp::acceptor acceptor{ioc};
    std::string token;
    mutable std::mutex mu;
    std::vector<nlohmann::json> pods;
    std::map<std::string, nlohmann::json> objects;
    std::map<std::string, std::pair<uint16_t, std::string>> forwards;  // "ns/pod:port" -> local port, netns
    std::vector<std::string> seen;
    std::map<std::string, std::string> forbidden_pf;  // ns -> user denied pods/portforward
    std::map<std::string, std::string> last_pf_headers;
    std::atomic<bool> stopping{false};
    std::thread accept_thread;
    std::mutex threads_mu;
    std::vector<std::thread> conn_threads;

    std::pair<int, nlohmann::json> route(const std::string& path, const std::string& query) {
        std::lock_guard lock(mu);
        auto q = parse_query(query);
        if (auto it = objects.find(path); it != objects.end()) return {200, it->second};
        // /api/v1/namespaces/NS/pods[/NAME] and /api/v1/pods
        const std::string pfx = "/api/v1/namespaces/";
        std::string ns, name;
        bool list = false;
        if (path == "/api/v1/pods") {
            list = true;
        } else if (path.rfind(pfx, 0) == 0) {
            std::string rest = path.substr(pfx.size());
            auto s1 = rest.find('/');
            if (s1 == std::string::npos)
                return {404, status_error(404, "NotFound", "the server could not find the requested resource")};
            ns = rest.substr(0, s1);
            std::string tail = rest.substr(s1 + 1);
            if (tail == "pods")
                list = true;
            else if (tail.rfind("pods/", 0) == 0)
                name = tail.substr(5);
            else
                return {404, status_error(404, "NotFound", "the server could not find the requested resource")};
        } else {
            return {404, status_error(404, "NotFound", "the server could not find the requested resource")};
        }
        if (!list) {
            for (const auto& p : pods)
                if (p["metadata"]["namespace"] == ns && p["metadata"]["name"] == name) return {200, p};
            return {404, status_error(404, "NotFound", "pods \"" + name + "\" not found")};
        }
        nlohmann::json items = nlohmann::json::array();
        for (const auto& p : pods) {
            if (!ns.empty() && p["metadata"]["namespace"] != ns) continue;
            if (q.contains("labelSelector") && !labels_match(p["metadata"]["labels"], q["labelSelector"])) continue;
            if (q.contains("fieldSelector")) {
                const std::string fs = q["fieldSelector"], key = "spec.nodeName=";
                if (fs.rfind(key, 0) != 0 || p["spec"]["nodeName"] != fs.substr(key.size())) continue;
            }
            items.push_back(p);
        }
        return {
            200,
            {{"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", "1"}}}, {"items", items}}};
    }

    void serve_port_forward(asio::io_context& ioc, ssl::stream<tcp::socket>& tls, http::request<http::string_body>& req,
                            uint16_t local_port, uint16_t remote_port, const std::string& netns_path) {
        websocket::stream<ssl::stream<tcp::socket>&> ws(tls);
        ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::sec_websocket_protocol, "v4.channel.k8s.io"); }));
        boost::system::error_code ec;
        ws.accept(req, ec);
        if (ec) return;
        ws.binary(true);
        uint8_t pre0[3] = {0, uint8_t(remote_port & 0xff), uint8_t(remote_port >> 8)};
        uint8_t pre1[3] = {1, uint8_t(remote_port & 0xff), uint8_t(remote_port >> 8)};
        ws.write(asio::buffer(pre0), ec);
        ws.write(asio::buffer(pre1), ec);
        tcp::socket upstream(ws.get_executor());
        open_in_netns(upstream, netns_path, ec);
        if (!ec) upstream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), local_port), ec);
        if (ec) {
            std::string msg =
                "\x01"
                "error forwarding port " +
                std::to_string(remote_port) + ": connection refused";
            ws.write(asio::buffer(msg), ec);
            ws.close(websocket::close_code::normal, ec);
            return;
        }
        // Bridge asynchronously on this connection's own io_context.
        beast::flat_buffer in;
        std::array<char, 16384> up{};
        std::vector<uint8_t> out;
        std::function<void()> read_ws, read_up;
        read_ws = [&] {
            ws.async_read(in, [&](boost::system::error_code e, size_t) {
                if (e) {
                    upstream.close(e);
                    return;
                }
                auto d = in.cdata();
                const auto* p = static_cast<const uint8_t*>(d.data());
                size_t n = d.size();
                if (n < 2 || p[0] != 0) {
                    in.consume(n);
                    return read_ws();
                }
                asio::async_write(upstream, asio::buffer(p + 1, n - 1), [&, n](boost::system::error_code e2, size_t) {
                    in.consume(n);
                    if (e2) return;
                    read_ws();
                });
            });
        };
        read_up = [&] {
            upstream.async_read_some(asio::buffer(up), [&](boost::system::error_code e, size_t n) {
                if (e) {
                    ws.async_close(websocket::close_code::normal, [](boost::system::error_code) {});
                    return;
                }
                out.assign(1, 0);
                out.insert(out.end(), up.begin(), up.begin() + n);
                ws.async_write(asio::buffer(out), [&](boost::system::error_code e2, size_t) {
                    if (e2) return;
                    read_up();
                });
            });
        };
        read_ws();
        read_up();
        ioc.restart();
        ioc.run();
    }

    void serve(tcp::socket sock) {
        asio::io_context conn_ioc;
        tcp::socket s(conn_ioc);
        boost::system::error_code ec;
        s.assign(tcp::v4(), sock.release(), ec);
        ssl::stream<tcp::socket> tls(std::move(s), ctx);
        tls.handshake(ssl::stream_base::server, ec);
        if (ec) return;
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(tls, buf, req, ec);
        if (ec) return;
        std::string target(req.target());
        std::string path = target.substr(0, target.find('?'));
        std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
        {
            std::lock_guard lock(mu);
            seen.push_back(std::string(req.method_string()) + " " + target);
        }
        auto reply = [&](int code, const nlohmann::json& body) {
            http::response<http::string_body> res{http::int_to_status(unsigned(code)), 11};
            res.set(http::field::content_type, "application/json");
            res.body() = body.dump();
            res.prepare_payload();
            res.keep_alive(false);
            http::write(tls, res, ec);
            tls.shutdown(ec);
        };
        if (!token.empty() && req[http::field::authorization] != "Bearer " + token)
            return reply(401, status_error(401, "Unauthorized", "Unauthorized"));
        const std::string pf = "/portforward";
        if (path.size() > pf.size() && path.compare(path.size() - pf.size(), pf.size(), pf) == 0) {
            std::string pod_path = path.substr(0, path.size() - pf.size());  // /api/v1/namespaces/NS/pods/NAME
            auto q = parse_query(query);
            uint16_t rport = uint16_t(std::stoi(q.contains("ports") ? q["ports"] : "0"));
            std::string key = pod_path.substr(std::string("/api/v1/namespaces/").size());
            key.replace(key.find("/pods/"), 6, "/");
            const std::string pod_ns = key.substr(0, key.find('/')), pod_name = key.substr(key.find('/') + 1);
            uint16_t local = 0;
            std::string netns_path, denied_user;
            {
                std::lock_guard lock(mu);
                if (auto it = forwards.find(key + ":" + std::to_string(rport)); it != forwards.end())
                    std::tie(local, netns_path) = it->second;
                if (auto it = forbidden_pf.find(pod_ns); it != forbidden_pf.end()) denied_user = it->second;
                last_pf_headers.clear();
                for (const auto& f : req) {
                    std::string name(f.name_string());
                    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
                    last_pf_headers[name] = std::string(f.value());
                }
            }
            if (!denied_user.empty())
                return reply(403, status_error(403, "Forbidden",
                                               "pods \"" + pod_name + "\" is forbidden: User \"" + denied_user +
                                                   "\" cannot get resource \"pods/portforward\" in API group \"\" in "
                                                   "the namespace \"" +
                                                   pod_ns + "\""));
            if (local == 0) return reply(404, status_error(404, "NotFound", "pods \"" + pod_name + "\" not found"));
            if (!accept_matches_streaming_route(std::string(req[http::field::accept]))) {
                http::response<http::string_body> res{http::status::not_acceptable, 11};
                res.set(http::field::content_type, "text/plain; charset=utf-8");
                res.body() = "406: Not Acceptable";
                res.prepare_payload();
                res.keep_alive(false);
                http::write(tls, res, ec);
                tls.shutdown(ec);
                return;
            }
            if (!websocket::is_upgrade(req))
                return reply(400, status_error(400, "BadRequest", "Upgrade request required"));
            return serve_port_forward(conn_ioc, tls, req, local, rport, netns_path);
        }
        if (req.method() != http::verb::get) return reply(405, status_error(405, "MethodNotAllowed", "only GET here"));
        auto [code, body] = route(path, query);
        reply(code, body);
    }
};

LocalKubeApi::LocalKubeApi(const CertFiles& server, std::string token) : impl_(std::make_unique<Impl>()) {
    impl_->token = std::move(token);
    impl_->ctx.use_certificate_chain_file(server.cert);
    impl_->ctx.use_private_key_file(server.key, ssl::context::pem);
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    port_ = impl_->acceptor.local_endpoint().port();
    Impl* im = impl_.get();
    im->accept_thread = std::thread([im] {
        while (!im->stopping) {
            boost::system::error_code ec;
            tcp::socket s(im->ioc);
            im->acceptor.accept(s, ec);
            if (ec || im->stopping) break;
            std::lock_guard lock(im->threads_mu);
            im->conn_threads.emplace_back([im, s = std::move(s)]() mutable { im->serve(std::move(s)); });
        }
    });
}

LocalKubeApi::~LocalKubeApi() {
    impl_->stopping = true;
    boost::system::error_code ec;
    // Wake the blocking accept with a connection of our own.
    {
        asio::io_context io;
        tcp::socket s(io);
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    }
    impl_->accept_thread.join();
    impl_->acceptor.close(ec);
    std::lock_guard lock(impl_->threads_mu);
    for (auto& t : impl_->conn_threads) t.join();
}

void LocalKubeApi::add_pod(const std::string& ns, const std::string& name, const std::string& node,
                           const std::map<std::string, std::string>& labels, const std::string& ip) {
    nlohmann::json pod = {{"kind", "Pod"},
                          {"apiVersion", "v1"},
                          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}, {"uid", name + "-uid"}}},
                          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
                          {"status", {{"phase", node.empty() ? "Pending" : "Running"}}}};
    // A scheduled pod is Ready, as the kubelet would report it (kind-trace.sh waits for it).
    if (!node.empty()) pod["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
    if (!ip.empty()) {
        pod["status"]["podIP"] = ip;
        pod["status"]["podIPs"] = {{{"ip", ip}}};
    }
    std::lock_guard lock(impl_->mu);
    impl_->pods.push_back(pod);
}

void LocalKubeApi::add_container_port(const std::string& ns, const std::string& pod, const std::string& name,
                                      uint16_t port) {
    std::lock_guard lock(impl_->mu);
    for (auto& p : impl_->pods)
        if (p["metadata"]["namespace"] == ns && p["metadata"]["name"] == pod)
            p["spec"]["containers"][0]["ports"].push_back(
                {{"name", name}, {"containerPort", port}, {"protocol", "TCP"}});
}

void LocalKubeApi::set_pod_ready(const std::string& ns, const std::string& pod, bool ready,
                                 const std::string& waiting_reason) {
    std::lock_guard lock(impl_->mu);
    for (auto& p : impl_->pods)
        if (p["metadata"]["namespace"] == ns && p["metadata"]["name"] == pod) {
            p["status"]["conditions"] = {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}};
            if (!waiting_reason.empty())
                p["status"]["containerStatuses"] = {
                    {{"name", "c"}, {"state", {{"waiting", {{"reason", waiting_reason}}}}}}};
        }
}

void LocalKubeApi::add_object(const std::string& path, nlohmann::json obj) {
    std::lock_guard lock(impl_->mu);
    impl_->objects[path] = std::move(obj);
}

void LocalKubeApi::forward(const std::string& ns, const std::string& pod, uint16_t port, uint16_t local_port,
                           const std::string& netns_path) {
    std::lock_guard lock(impl_->mu);
    impl_->forwards[ns + "/" + pod + ":" + std::to_string(port)] = {local_port, netns_path};
}

void LocalKubeApi::forbid_port_forward(const std::string& ns, const std::string& user) {
    std::lock_guard lock(impl_->mu);
    impl_->forbidden_pf[ns] = user;
}

std::map<std::string, std::string> LocalKubeApi::last_port_forward_headers() const {
    std::lock_guard lock(impl_->mu);
    return impl_->last_pf_headers;
}

std::vector<std::string> LocalKubeApi::requests() const {
    std::lock_guard lock(impl_->mu);
    return impl_->seen;
}

}  // namespace pwru::test
