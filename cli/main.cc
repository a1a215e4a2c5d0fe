// pwru: a thin main over the tracer library (tracer/tracer_run.cc).
#include <csignal>
#include <cstdio>

#include "tracer/log.h"
#include "tracer/tracer_run.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

void install_signal_handlers() {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: the poll returns at once
    sigaction(SIGTERM, &sa, nullptr);
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

    FILE* out = stdout;
    if (!cfg->output_file.empty()) {
        out = std::fopen(cfg->output_file.c_str(), "w");
        if (!out) {
            spdlog::error("cannot open --output-file {}: {}; check the path is writable", cfg->output_file,
                          std::strerror(errno));
            return pwru::kExitFailure;
        }
    }
    install_signal_handlers();
    int rc = pwru::run_pwru(*cfg, g_stop, out);
    if (out != stdout) std::fclose(out);
    return rc;
}
