#include "tracer/cli_options.h"

#include <algorithm>
#include <charconv>

#include <CLI/CLI.hpp>

#include "pwru_abi.h"
#include "tracer/kernel/netns.h"
#include "tracer/filter/pcap_compile.h"

namespace pwru {
namespace {

const std::map<std::string, Backend> kBackends = {{"auto", Backend::Auto},
                                                  {"kprobe-multi", Backend::KprobeMulti},
                                                  {"kprobe", Backend::Kprobe},
                                                  {"tracepoint", Backend::Tracepoint}};
const std::map<std::string, TimestampMode> kTimestamps = {{"none", TimestampMode::None},
                                                          {"current", TimestampMode::Current},
                                                          {"relative", TimestampMode::Relative},
                                                          {"absolute", TimestampMode::Absolute}};

}  // namespace

Result<CliConfig> parse_cli(int argc, const char* const* argv) {
    CliConfig c;
    CLI::App app{"pwru: where did my packet go? Traces packets through the kernel's skb functions.", "pwru"};
    app.footer(
        "The pcap-filter words are joined into one tcpdump expression, e.g.\n"
        "  pwru --output-tuple 'tcp and dst port 80'");
    app.set_help_flag("-h,--help", "Show this help");

    std::vector<std::string> kmods;
    std::string backend = "auto", timestamp = "none";
    std::vector<std::string> no_features;
    app.add_option("--kernel-btf", c.trace.discovery.kernel_btf, "kernel BTF file")->capture_default_str();
    app.add_option("--kmods", kmods, "also trace these kernel modules (comma-separated; may be repeated)")
        ->delimiter(',')
        ->allow_extra_args(false);  // one word per occurrence: the filter words follow
    app.add_flag("--all-kmods", c.trace.discovery.all_kmods, "also trace every kernel module with BTF");
    app.add_option("--backend", backend, "auto, kprobe-multi, kprobe or tracepoint")
        ->check(CLI::IsMember(kBackends))
        ->capture_default_str();
    app.add_option("--filter-func", c.trace.discovery.filter_func,
                   "trace only functions matching this RE2 regex (whole name)");
    app.add_option("--filter-netns", c.filter_netns, "trace only this netns: /proc/PID/ns/net or inode:N");
    app.add_option("--filter-mark", c.filter_mark, "trace only skbs with this mark: MARK[/MASK]");
    app.add_option("--filter-ifname", c.filter_ifname, "trace only this interface (in --filter-netns, else ours)");
    app.add_option("--filter-kprobe-batch", c.trace.kprobe_batch,
                   "classic kprobe backend: attach and detach this many kprobes at once (default: 16)")
        ->check(CLI::Range(1u, 256u));
    app.add_option("--filter-skb-expr", c.trace.filter_skb_expr,
                   "trace only skbs for which this C comparison of an skb member holds, e.g. "
                   "'skb->dev->ifindex == 11' or 'skb->len > 1000'");
    app.add_option("--filter-xdp-expr", c.trace.filter_xdp_expr,
                   "with --filter-trace-xdp: trace only XDP frames for which this comparison of an xdp_buff member "
                   "holds, e.g. 'xdp->rxq->dev->ifindex == 9'");
    app.add_flag("--filter-track-skb", c.trace.track_skb,
                 "keep tracing an skb after it matched once (NAT, decapsulation)");
    app.add_option("--filter-tunnel-pcap-l2", c.trace.tunnel_pcap_l2,
                   "pcap filter on the inner Ethernet header of VXLAN (UDP 4789) / Geneve (UDP 6081) packets; "
                   "other packets pass it");
    app.add_option("--filter-tunnel-pcap-l3", c.trace.tunnel_pcap_l3,
                   "pcap filter on the inner IP header of VXLAN / Geneve packets; other packets pass it");
    app.add_flag("--filter-track-skb-by-stackid", c.trace.track_skb_by_stackid,
                 "also trace calls in the call context (kernel stack) of a traced skb as that skb's");
    app.add_option("--filter-non-skb-funcs", c.trace.non_skb_funcs,
                   "also probe these functions without an skb argument (comma-separated; kprobes; "
                   "implies --filter-track-skb-by-stackid)")
        ->delimiter(',')
        ->allow_extra_args(false);  // one word per occurrence, as pwru: the filter words follow
    app.add_flag("--filter-track-bpf-helpers", c.trace.track_bpf_helpers,
                 "also probe the kernel functions the loaded BPF programs call (helpers, map operations; kprobes; "
                 "implies --filter-track-skb-by-stackid)");
    app.add_flag("--output-bpfmap", c.trace.output_bpfmap,
                 "print the map, key and value of BPF map lookups, updates and deletes among the probed non-skb "
                 "functions (--filter-track-bpf-helpers, --filter-non-skb-funcs)");
    app.add_flag("--filter-trace-tc", c.trace.trace_tc,
                 "also trace every loaded tc BPF program (fentry); its lines end in (tc)");
    app.add_flag("--filter-trace-xdp", c.trace.trace_xdp,
                 "also trace every loaded XDP BPF program (fentry); its lines end in (xdp)");
    app.add_flag("--output-stack", c.trace.output_stack, "print the kernel stack of each event");
    app.add_flag("--output-caller", c.trace.output_caller, "print the calling function (CALLER column)");
    app.add_flag("--output-meta,!--no-output-meta", c.output.meta, "print NETNS MARK IFACE PROTO MTU LEN")
        ->capture_default_str();
    app.add_flag("--output-tuple,!--no-output-tuple", c.output.tuple, "print the L3/L4 tuple")->capture_default_str();
    app.add_option("--output-skb-metadata", c.trace.output_skb_metadata,
                   "print this skb member on each event, e.g. skb->mark or skb->dev->ifindex (up to 4; "
                   "repeated or comma-separated)")
        ->delimiter(',')
        ->allow_extra_args(false);
    app.add_option("--output-xdp-metadata", c.trace.output_xdp_metadata,
                   "with --filter-trace-xdp: print this xdp_buff member on each XDP event, e.g. "
                   "xdp->rxq->queue_index (up to 4; repeated or comma-separated)")
        ->delimiter(',')
        ->allow_extra_args(false);
    app.add_flag("--output-skb", c.trace.output_skb, "print the sk_buff (bpf_snprintf_btf)");
    app.add_flag("--output-skb-shared-info", c.trace.output_shinfo, "print the skb_shared_info (bpf_snprintf_btf)");
    app.add_option("--set-percpu-buf", c.trace.dump_bytes,
                   "bytes of text for each --output-skb / --output-skb-shared-info dump (default 4096 and 2048)")
        ->check(CLI::Range(uint32_t{PWRU_DUMP_MIN}, uint32_t{PWRU_DUMP_MAX}));
    app.add_flag("--output-skb-cb", c.trace.output_skb_cb, "print skb->cb (the __sk_buff->cb[] words)");
    app.add_flag("--output-netns-names", c.output.netns_names, "print netns names (from /run/netns) where possible");
    app.add_option("--netns-names-max-length", c.output.netns_name_width, "characters per netns name (min 10)")
        ->check(CLI::Range(10, 255))
        ->capture_default_str();
    app.add_flag("--output-tcp-flags", c.output.tcp_flags, "print TCP flags in the tuple");
    app.add_flag("--output-tunnel", c.trace.output_tunnel,
                 "print the inner tuple of VXLAN / Geneve packets (TUNNEL column, JSON tunnel_tuple)");
    app.add_flag("--output-json", c.output.json, "one JSON object per event");
    app.add_flag("--output-json-pwru", c.output.json_pwru_shape,
                 "--output-json in cilium/pwru's exact shape: its field order, empty fields left out, none of ours, "
                 "no summary or loss records");
    app.add_option("--timestamp", timestamp, "none, current, relative or absolute")
        ->check(CLI::IsMember(kTimestamps))
        ->capture_default_str();
    std::string limit_lines;  // parsed below: CLI11 wraps "-1" and saturates above 2^64
    app.add_option("--output-limit-lines", limit_lines, "exit after this many events (0: no limit)");
    app.add_option("--output-file", c.output_file, "write events to this file instead of stdout");
    uint64_t max_size_mb = 100;
    app.add_option("--output-file-max-size", max_size_mb, "rotate --output-file past this many MB")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
        ->capture_default_str();
    app.add_option("--output-file-max-backups", c.rotation.max_backups,
                   "rotated files to keep (FILE.1 ... FILE.N; 0: all)")
        ->capture_default_str();
    int max_age_days = 0;  // signed: "-1" must be refused with the range, not wrapped
    app.add_option("--output-file-max-age", max_age_days,
                   "remove rotated files older than this many days (by modification time; 0: keep)")
        ->check(CLI::Range(0, 36500))
        ->capture_default_str();
    app.add_flag("--output-file-compress", c.rotation.compress, "gzip rotated files (FILE.1.gz ...)");
    app.add_option("--output-pcap", c.output_pcap,
                   "also write the traced packets to this pcapng file, each commented with its function");
    app.add_option("--ready-file", c.ready_file, "create this file once everything is attached");
    app.add_flag("--summary,!--no-summary", c.summary,
                 "on exit, each packet's path and every drop (stderr; a JSON record with --output-json)")
        ->capture_default_str();
    app.add_flag("--dry-run", c.dry_run, "print the backend and the functions, attach nothing");
    app.add_option("--no-feature", no_features, "pretend a kernel feature is absent (kprobe_multi, kprobe, tp_btf)")
        ->check(CLI::IsMember({"kprobe_multi", "kprobe", "tp_btf"}));
    app.add_flag("--debug", c.debug, "show libbpf's messages and the verifier log");
    app.add_flag("--version", c.version, "print the version");
    app.add_option("pcap-filter", c.filter_words, "tcpdump expression");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        c.help = true;
        c.help_text = app.help();
        return c;
    } catch (const CLI::ParseError& e) {
        return bad_input(std::string(e.what()) + "; see pwru --help");
    }

    if (!limit_lines.empty()) {
        auto [ptr, ec] =
            std::from_chars(limit_lines.data(), limit_lines.data() + limit_lines.size(), c.output_limit_lines);
        if (ec != std::errc() || ptr != limit_lines.data() + limit_lines.size())
            return bad_input("--output-limit-lines '" + limit_lines +
                             "' is not a whole number from 0 (no limit) to 18446744073709551615");
    }
    c.trace.backend = kBackends.at(backend);
    c.rotation.max_bytes = max_size_mb << 20;
    c.rotation.max_age_days = static_cast<unsigned>(max_age_days);
    c.output.timestamp = kTimestamps.at(timestamp);
    c.output.absolute_with_ktime = true;  // pwru's TIME and TIMESTAMP columns
    if (c.output.json_pwru_shape) c.output.json = true;
    c.trace.no_features.insert(no_features.begin(), no_features.end());
    c.trace.output_tuple = c.output.tuple;
    c.output.caller = c.trace.output_caller;
    std::erase_if(c.trace.non_skb_funcs, [](const std::string& f) { return f.empty(); });
    if (!c.trace.non_skb_funcs.empty() || c.trace.track_bpf_helpers) c.trace.track_skb_by_stackid = true;
    // pwru shows tc programs' cb[] (their __sk_buff->cb) whenever it traces them.
    if (c.trace.trace_tc) c.trace.output_skb_cb = true;
    c.output.skb_cb = c.trace.output_skb_cb;
    c.output.tunnel = c.trace.output_tunnel;
    c.trace.output_pcap = !c.output_pcap.empty();
    c.trace.pcap_expr = join_filter_words(c.filter_words);
    std::erase_if(c.trace.output_skb_metadata, [](const std::string& f) { return f.empty(); });
    std::erase_if(c.trace.output_xdp_metadata, [](const std::string& f) { return f.empty(); });
    for (auto [flag, list] : {std::pair{"--output-skb-metadata", &c.trace.output_skb_metadata},
                              std::pair{"--output-xdp-metadata", &c.trace.output_xdp_metadata}})
        if (list->size() > PWRU_MAX_FIELDS)
            return bad_input(std::string(flag) + " names " + std::to_string(list->size()) + " members; at most " +
                             std::to_string(PWRU_MAX_FIELDS) + " fit in an event");
    // Repeats and commas, as pwru (a string slice); a module named twice is scanned once.
    for (std::string& m : kmods)
        if (!m.empty() && std::find(c.trace.discovery.kmods.begin(), c.trace.discovery.kmods.end(), m) ==
                              c.trace.discovery.kmods.end())
            c.trace.discovery.kmods.push_back(std::move(m));
    return c;
}

Result<void> resolve_cli(CliConfig& c) {
    std::optional<NetnsRef> ns;
    if (!c.filter_netns.empty()) {
        auto r = parse_netns(c.filter_netns);
        if (!r) return std::unexpected(r.error());
        ns = *r;
        c.trace.netns_inode = r->inode;
    }
    if (!c.filter_mark.empty()) {
        auto m = parse_mark(c.filter_mark);
        if (!m) return std::unexpected(m.error());
        c.trace.mark = *m;
    }
    if (!c.filter_ifname.empty()) {
        if (!ns) {
            auto cur = current_netns();
            if (!cur) return std::unexpected(cur.error());
            ns = *cur;
        }
        auto idx = resolve_ifindex(c.filter_ifname, *ns);
        if (!idx) return std::unexpected(idx.error());
        c.trace.ifindex = *idx;
        c.trace.ifindex_netns = ns->inode;
    }
    return {};
}

}  // namespace pwru
