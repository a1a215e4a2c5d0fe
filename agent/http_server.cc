#include "agent/http_server.h"

#include <malloc.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cstdio>
#include <list>

#include <nlohmann/json.hpp>

#include "tracer/kernel/log.h"

namespace pwru::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

HttpReply error_reply(int status, const std::string& message) {
    HttpReply r;
    r.status = status;
    // replace: a client's invalid UTF-8 echoed in a message must not throw.
    r.body = nlohmann::json{{"error", message}, {"status", status}}.dump(-1, ' ', false,
                                                                         nlohmann::json::error_handler_t::replace) +
             "\n";
    return r;
}

// Between a job's thread and its connection's strand. Everything under mu.
struct StreamQueue {
    enum class Kind { none, whole, stream };

    std::mutex mu;
    std::condition_variable room;  // the producer waits here while the queue is full
    Kind kind = Kind::none;
    HttpReply whole;
    std::string content_type;
    std::vector<std::pair<std::string, std::string>> headers;
    std::deque<std::string> chunks;
    size_t bytes = 0;
    bool finished = false;  // the job returned
    bool gone = false;      // the client left or stalled, or the server stops
    bool wake_pending = false;
    size_t limit = 0;
    std::chrono::milliseconds stall{0};
    // Posts a wake-up to the connection's strand; cleared by stop() so a
    // job outliving the server touches nothing of it.
    std::function<void()> wake;

    void notify_locked() {
        if (wake_pending || !wake) return;
        wake_pending = true;
        wake();
    }
    void mark_gone() {
        std::lock_guard lock(mu);
        gone = true;
        room.notify_all();
    }
};

void ReplyChannel::reply(HttpReply r) {
    std::lock_guard lock(q_->mu);
    if (q_->kind != StreamQueue::Kind::none) return;  // a stream has begun: it ends with the job
    q_->kind = StreamQueue::Kind::whole;
    q_->whole = std::move(r);
    q_->notify_locked();
}

bool ReplyChannel::begin_stream(const std::string& content_type,
                                std::vector<std::pair<std::string, std::string>> headers) {
    std::lock_guard lock(q_->mu);
    if (q_->gone || q_->kind != StreamQueue::Kind::none) return false;
    q_->kind = StreamQueue::Kind::stream;
    q_->content_type = content_type;
    q_->headers = std::move(headers);
    q_->notify_locked();
    return true;
}

bool ReplyChannel::write(std::string data) {
    std::unique_lock lock(q_->mu);
    if (q_->kind != StreamQueue::Kind::stream) return false;
    if (!q_->room.wait_for(lock, q_->stall, [&] { return q_->gone || q_->bytes < q_->limit; })) {
        // Nothing of the queue was sent for the whole write deadline.
        q_->gone = true;
        q_->notify_locked();
        return false;
    }
    if (q_->gone) return false;
    q_->bytes += data.size();
    q_->chunks.push_back(std::move(data));
    q_->notify_locked();
    return true;
}

bool ReplyChannel::gone() const {
    std::lock_guard lock(q_->mu);
    return q_->gone;
}

namespace {

// A coroutine's escaping exception is logged, not lost (asio::detached drops it).
void log_coroutine_error(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        spdlog::error("connection handler failed: {}", x.what());
    }
}

enum class Phase { handshake, awaiting_head, working, in_job, closing };

std::string status_line(int status) {
    auto reason = http::obsolete_reason(static_cast<http::status>(status));
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.empty() ? "Unknown" : reason) + "\r\n";
}

struct ConnBase {
    virtual ~ConnBase() = default;
    virtual void close_now() = 0;  // any thread
    std::atomic<Phase> phase{Phase::handshake};
    Clock::time_point accepted = Clock::now();
};

}  // namespace

struct HttpServer::Impl {
    struct Listener {
        Listener(asio::io_context& io, HttpRoutes r, HttpLimits l, std::string f)
            : acceptor(io),
              routes(std::move(r)),
              limits(l),
              caps(l.max_connections, l.max_per_source),
              flag(std::move(f)) {}
        tcp::acceptor acceptor;
        std::unique_ptr<asio::ssl::context> tls;
        HttpRoutes routes;
        HttpLimits limits;
        ConnLimits caps;
        std::string flag, where;
        std::mutex conns_mu;
        std::list<std::weak_ptr<ConnBase>> conns;
        // Refusals are logged at most once per interval, with their count.
        Clock::time_point last_refusal_log{};
        uint64_t refusals_unlogged = 0;
    };

    Impl(size_t threads, size_t max_jobs) : threads(threads ? threads : 1), max_jobs(max_jobs) {}

    asio::io_context io;
    size_t threads, max_jobs;
    std::vector<std::unique_ptr<Listener>> listeners;
    std::atomic<bool> draining{false}, stopping{false};

    std::mutex jobs_mu;
    std::condition_variable jobs_cv;
    size_t jobs = 0;       // job threads running
    size_t job_conns = 0;  // connections writing a job's reply
    std::list<std::weak_ptr<StreamQueue>> queues;

    std::atomic<uint64_t> refused{0}, evicted{0}, deadlines{0};

    asio::awaitable<void> accept_loop(Listener& l);
    asio::awaitable<void> trim_loop();
    size_t connections_open() const {
        size_t n = 0;
        for (const auto& l : listeners) n += l->caps.open();
        return n;
    }
    // The trim loop's timer lives here, not in its coroutine frame: a frame
    // still suspended when the io_context is destroyed destroys its timer
    // after the timer service (a double free at exit). stop() ends the loop.
    asio::steady_timer trim_timer{io};
    std::atomic<bool> trim_done{false};
    void admit(Listener& l, tcp::socket sock);
    void log_refusal(Listener& l, const std::string& source, const char* why);
    void close_connections(bool even_jobs);
};

namespace {

// One client connection, on its own strand; Stream is beast::tcp_stream or
// beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class Connection : public ConnBase, public std::enable_shared_from_this<Connection<Stream>> {
  public:
    static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

    Connection(HttpServer::Impl& impl, HttpServer::Impl::Listener& l, std::string source, Stream stream)
        : impl_(impl),
          l_(l),
          source_(std::move(source)),
          stream_(std::move(stream)),
          wake_(stream_.get_executor()),
          stall_(stream_.get_executor()) {}
    ~Connection() override { l_.caps.release(source_); }

    auto executor() { return stream_.get_executor(); }

    void close_now() override {
        asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
            error_code ec;
            beast::get_lowest_layer(self->stream_).socket().close(ec);
            self->wake_.cancel();
        });
    }

    // The connection's life: `self`, a coroutine parameter, keeps it alive
    // from the first resumption (run() starts later, on the strand).
    static asio::awaitable<void> start(std::shared_ptr<Connection> self) { co_await self->run(); }

  private:
    asio::awaitable<void> run() {
        error_code ec;
        if constexpr (kTls) {
            lowest().expires_after(l_.limits.tls_handshake);
            co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                             asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                if (ec == beast::error::timeout) impl_.deadlines.fetch_add(1);
                spdlog::debug("{}: TLS handshake with {} failed: {}", l_.where, source_, ec.message());
                co_return close_socket();
            }
        }
        co_await serve_requests();
        close_socket();
    }

    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
    SSL* ssl() {
        if constexpr (kTls)
            return stream_.native_handle();
        else
            return nullptr;
    }
    void close_socket() {
        phase = Phase::closing;
        error_code ec;
        lowest().socket().close(ec);
    }

    asio::awaitable<void> serve_requests() {
        error_code ec;
        for (;;) {
            if (impl_.draining) co_return;
            phase = Phase::awaiting_head;
            reset_parser(parser_, l_.limits);
            lowest().expires_after(l_.limits.request_head);
            co_await http::async_read_header(stream_, buffer_, *parser_, asio::redirect_error(asio::use_awaitable, ec));
            phase = Phase::working;
            if (ec) {
                if (ec == beast::error::timeout) impl_.deadlines.fetch_add(1);
                if (auto r = refusal_for_read_error(ec, l_.limits)) co_await refuse(*r);
                co_return;
            }
            auto head = check_head(*parser_, l_.limits);
            if (!head) {
                co_await refuse(head.error());
                co_return;
            }
            if (auto r = l_.routes.gate(*head, ssl())) {
                // A body is never read after a refusal: the connection ends.
                if (r->close || head->has_body) {
                    if (co_await send(*r, *head, true)) co_await linger();
                    co_return;
                }
                if (!co_await send(*r, *head, !head->keep_alive)) co_return;
                if (!head->keep_alive) {
                    co_await close_gracefully();
                    co_return;
                }
                continue;
            }
            if (auto r = admit_body(*parser_, *head, l_.limits)) {
                co_await refuse(*r);
                co_return;
            }
            if (head->has_body) {
                if (head->expect_continue && head->version == 11) {
                    static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
                    lowest().expires_after(l_.limits.reply_write);
                    co_await asio::async_write(stream_, asio::buffer(cont),
                                               asio::redirect_error(asio::use_awaitable, ec));
                    if (ec) co_return;
                }
                lowest().expires_after(l_.limits.request_body);
                co_await http::async_read(stream_, buffer_, *parser_, asio::redirect_error(asio::use_awaitable, ec));
                if (ec) {
                    if (ec == beast::error::timeout) impl_.deadlines.fetch_add(1);
                    if (auto r = refusal_for_read_error(ec, l_.limits)) co_await refuse(*r);
                    co_return;
                }
            }
            HttpRequest req{*head, parser_->release().body(), ssl(), source_};
            auto decision = l_.routes.handle(req);
            if (auto* reply = std::get_if<HttpReply>(&decision)) {
                const bool close = reply->close || !head->keep_alive || impl_.draining;
                if (!co_await send(*reply, *head, close)) co_return;
                if (close) {
                    co_await close_gracefully();
                    co_return;
                }
                continue;
            }
            co_await run_job(std::move(std::get<HttpJob>(decision)), *head);
            co_return;
        }
    }

    // Writes `data` within the write deadline; false when it could not.
    asio::awaitable<bool> write_all(std::string data) {
        error_code ec;
        lowest().expires_after(l_.limits.reply_write);
        co_await asio::async_write(stream_, asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec;
    }

    asio::awaitable<bool> send(HttpReply r, RequestHead head, bool close) {
        std::string out = status_line(r.status);
        out += "Content-Type: " + r.content_type + "\r\n";
        out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
        for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
        if (close)
            out += "Connection: close\r\n";
        else if (head.version == 10)
            out += "Connection: keep-alive\r\n";
        out += "\r\n";
        if (head.method != "HEAD") out += r.body;
        bool ok = co_await write_all(std::move(out));
        co_return ok;
    }

    asio::awaitable<void> refuse(HttpRefusal r) {
        RequestHead none;
        none.keep_alive = false;
        HttpReply reply = error_reply(r.status, r.message);
        if (co_await send(reply, none, true)) co_await linger();
    }

    // After a refusal the connection ends: what the client still sends is
    // read and discarded for at most limits.linger, never parsed (closing
    // with unread data would send a RST that can destroy the reply).
    // Every refusal calls send() then linger() itself: the two as one
    // coroutine of their own were miscompiled by GCC 12.2 (its first resume
    // hit the actor's invalid-state trap, ud2) at -O0 and -O2 alike.
    asio::awaitable<void> linger() {
        phase = Phase::closing;
        error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
        lowest().expires_after(l_.limits.linger);
        std::vector<char> sink(4096);
        while (!ec) {
            co_await lowest().async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        }
    }

    // A close the client asked for or was told of: TLS says close_notify.
    asio::awaitable<void> close_gracefully() {
        phase = Phase::closing;
        if constexpr (kTls) {
            error_code ec;
            lowest().expires_after(std::chrono::milliseconds(500));
            co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_return;
    }

    // A job on its own thread; this strand writes what it queues.
    asio::awaitable<void> run_job(HttpJob job, RequestHead head) {
        bool busy = false;
        {
            std::lock_guard lock(impl_.jobs_mu);
            busy = impl_.jobs >= impl_.max_jobs;
            if (!busy) {
                ++impl_.jobs;
                ++impl_.job_conns;
            }
        }
        if (busy) {
            HttpReply reply = error_reply(
                503, "the agent is busy with " + std::to_string(impl_.max_jobs) + " requests; retry in a moment");
            if (co_await send(reply, head, true)) co_await linger();
            co_return;
        }
        phase = Phase::in_job;
        auto q = std::make_shared<StreamQueue>();
        q->limit = l_.limits.stream_queue_bytes;
        q->stall = l_.limits.reply_write;
        std::weak_ptr<Connection> weak = this->shared_from_this();
        q->wake = [weak, ex = stream_.get_executor()] {
            asio::post(ex, [weak] {
                if (auto c = weak.lock()) c->wake_.cancel();
            });
        };
        {
            std::lock_guard lock(impl_.jobs_mu);
            impl_.queues.push_back(q);
        }
        HttpServer::Impl* impl = &impl_;
        std::thread([job = std::move(job), q, impl] {
            ReplyChannel channel(q);
            try {
                job(channel);
            } catch (const std::exception& e) {
                spdlog::error("request handler failed: {}", e.what());
            }
            {
                std::lock_guard lock(q->mu);
                if (q->kind == StreamQueue::Kind::none) {
                    q->kind = StreamQueue::Kind::whole;
                    q->whole = error_reply(500, "the request ended without a reply; see the agent's log");
                }
                q->finished = true;
                q->notify_locked();
            }
            std::lock_guard lock(impl->jobs_mu);
            --impl->jobs;
            impl->jobs_cv.notify_all();
        }).detach();

        // The client's side, read (and discarded) only to see it leave.
        lowest().expires_never();
        asio::co_spawn(stream_.get_executor(), read_until_gone(this->shared_from_this(), q), asio::detached);

        co_await write_job_reply(q, head);
        q->mark_gone();  // a job still running stops producing
        {
            std::lock_guard lock(impl_.jobs_mu);
            --impl_.job_conns;
            impl_.jobs_cv.notify_all();
        }
        // The reply is out: end the connection once the client closes, or
        // after the linger time.
        phase = Phase::closing;
        error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
        if (!reader_done_) {
            wake_.expires_after(l_.limits.linger);
            co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        lowest().socket().close(ec);
        // The reader ends with the socket; wait for it so the coroutines end in order.
        while (!reader_done_) {
            wake_.expires_after(std::chrono::milliseconds(10));
            co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }

    // Runs beside write_job_reply (one read and one write may be pending
    // at once on a stream); `self` keeps the connection alive.
    static asio::awaitable<void> read_until_gone(std::shared_ptr<Connection> self, std::shared_ptr<StreamQueue> q) {
        char sink[1024];
        error_code ec;
        while (!ec)
            co_await self->stream_.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        q->mark_gone();
        self->reader_done_ = true;
        self->wake_.cancel();
    }

    asio::awaitable<void> write_job_reply(std::shared_ptr<StreamQueue> qp, RequestHead head) {
        StreamQueue& q = *qp;
        const bool chunked = head.version != 10;
        bool head_sent = false;
        for (;;) {
            std::string out;
            bool last = false, wait = false;
            queued_sent_ = 0;
            {
                std::lock_guard lock(q.mu);
                q.wake_pending = false;
                if (q.gone) co_return;
                if (q.kind == StreamQueue::Kind::whole) {
                    // Sent below, unlocked: no co_await under a lock.
                    pending_whole_ = std::move(q.whole);
                    q.gone = true;
                    q.room.notify_all();
                } else if (q.kind == StreamQueue::Kind::stream) {
                    if (!head_sent) {
                        out = status_line(200) + "Content-Type: " + q.content_type + "\r\n";
                        for (const auto& [k, v] : q.headers) out += k + ": " + v + "\r\n";
                        if (chunked) out += "Transfer-Encoding: chunked\r\n";
                        out += "Connection: close\r\n\r\n";
                        head_sent = true;
                    }
                    std::string batch;
                    while (!q.chunks.empty()) {
                        batch += q.chunks.front();
                        q.chunks.pop_front();
                    }
                    if (!batch.empty()) {
                        if (chunked) {
                            char size[32];
                            std::snprintf(size, sizeof size, "%zx\r\n", batch.size());
                            out += size + batch + "\r\n";
                        } else {
                            out += batch;
                        }
                    }
                    if (q.finished) {
                        last = true;
                        if (chunked) out += "0\r\n\r\n";
                    }
                    queued_sent_ = batch.size();
                    wait = out.empty();
                } else {
                    wait = true;
                }
            }
            if (pending_whole_) {
                HttpReply r = std::move(*pending_whole_);
                pending_whole_.reset();
                co_await send(r, head, true);
                co_return;
            }
            if (wait) {
                error_code ec;
                wake_.expires_at(Clock::time_point::max());
                co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            // A client that reads nothing for the write deadline is cut.
            stall_.expires_after(l_.limits.reply_write);
            stall_.async_wait([weak = std::weak_ptr<Connection>(this->shared_from_this())](error_code ec) {
                if (ec) return;
                if (auto c = weak.lock()) {
                    error_code ignored;
                    beast::get_lowest_layer(c->stream_).socket().close(ignored);
                }
            });
            error_code ec;
            co_await asio::async_write(stream_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
            stall_.cancel();
            {
                std::lock_guard lock(q.mu);
                q.bytes -= queued_sent_;
                q.room.notify_all();
            }
            if (ec || last) co_return;
        }
    }

    HttpServer::Impl& impl_;
    HttpServer::Impl::Listener& l_;
    std::string source_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<RequestParser> parser_;
    asio::steady_timer wake_, stall_;
    std::optional<HttpReply> pending_whole_;
    size_t queued_sent_ = 0;
    bool reader_done_ = false;
};

}  // namespace

void HttpServer::Impl::log_refusal(Listener& l, const std::string& source, const char* why) {
    refused.fetch_add(1);
    std::lock_guard lock(l.conns_mu);
    ++l.refusals_unlogged;
    auto now = Clock::now();
    if (now - l.last_refusal_log < std::chrono::seconds(10)) return;
    spdlog::warn("{}: refused {} connection(s) in the last 10 s, the latest from {}: {}", l.where, l.refusals_unlogged,
                 source, why);
    l.refusals_unlogged = 0;
    l.last_refusal_log = now;
}

void HttpServer::Impl::admit(Listener& l, tcp::socket sock) {
    error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec) return;  // already gone
    const std::string source = remote.address().to_string();
    auto verdict = l.caps.try_admit(source);
    if (verdict == ConnLimits::Verdict::total_full) {
        // Make room: close the oldest connection that has not sent a request
        // head yet (handshaking or idle); one that is being served stays.
        std::shared_ptr<ConnBase> oldest;
        {
            std::lock_guard lock(l.conns_mu);
            for (auto it = l.conns.begin(); it != l.conns.end();) {
                auto c = it->lock();
                if (!c) {
                    it = l.conns.erase(it);
                    continue;
                }
                Phase p = c->phase.load();
                if ((p == Phase::handshake || p == Phase::awaiting_head) && (!oldest || c->accepted < oldest->accepted))
                    oldest = c;
                ++it;
            }
        }
        if (oldest) {
            oldest->phase = Phase::closing;  // not chosen twice
            oldest->close_now();
            evicted.fetch_add(1);
            verdict = l.caps.try_admit(source, /*replacing=*/true);
        }
    }
    if (verdict != ConnLimits::Verdict::admitted) {
        sock.close(ec);
        log_refusal(l, source,
                    verdict == ConnLimits::Verdict::source_full
                        ? "over the per-address cap of connections"
                        : "over the total cap of connections, every one of them being served");
        return;
    }
    sock.set_option(tcp::no_delay(true), ec);
    std::shared_ptr<ConnBase> base;
    if (l.tls) {
        using S = beast::ssl_stream<beast::tcp_stream>;
        auto c = std::make_shared<Connection<S>>(*this, l, source, S(beast::tcp_stream(std::move(sock)), *l.tls));
        base = c;
        asio::co_spawn(c->executor(), Connection<S>::start(c), log_coroutine_error);
    } else {
        auto c = std::make_shared<Connection<beast::tcp_stream>>(*this, l, source, beast::tcp_stream(std::move(sock)));
        base = c;
        asio::co_spawn(c->executor(), Connection<beast::tcp_stream>::start(c), log_coroutine_error);
    }
    std::lock_guard lock(l.conns_mu);
    l.conns.push_back(base);
}

asio::awaitable<void> HttpServer::Impl::accept_loop(Listener& l) {
    for (;;) {
        tcp::socket sock(asio::make_strand(io));
        error_code ec;
        co_await l.acceptor.async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
        if (!l.acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        if (ec) {
            // EMFILE, ENFILE, ENOBUFS: the connection waits in the backlog;
            // retry shortly rather than spin.
            log_refusal(l, "(accept)", ec.message().c_str());
            asio::steady_timer t(io, std::chrono::milliseconds(100));
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        admit(l, std::move(sock));
    }
}

void HttpServer::Impl::close_connections(bool even_jobs) {
    for (auto& l : listeners) {
        std::vector<std::shared_ptr<ConnBase>> to_close;
        {
            std::lock_guard lock(l->conns_mu);
            for (auto& w : l->conns)
                if (auto c = w.lock(); c && (even_jobs || c->phase.load() != Phase::in_job)) to_close.push_back(c);
        }
        for (auto& c : to_close) c->close_now();
    }
}

HttpServer::HttpServer(size_t network_threads, size_t max_jobs)
    : impl_(std::make_unique<Impl>(network_threads, max_jobs)) {}

HttpServer::~HttpServer() { stop(); }

Result<int> HttpServer::listen(const std::string& host, int port, std::shared_ptr<SSL_CTX> tls, HttpRoutes routes,
                               HttpLimits limits, const std::string& flag) {
    auto l = std::make_unique<Impl::Listener>(impl_->io, std::move(routes), limits, flag);
    const std::string where = host + ":" + std::to_string(port);
    l->where = flag + " " + where;
    error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return bad_input(flag + " " + where + ": '" + host + "' is not an IP address; give one, e.g. 0.0.0.0");
    tcp::endpoint ep(addr, static_cast<uint16_t>(port));
    l->acceptor.open(ep.protocol(), ec);
    // SO_REUSEADDR only (restart over TIME_WAIT); never SO_REUSEPORT, so a
    // second agent on the port fails to bind.
    if (!ec) l->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) l->acceptor.bind(ep, ec);
    if (!ec) l->acceptor.listen(1024, ec);
    if (ec) return fail("cannot listen on " + where + " (" + ec.message() + "); is the port in use? change " + flag);
    if (tls) {
        SSL_CTX_up_ref(tls.get());  // the asio context frees its reference
        l->tls = std::make_unique<asio::ssl::context>(tls.get());
    }
    const int bound = l->acceptor.local_endpoint().port();
    impl_->listeners.push_back(std::move(l));
    return bound;
}

// Gives freed connection memory back to the system after a flood. glibc
// keeps what the network threads freed in their arenas: 400 connections took
// the agent from 19 to 47 MB and it stayed there; malloc_trim returns it
// (to 22 MB). Run when at least 32 connections' worth closed since the last
// trim, checked every 2 s: never per connection, never while idle.
asio::awaitable<void> HttpServer::Impl::trim_loop() {
    size_t high = 0;
    while (!stopping) {
        trim_timer.expires_after(std::chrono::seconds(2));
        error_code ec;
        co_await trim_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping) break;
        const size_t open = connections_open();
        high = std::max(high, open);
        if (high >= open + 32) {
            ::malloc_trim(0);
            high = open;
        }
    }
    trim_done = true;
}

void HttpServer::run() {
    auto work = asio::make_work_guard(impl_->io);
    for (auto& l : impl_->listeners) asio::co_spawn(impl_->io, impl_->accept_loop(*l), asio::detached);
    asio::co_spawn(impl_->io, impl_->trim_loop(), asio::detached);
    std::vector<std::thread> others;
    for (size_t i = 1; i < impl_->threads; ++i) others.emplace_back([this] { impl_->io.run(); });
    running_ = true;
    impl_->io.run();
    for (auto& t : others) t.join();
    running_ = false;
}

void HttpServer::begin_drain() {
    impl_->draining = true;
    asio::post(impl_->io, [impl = impl_.get()] {
        for (auto& l : impl->listeners) {
            error_code ec;
            l->acceptor.close(ec);
        }
    });
    impl_->close_connections(/*even_jobs=*/false);
}

bool HttpServer::wait_jobs_done(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->jobs_mu);
    return impl_->jobs_cv.wait_for(lock, timeout, [&] { return impl_->jobs == 0 && impl_->job_conns == 0; });
}

void HttpServer::stop() {
    if (impl_->stopping.exchange(true)) return;
    begin_drain();
    impl_->close_connections(/*even_jobs=*/true);
    {
        std::lock_guard lock(impl_->jobs_mu);
        for (auto& w : impl_->queues)
            if (auto q = w.lock()) {
                std::lock_guard qlock(q->mu);
                q->gone = true;
                q->wake = nullptr;
                q->room.notify_all();
            }
    }
    // Jobs see their client gone at their next write or check.
    {
        std::unique_lock lock(impl_->jobs_mu);
        if (!impl_->jobs_cv.wait_for(lock, std::chrono::seconds(15), [&] { return impl_->jobs == 0; }))
            spdlog::warn("{} request handlers still running at shutdown", impl_->jobs);
    }
    asio::post(impl_->io, [impl = impl_.get()] { impl->trim_timer.cancel(); });
    for (int i = 0; i < 100 && running_ && !impl_->trim_done; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    impl_->io.stop();
}

HttpServerStats HttpServer::stats() const {
    HttpServerStats s;
    s.connections_open = impl_->connections_open();
    s.connections_refused = impl_->refused.load();
    s.connections_evicted = impl_->evicted.load();
    s.deadlines_passed = impl_->deadlines.load();
    std::lock_guard lock(impl_->jobs_mu);
    s.jobs_running = impl_->jobs;
    return s;
}

}  // namespace pwru::agent
