#include "tracer/filter/filter_programs.h"

#include "tracer/filter/cbpf_lint.h"

namespace pwru {

Result<FilterPrograms> build_filter_programs(const std::string& expr, const CompileBudget& budget) {
    // An Error here: the compile did not finish (too long, too slow,
    // cancelled); a layer libpcap refuses is an outcome, handled below.
    auto l2 = compile_pcap_bounded(expr, LinkLayer::L2, budget);
    if (!l2) return std::unexpected(l2.error());
    auto l3 = compile_pcap_bounded(expr, LinkLayer::L3, budget);
    if (!l3) return std::unexpected(l3.error());
    if (l2->refused && l3->refused) return bad_input(*l2->refused);

    FilterPrograms out;
    auto translate = [&](const PcapOutcome& cbpf, const char* layer, TranslatedFilter& dst) -> Result<void> {
        if (cbpf.refused) {
            dst = constant_filter(false);
            out.note += std::string(out.note.empty() ? "" : "; ") + "packets seen from the " + layer +
                        " header never match (" + *cbpf.refused + ")";
            return {};
        }
        auto t = translate_cbpf(cbpf.insns);
        if (!t)
            return bad_input("cannot translate filter '" + expr + "' (" + layer + "): " + t.error().what +
                             "; simplify the expression or report it");
        dst = std::move(*t);
        return {};
    };
    if (auto r = translate(*l2, "MAC", out.l2); !r) return std::unexpected(r.error());
    if (auto r = translate(*l3, "network", out.l3); !r) return std::unexpected(r.error());
    // The same expression, so the same impossible tests: read them from one layer.
    out.warnings = impossible_comparisons(l2->refused ? l3->insns : l2->insns);
    return out;
}

namespace {

Result<TranslatedFilter> build_one_layer(const std::string& expr, LinkLayer ll, const char* option,
                                         const CompileBudget& budget) {
    if (expr.empty()) return constant_filter(true);
    auto cbpf = compile_pcap_bounded(expr, ll, budget);
    if (!cbpf) return std::unexpected(cbpf.error());
    if (cbpf->refused)
        return bad_input(std::string(option) + " '" + expr + "': " + *cbpf->refused + "; fix the expression (" +
                         (ll == LinkLayer::L2 ? "it sees the inner Ethernet header" : "it sees the inner IP header") +
                         ")");
    auto t = translate_cbpf(cbpf->insns);
    if (!t)
        return bad_input(std::string("cannot translate ") + option + " '" + expr + "': " + t.error().what +
                         "; simplify the expression or report it");
    return std::move(*t);
}

}  // namespace

Result<TunnelFilterPrograms> build_tunnel_filter_programs(const std::string& l2_expr, const std::string& l3_expr,
                                                          const CompileBudget& budget) {
    auto l2 = build_one_layer(l2_expr, LinkLayer::L2, "--filter-tunnel-pcap-l2", budget);
    if (!l2) return std::unexpected(l2.error());
    auto l3 = build_one_layer(l3_expr, LinkLayer::L3, "--filter-tunnel-pcap-l3", budget);
    if (!l3) return std::unexpected(l3.error());
    return TunnelFilterPrograms{std::move(*l2), std::move(*l3)};
}

}  // namespace pwru
