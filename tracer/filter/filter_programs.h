// The pcap filter of a session: the expression compiled by libpcap for both
// link layers and translated to eBPF, ready to be spliced into the probes.
#pragma once

#include <string>
#include <vector>

#include "tracer/filter/cbpf_translate.h"
#include "tracer/filter/pcap_compile_bounded.h"
#include "tracer/util/result.h"

namespace pwru {

struct FilterPrograms {
    TranslatedFilter l2;  // for skbs with a MAC header (DLT_EN10MB)
    TranslatedFilter l3;  // for skbs starting at the network header (DLT_RAW)
    std::string note;     // e.g. why one layer rejects every packet
    // Tests that can never be true (`ip proto 999`), for a warning: pwru and
    // libpcap accept them, and the filter then silently matches less or nothing.
    std::vector<std::string> warnings;
};

// Compiles `expr` for L2 and L3. When only one layer compiles (`arp` has no
// meaning from an IP header), the other rejects every packet and `note` says
// so. When neither compiles, the error is libpcap's message for L2.
// A compiled program that cannot be translated is an error naming the construct.
// Both layers compile within one `budget` (pcap_compile_bounded.h).
Result<FilterPrograms> build_filter_programs(const std::string& expr, const CompileBudget& budget = {});

// --filter-tunnel-pcap-l2 / -l3: run on the inner Ethernet frame (DLT_EN10MB)
// and the inner network header (DLT_RAW) of VXLAN / Geneve packets. An empty
// expression matches every packet. Unlike the outer filter, an expression
// that does not compile for its layer is an error naming the option.
struct TunnelFilterPrograms {
    TranslatedFilter l2;
    TranslatedFilter l3;
};
Result<TunnelFilterPrograms> build_tunnel_filter_programs(const std::string& l2_expr, const std::string& l3_expr,
                                                          const CompileBudget& budget = {});

}  // namespace pwru
