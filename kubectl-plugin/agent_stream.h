// One trace stream from one agent: connect (through the API server's
// port-forward, or directly), POST /v1/trace, and turn each NDJSON line into
// a message for the merger. One thread per stream; the queue between them is
// bounded, so a slow terminal slows the reads, the agent's ring buffer fills,
// and the agent counts that loss: memory here stays bounded.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "kubectl-plugin/port_forward.h"
#include "kubectl-plugin/targets.h"
#include "kubectl-plugin/tls_client.h"
#include "tracer/events/event_record.h"

namespace pwru::plugin {

struct StreamMessage {
    enum class Kind { Start, Event, Heartbeat, Loss, Summary, Error, Closed };
    Kind kind = Kind::Closed;
    size_t stream = 0;
    EventRecord event;         // Event
    int64_t watermark_ns = 0;  // Heartbeat
    nlohmann::json record;     // Start, Loss, Summary: the agent's record as sent
    std::string message;       // Error, Closed: why
};

// Parses one line of the agent's stream (docs/agent-api.md). Unknown record
// types are ignored (newer agents), malformed lines are an Error message.
StreamMessage parse_agent_line(std::string_view line, size_t stream);

class MessageQueue {
  public:
    explicit MessageQueue(size_t capacity = 8192) : capacity_(capacity) {}
    // Blocks while full (unless closed).
    void push(StreamMessage m);
    // Waits up to timeout_ms; false when nothing came.
    bool pop(StreamMessage& out, int timeout_ms);
    void close();

  private:
    std::mutex mu_;
    std::condition_variable not_empty_, not_full_;
    std::deque<StreamMessage> q_;
    size_t capacity_;
    bool closed_ = false;
};

// A connected TLS session to an agent; the port-forward (if any) outlives it.
struct AgentConnection {
    std::unique_ptr<PortForward> tunnel;
    std::unique_ptr<TlsConnection> tls;
};
using AgentConnector = std::function<Result<AgentConnection>()>;

class AgentStream {
  public:
    AgentStream(size_t id, TraceTarget target, AgentConnector connect, std::string request_body, MessageQueue& queue);
    ~AgentStream();

    void start();
    // Closes the connection: the agent sees the client leave and detaches.
    void stop();
    const TraceTarget& target() const { return target_; }

  private:
    void run();

    size_t id_;
    TraceTarget target_;
    AgentConnector connect_;
    std::string body_;
    MessageQueue& queue_;
    std::mutex mu_;
    TlsConnection* live_ = nullptr;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace pwru::plugin
