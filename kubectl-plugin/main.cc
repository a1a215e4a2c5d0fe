// kubectl-pwru: `kubectl pwru pod/httpd -- 'tcp port 80'`. A thin main over
// plugin_run (see kubectl-plugin/ and docs/agent-api.md).
#include <csignal>
#include <iostream>

#include "kubectl-plugin/plugin_run.h"
#include "kubectl-plugin/trace_report.h"

namespace {
std::atomic<bool> interrupted{false};
void on_signal(int) { interrupted = true; }
}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    // A recorded timeline, rendered and summarized (e2e/kind-trace.sh collect).
    if (!args.empty() && args[0].rfind("--report", 0) == 0) return pwru::plugin::run_report(args, std::cout, std::cerr);
    auto opts = pwru::plugin::parse_plugin_options(args);
    if (!opts) {
        std::cerr << "kubectl-pwru: " << opts.error().message() << "\n";
        return 2;
    }
    if (opts->help) {
        std::cout << opts->help_text << "\nAfter `--`: the pcap filter, e.g. kubectl pwru pod/httpd -- 'tcp port 80'\n";
        return 0;
    }
    if (opts->version) {
        std::cout << "kubectl-pwru " << PWRU_PLUGIN_VERSION << "\n";
        return 0;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return pwru::plugin::run_plugin(*opts, pwru::plugin::KubeEnvironment::from_process(), std::cout, std::cerr,
                                    interrupted);
}
