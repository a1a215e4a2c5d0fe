// The agent's HTTP/1.1 server: asynchronous (Boost.Asio/Beast, a few
// network threads), so a client that has not authenticated costs a socket
// and a deadline, never a thread. Every connection lives within HttpLimits
// (whole-handshake and request-head deadlines, head and body sizes,
// connections in total and per address); pipelined requests are answered
// in order; a long answer (a trace stream) is produced by a job on its own
// thread and written through a bounded queue.
#pragma once

#include <utility>  // Boost 1.74's asio/awaitable.hpp needs std::exchange

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "agent/conn_limits.h"
#include "agent/request_reader.h"
#include "agent/server_limits.h"
#include "tracer/util/result.h"

namespace pwru::agent {

// A whole reply.
struct HttpReply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    bool close = false;  // close the connection once sent (input may be left unread)
};

// {"error": message, "status": status} (docs/agent-api.md "Errors").
HttpReply error_reply(int status, const std::string& message);

struct HttpRequest {
    RequestHead head;
    std::string body;
    SSL* ssl = nullptr;  // null on a plain-HTTP listener
    std::string peer;    // the client's address
};

struct StreamQueue;  // shared by a job and its connection (http_server.cc)

// What a job answers through: one whole reply, or a stream of lines.
// Called from the job's thread; blocks while the client is slow.
class ReplyChannel {
  public:
    explicit ReplyChannel(std::shared_ptr<StreamQueue> q) : q_(std::move(q)) {}
    // A whole reply (an error before anything was streamed). The connection
    // closes after it.
    void reply(HttpReply r);
    // The 200 head of a stream: chunked on HTTP/1.1, until the close on 1.0.
    bool begin_stream(const std::string& content_type, std::vector<std::pair<std::string, std::string>> headers);
    // Waits while the queue is full; false once the client has gone, stalled
    // past limits.reply_write, or the server stops.
    bool write(std::string data);
    // The client has gone (closed, reset, stalled): stop producing.
    bool gone() const;

  private:
    std::shared_ptr<StreamQueue> q_;
};

using HttpJob = std::function<void(ReplyChannel&)>;

struct HttpRoutes {
    // After the head, before the body: a reply refuses the request, and its
    // body is never read. Runs on a network thread: must not block.
    std::function<std::optional<HttpReply>(const RequestHead&, SSL*)> gate;
    // With the body: a reply now (a network thread: must not block), or a
    // job for anything that waits (other servers, the kernel, a stream).
    std::function<std::variant<HttpReply, HttpJob>(HttpRequest&)> handle;
};

struct HttpServerStats {
    uint64_t connections_open = 0;
    uint64_t connections_refused = 0;  // over a cap at accept
    uint64_t connections_evicted = 0;  // closed at the total cap to make room
    uint64_t deadlines_passed = 0;     // handshakes and heads cut by their deadline
    uint64_t jobs_running = 0;
};

class HttpServer {
  public:
    // `max_jobs`: jobs running at once (each one thread); above it 503.
    HttpServer(size_t network_threads, size_t max_jobs);
    ~HttpServer();  // stop()

    // Binds HOST:PORT (port 0: any) before run(); `tls` null for plain HTTP.
    // Returns the port. One listener per port: no SO_REUSEPORT, so a second
    // agent on the port fails here. `flag` names the option in errors.
    Result<int> listen(const std::string& host, int port, std::shared_ptr<SSL_CTX> tls, HttpRoutes routes,
                       HttpLimits limits, const std::string& flag);

    // Serves on the network threads until stop(); returns when they ended.
    void run();
    bool running() const { return running_.load(); }

    // SIGTERM: no new connections; connections without a job are closed
    // (idle keep-alive, mid-request, handshaking); jobs go on.
    void begin_drain();
    // True when no job runs and every stream was written out, within `timeout`.
    bool wait_jobs_done(std::chrono::milliseconds timeout);
    // Closes everything and ends run(); jobs see their client gone. Waits
    // (bounded) for job threads to end.
    void stop();

    HttpServerStats stats() const;

    struct Impl;  // http_server.cc: listeners, connections, jobs

  private:
    std::unique_ptr<Impl> impl_;
    std::atomic<bool> running_{false};
};

}  // namespace pwru::agent
