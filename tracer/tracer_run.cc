#include "tracer/tracer_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "tracer/kernel/bpf_helpers.h"
#include "tracer/kernel/bpf_prog_list.h"
#include "tracer/kernel/log.h"
#include "tracer/kernel/netns.h"
#include "tracer/output/pcapng_writer.h"
#include "tracer/trace_pipeline.h"
#include "tracer/events/trajectory_summary.h"

#include <nlohmann/json.hpp>

namespace pwru {
namespace {

using Clock = std::chrono::steady_clock;

int exit_code_for(const Error& e) { return e.users_fault() ? kExitBadInput : kExitFailure; }

int report(const Error& e) {
    spdlog::error("{}", e.message());
    if (!e.context.empty()) spdlog::debug("{}", e.context);
    // Without --debug the context follows the one-line error, indented (a
    // verifier rejection carries the verifier's last lines: they say why).
    if (!e.context.empty() && spdlog::get_level() > spdlog::level::debug) {
        size_t from = 0;
        while (from < e.context.size()) {
            size_t nl = e.context.find('\n', from);
            if (nl == std::string::npos) nl = e.context.size();
            if (nl > from) spdlog::error("  {}", e.context.substr(from, nl - from));
            from = nl + 1;
        }
    }
    return exit_code_for(e);
}

// "1481 / 1481 [------...] 100.00% 52449 p/s", as pwru's progress bar ends.
void print_progress(size_t done, size_t total, double seconds, bool final_line) {
    constexpr int kWidth = 40;
    int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
    std::string bar(static_cast<size_t>(filled), '-');
    bar += std::string(static_cast<size_t>(kWidth - filled), ' ');
    double pct = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
    std::string rate = seconds > 0 ? std::to_string(static_cast<long>(static_cast<double>(done) / seconds)) : "?";
    std::fprintf(stderr, "\r%zu / %zu [%s] %.2f%% %s p/s%s", done, total, bar.c_str(), pct, rate.c_str(),
                 final_line ? "\n" : "");
    std::fflush(stderr);
}

const char* attach_label(Backend b) {
    switch (b) {
        case Backend::KprobeMulti: return "Attaching kprobes (via kprobe-multi)...";
        case Backend::Kprobe: return "Attaching kprobes (via kprobe)...";
        default: return "Attaching tracepoints (via tp_btf)...";
    }
}

void print_plan(const Plan& plan, FILE* out) {
    std::fprintf(out, "backend: %s (%s)\n", backend_name(plan.backend), plan.backend_why.c_str());
    if (!plan.tracefs_note.empty()) std::fprintf(out, "note: %s\n", plan.tracefs_note.c_str());
    if (plan.backend == Backend::Tracepoint) {
        std::fprintf(out, "tracepoints: %zu\n", plan.tracepoints.size());
        for (const auto& tp : plan.tracepoints) std::fprintf(out, "  %s skb=arg%d\n", tp.name.c_str(), tp.skb_arg);
    } else {
        std::fprintf(out, "functions: %zu (%zu not traceable)\n", plan.functions.size(), plan.not_traceable);
        for (const auto& f : plan.functions)
            std::fprintf(out, "  %s skb=arg%d%s%s\n", f.name.c_str(), f.skb_pos,
                         f.module.empty() ? "" : (" [" + f.module + "]").c_str(),
                         f.reason_pos ? (" reason=arg" + std::to_string(f.reason_pos)).c_str() : "");
    }
}

// --dry-run with --filter-trace-tc / -xdp: the programs fentry would attach to.
void print_bpf_programs(BpfProgKind kind, FILE* out) {
    auto listing = list_bpf_programs(kind);
    if (!listing) {
        std::fprintf(out, "%s programs: %s\n", bpf_prog_kind_name(kind), listing.error().message().c_str());
        return;
    }
    std::fprintf(out, "%s programs: %zu (%zu without BTF, not traceable)\n", bpf_prog_kind_name(kind),
                 listing->progs.size(), listing->without_btf.size());
    for (const auto& p : listing->progs) std::fprintf(out, "  %s id %u\n", p.ksym.c_str(), p.id);
}

// --dry-run --filter-track-bpf-helpers: what would be probed.
void print_bpf_helpers(Session& s, FILE* out) {
    auto ks = s.kallsyms();
    auto calls = ks ? bpf_helper_calls(**ks) : Result<BpfHelperCalls>(std::unexpected(ks.error()));
    if (!calls) {
        std::fprintf(out, "bpf helpers: %s\n", calls.error().message().c_str());
        return;
    }
    std::fprintf(out, "bpf helpers: %zu kernel functions called by %zu BPF programs (%zu unreadable)\n",
                 calls->functions.size(), calls->programs, calls->unreadable);
    for (const auto& f : calls->functions) std::fprintf(out, "  %s\n", f.c_str());
}

// ", per CPU: cpu0 3, cpu1 5" for the CPUs that lost any; "" when none did.
std::string per_cpu_text(const std::vector<uint64_t>& per_cpu) {
    std::string out;
    for (size_t i = 0; i < per_cpu.size(); ++i)
        if (per_cpu[i]) out += fmt::format("{}cpu{} {}", out.empty() ? "" : ", ", i, per_cpu[i]);
    return out.empty() ? out : "; per CPU: " + out;
}

bool create_ready_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

// --filter-trace-tc / --filter-trace-xdp: never fatal. A kernel that refuses
// fentry is told in one line, and the functions' tracing goes on.
// Returns how many programs it traces, and why none when it traces none.
size_t trace_bpf_programs(Session& s, BpfProgKind kind, std::string& why_none) {
    const std::string kind_name = bpf_prog_kind_name(kind);
    const std::string flag = "--filter-trace-" + kind_name;
    spdlog::info("Attaching {} progs...", kind == BpfProgKind::Tc ? "tc-bpf" : "xdp");
    auto st = s.attach_bpf_programs(kind);
    if (!st) {
        why_none = flag + ": " + st.error().message();
        spdlog::warn("{}: {}; tracing continues without it", flag, st.error().message());
        return 0;
    }
    if (!st->refused.empty()) {
        why_none = flag + " needs fentry, which this kernel refuses";
        spdlog::warn("{} needs fentry, which this kernel refuses: {}; tracing continues without it", flag, st->refused);
        return 0;
    }
    for (const auto& p : st->without_btf) spdlog::info("Not tracing {} program {}: it has no BTF", kind_name, p);
    for (const auto& f : st->failures) spdlog::warn("{}: not traced: {}", flag, f);
    if (st->found == 0) {
        why_none = "no " + kind_name + " BPF program with BTF is loaded";
        spdlog::info("No {} BPF programs with BTF are loaded: {} traces none", kind_name, flag);
    } else {
        spdlog::info("Attached {} of {} {} programs", st->attached, st->found, kind_name);
    }
    return st->attached;
}

// --filter-non-skb-funcs: never fatal either; what did not attach is named.
void attach_non_skb(Session& s) {
    auto st = s.attach_non_skb_funcs();
    if (!st) {
        spdlog::warn("{}: ignored", st.error().message());
        return;
    }
    for (const auto& f : st->failures) spdlog::warn("--filter-non-skb-funcs: not attached: {}", f);
    spdlog::info("Attached {} non-skb functions (ignored {})", st->attached, st->ignored);
}

}  // namespace

int run_pwru(CliConfig& cfg, const std::atomic<bool>& stop, EventSink& out) {
    if (auto r = check_privileges(); !r) return report(r.error());
    if (auto r = resolve_cli(cfg); !r) return report(r.error());

    // ^C while the filter compiles stops at once (it runs in a child process).
    cfg.trace.cancelled = [&stop] { return stop.load(); };
    auto pipeline = TracePipeline::create(cfg.trace);
    if (!pipeline && stop.load()) {
        spdlog::info("Received signal, exiting program..");
        return kExitOk;
    }
    if (!pipeline) return report(pipeline.error());
    TracePipeline& p = **pipeline;
    Session& s = p.session();
    const Plan& plan = p.plan();

    if (cfg.dry_run) {
        print_plan(plan, out.stream());
        if (cfg.trace.trace_tc) print_bpf_programs(BpfProgKind::Tc, out.stream());
        if (cfg.trace.trace_xdp) print_bpf_programs(BpfProgKind::Xdp, out.stream());
        if (cfg.trace.track_bpf_helpers) print_bpf_helpers(s, out.stream());
        return kExitOk;
    }
    if (plan.backend == Backend::Tracepoint) spdlog::info("Notice: {}", plan.backend_why);
    if (!plan.tracefs_note.empty()) spdlog::info("Notice: {}", plan.tracefs_note);

    if (auto r = p.load(cfg.output); !r) return report(r.error());

    spdlog::info("{}", attach_label(plan.backend));
    auto t0 = Clock::now();
    bool tty = isatty(STDERR_FILENO);
    auto stats = s.attach([&](size_t done, size_t total) {
        if (tty) print_progress(done, total, std::chrono::duration<double>(Clock::now() - t0).count(), false);
    });
    if (!stats) return report(stats.error());
    print_progress(plan.target_count(), plan.target_count(), stats->seconds, true);
    spdlog::info("Attached (ignored {})", stats->ignored);
    for (const auto& f : stats->failures) spdlog::debug("not attached: {}", f);
    if (!cfg.trace.non_skb_funcs.empty() || cfg.trace.track_bpf_helpers)
        attach_non_skb(s);
    else if (cfg.trace.output_bpfmap)
        spdlog::warn(
            "--output-bpfmap shows the map operations among the functions --filter-track-bpf-helpers or "
            "--filter-non-skb-funcs probe: add one");
    size_t programs = 0;
    std::string why_none;
    if (cfg.trace.trace_tc) programs += trace_bpf_programs(s, BpfProgKind::Tc, why_none);
    if (cfg.trace.trace_xdp) programs += trace_bpf_programs(s, BpfProgKind::Xdp, why_none);
    if (plan.target_count() == 0) {
        // pwru #394: no skb function matched, the tc / XDP programs are the trace
        if (programs == 0)
            return report(bad_input("no skb function matches --filter-func and no tc / XDP program can be traced (" +
                                    why_none + "); widen --filter-func")
                              .error());
        spdlog::info("Notice: no skb function matches --filter-func: tracing {} tc / XDP programs only", programs);
    }

    s.start();
    if (!cfg.ready_file.empty() && !create_ready_file(cfg.ready_file)) {
        spdlog::error("cannot create the ready file {}; check the directory exists and is writable", cfg.ready_file);
        return kExitFailure;
    }
    spdlog::info("Listening for events..");

    OutputFormatter formatter(cfg.output);
    if (!cfg.output.json) (void)out.write_line(formatter.header());
    (void)out.flush();  // a failing output is reported with the first events

    TrajectorySummary summary(p.skb_ends());
    // `printed`: events whose lines reached the output (a flush succeeded after
    // them); `handed`: lines given to the output, for --output-limit-lines.
    // After a write error nothing more is written and the rest is counted.
    uint64_t printed = 0, handed = 0, unprinted = 0, reported_lost = 0;
    uint64_t handed_at_flush = 0;
    bool limit_reached = false;
    std::optional<Error> write_error;
    std::optional<PcapngWriter> pcap;
    if (!cfg.output_pcap.empty()) {
        auto w = PcapngWriter::open(cfg.output_pcap);
        if (!w) return report(w.error());
        pcap.emplace(std::move(*w));
    }
    std::string line;
    EventFn on_event = [&](const pwru_event& ev, const RecordExtras& extras) {
        if (limit_reached) return;
        if (write_error) {
            ++unprinted;
            return;
        }
        EventRecord rec = p.decode(ev, extras);
        if (pcap && extras.packet) {
            if (auto w = pcap->write(rec, *extras.packet); !w && !write_error) write_error = w.error();
        }
        if (cfg.summary) summary.add(rec);
        line.clear();  // reused: no allocation per event once it has grown
        formatter.format_to(line, rec);
        if (auto w = out.write_line(line); !w) {
            write_error = w.error();
            ++unprinted;
            return;
        }
        ++handed;
        if (cfg.output_limit_lines && handed >= cfg.output_limit_lines) limit_reached = true;
    };
    // What a flush confirms: the lines handed since the last one reached the
    // output, or (it failed) may not have.
    auto flush_events = [&] {
        auto f = out.flush();
        if (!f && !write_error) write_error = f.error();
        if (write_error)
            unprinted += handed - handed_at_flush;
        else
            printed += handed - handed_at_flush;
        handed_at_flush = handed;
    };
    int rc = kExitOk;
    while (!stop.load() && !limit_reached) {
        auto n = p.poll(100, on_event);
        if (!n) {
            rc = report(n.error());
            break;
        }
        flush_events();
        if (pcap) pcap->flush();
        if (write_error) {
            rc = report(*write_error);
            break;
        }
        LossCounters c = p.counters();
        if (c.lost() > reported_lost) {
            spdlog::warn("lost {} events so far: {} with the ring buffer full (output too slow){}{}", c.lost(),
                         c.ringbuf_full, per_cpu_text(c.ringbuf_full_per_cpu),
                         c.recursion_misses
                             ? fmt::format(", {} while another BPF program ran on the CPU", c.recursion_misses)
                             : std::string());
            if (cfg.output.json && !cfg.output.json_pwru_shape) (void)out.write_line(loss_record(c).dump());
            reported_lost = c.lost();
        }
        p.refresh_clock_if_due();
    }
    if (stop.load()) spdlog::info("Received signal, exiting program..");
    spdlog::info("Detaching {}...", plan.backend == Backend::Tracepoint ? "tracepoints" : "kprobes");
    // Events already in the ring buffer were traced before the detach: print them.
    p.detach_and_drain(limit_reached ? EventFn{} : on_event);
    LossCounters c = p.counters();
    // pwru's JSON shape has events only: the summary goes to stderr as text.
    if (cfg.output.json && !cfg.output.json_pwru_shape) {
        (void)out.write_line(loss_record(c).dump());
        if (cfg.summary) (void)out.write_line(summary.json().dump());
    } else if (cfg.summary) {
        std::fputs(summary.text().c_str(), stderr);
    }
    flush_events();
    spdlog::info(
        "Summary: {} events printed{}, {} lost (ring buffer full{}), {} missed (BPF recursion), {} hits "
        "filtered out in the kernel",
        printed,
        unprinted ? fmt::format(" ({} more traced but not printed: {})", unprinted, write_error->message())
                  : std::string(),
        c.ringbuf_full, per_cpu_text(c.ringbuf_full_per_cpu), c.recursion_misses, c.filtered_out);
    if (c.filter_nonlinear)
        spdlog::warn(
            "{} filter decisions needed packet bytes in paged fragments, which the filter does not "
            "read yet: those hits did not match",
            c.filter_nonlinear);
    return rc;
}

}  // namespace pwru
