// tcpdump expressions -> classic BPF, with libpcap.
//
// This header deliberately includes only <linux/filter.h> (struct
// sock_filter): libpcap's <pcap/bpf.h> declares its own `struct bpf_insn`
// (the cBPF one) that clashes with <linux/bpf.h>'s eBPF `struct bpf_insn`.
// sock_filter has the same layout as libpcap's instruction.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "tracer/util/result.h"

namespace pwru {

// What the filter sees at offset 0: the MAC header (DLT_EN10MB) or the
// network header (DLT_RAW).
enum class LinkLayer { L2 /* DLT_EN10MB */, L3 /* DLT_RAW */ };

// Compiles a tcpdump expression with libpcap (pcap_open_dead(linktype,
// 262144) + pcap_compile(optimize=1, PCAP_NETMASK_UNKNOWN)). On error,
// Error.what is libpcap's own message (pcap_geterr) and err is 0.
// Thread-safe (libpcap's compiler is serialised behind a mutex).
Result<std::vector<struct sock_filter>> compile_pcap(const std::string& expr, LinkLayer ll);
// The same without the lock, for a single-threaded caller only: the child
// process of compile_pcap_bounded (pcap_compile_bounded.h), where a lock held
// by another thread at the fork would never be released.
Result<std::vector<struct sock_filter>> compile_pcap_unlocked(const std::string& expr, LinkLayer ll);

// Joins positional CLI words into one expression like tcpdump does
// (separated by single spaces).
std::string join_filter_words(const std::vector<std::string>& words);

}  // namespace pwru
