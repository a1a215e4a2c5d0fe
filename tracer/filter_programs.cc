#include "tracer/filter_programs.h"

#include "tracer/pcap_compile.h"

namespace pwru {

Result<FilterPrograms> build_filter_programs(const std::string& expr) {
    auto l2 = compile_pcap(expr, LinkLayer::L2);
    auto l3 = compile_pcap(expr, LinkLayer::L3);
    if (!l2 && !l3) return bad_input(l2.error().what);

    FilterPrograms out;
    auto translate = [&](const Result<std::vector<sock_filter>>& cbpf, const char* layer,
                         TranslatedFilter& dst) -> Result<void> {
        if (!cbpf) {
            dst = constant_filter(false);
            out.note += std::string(out.note.empty() ? "" : "; ") + "packets seen from the " + layer +
                        " header never match (" + cbpf.error().what + ")";
            return {};
        }
        auto t = translate_cbpf(*cbpf);
        if (!t)
            return bad_input("cannot translate filter '" + expr + "' (" + layer + "): " + t.error().what +
                             "; simplify the expression or report it");
        dst = std::move(*t);
        return {};
    };
    if (auto r = translate(l2, "MAC", out.l2); !r) return std::unexpected(r.error());
    if (auto r = translate(l3, "network", out.l3); !r) return std::unexpected(r.error());
    return out;
}

}  // namespace pwru
