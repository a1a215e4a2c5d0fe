// /metrics: Prometheus text exposition, every sample preceded by its HELP/TYPE.
#include <catch2/catch.hpp>

#include <sstream>

#include "agent/agent_server.h"
#include "agent/metrics.h"

using namespace pwru::agent;
using Catch::Matchers::Contains;

TEST_CASE("metrics are Prometheus text with the counters' values", "[unit][agent]") {
    Metrics m;
    m.sessions_total = 3;
    m.sessions_active = 1;
    m.events_total = 42;
    m.lost_ringbuf_full = 5;
    m.lost_rate_limited = 7;
    m.lost_recursion = 2;
    m.add_attach(0.25);
    m.add_attach(0.5);
    std::string t = m.text();
    CHECK_THAT(t, Contains("# TYPE pwru_agent_sessions_active gauge\npwru_agent_sessions_active 1\n"));
    CHECK_THAT(t, Contains("pwru_agent_sessions_total 3\n"));
    CHECK_THAT(t, Contains("pwru_agent_events_total 42\n"));
    CHECK_THAT(t, Contains("pwru_agent_lost_events_total{cause=\"ringbuf_full\"} 5\n"));
    CHECK_THAT(t, Contains("pwru_agent_lost_events_total{cause=\"rate_limited\"} 7\n"));
    CHECK_THAT(t, Contains("pwru_agent_lost_events_total{cause=\"bpf_recursion\"} 2\n"));
    CHECK_THAT(t, Contains("pwru_agent_attach_seconds_sum 0.750000\n"));
    CHECK_THAT(t, Contains("pwru_agent_attach_seconds_count 2\n"));
    // Every sample line: name[{labels}] value; every name declared by a TYPE line first.
    std::istringstream in(t);
    std::string line, typed;
    int samples = 0;
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) typed += " " + line.substr(7, line.find(' ', 7) - 7) + " ";
        if (line.empty() || line[0] == '#') continue;
        ++samples;
        std::string name = line.substr(0, line.find_first_of("{ "));
        std::string base = name;
        for (const char* suffix : {"_sum", "_count"})
            if (base.size() > strlen(suffix) &&
                base.compare(base.size() - strlen(suffix), strlen(suffix), suffix) == 0 &&
                typed.find(" " + base + " ") == std::string::npos)
                base = base.substr(0, base.size() - strlen(suffix));
        INFO(line);
        CHECK(typed.find(" " + base + " ") != std::string::npos);
        CHECK(line.find(' ') != std::string::npos);
    }
    CHECK(samples == 9);
}

TEST_CASE("--listen values", "[unit][agent]") {
    CHECK(parse_listen("0.0.0.0:4245").value() == std::make_pair(std::string("0.0.0.0"), 4245));
    CHECK(parse_listen("[::1]:0").value() == std::make_pair(std::string("::1"), 0));
    CHECK(parse_listen(":80").value().first == "0.0.0.0");
    CHECK_THAT(parse_listen("localhost").error().what, Contains("HOST:PORT"));
    CHECK_THAT(parse_listen("h:80x").error().what, Contains("bad port"));
    CHECK_THAT(parse_listen("h:70000").error().what, Contains("not 0-65535"));
}
