#include "support/tunnel_packets.h"

#include <algorithm>

namespace pwru::test {
namespace {

using Bytes = TunnelBytes;

constexpr size_t kEth = 14;
constexpr uint16_t kVxlanPort = 4789;
constexpr uint16_t kGenevePort = 6081;

void put16(Bytes& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

Bytes ether(uint8_t src_last, uint16_t type, const Bytes& payload) {
    Bytes b = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, src_last};
    put16(b, type);
    append(b, payload);
    return b;
}

// IPv4 with `option_words` 4-byte option words (NOPs); frag = the frag_off field.
Bytes ipv4(const Bytes& src, const Bytes& dst, uint8_t proto, const Bytes& payload, uint8_t option_words = 0,
           uint16_t frag = 0) {
    const size_t hlen = 20 + 4u * option_words;
    Bytes b = {static_cast<uint8_t>(0x40 | (hlen / 4)), 0};
    put16(b, static_cast<uint16_t>(hlen + payload.size()));
    put16(b, 1);
    put16(b, frag);
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);
    append(b, src);
    append(b, dst);
    b.insert(b.end(), 4u * option_words, 0x01);
    append(b, payload);
    return b;
}

Bytes ipv6(uint8_t last_src, uint8_t last_dst, uint8_t next, const Bytes& payload) {
    Bytes b = {0x60, 0, 0, 0};
    put16(b, static_cast<uint16_t>(payload.size()));
    b.push_back(next);
    b.push_back(64);
    for (uint8_t last : {last_src, last_dst}) {
        Bytes a(16, 0);
        a[0] = 0xfd;
        a[15] = last;
        append(b, a);
    }
    append(b, payload);
    return b;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put16(b, static_cast<uint16_t>(8 + payload.size()));
    put16(b, 0);
    append(b, payload);
    return b;
}

Bytes tcp_syn(uint16_t sport, uint16_t dport) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    b.insert(b.end(), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0});
    return b;
}

Bytes icmp_echo() { return {8, 0, 0xf7, 0xff, 0, 0, 0, 0, 'p', 'w', 'r', 'u'}; }

Bytes payload(size_t n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
    return b;
}

// The inner Ethernet frames the tunnels carry.
std::vector<Bytes> inner_frames() {
    const Bytes a = {10, 1, 0, 1}, b = {10, 1, 0, 2}, c = {10, 1, 0, 3};
    std::vector<Bytes> out;
    out.push_back(ether(0x01, 0x0800, ipv4(a, b, 6, tcp_syn(1000, 80))));
    out.push_back(ether(0x01, 0x0800, ipv4(c, b, 17, udp(1001, 7001, payload(20)))));
    out.push_back(ether(0x03, 0x0800, ipv4(c, b, 17, udp(1002, 7002, payload(300)))));
    out.push_back(ether(0x01, 0x0800, ipv4(a, c, 1, icmp_echo())));
    out.push_back(ether(0x02, 0x86dd, ipv6(1, 2, 17, udp(1003, 7001, payload(12)))));
    out.push_back(ether(0x02, 0x86dd, ipv6(1, 2, 6, tcp_syn(1004, 80))));
    Bytes arp = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 10, 1, 0, 2};
    out.push_back(ether(0x01, 0x0806, arp));
    Bytes tagged = {0x00, 0x07, 0x08, 0x00};  // VLAN 7, then IPv4
    append(tagged, ipv4(a, b, 17, udp(1005, 7001, payload(8))));
    out.push_back(ether(0x01, 0x8100, tagged));
    Bytes qinq = {0x00, 0x05, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00};  // 802.1ad 5, 802.1Q 7, IPv4
    append(qinq, ipv4(c, b, 17, udp(1006, 7001, payload(8))));
    out.push_back(ether(0x01, 0x88a8, qinq));
    return out;
}

Bytes vxlan(uint8_t flags, const Bytes& inner) {
    Bytes b = {flags, 0, 0, 0, 0, 0, 42, 0};
    append(b, inner);
    return b;
}

Bytes geneve(uint8_t version, uint8_t option_words, uint16_t proto, const Bytes& inner) {
    Bytes b = {static_cast<uint8_t>(version << 6 | option_words), 0};
    put16(b, proto);
    b.insert(b.end(), {0, 0, 42, 0});
    for (uint8_t i = 0; i < option_words; ++i) b.insert(b.end(), {0x01, 0x02, 0x80, 0x00});
    append(b, inner);
    return b;
}

// One outer packet (from the IP header) around `udp_payload` to dport.
std::vector<Bytes> outer_packets(uint16_t dport, const Bytes& udp_payload) {
    const Bytes src = {192, 168, 50, 1}, dst = {192, 168, 50, 2};
    Bytes u = udp(40000, dport, udp_payload);
    return {ipv4(src, dst, 17, u), ipv4(src, dst, 17, u, 3), ipv6(0x11, 0x22, 17, u)};
}

}  // namespace

std::optional<Bytes> tunnel_inner_frame(const Bytes& p, bool l2) {
    size_t ip = 0;
    if (l2) {
        if (p.size() < kEth) return std::nullopt;
        uint16_t type = static_cast<uint16_t>(p[12] << 8 | p[13]);
        if (type != 0x0800 && type != 0x86dd) return std::nullopt;
        ip = kEth;
    }
    if (p.size() <= ip) return std::nullopt;
    size_t l4;
    switch (p[ip] >> 4) {
        case 4: {
            size_t ihl = p[ip] & 0xf;
            if (ihl < 5 || p.size() < ip + 10 || p[ip + 9] != 17) return std::nullopt;
            if ((((p[ip + 6] << 8) | p[ip + 7]) & 0x1fff) != 0) return std::nullopt;  // a later fragment
            l4 = ip + 4 * ihl;
            break;
        }
        case 6:
            if (p.size() < ip + 7 || p[ip + 6] != 17) return std::nullopt;
            l4 = ip + 40;
            break;
        default: return std::nullopt;
    }
    if (p.size() < l4 + 16) return std::nullopt;  // UDP + tunnel header incomplete
    uint16_t dport = static_cast<uint16_t>(p[l4 + 2] << 8 | p[l4 + 3]);
    uint8_t b0 = p[l4 + 8];
    size_t inner;
    if (dport == kVxlanPort) {
        if (!(b0 & 0x08)) return std::nullopt;
        inner = l4 + 16;
    } else if (dport == kGenevePort) {
        if ((b0 >> 6) != 0 || (p[l4 + 10] << 8 | p[l4 + 11]) != 0x6558) return std::nullopt;
        inner = l4 + 16 + 4u * (b0 & 0x3f);
    } else {
        return std::nullopt;
    }
    return Bytes(p.begin() + static_cast<long>(std::min(inner, p.size())), p.end());
}

Bytes inner_l3(const Bytes& f) {
    auto is_vlan = [&](size_t at) {
        if (f.size() < at + 2) return false;
        uint16_t type = static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
        return type == 0x8100 || type == 0x88a8;
    };
    size_t off = kEth;
    if (is_vlan(12)) {
        off += 4;
        if (is_vlan(16)) off += 4;
    }
    if (f.size() <= off) return {};
    return Bytes(f.begin() + static_cast<long>(off), f.end());
}

TunnelPacketSets make_tunnel_packets() {
    std::vector<Bytes> ip_packets;  // from the outer IP header
    for (const Bytes& inner : inner_frames()) {
        std::vector<Bytes> payloads_4789 = {vxlan(0x08, inner), vxlan(0x00, inner), vxlan(0x0c, inner)};
        for (const Bytes& pl : payloads_4789)
            for (Bytes& p : outer_packets(kVxlanPort, pl)) ip_packets.push_back(std::move(p));
        // option lengths: none, small, and far enough that the inner frame
        // starts past the 128-byte window (read through pkt_load_slow)
        for (uint8_t words : {0, 1, 8, 30, 63})
            for (Bytes& p : outer_packets(kGenevePort, geneve(0, words, 0x6558, inner)))
                ip_packets.push_back(std::move(p));
        for (Bytes& p : outer_packets(kGenevePort, geneve(1, 0, 0x6558, inner))) ip_packets.push_back(std::move(p));
        Bytes no_l2(inner.begin() + kEth, inner.end());
        for (Bytes& p : outer_packets(kGenevePort, geneve(0, 0, 0x0800, no_l2))) ip_packets.push_back(std::move(p));
        for (Bytes& p : outer_packets(53, vxlan(0x08, inner))) ip_packets.push_back(std::move(p));
    }
    // TCP to port 4789 and a later fragment of a VXLAN datagram.
    const Bytes src = {192, 168, 50, 1}, dst = {192, 168, 50, 2};
    Bytes inner = inner_frames().front();
    ip_packets.push_back(ipv4(src, dst, 6, tcp_syn(40000, kVxlanPort)));
    ip_packets.push_back(ipv4(src, dst, 17, udp(40000, kVxlanPort, vxlan(0x08, inner)), 0, 0x0010));

    // Cut short past the outer IP header (shorter ones cannot be tunnel
    // traffic, and BPF_PROG_TEST_RUN refuses an IP ethertype without its header).
    std::vector<Bytes> all = ip_packets;
    for (size_t i = 0; i < ip_packets.size(); i += 3) {
        const Bytes& p = ip_packets[i];
        for (size_t len = 40; len < p.size(); len += (len < 120 ? 3 : 29))
            all.emplace_back(p.begin(), p.begin() + static_cast<long>(len));
    }

    TunnelPacketSets out;
    for (const Bytes& p : all) {
        out.l3.push_back(p);
        out.l2.push_back(ether(0x09, (p[0] >> 4) == 6 ? 0x86dd : 0x0800, p));
    }
    return out;
}

}  // namespace pwru::test
