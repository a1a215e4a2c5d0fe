// Fuzz target for what a client controls before it is trusted: the bytes of
// an HTTP request (agent/request_reader.h) and the JSON body of a trace
// request (agent/trace_request.h). libFuzzer's entry point; built with the
// AFL++ GCC plugin and AFL++'s libFuzzer driver (tests/fuzz/README.md), so
// the same binary also replays inputs given as files.
//
// A crash, a sanitizer report or a broken invariant below (abort) is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/request_reader.h"
#include "agent/trace_request.h"

namespace {

using namespace pwru::agent;

[[noreturn]] void broken(const char* what, std::string_view detail) {
    std::fprintf(stderr, "request_fuzz: invariant broken: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

// Refusals are one line, with a status the docs list for the HTTP layer.
void check_refusal(const HttpRefusal& r) {
    if (r.status != 400 && r.status != 413 && r.status != 414 && r.status != 431)
        broken("refusal status outside 400/413/414/431", r.message);
    if (r.message.empty() || r.message.find('\n') != std::string::npos) broken("refusal is not one line", r.message);
}

void check_trace_request(const std::string& body) {
    RequestLimits limits{60, 1000};
    auto req = parse_trace_request(body, limits);
    if (req) {
        if (req->max_duration_s <= 0 || req->max_duration_s > limits.max_duration_s)
            broken("duration outside the ceiling", body);
        if (req->max_events == 0 || req->max_events > limits.max_events) broken("events outside the ceiling", body);
        if (req->filter.find('\0') != std::string::npos) broken("a NUL reached the filter", body);
        return;
    }
    const std::string& why = req.error().what;
    if (why.empty() || why.find('\n') != std::string::npos) broken("request error is not one line", why);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    HttpLimits limits;
    limits.head_bytes = 2048;  // small bounds, so the fuzzer reaches them
    limits.target_bytes = 256;
    limits.body_bytes = 4096;

    ParsedRequest parsed = parse_request_bytes(bytes, limits);
    if (parsed.refused) {
        check_refusal(*parsed.refused);
    } else if (parsed.complete) {
        if (!parsed.head) broken("a complete request without its head", bytes);
        if (parsed.head->target.size() > limits.target_bytes) broken("a target above the limit was admitted", bytes);
        if (parsed.body.size() > limits.body_bytes) broken("a body above the limit was read", bytes);
        check_trace_request(parsed.body);
    }
    // The same bytes as a body: the JSON checks see every input too.
    if (size <= limits.body_bytes) check_trace_request(std::string(bytes));
    return 0;
}
