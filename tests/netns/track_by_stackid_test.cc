// --filter-track-skb-by-stackid (pwru's semantics: calls in the call context
// of a traced skb are attributed to it) with real traffic: a SYN to a port
// nobody listens on in B is answered by a RST that B's kernel builds while
// it handles the SYN, on the same kernel stack. The filter matches the SYN
// only; with the option, the RST's own skb is traced too.
// Also: --filter-non-skb-funcs on the tracepoint backend says in one line
// that it needs kprobes, and tracing goes on.
#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <thread>

#include "support/test_files.h"
#include "support/child_process.h"
#include "support/netns_fixture.h"
#include "support/root_guard.h"
#include "support/text_lines.h"

using namespace pwru::test;
using namespace std::chrono_literals;

namespace {

struct Run {
    std::string out, err;
};

// pwru with `args` around one refused connection from A to B:80.
Run run_around_refused_connect(const NetnsPair& ns, std::vector<std::string> args) {
    const std::string ready = pwru::test::fresh_ready_file("stack");
    std::vector<std::string> argv = {PWRU_BIN, "--ready-file", ready};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess pwru(argv);
    if (!pwru.wait_for_file(ready, 60s)) FAIL("pwru was not ready in 60 s; stderr:\n" << pwru.stderr_text());
    CHECK_FALSE(ns.tcp_connect_from_a(80, 1200));  // refused: B answers with a RST
    std::this_thread::sleep_for(300ms);
    pwru.interrupt();
    auto status = pwru.wait(30s);
    Run r{pwru.stdout_text(), pwru.stderr_text()};
    INFO("pwru stdout:\n" << r.out << "\npwru stderr:\n" << r.err);
    REQUIRE(status);
    CHECK(*status == 0);
    return r;
}

}  // namespace

TEST_CASE("--filter-track-skb-by-stackid traces the RST built in the SYN's call context", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    const std::string syn = "->" + ns.addr_b() + ":80(tcp)";
    const std::string rst = ns.addr_b() + ":80->" + ns.addr_a() + ":";

    SECTION("without it, only the SYN matches the filter") {
        Run r = run_around_refused_connect(ns, {"tcp and dst port 80"});
        INFO("pwru stdout:\n" << r.out);
        CHECK_FALSE(lines_with(r.out, syn).empty());
        CHECK(lines_with(r.out, rst).empty());
    }
    SECTION("with it, the RST's skb is traced as well") {
        Run r = run_around_refused_connect(ns, {"--filter-track-skb-by-stackid", "tcp and dst port 80"});
        INFO("pwru stdout:\n" << r.out << "\npwru stderr:\n" << r.err);
        auto syn_lines = lines_with(r.out, syn);
        auto rst_lines = lines_with(r.out, rst);
        REQUIRE_FALSE(syn_lines.empty());
        REQUIRE_FALSE(rst_lines.empty());
        // Nothing of the RST matches the filter (its destination port is A's): it came in
        // through the SYN's call context, which the section above shows the filter alone
        // does not do.
        CHECK(rst_lines.front().find(":80(tcp)") == std::string::npos);
    }
}

TEST_CASE("--filter-non-skb-funcs without kprobes: one line, and tracing goes on", "[netns]") {
    PWRU_REQUIRE_ROOT();
    NetnsPair ns;
    Run r = run_around_refused_connect(ns, {"--filter-non-skb-funcs", "nft_do_chain", "tcp and dst port 80"});
    INFO("pwru stdout:\n" << r.out << "\npwru stderr:\n" << r.err);
    if (r.err.find("Attaching tracepoints") == std::string::npos) {
        WARN("SKIPPED: this kernel has kprobes (the vm layer's non_skb_funcs case covers them)");
        return;
    }
    CHECK(lines_with(r.err, "--filter-non-skb-funcs").size() == 1);
    CHECK(r.err.find("--filter-non-skb-funcs needs kprobes, which this kernel lacks (tracing its tracepoints "
                     "instead): ignored") != std::string::npos);
    CHECK_FALSE(lines_with(r.out, "->" + ns.addr_b() + ":80(tcp)").empty());
}
