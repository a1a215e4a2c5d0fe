#include "support/packet_corpus.h"

// Never include <linux/bpf.h> here: see packet_corpus.h.
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <utility>

namespace pwru::test {

static_assert(sizeof(struct bpf_insn) == sizeof(sock_filter));
static_assert(offsetof(struct bpf_insn, k) == offsetof(struct sock_filter, k));

const std::vector<std::string>& filter_expressions() {
    // A table, grouped by what each row exercises: clang-format would put one
    // expression per line.
    // clang-format off
    static const std::vector<std::string> expressions = {
    // protocols
    "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "ip proto 47", "ip6 proto 58", "esp or ah",
    "igmp or pim or vrrp or sctp", "ip multicast", "ip6 multicast",
    // hosts and nets
    "host 10.0.0.1", "src host 10.0.0.1", "dst host 192.168.1.2", "host 10.0.0.1 and host 192.168.1.2",
    "host 10.0.0.1 or host 10.0.0.2 or host 10.0.0.3 or host 10.0.0.4 or host 8.8.8.8",
    "net 10.0.0.0/8", "src net 192.168.0.0/16", "dst net 172.16.0.0 mask 255.240.0.0",
    "ip6 host fe80::1", "host 2001:db8::1", "net 2001:db8::/32", "src net 2001:db8:1::/48 and tcp",
    "ip6 dst host ff02::1", "ip6 src net fe80::/10", "ip host 10.0.0.1 and not ip6",
    // ports
    "port 53", "src port 22", "dst port 443", "tcp and dst port 80", "tcp port 80 or udp port 53",
    "portrange 1000-2000", "tcp dst portrange 8000-8100", "udp src portrange 1-1023", "udp port 67 or udp port 68",
    "ip6 and udp port 53", "ip6 and tcp",
    "port 1 or port 2 or port 3 or port 4 or port 5 or port 6 or port 7 or port 8 or port 9 or port 10 or "
    "port 11 or port 12 or port 13 or port 14 or port 15 or port 16 or port 17 or port 18 or port 19 or port 22",
    // tcp flags
    "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0", "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack = 0",
    "tcp[tcpflags] == tcp-rst", "tcp[13] & 0x3f = 0x02", "tcp[tcpflags] & (tcp-fin|tcp-push) = (tcp-fin|tcp-push)",
    "tcp[tcpflags] & tcp-urg != 0 or tcp[18:2] != 0",
    // byte offsets and masks
    "ip[6:2] & 0x1fff = 0", "ip[6:2] & 0x1fff != 0", "ip[6] & 0x20 != 0", "ip[0] & 0xf > 5", "ip[8] < 64",
    "ip[1] & 0xfc = 0xb8", "ip6[53] & 0x3f = 0x2", "ip6[6] = 17", "ip6[7] < 10", "ip6[6] = 0", "ip6[6] = 44",
    "ip6[40] = 6", "ip[12:4] & 0xffffff00 = 0x0a000000", "ip[12:4] = 0x0a000001", "ip[16:4] > 0x80000000",
    "tcp[0:2] > 1023 and tcp[2:2] < 1024", "udp[4:2] > 100", "udp[8:4] = 0x12345678", "tcp[20:4] = 0x47455420",
    "udp dst port 53 and udp[10:2] & 0x8000 = 0", "icmp6 and ip6[40] = 128",
    "ip and ip[9] = 6 and ip[6:2] & 0x1fff = 0 and tcp[13] = 2",
    // variable offsets (BPF_IND with arbitrary X)
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "ip[ip[9]:2] > 1000", "ip[ip[0] & 0xf] != 0",
    "tcp[ip[8]:4] != 0", "udp[ip[8] * 8:2] = 0",
    // icmp
    "icmp[icmptype] == icmp-echo", "icmp[icmptype] == icmp-echoreply or icmp[icmptype] == icmp-unreach",
    "icmp[0] = 3 and icmp[1] = 1", "icmp6[icmp6type] == icmp6-echo",
    // lengths and payload arithmetic
    "len > 100", "len <= 64", "greater 200", "less 60", "len >= 128 and len < 130", "len = 60 or len = 1514",
    "ip[2:2] - ((ip[0]&0xf)<<2) > 40", "ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) != 0",
    "(ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 100", "ip6[4:2] > 100", "len - 14 > ip[2:2]",
    "ip[2:2] != len - 14",
    // negations and nesting
    "not tcp", "not (host 10.0.0.1 or port 22)", "!icmp and !udp", "(tcp or udp) and not (port 80 or port 443)",
    "(src host 10.0.0.1 and dst port 80) or (src port 80 and dst host 10.0.0.1)",
    "tcp and (port 80 or port 8080) and not src net 192.168.0.0/16", "((ip and udp) or (ip6 and tcp)) and len > 60",
    // arithmetic operators
    "ip[0] / 3 > 1", "ip[1] % 3 = 1", "ip[0] * 3 + 7 = 214", "ip[2:2] / 4 > 100", "ip[4:2] % 256 = 0",
    "ip[0] << 2 = 0x114", "ip[8] >> 2 = 16", "(ip[0] & 0xf) << 2 = 20", "ip[9] ^ 6 = 0", "ip[9] | 1 = 7",
    "ip[12:4] - ip[16:4] > 0x7fffffff", "-ip[8] > 0xffffff00", "ip[2:2] / ip[8] > 10", "ip[2:2] % ip[9] = 0",
    "ip[0] << ip[9] > 100", "ip[16:4] >> ip[1] = 0", "ip[0] & ip[1] != 0", "ip[2:2] * ip[8] > 1000",
    "ip[12:4] & ip[16:4] != 0", "(tcp[0:2] + tcp[2:2]) & 1 = 1", "ip[0] - 0x45 = 0", "ip[2:2] & 3 = ip[3] & 3",
    "ip[8] >= ip[9]", "ip[8] > ip[9]", "ip[12:4] * 0x10001 > 0xf0000000", "ip[16:4] + 0xfffffff0 < 16",
    // link layer (L2 only in practice; they fail to compile for L3)
    "arp", "rarp", "arp and arp[6:2] = 1", "arp host 10.0.0.1", "vlan", "vlan 100", "vlan and tcp",
    "vlan 100 and host 10.0.0.1", "vlan and vlan 200", "ether host 00:11:22:33:44:55",
    "ether src 00:11:22:33:44:55", "ether dst ff:ff:ff:ff:ff:ff", "ether broadcast", "ether multicast",
    "ether proto 0x88cc", "ether[12:2] = 0x0800", "ether[12:2] > 1500", "ether[200:4] = 0x01020304",
    "ether[126:4] != 0", "ether[124:4] != 0", "ether[127] = 0", "ether[128] = 0", "ether[1000] = 0",
    "not ether src 00:11:22:33:44:55 and ip", "llc or stp", "mpls and ip", "pppoes and ip",
    "ip and ether[14] = 0x45", "geneve and ip",
    // loops: protochain walks extension-header chains with backward jumps
    "ip6 protochain 58", "ip protochain 6", "protochain 17", "ip6 protochain 6 and tcp port 80",
    "ip6 protochain 44", "ip6 protochain 17 or ip6 protochain 6", "not ip6 protochain 58", "ip6 protochain 51",
    "ip protochain 51", "ip6 protochain 0", "ip6 protochain 60 and ip6 protochain 17",
    // more hosts and nets
    "src or dst host 10.0.0.2", "dst host 10.0.0.1 or src host 8.8.8.8", "not host 10.0.0.1", "host 224.0.0.5",
    "ip src 10.0.0.1", "ip dst 192.168.1.2", "src net 10.0.0.0/24", "dst net 10.0.0.0/30", "net 172.16.0.0/12",
    "net 0.0.0.0/0", "net 10", "net 192.168", "src net 172.31 and dst net 172.32",
    "host 10.0.0.1 and (port 80 or port 12345)", "ip6 src host 2001:db8::1", "ip6 host 2001:db8:1::2",
    "ip6 net 2001:db8:1::/64", "dst net ff00::/8", "ip6 net ::/0", "src net 2001:db8::/126", "ip6 host ::1",
    "host fe80::9 or host ff02::1", "not net 2001:db8::/32 and ip6", "ip6 src fe80::1 and icmp6",
    "ip6 dst net 2001:db8:1::/48",
    // more ports and port ranges
    "port 80 and port 12345", "src port 1000 and dst port 2000", "not port 53", "tcp src port 443",
    "udp dst port 68", "tcp port 22 or tcp port 2001", "port 6081", "port 0", "port 65535", "portrange 0-1023",
    "portrange 50000-65535", "src portrange 8000-8100 or dst portrange 8000-8100", "tcp portrange 20-23",
    "udp portrange 53-68", "ip6 and portrange 1-100", "ip and tcp src portrange 1024-65535",
    "dst port 80 and not src net 10.0.0.0/8", "udp port 5353 and ip6", "sctp port 80",
    "tcp dst port 80 or tcp dst port 8080 or tcp dst port 443",
    // more protocol names and numbers
    "ip proto 6", "ip proto 17", "ip proto 1", "ip proto 132", "ip6 proto 17", "ip6 proto 6", "ip6 proto 0",
    "ip6 proto 44", "proto 47", "icmp or icmp6", "tcp or udp", "ah", "esp", "sctp", "igmp", "pim", "vrrp",
    "ip6 and not tcp and not udp", "ip and not ip proto 1", "ip proto 50", "ip6 proto 51",
    // more tcp flags
    "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & tcp-fin != 0", "tcp[tcpflags] & tcp-rst != 0",
    "tcp[tcpflags] & tcp-push != 0", "tcp[tcpflags] & tcp-ack != 0", "tcp[tcpflags] & tcp-urg != 0",
    "tcp[tcpflags] & tcp-ece != 0", "tcp[tcpflags] & tcp-cwr != 0", "tcp[tcpflags] = tcp-syn",
    "tcp[tcpflags] = (tcp-syn|tcp-ack)", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0 and not src net 10.0.0.0/8",
    "tcp[tcpflags] & 0x17 = 0x10", "tcp[12] & 0xf0 > 0x50", "tcp[tcpflags] != 0x18",
    "ip6 and ip6[6] = 6 and ip6[53] & 0x12 = 0x12",
    // more byte offsets and masks, some far past the 128-byte window
    "ip[0] = 0x45", "ip[0] & 0xf0 = 0x40", "ip[1] != 0", "ip[4:2] = 0x1234", "ip[6:2] & 0x2000 != 0",
    "ip[6:2] & 0x4000 != 0", "ip[6:2] & 0x1fff > 0", "ip[8] = 1", "ip[8] > 128", "ip[9] = 17", "ip[10:2] = 0",
    "ip[12] = 10", "ip[15] & 1 = 1", "ip[19] = 2", "ip[16:2] = 0xe000", "ip6[0] & 0xf0 = 0x60",
    "ip6[1] & 0xf0 = 0", "ip6[4:2] < 40", "ip6[7] = 255", "ip6[8:4] = 0x20010db8", "ip6[24:4] = 0x20010db8",
    "ip6[39] = 1", "ip6[40] = 0x3a", "ip6[40:2] = 80", "ip6[42:2] = 80", "ip6[48] & 0x0f = 0",
    "ip6[53] & 0x3f != 0", "ip6[53] = 2", "udp[0:2] = 53 or udp[2:2] = 53", "udp[6:2] = 0", "icmp[2:2] = 0",
    "icmp6[1] = 0", "tcp[4:4] = 1000", "tcp[8:4] = 2000", "tcp[14:2] = 65535", "tcp[16:2] = 0",
    "tcp[40:4] != 0", "udp[200:2] != 0", "tcp[1000:4] != 0", "ip[1500] = 0", "ip[2000:2] > 0", "ip6[3000] != 7",
    "ether[2900:4] != 0",
    // more lengths
    "len > 1000", "len > 1500", "len > 3000", "len < 20", "len = 14", "len >= 54", "len <= 128", "len != 60",
    "greater 1000", "less 100", "greater 3000 or less 40", "len > 128 and len < 256", "len - 54 > 0",
    "len & 1 = 1", "len / 8 = 8", "len * 2 > 2000",
    // more payload-length arithmetic
    "ip[2:2] > 1000", "ip[2:2] = len - 14", "ip[2:2] < len", "ip[2:2] - ((ip[0]&0xf)<<2) = 8",
    "udp[4:2] - 8 > 100", "udp[4:2] - 8 = 0", "ip6[4:2] = 0", "ip6[4:2] - 8 > 200",
    "len - 14 - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) > 0",
    "(ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) = 0",
    "tcp and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 1000", "ip6[4:2] + 40 = len - 14",
    "ip6[4:2] + 40 != len", "(tcp[12] & 0xf0) >> 2 > 20", "ip[0] & 0xf != 5",
    // more negations and nesting
    "not ip", "not ip6", "not (tcp or udp)", "not not tcp", "!(ip and udp)", "not (ip6 and udp port 53)",
    "tcp and not tcp port 80", "(host 10.0.0.1 or host 10.0.0.2) and (port 80 or port 22)",
    "not (src net 10.0.0.0/8 or dst net 10.0.0.0/8)",
    "((tcp and port 80) or (udp and port 53)) and not host 8.8.8.8", "(ip6 and (tcp or udp)) or (ip and icmp)",
    "not (len > 100 and tcp)", "(tcp[tcpflags] & tcp-syn != 0) and not (tcp[tcpflags] & tcp-ack != 0)",
    "ip and not (ip[6:2] & 0x1fff = 0)", "ip6 and not (ip6 proto 58 or ip6 proto 6)",
    "(ip or ip6) and not (tcp or udp or icmp or icmp6)",
    "tcp or (udp and (port 53 or port 67 or port 68)) or icmp", "not ((ip[8] < 64 and ip[9] = 6) or ip6)",
    // more link layer (L2 only)
    "ether src 02:aa:bb:cc:dd:ee", "ether dst 01:00:5e:00:00:05", "ether host 02:aa:bb:cc:dd:ee and ip",
    "not ether broadcast", "ether proto 0x0806", "ether proto 0x86dd", "ether proto 0x8100", "ether[0] & 1 = 1",
    "ether[6:4] = 0x00112233", "ether[12:2] = 0x8100", "ether[12:2] = 0x88a8", "vlan 200", "vlan 101",
    "vlan and vlan 100", "vlan 200 and vlan 100 and ip", "vlan and ip6", "vlan and arp", "vlan and udp port 53",
    "vlan 100 and not ip", "arp[6:2] = 2", "arp src 10.0.0.2", "arp dst 10.0.0.7", "rarp or arp",
    "arp and ether src 00:11:22:33:44:55", "mpls 100", "mpls and ip and host 10.0.0.3", "pppoes", "llc", "stp",
    "ip6 and ether multicast", "ether[14:2] = 0x4242", "ether[3000:2] != 0",
    "len > 3000 and ether[12:2] = 0x0800",
    };
    // clang-format on
    return expressions;
}

namespace {

// ---- packet construction ------------------------------------------------------

void put8(Bytes& b, uint8_t v) { b.push_back(v); }
void put16(Bytes& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
}
void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

using Mac = std::array<uint8_t, 6>;
using Ip6 = std::array<uint8_t, 16>;

uint32_t ip4(int a, int b, int c, int d) {
    return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | uint32_t(d);
}

Ip6 ip6(uint16_t a, uint16_t b, uint16_t c, uint16_t last) {
    Ip6 out{};
    uint16_t words[8] = {a, b, c, 0, 0, 0, 0, last};
    for (int i = 0; i < 8; ++i) {
        out[2 * i] = static_cast<uint8_t>(words[i] >> 8);
        out[2 * i + 1] = static_cast<uint8_t>(words[i]);
    }
    return out;
}

Bytes payload(size_t n, uint8_t seed) {
    Bytes p(n);
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
    return p;
}

Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags, const Bytes& data, int option_words = 0) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put32(b, 1000);
    put32(b, 2000);
    put8(b, static_cast<uint8_t>((5 + option_words) << 4));
    put8(b, flags);
    put16(b, 65535);
    put16(b, 0);
    put16(b, flags & 0x20 ? 7 : 0);  // urgent pointer
    for (int i = 0; i < option_words; ++i) put32(b, 0x01010101);
    append(b, data);
    return b;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& data) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put16(b, static_cast<uint16_t>(8 + data.size()));
    put16(b, 0);
    append(b, data);
    return b;
}

Bytes icmp(uint8_t type, uint8_t code, size_t data) {
    Bytes b{type, code, 0, 0, 0, 1, 0, 1};
    append(b, payload(data, type));
    return b;
}

struct Ip4Opts {
    uint8_t ttl = 64;
    uint8_t tos = 0;
    uint16_t frag = 0x4000;  // DF
    int option_words = 0;
};

Bytes ipv4(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& l4, Ip4Opts o = {}) {
    Bytes b;
    put8(b, static_cast<uint8_t>(0x40 | (5 + o.option_words)));
    put8(b, o.tos);
    put16(b, static_cast<uint16_t>(20 + 4 * o.option_words + l4.size()));
    put16(b, 0x1234);
    put16(b, o.frag);
    put8(b, o.ttl);
    put8(b, proto);
    put16(b, 0);
    put32(b, src);
    put32(b, dst);
    for (int i = 0; i < o.option_words; ++i) put32(b, 0x94040000);  // router alert
    append(b, l4);
    return b;
}

// One IPv6 extension header of type `type` whose next header is `next`.
// Sizes differ per type so that chain walking is tested with every length
// rule: hop-by-hop 8, destination options 16 (PadN), routing 24, fragment 8
// (first fragment, or with `later_fragment` one at offset 1480), AH 12
// (its length counts 4-byte words minus 2).
Bytes ext_header(uint8_t type, uint8_t next, bool later_fragment = false) {
    switch (type) {
        case 44:
            return later_fragment ? Bytes{next, 0, 0x05, 0xc8, 0, 0, 0, 7} : Bytes{next, 0, 0x00, 0x01, 0, 0, 0, 7};
        case 51: return Bytes{next, 1, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 9};
        case 60: return Bytes{next, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        case 43: return Bytes{next, 2, 0, 1, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
        default: return Bytes{next, 0, 1, 4, 0, 0, 0, 0};  // hop-by-hop (PadN) or unknown
    }
}

// IPv6 with extension headers `ext` (their types, in order).
Bytes ipv6(const Ip6& src, const Ip6& dst, uint8_t proto, const Bytes& l4, const std::vector<uint8_t>& ext = {},
           uint8_t hop_limit = 64, bool later_fragment = false) {
    Bytes exts;
    for (size_t i = 0; i < ext.size(); ++i)
        append(exts, ext_header(ext[i], i + 1 < ext.size() ? ext[i + 1] : proto, later_fragment));
    Bytes b;
    put32(b, 0x60000000);
    put16(b, static_cast<uint16_t>(exts.size() + l4.size()));
    put8(b, ext.empty() ? proto : ext[0]);
    put8(b, hop_limit);
    b.insert(b.end(), src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    append(b, exts);
    append(b, l4);
    return b;
}

Bytes ether(const Mac& dst, const Mac& src, const std::vector<uint16_t>& types, const Bytes& body) {
    Bytes b(dst.begin(), dst.end());
    b.insert(b.end(), src.begin(), src.end());
    // types: VLAN TPIDs with their TCIs, then the final ethertype.
    for (uint16_t t : types) put16(b, t);
    append(b, body);
    return b;
}

Bytes arp(uint16_t oper, uint32_t spa, uint32_t tpa, const Mac& sha) {
    Bytes b;
    put16(b, 1);
    put16(b, 0x0800);
    put8(b, 6);
    put8(b, 4);
    put16(b, oper);
    b.insert(b.end(), sha.begin(), sha.end());
    put32(b, spa);
    for (int i = 0; i < 6; ++i) put8(b, 0);
    put32(b, tpa);
    return b;
}

const Mac kMacA{0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
const Mac kMacB{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
const Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const Mac kMcast{0x01, 0x00, 0x5e, 0x00, 0x00, 0x05};

// IPv4 AH (RFC 4302) carrying `inner`.
Bytes ah(uint8_t next, const Bytes& inner) {
    Bytes b = ext_header(51, next);
    append(b, inner);
    return b;
}

// What the regular grid of make_ip_packets() misses: AH, ESP, "no next
// header", later fragments, packets far past the 128-byte window (up to
// about 3 KB), and packets whose header length fields disagree with their
// size.
void add_special_ip_packets(std::vector<Bytes>& v4, std::vector<Bytes>& v6,
                            const std::vector<std::pair<uint32_t, uint32_t>>& addrs,
                            const std::vector<std::pair<Ip6, Ip6>>& addrs6) {
    auto [a4, b4] = addrs[0];
    auto [a6, b6] = addrs6[0];
    v4.push_back(ipv4(a4, b4, 51, ah(6, tcp(12345, 80, 0x02, payload(20, 1)))));
    v4.push_back(ipv4(b4, a4, 51, ah(17, udp(5353, 53, payload(40, 2))), {32, 0, 0x4000, 1}));
    v4.push_back(ipv4(a4, b4, 51, ah(51, ah(1, icmp(8, 0, 16)))));
    v4.push_back(ipv4(a4, b4, 50, payload(64, 3)));
    v4.push_back(ipv4(a4, b4, 6, tcp(12345, 80, 0x18, payload(2900, 4))));
    v4.push_back(ipv4(b4, a4, 17, udp(53, 5353, payload(3000, 5)), {1, 0, 0x2000, 0}));  // first fragment
    v4.push_back(ipv4(b4, a4, 17, payload(1200, 6), {64, 0, 0x00b9, 0}));                // a later one
    Bytes bad_len = ipv4(a4, b4, 6, tcp(80, 12345, 0x12, payload(100, 7)));
    bad_len[2] = 0xff, bad_len[3] = 0xff;  // claims 65535 bytes
    v4.push_back(bad_len);
    Bytes trailer = ipv4(a4, b4, 17, udp(67, 68, payload(12, 8)));
    append(trailer, payload(1000, 9));  // 1000 bytes the IP length does not cover
    v4.push_back(trailer);

    v6.push_back(ipv6(a6, b6, 59, {}, {0, 60}));  // no next header
    v6.push_back(ipv6(a6, b6, 50, payload(80, 10), {0}));
    v6.push_back(ipv6(b6, a6, 6, {}, {44}, 64, true));  // later fragment: no TCP header
    v6.push_back(ipv6(a6, b6, 6, tcp(40000, 80, 0x10, payload(2800, 11)), {0, 60}));
    v6.push_back(ipv6(b6, a6, 17, udp(53, 40000, payload(2900, 12)), {0, 43, 44, 51, 60}));
    v6.push_back(ipv6(a6, b6, 58, icmp(128, 0, 2800), {60, 60, 60, 60, 60, 60, 60, 60}));
    Bytes jumbo = ipv6(a6, b6, 17, udp(1000, 2000, payload(2000, 14)), {0});
    jumbo[4] = 0, jumbo[5] = 0;  // payload length 0, as in a jumbogram
    v6.push_back(jumbo);
    v6.push_back(ipv6_hop_by_hop_chain(40));
}

// IPv4 and IPv6 packets starting at the network header.
void make_ip_packets(std::vector<Bytes>& v4, std::vector<Bytes>& v6) {
    const std::vector<std::pair<uint32_t, uint32_t>> addrs = {
        {ip4(10, 0, 0, 1), ip4(192, 168, 1, 2)}, {ip4(192, 168, 1, 2), ip4(10, 0, 0, 1)},
        {ip4(172, 16, 5, 4), ip4(10, 0, 0, 2)},  {ip4(10, 0, 0, 3), ip4(224, 0, 0, 5)},
        {ip4(8, 8, 8, 8), ip4(10, 0, 0, 5)},     {ip4(172, 31, 255, 1), ip4(172, 32, 0, 1)},
    };
    const std::vector<std::pair<uint16_t, uint16_t>> ports = {
        {12345, 80}, {80, 12345}, {22, 50000}, {443, 1500},  {8080, 8050}, {1000, 2000},
        {5353, 53},  {53, 5353},  {67, 68},    {3000, 4000}, {7, 19},      {2001, 999},
    };
    const uint8_t flags[] = {0x02, 0x12, 0x18, 0x04, 0x19, 0x20, 0x10, 0x11};
    const size_t sizes[] = {0, 5, 60, 200, 1400};
    const Ip4Opts variants[] = {
        {}, {1, 0xb8, 0x0000, 0}, {0, 0, 0x2000, 0}, {255, 0, 0x0064, 1}, {128, 4, 0x4000, 10},
    };
    int n = 0;
    for (const auto& [sport, dport] : ports) {
        for (uint8_t f : flags) {
            auto [src, dst] = addrs[n % addrs.size()];
            Bytes data = (n % 7 == 0) ? Bytes{'G', 'E', 'T', ' ', '/'} : payload(sizes[n % 5], uint8_t(n));
            v4.push_back(ipv4(src, dst, 6, tcp(sport, dport, f, data, n % 4 == 1 ? 3 : 0), variants[n % 5]));
            ++n;
        }
        auto [src, dst] = addrs[n % addrs.size()];
        Bytes data = payload(sizes[n % 5], uint8_t(n));
        if (n % 3 == 0 && data.size() >= 4) data[0] = 0x12, data[1] = 0x34, data[2] = 0x56, data[3] = 0x78;
        v4.push_back(ipv4(src, dst, 17, udp(sport, dport, data), variants[(n + 2) % 5]));
        ++n;
    }
    for (uint8_t type : {8, 0, 3, 11, 5}) {
        for (size_t i = 0; i < 3; ++i) {
            auto [src, dst] = addrs[(type + i) % addrs.size()];
            v4.push_back(ipv4(src, dst, 1, icmp(type, type == 3 ? uint8_t(i) : 0, sizes[i + 1]), variants[i]));
        }
    }
    for (uint8_t proto : {47, 50, 51, 2, 103, 132, 112, 4, 0}) {
        auto [src, dst] = addrs[proto % addrs.size()];
        v4.push_back(ipv4(src, dst, proto, payload(proto % 2 ? 40 : 8, proto)));
    }

    const std::vector<std::pair<Ip6, Ip6>> addrs6 = {
        {ip6(0x2001, 0xdb8, 0, 1), ip6(0x2001, 0xdb8, 1, 2)},
        {ip6(0x2001, 0xdb8, 1, 2), ip6(0x2001, 0xdb8, 0, 1)},
        {ip6(0xfe80, 0, 0, 1), ip6(0xff02, 0, 0, 1)},
        {ip6(0x2001, 0xdb9, 0, 5), ip6(0xfe80, 0, 0, 9)},
    };
    const std::vector<std::vector<uint8_t>> ext_chains = {
        {}, {0}, {43}, {44}, {60}, {0, 60}, {51}, {0, 43, 44, 60}, {44, 51}, {60, 60, 60, 60, 60, 60, 60, 60, 60, 60},
    };
    n = 0;
    for (const auto& [sport, dport] : ports) {
        for (const auto& ext : ext_chains) {
            auto [src, dst] = addrs6[n % addrs6.size()];
            if (n % 2 == 0)
                v6.push_back(
                    ipv6(src, dst, 6, tcp(sport, dport, flags[n % 8], payload(sizes[n % 5], uint8_t(n))), ext));
            else
                v6.push_back(ipv6(src, dst, 17, udp(sport, dport, payload(sizes[n % 5], uint8_t(n))), ext));
            ++n;
        }
    }
    for (uint8_t type : {128, 129, 135, 1}) {
        for (const auto& ext : ext_chains) {
            auto [src, dst] = addrs6[(type + ext.size()) % addrs6.size()];
            v6.push_back(ipv6(src, dst, 58, icmp(type, 0, 24), ext, type == 135 ? 255 : 64));
        }
    }
    add_special_ip_packets(v4, v6, addrs, addrs6);
}

// Ethernet frames: every IP packet (some VLAN-tagged) plus other ethertypes.
std::vector<Bytes> make_l2_packets(const std::vector<Bytes>& v4, const std::vector<Bytes>& v6) {
    const Mac dsts[] = {kMacB, kBroadcast, kMcast, kMacA};
    std::vector<Bytes> out;
    int n = 0;
    auto add_ip = [&](const Bytes& ip, uint16_t type) {
        const Mac& dst = dsts[n % 4];
        const Mac& src = n % 3 == 0 ? kMacA : kMacB;
        switch (n % 6) {
            case 4: out.push_back(ether(dst, src, {0x8100, 100, type}, ip)); break;
            case 5: out.push_back(ether(dst, src, {0x88a8, 200, 0x8100, 100, type}, ip)); break;
            default: out.push_back(ether(dst, src, {type}, ip)); break;
        }
        ++n;
    };
    for (const auto& p : v4) add_ip(p, 0x0800);
    for (const auto& p : v6) add_ip(p, 0x86dd);
    out.push_back(ether(kBroadcast, kMacA, {0x0806}, arp(1, ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), kMacA)));
    out.push_back(ether(kMacA, kMacB, {0x0806}, arp(2, ip4(10, 0, 0, 2), ip4(10, 0, 0, 1), kMacB)));
    out.push_back(ether(kBroadcast, kMacB, {0x0806}, arp(1, ip4(192, 168, 1, 1), ip4(192, 168, 1, 9), kMacB)));
    out.push_back(ether(kBroadcast, kMacB, {0x8035}, arp(3, 0, 0, kMacB)));
    out.push_back(ether(kMacA, kMacB, {0x8100, 100, 0x0806}, arp(1, ip4(10, 0, 0, 1), ip4(10, 0, 0, 7), kMacB)));
    out.push_back(ether(kMcast, kMacA, {0x88cc}, payload(46, 3)));
    // 802.3 length + LLC (STP) and plain LLC/SNAP.
    Bytes stp{0x42, 0x42, 0x03, 0, 0, 0, 0, 0};
    append(stp, payload(30, 1));
    out.push_back(ether(kMcast, kMacA, {static_cast<uint16_t>(stp.size())}, stp));
    Bytes snap{0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00};
    append(snap, v4[0]);
    out.push_back(ether(kMacB, kMacA, {static_cast<uint16_t>(snap.size())}, snap));
    // MPLS (label 100, bottom of stack) and PPPoE session carrying IPv4.
    Bytes mpls;
    put32(mpls, (100u << 12) | 0x100 | 64);
    append(mpls, v4[3]);
    out.push_back(ether(kMacB, kMacA, {0x8847}, mpls));
    Bytes pppoe{0x11, 0x00, 0x00, 0x01};
    put16(pppoe, static_cast<uint16_t>(v4[5].size() + 2));
    put16(pppoe, 0x0021);
    append(pppoe, v4[5]);
    out.push_back(ether(kMacB, kMacA, {0x8864}, pppoe));
    // Geneve (UDP 6081) with an inner Ethernet + IPv4 frame.
    Bytes gnv{0x00, 0x00, 0x65, 0x58, 0, 0, 1, 0};
    append(gnv, ether(kMacA, kMacB, {0x0800}, v4[1]));
    out.push_back(ether(kMacB, kMacA, {0x0800}, ipv4(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), 17, udp(5000, 6081, gnv))));
    return out;
}

// Truncations at interesting lengths (header boundaries, the window edge).
void add_truncations(std::vector<Bytes>& out, const std::vector<Bytes>& from, size_t every,
                     const std::vector<size_t>& lengths) {
    for (size_t i = 0; i < from.size(); i += every)
        for (size_t len : lengths)
            if (len < from[i].size()) out.emplace_back(from[i].begin(), from[i].begin() + static_cast<long>(len));
}

// Random bytes, random bytes behind a plausible header, and mutated packets.
void add_random(std::vector<Bytes>& out, const std::vector<Bytes>& templates, const Bytes& prefix_a,
                const Bytes& prefix_b, std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<size_t> len(0, 200);
    std::uniform_int_distribution<size_t> long_len(200, 3000);
    for (int i = 0; i < 130; ++i) {
        Bytes p(i < 120 ? len(rng) : long_len(rng));
        for (auto& b : p) b = static_cast<uint8_t>(byte(rng));
        if (i % 3 == 1) std::copy_n(prefix_a.begin(), std::min(prefix_a.size(), p.size()), p.begin());
        if (i % 3 == 2) std::copy_n(prefix_b.begin(), std::min(prefix_b.size(), p.size()), p.begin());
        out.push_back(std::move(p));
    }
    std::uniform_int_distribution<size_t> pick(0, templates.size() - 1);
    for (int i = 0; i < 150; ++i) {
        Bytes p = templates[pick(rng)];
        std::uniform_int_distribution<size_t> pos(0, std::min<size_t>(p.size(), 90) - 1);
        for (int j = 0; j < 1 + i % 4; ++j) p[pos(rng)] = static_cast<uint8_t>(byte(rng));
        out.push_back(std::move(p));
    }
}

}  // namespace

PacketSets big_and_short_packets() {
    PacketSets out;
    const uint32_t a = ip4(10, 0, 0, 1), b = ip4(10, 0, 0, 2);
    const Ip6 a6 = ip6(0x2001, 0xdb8, 0, 1), b6 = ip6(0x2001, 0xdb8, 0, 2);
    std::vector<Bytes> l3;
    // GSO: one TCP segment of 7 KB, as the stack hands it down before segmentation
    l3.push_back(ipv4(a, b, 6, tcp(40000, 80, 0x18, payload(7000 - 40, 1))));
    l3.push_back(ipv4(a, b, 17, udp(5000, 53, payload(9000 - 28, 2))));  // a jumbo frame's worth
    // IPv4 BIG TCP: 80 KB, the total length field 0 (it cannot say more)
    Bytes big4 = ipv4(a, b, 6, tcp(40001, 443, 0x10, payload(80000 - 40, 3)));
    big4[2] = big4[3] = 0;
    l3.push_back(big4);
    // IPv6 jumbograms: payload length 0, a hop-by-hop header with the Jumbo Payload option
    for (size_t total : {size_t{65575}, size_t{80000}}) {
        const size_t l4_len = total - 40 - 8;
        Bytes hbh = {6, 0, 0xc2, 4};  // next TCP, 8 bytes, option 0xC2 of 4 bytes
        put32(hbh, static_cast<uint32_t>(8 + l4_len));
        Bytes p6 = ipv6(a6, b6, 0, tcp(40002, 80, 0x10, payload(l4_len - 20, 4)));
        p6[4] = p6[5] = 0;  // payload length 0
        p6.insert(p6.begin() + 40, hbh.begin(), hbh.end());
        l3.push_back(p6);
    }
    // 33 bytes: IPv4 with 13 bytes of TCP, and IPv6 cut inside its 40-byte header
    Bytes short4 = ipv4(a, b, 6, tcp(40003, 80, 0x02, {}));
    short4.resize(33);
    l3.push_back(short4);
    Bytes short6 = ipv6(a6, b6, 17, udp(5000, 53, payload(8, 5)));
    short6.resize(33);
    l3.push_back(short6);
    for (size_t n : {size_t{1}, size_t{10}, size_t{19}}) l3.push_back(Bytes(short4.begin(), short4.begin() + n));

    const Mac dst{0, 1, 2, 3, 4, 5}, src{0, 6, 7, 8, 9, 10};
    for (const Bytes& p : l3) {
        const uint16_t type = !p.empty() && p[0] >> 4 == 6 ? 0x86dd : 0x0800;
        out.l2.push_back(ether(dst, src, {type}, p));
    }
    // Ethernet frames of 33 and 20 bytes announcing IPv4 (19 and 6 bytes of it), and of 5 bytes
    out.l2.push_back(ether(dst, src, {0x0800}, Bytes(short4.begin(), short4.begin() + 19)));
    out.l2.push_back(ether(dst, src, {0x0800}, Bytes(short4.begin(), short4.begin() + 6)));
    out.l2.push_back(Bytes(dst.begin(), dst.begin() + 5));
    out.l3 = std::move(l3);
    return out;
}

PacketSets make_packets() {
    std::vector<Bytes> v4, v6;
    make_ip_packets(v4, v6);
    PacketSets s;
    s.l2 = make_l2_packets(v4, v6);
    s.l3 = v4;
    s.l3.insert(s.l3.end(), v6.begin(), v6.end());
    std::mt19937 rng(20240607);
    std::vector<Bytes> l2_templates = s.l2, l3_templates = s.l3;
    add_truncations(s.l2, l2_templates, 5,
                    {0, 1, 13, 14, 15, 20, 23, 24, 33, 34, 36, 38, 47, 54, 55, 60, 127, 128, 129, 1000, 2048});
    add_truncations(s.l3, l3_templates, 5,
                    {0, 1, 9, 10, 19, 20, 22, 24, 33, 40, 41, 54, 60, 127, 128, 129, 1000, 2048});
    add_random(s.l2, l2_templates, {0, 0x11, 0x22, 0x33, 0x44, 0x55, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45},
               {0, 0x11, 0x22, 0x33, 0x44, 0x55, 2, 0, 0, 0, 0, 1, 0x86, 0xdd, 0x60}, rng);
    add_random(s.l3, l3_templates, {0x45}, {0x60}, rng);
    return s;
}

Bytes ipv6_hop_by_hop_chain(size_t headers) {
    return ipv6(ip6(0x2001, 0xdb8, 0, 1), ip6(0x2001, 0xdb8, 1, 2), 58, icmp(128, 0, 8),
                std::vector<uint8_t>(headers, 0));
}

// ---- capture corpus -------------------------------------------------------------

namespace {
struct PcapCloser {
    void operator()(pcap_t* p) const { pcap_close(p); }
};
}  // namespace

CaptureSet read_captures(LinkLayer ll, size_t max_len) {
    namespace fs = std::filesystem;
    CaptureSet out;
    fs::path dir = fs::path(PWRU_SHARED_DIR) / "testdata" / "pcap";
    out.dir = dir.string();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    out.found = true;
    std::vector<fs::path> paths;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".pcap") paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
        char err[PCAP_ERRBUF_SIZE] = {};
        std::unique_ptr<pcap_t, PcapCloser> pcap(pcap_open_offline(path.c_str(), err));
        if (!pcap) continue;
        int link = pcap_datalink(pcap.get());
        bool wanted = ll == LinkLayer::L2 ? link == DLT_EN10MB : link == DLT_RAW || link == 101 /* LINKTYPE_RAW */;
        if (!wanted) continue;
        ++out.files;
        pcap_pkthdr* hdr = nullptr;
        const u_char* data = nullptr;
        while (pcap_next_ex(pcap.get(), &hdr, &data) == 1) {
            size_t n = std::min<size_t>(hdr->caplen, max_len);
            if (n < hdr->caplen) ++out.truncated;
            out.packets.emplace_back(data, data + n);
        }
    }
    return out;
}

// ---- libpcap's verdict ---------------------------------------------------------------

bool libpcap_matches(const std::vector<sock_filter>& prog, const Bytes& pkt) {
    bpf_program bp{};
    bp.bf_len = static_cast<u_int>(prog.size());
    bp.bf_insns = reinterpret_cast<bpf_insn*>(const_cast<sock_filter*>(prog.data()));
    pcap_pkthdr hdr{};
    hdr.caplen = hdr.len = static_cast<bpf_u_int32>(pkt.size());
    static const u_char empty[1] = {0};
    return pcap_offline_filter(&bp, &hdr, pkt.empty() ? empty : pkt.data()) != 0;
}

std::string hex(const Bytes& pkt, size_t max) {
    std::string s;
    char buf[4];
    for (size_t i = 0; i < std::min(pkt.size(), max); ++i) {
        std::snprintf(buf, sizeof(buf), "%02x", pkt[i]);
        s += buf;
    }
    return pkt.size() > max ? s + "..." : s;
}

}  // namespace pwru::test
