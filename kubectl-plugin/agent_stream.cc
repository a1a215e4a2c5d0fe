#include "kubectl-plugin/agent_stream.h"

#include <chrono>

namespace pwru::plugin {

StreamMessage parse_agent_line(std::string_view line, size_t stream) {
    StreamMessage m;
    m.stream = stream;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("type")) {
        m.kind = StreamMessage::Kind::Error;
        m.message = "the agent sent a line that is not a record: " + std::string(line.substr(0, 80));
        return m;
    }
    const std::string type = j.value("type", "");
    try {
        if (type == "event") {
            m.kind = StreamMessage::Kind::Event;
            from_json(j, m.event);
        } else if (type == "heartbeat") {
            m.kind = StreamMessage::Kind::Heartbeat;
            m.watermark_ns = j.value("watermark_ns", int64_t{0});
        } else if (type == "start" || type == "loss" || type == "summary") {
            m.kind = type == "start"  ? StreamMessage::Kind::Start
                     : type == "loss" ? StreamMessage::Kind::Loss
                                      : StreamMessage::Kind::Summary;
            m.record = std::move(j);
        } else if (type == "error") {
            m.kind = StreamMessage::Kind::Error;
            m.message = j.value("message", "the agent reported an error");
        } else {
            m.kind = StreamMessage::Kind::Heartbeat;  // an unknown record still says the stream is alive
            m.watermark_ns = INT64_MIN;
        }
    } catch (const nlohmann::json::exception& e) {
        m.kind = StreamMessage::Kind::Error;
        m.message = std::string("the agent sent a malformed ") + type + " record: " + e.what();
    }
    return m;
}

void MessageQueue::push(StreamMessage m) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || q_.size() < capacity_; });
    if (closed_) return;
    q_.push_back(std::move(m));
    not_empty_.notify_one();
}

bool MessageQueue::pop(StreamMessage& out, int timeout_ms) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !q_.empty(); })) return false;
    out = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
}

void MessageQueue::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
}

AgentStream::AgentStream(size_t id, TraceTarget target, AgentConnector connect, std::string request_body,
                         MessageQueue& queue)
    : id_(id),
      target_(std::move(target)),
      connect_(std::move(connect)),
      body_(std::move(request_body)),
      queue_(queue) {}

AgentStream::~AgentStream() {
    stop();
    if (thread_.joinable()) thread_.join();
}

void AgentStream::start() {
    thread_ = std::thread([this] { run(); });
}

void AgentStream::stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (live_) live_->close();
}

void AgentStream::run() {
    auto report = [&](StreamMessage::Kind kind, std::string why) {
        StreamMessage m;
        m.kind = kind;
        m.stream = id_;
        m.message = std::move(why);
        queue_.push(std::move(m));
    };
    auto closed = [&](std::string why) { report(StreamMessage::Kind::Closed, std::move(why)); };
    auto error = [&](std::string why) { report(StreamMessage::Kind::Error, std::move(why)); };
    // Every path ends with Closed: the merger counts open streams by it, so a
    // stream that only reported an error would keep the plugin waiting forever.
    auto failed = [&](std::string why) {
        error(std::move(why));
        closed("failed");
    };
    auto conn = connect_();
    if (!conn) return failed(conn.error().message());
    {
        std::lock_guard lock(mu_);
        if (stopping_) return closed("stopped");
        live_ = conn->tls.get();
    }
    bool ended_cleanly = false;
    auto r = conn->tls->stream_lines(
        "POST", "/v1/trace", {{"Content-Type", "application/json"}, {"Accept", "application/x-ndjson"}}, body_,
        [&](const HttpResponse& head) {
            if (head.status == 200) return;
            auto j = nlohmann::json::parse(head.body, nullptr, false);
            std::string why = (!j.is_discarded() && j.is_object()) ? j.value("error", "") : "";
            if (why.empty()) why = head.body.substr(0, 200);
            error("the agent answered " + std::to_string(head.status) + ": " + why);
            ended_cleanly = true;  // already reported
        },
        [&](std::string_view line) {
            if (line.empty()) return;
            StreamMessage m = parse_agent_line(line, id_);
            if (m.kind == StreamMessage::Kind::Summary) ended_cleanly = true;
            queue_.push(std::move(m));
        });
    {
        std::lock_guard lock(mu_);
        live_ = nullptr;
        if (stopping_) return closed("stopped");
    }
    if (!r) return failed(r.error().message());
    if (!ended_cleanly) return failed("the agent ended the stream without a summary");
    closed("ended");
}

}  // namespace pwru::plugin
