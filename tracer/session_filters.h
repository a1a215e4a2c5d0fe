// The session's translated pcap filters, shared by the files that load the
// probe programs (session.cc, session_attach.cc).
#pragma once

#include "tracer/filter/filter_injector.h"
#include "tracer/filter/filter_programs.h"
#include "tracer/session.h"

namespace pwru {

struct Session::Filters {
    FilterPrograms programs;
    TunnelFilterPrograms tunnel;  // with opts.tunnel_filter()

    // What the injector splices: the outer stubs with an outer filter, the
    // tunnel stubs with a tunnel filter (the others stay as compiled).
    StubFilters stubs(const TraceOptions& opts) const {
        StubFilters out;
        if (!opts.pcap_expr.empty()) {
            out.emplace_back(kStubL2, programs.l2);
            out.emplace_back(kStubL3, programs.l3);
        }
        if (opts.tunnel_filter()) {
            out.emplace_back(kStubTunnelL2, tunnel.l2);
            out.emplace_back(kStubTunnelL3, tunnel.l3);
        }
        return out;
    }
};

}  // namespace pwru
