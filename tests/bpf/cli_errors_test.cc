// Bad input gets one clear line that says what to do next, the right exit
// code, and nothing attached. Runs the real binary (root: privileges are
// checked before anything else).
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "support/child_process.h"
#include "support/netns_fixture.h"
#include "support/root_guard.h"

using namespace pwru::test;

namespace {

struct Outcome {
    int code;
    std::vector<std::string> err_lines;
    std::string out;
};

Outcome run_pwru(std::vector<std::string> args, std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = std::move(prefix);
    argv.push_back(PWRU_BIN);
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = run_command(argv, std::chrono::seconds(60));
    Outcome o{r.exit_code, {}, r.out};
    std::istringstream in(r.err);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) o.err_lines.push_back(line);
    return o;
}

void expect_one_line_error(const Outcome& o, int code, const std::string& needle) {
    INFO("stderr lines:\n"
         << [&] {
                std::string s;
                for (const auto& l : o.err_lines) s += l + "\n";
                return s;
            }());
    CHECK(o.code == code);
    REQUIRE(o.err_lines.size() == 1);
    CHECK(o.err_lines[0].find(needle) != std::string::npos);
    CHECK(o.out.empty());  // no header, no events: nothing was attached
}

}  // namespace

TEST_CASE("an invalid filter: libpcap's message, exit 2", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"tcp port"}), 2, "syntax error");
    expect_one_line_error(run_pwru({"host", "300.1.1.1"}), 2, "300.1.1.1");
}

TEST_CASE("bad flag values: exit 2 with the form expected", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"--filter-mark", "0xzz"}), 2, "MARK/MASK");
    expect_one_line_error(run_pwru({"--timestamp", "yesterday"}), 2, "pwru --help");
    expect_one_line_error(run_pwru({"--filter-netns", "inode:nope"}), 2, "inode:N");
}

TEST_CASE("bad tunnel filters and rotation values: exit 2, one line, nothing attached", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"--filter-tunnel-pcap-l3", "arp"}), 2, "--filter-tunnel-pcap-l3 'arp'");
    expect_one_line_error(run_pwru({"--filter-tunnel-pcap-l2", "udp port"}), 2, "syntax error");
    expect_one_line_error(run_pwru({"--output-file-max-age", "-1"}), 2, "--output-file-max-age");
    expect_one_line_error(run_pwru({"--output-file-max-backups", "-1"}), 2, "--output-file-max-backups");
}

TEST_CASE("missing things: BTF, netns, interface, functions", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"--kernel-btf", "/nonexistent/vmlinux"}), 1, "--kernel-btf");
    expect_one_line_error(run_pwru({"--filter-netns", "/proc/999999999/ns/net"}), 1, "/proc/PID/ns/net");
    expect_one_line_error(run_pwru({"--filter-ifname", "nosuch0"}), 1, "unknown interface 'nosuch0'");
    expect_one_line_error(run_pwru({"--filter-func", "no_such_function_zz"}), 2, "--filter-func");
}

TEST_CASE("without root or CAP_BPF+CAP_PERFMON: say so", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto o = run_pwru({"tcp"}, {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"});
    expect_one_line_error(o, 1, "needs root or the capabilities CAP_BPF and CAP_PERFMON");
}

TEST_CASE("an explicit backend that cannot attach: clear error, nothing attached", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto o = run_pwru({"--backend", "kprobe-multi", "--no-feature", "kprobe_multi"});
    expect_one_line_error(o, 1, "kprobe-multi is not available on this kernel");
}

TEST_CASE("--dry-run prints the plan and attaches nothing", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto o = run_pwru({"--dry-run", "--backend", "tracepoint", "--filter-func", "kfree_skb|consume_skb"});
    CHECK(o.code == 0);
    CHECK(o.out.find("backend: tracepoint") != std::string::npos);
    CHECK(o.out.find("  kfree_skb skb=arg0") != std::string::npos);
    CHECK(o.out.find("tracepoints: 2") != std::string::npos);
}

TEST_CASE("a filter test that can never be true (ip proto 999) is a warning; the trace still starts", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    auto o = run_pwru({"--dry-run", "--backend", "tracepoint", "--filter-func", "kfree_skb", "ip proto 999"});
    CHECK(o.code == 0);  // libpcap and cilium/pwru accept it: a warning, not an error
    size_t warnings = 0;
    for (const auto& l : o.err_lines)
        if (l.find("filter 'ip proto 999': a test compares a 1-byte packet field with 999") != std::string::npos)
            ++warnings;
    CHECK(warnings == 1);
    auto fine = run_pwru({"--dry-run", "--backend", "tracepoint", "--filter-func", "kfree_skb", "ip proto 17"});
    CHECK(fine.code == 0);
    for (const auto& l : fine.err_lines) CHECK(l.find("never true") == std::string::npos);
}

TEST_CASE("--kmods naming a module that does not exist: exit 2, one line, also on the tracepoint backend", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"--backend", "tracepoint", "--kmods", "nonexistent_mod", "icmp"}), 2,
                          "kernel module 'nonexistent_mod' has no BTF at /sys/kernel/btf/nonexistent_mod");
}

TEST_CASE("--filter-skb-expr / --output-skb-metadata against this kernel's BTF: exit 2, one line", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"--backend", "tracepoint", "--filter-skb-expr", "skb->nosuch == 1", "icmp"}), 2,
                          "struct sk_buff has no member 'nosuch'");
    expect_one_line_error(run_pwru({"--backend", "tracepoint", "--filter-skb-expr", "skb->len >> 3"}), 2,
                          "one operator only");
    expect_one_line_error(run_pwru({"--backend", "tracepoint", "--filter-skb-expr", "skb->mark == 0x100000000"}), 2,
                          "does not fit: skb->mark is a 32-bit unsigned number");
    expect_one_line_error(run_pwru({"--backend", "tracepoint", "--output-skb-metadata", "skb->dev->name"}), 2,
                          "skb->dev->name is an array");
    expect_one_line_error(run_pwru({"--output-skb-metadata", "skb->mark,skb->len,skb->hash,skb->priority",
                                    "--output-skb-metadata", "skb->protocol"}),
                          2, "at most 4");
    // what is right passes: the dry run names the plan and exits 0
    auto fine = run_pwru({"--dry-run", "--backend", "tracepoint", "--filter-skb-expr", "skb->dev->ifindex == 1",
                          "--output-skb-metadata", "skb->mark", "icmp"});
    CHECK(fine.code == 0);
}

TEST_CASE("--filter-func matching nothing: refused, unless tc / XDP programs can be traced instead", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    expect_one_line_error(run_pwru({"--filter-func", "^pwru_no_such_function$", "icmp"}), 2,
                          "no skb function or tracepoint matches; check --filter-func");
    // pwru #394: with --filter-trace-tc the tc programs alone would be the trace. Here
    // none can be (this host refuses fentry, or none is loaded): exit 2, saying why last.
    Outcome o = run_pwru({"--filter-func", "^pwru_no_such_function$", "--filter-trace-tc", "icmp"});
    CHECK(o.code == 2);
    REQUIRE_FALSE(o.err_lines.empty());
    CHECK(o.err_lines.back().find("no skb function matches --filter-func and no tc / XDP program can be traced (") !=
          std::string::npos);
    CHECK(o.out.empty());
}

namespace {
std::string host_list(int n) {
    std::string s;
    for (int i = 0; i < n; ++i)
        s += (i ? " or host 10.0." : "host 10.0.") + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255);
    return s;
}
}  // namespace

TEST_CASE("a filter too long or too slow to compile: the size named at once, ^C heard while it compiles", "[bpf]") {
    PWRU_REQUIRE_ROOT();
    // The 100k-character filter: one line naming the limit, not "out of memory".
    expect_one_line_error(run_pwru({std::string(100'000, 'x')}), 2, "100000 bytes, above the limit of 16384");
    // 600 `host` terms (11 KB) keep libpcap's optimizer busy for many seconds:
    // SIGINT stops pwru within a poll interval, exit 0 as any ^C, nothing left.
    ChildProcess pwru({PWRU_BIN, "--backend", "tracepoint", host_list(600)});
    // In the compile: pwru's compiler child exists (every wait bounded).
    const std::string children =
        "/proc/" + std::to_string(pwru.pid()) + "/task/" + std::to_string(pwru.pid()) + "/children";
    bool compiling = false;
    for (int i = 0; i < 500 && !compiling && pwru.running(); ++i) {
        compiling = !read_file_text(children).empty();
        if (!compiling) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(compiling);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // well inside libpcap's optimizer
    const auto t0 = std::chrono::steady_clock::now();
    pwru.interrupt();
    auto status = pwru.wait(std::chrono::seconds(5));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("stderr: " << pwru.stderr_text());
    REQUIRE(status);
    CHECK(*status == 0);
    CHECK(took < 0.5);
    CHECK(pwru.stderr_text().find("Received signal, exiting program..") != std::string::npos);
    CHECK(pwru.stdout_text().empty());
}

TEST_CASE("at the open-file limit: the limit and its values named, at load and at attach, nothing half-attached",
          "[bpf]") {
    PWRU_REQUIRE_ROOT();
    // 20 descriptors: the load fails; 50: the load passes and the tracepoints run out.
    for (const char* limit : {"20", "50"}) {
        INFO("nofile " << limit);
        auto o = run_pwru({"--backend", "tracepoint", "icmp"}, {"prlimit", std::string("--nofile=") + limit});
        CHECK(o.code == 1);
        CHECK(o.out.empty());
        size_t named = 0;
        for (const auto& l : o.err_lines) {
            CHECK(l.find("--debug") == std::string::npos);  // not the verifier's fault
            if (l.find("this process is at its open-file limit (RLIMIT_NOFILE soft " + std::string(limit)) !=
                    std::string::npos &&
                l.find("raise it (ulimit -n") != std::string::npos)
                ++named;
        }
        CHECK(named == 1);
    }
}
