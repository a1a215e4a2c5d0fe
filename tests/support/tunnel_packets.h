// Test inputs for the tunnel filters (--filter-tunnel-pcap-l2/l3) and
// --output-tunnel: generated VXLAN / Geneve packets and look-alikes, and the
// reference rule for where a packet's inner frame starts, written here from
// the specification in bpf/skb_tunnel.bpf.h, independently of the BPF code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace pwru::test {

using TunnelBytes = std::vector<uint8_t>;

struct TunnelPacketSets {
    std::vector<TunnelBytes> l2;  // Ethernet frames
    std::vector<TunnelBytes> l3;  // the same packets from the outer IP header
};

// VXLAN and Geneve (option lengths from 0 to past the 128-byte window) over
// IPv4 (with and without options) and IPv6, carrying Ethernet frames with
// IPv4 / IPv6 TCP, UDP, ICMP, ARP and VLAN-tagged (one and two tags) IPv4;
// look-alikes that are not tunnel traffic (VXLAN without the I flag, Geneve
// of version 1 or carrying IPv4 directly, other UDP ports, TCP to 4789, a
// later IPv4 fragment); and every one cut short at many lengths past the outer IP
// header (inside UDP, the tunnel header, the inner Ethernet and IP headers).
TunnelPacketSets make_tunnel_packets();

// The inner Ethernet frame of a VXLAN / Geneve packet (`l2`: pkt is an
// Ethernet frame, else it starts at the IP header): the bytes from the
// inner offset to the end, empty when the packet is cut before it; nullopt
// when the packet is not tunnel traffic.
std::optional<TunnelBytes> tunnel_inner_frame(const TunnelBytes& pkt, bool l2);

// The inner network header on: the inner frame past its Ethernet header and
// up to two VLAN tags (0x8100 / 0x88a8); empty when the frame ends before.
TunnelBytes inner_l3(const TunnelBytes& inner_frame);

}  // namespace pwru::test
