// Test inputs shared by the two filter differential tests (the translator
// alone through the raw runner, tests/bpf/cbpf_translate_run_test.cc, and
// the probes' own code path, tests/bpf/filter_differential_test.cc): the
// tcpdump expressions, the packets this code generates, the capture corpus
// of ../shared/testdata/pcap, and libpcap's reference verdict.
//
// Only <linux/filter.h> here (struct sock_filter): libpcap's <pcap/bpf.h>
// and <linux/bpf.h> both declare a `struct bpf_insn`.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tracer/filter/pcap_compile.h"

namespace pwru::test {

using Bytes = std::vector<uint8_t>;

// tcpdump expressions (distinct), each compiled for both link layers by the
// tests; some compile for one layer only (arp, vlan, ether ... not for
// DLT_RAW). Covers host/net/port/portrange, protocol names, ip/ip6/arp/vlan,
// tcp flags, byte offsets and masks, lengths, payload-length arithmetic,
// protochain (loops), negations and nesting, loads far past the 128-byte
// window.
const std::vector<std::string>& filter_expressions();

// The longest packet make_packets() generates (an L2 frame with two VLAN
// tags included). BPF_PROG_TEST_RUN takes somewhat more; the probe-path test
// measures the real limit and checks this fits.
inline constexpr size_t kMaxGeneratedPacket = 3100;

struct PacketSets {
    std::vector<Bytes> l2;  // Ethernet frames
    std::vector<Bytes> l3;  // IPv4 / IPv6 packets (and garbage)
};

// Deterministic: IPv4 (options, fragments, AH) and IPv6 (extension-header
// chains: hop-by-hop, routing, fragment, destination options, AH, ESP, no
// next header; long chains) carrying TCP / UDP / ICMP / ICMPv6 / others,
// VLAN / QinQ, ARP, RARP, LLC/STP, SNAP, MPLS, PPPoE, Geneve; packets well
// past the 128-byte window (up to kMaxGeneratedPacket), packets whose length
// fields disagree with their size, truncations at header boundaries and
// around the window edge, random bytes and mutated packets. Sizes from 0.
PacketSets make_packets();

// What BPF_PROG_TEST_RUN builds no skb from, which the filter harness runs
// through its buffer route: a 7 KB TCP GSO packet, 9 KB UDP (jumbo frame),
// IPv4 BIG TCP (80 KB, total length 0), IPv6 jumbograms and BIG TCP (payload
// length 0 and a hop-by-hop Jumbo Payload option, RFC 2675; 65,575 and 80 KB),
// and short ones: 33 bytes (IPv4 with half a TCP header, IPv6 cut inside its
// header), 1 to 19 bytes, Ethernet frames shorter than the IP header their
// ethertype announces and than the Ethernet header itself.
PacketSets big_and_short_packets();

// IPv6 + `headers` hop-by-hop extension headers + ICMPv6 echo: a chain
// `protochain` walks with one backward jump per header.
Bytes ipv6_hop_by_hop_chain(size_t headers);

// Packets of the capture files in PWRU_SHARED_DIR/testdata/pcap (read in
// place) with the link type of `ll` (DLT_EN10MB, or DLT_RAW / LINKTYPE_RAW).
// Packets longer than max_len are cut to max_len (counted in `truncated`).
struct CaptureSet {
    bool found = false;  // the directory exists
    std::string dir;
    size_t files = 0;
    size_t truncated = 0;
    std::vector<Bytes> packets;
};
CaptureSet read_captures(LinkLayer ll, size_t max_len);

// libpcap's own verdict: pcap_offline_filter() with caplen = len = size.
bool libpcap_matches(const std::vector<sock_filter>& prog, const Bytes& pkt);

// Hex dump of the first max bytes ("..." when cut).
std::string hex(const Bytes& pkt, size_t max);

}  // namespace pwru::test
