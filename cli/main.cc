// pwru: a thin main over the tracer library (tracer/tracer_run.cc).
#include <csignal>
#include <cstdio>

#include "tracer/kernel/log.h"
#include "tracer/tracer_run.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: the poll returns at once
    sigaction(SIGTERM, &sa, nullptr);
}

// stdout, or --output-file with rotation.
pwru::Result<pwru::EventSink> open_sink(const pwru::CliConfig& c) {
    if (c.output_file.empty()) return pwru::EventSink();
    return pwru::EventSink::open(c.output_file, c.rotation);
}

}  // namespace

int main(int argc, char** argv) {
    auto cfg = pwru::parse_cli(argc, argv);
    pwru::init_logging(cfg && cfg->debug);
    if (!cfg) {
        spdlog::error("{}", cfg.error().message());
        return pwru::kExitBadInput;
    }
    if (cfg->help) {
        std::fputs(cfg->help_text.c_str(), stdout);
        return pwru::kExitOk;
    }
    if (cfg->version) {
        std::printf("pwru %s (pwru-k8s, cilium/pwru-compatible)\n", PWRU_VERSION);
        return pwru::kExitOk;
    }

    auto out = open_sink(*cfg);
    if (!out) {
        spdlog::error("{}", out.error().message());
        return pwru::kExitFailure;
    }
    install_signal_handlers();
    return pwru::run_pwru(*cfg, g_stop, *out);
}
