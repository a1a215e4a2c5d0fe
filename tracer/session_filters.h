// The session's translated pcap filters, shared by the files that load the
// probe programs (session.cc, attach_bpf_programs.cc).
#pragma once

#include "tracer/filter_programs.h"
#include "tracer/session.h"

namespace pwru {

struct Session::Filters {
    FilterPrograms programs;
};

}  // namespace pwru
