// Differential test of the cBPF -> eBPF translator: every expression is
// compiled by libpcap, translated, loaded through the real verifier (raw
// runner, tests/support/raw_filter_runner.h) and run with BPF_PROG_TEST_RUN on
// packets this test makes (and on the shared capture corpus when present);
// each verdict must equal libpcap's pcap_offline_filter() on the same bytes.
#include <linux/bpf.h>
#include <linux/filter.h>
#include <unistd.h>

// libpcap's <pcap/bpf.h> declares a cBPF `struct bpf_insn` that clashes with
// the eBPF one of <linux/bpf.h>; rename it for this file only.
#define bpf_insn pcap_cbpf_insn
#include <pcap/pcap.h>
#undef bpf_insn

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "support/raw_filter_runner.h"
#include "tracer/cbpf_translate.h"
#include "tracer/pcap_compile.h"

using pwru::LinkLayer;
using Bytes = std::vector<uint8_t>;

static_assert(sizeof(pcap_cbpf_insn) == sizeof(sock_filter));

namespace {

// ---- expressions ------------------------------------------------------------

// Compiled for both link layers (some only compile for one; see kL2Only).
const std::vector<std::string> kExpressions = {
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
};

// ---- hand-written cBPF: constructs libpcap's compiler rarely emits -----------

sock_filter op(uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) { return sock_filter{code, jt, jf, k}; }
constexpr uint16_t LDB = BPF_LD | BPF_B | BPF_ABS, LDH = BPF_LD | BPF_H | BPF_ABS, LDW = BPF_LD | BPF_W | BPF_ABS;
constexpr uint16_t RETK = BPF_RET | BPF_K, RETA = BPF_RET | BPF_A;

struct HandProgram {
    const char* name;
    std::vector<sock_filter> prog;
};

std::vector<HandProgram> hand_programs() {
    auto alu = [](uint16_t o, uint32_t k) { return op(BPF_ALU | o | BPF_K, k); };
    auto alux = [](uint16_t o) { return op(BPF_ALU | o | BPF_X, 0); };
    const sock_filter tax = op(BPF_MISC | BPF_TAX, 0), txa = op(BPF_MISC | BPF_TXA, 0);
    return {
        {"lsh by X (X may be >= 32)", {op(LDB, 23), tax, op(LDH, 14), alux(BPF_LSH), op(RETA, 0)}},
        {"rsh by X (X may be >= 32)", {op(LDB, 22), tax, op(LDW, 26), alux(BPF_RSH), op(RETA, 0)}},
        {"div by X (X may be 0)", {op(LDB, 15), tax, op(LDW, 16), alux(BPF_DIV), op(RETA, 0)}},
        {"mod by X (X may be 0)", {op(LDB, 15), tax, op(LDW, 16), alux(BPF_MOD), op(BPF_JMP | BPF_JGT | BPF_K, 3, 0, 1),
                                   op(RETK, 1), op(RETK, 0)}},
        {"neg, st/ldx M[], txa, jset x",
         {op(LDW, 20), alu(BPF_NEG, 0), op(BPF_ST, 3), op(BPF_LDX | BPF_MEM, 3), op(LDB, 30), txa,
          op(BPF_JMP | BPF_JSET | BPF_X, 0, 0, 1), op(RETK, 7), op(RETK, 0)}},
        // (Unwritten M[] slots are not compared: libpcap 1.10 leaves them
        // uninitialised; see the last test case.)
        {"unwritten X reads 0", {txa, alu(BPF_ADD, 1), op(RETA, 0)}},
        {"ldx len, jgt x", {op(BPF_LDX | BPF_W | BPF_LEN, 0), op(BPF_LD | BPF_IMM, 100),
                            op(BPF_JMP | BPF_JGT | BPF_X, 0, 0, 1), op(RETK, 1), op(RETK, 0)}},
        {"ind with k >= 2^31", {op(BPF_LDX | BPF_IMM, 1), op(BPF_LD | BPF_B | BPF_IND, 0x80000000), op(RETK, 1)}},
        {"ind with X from a word", {op(LDW, 14), tax, op(BPF_LD | BPF_B | BPF_IND, 0), op(RETA, 0)}},
        {"ind with X + k wrapping 32 bits", {op(LDW, 14), alu(BPF_OR, 0xffff0000), tax,
                                             op(BPF_LD | BPF_H | BPF_IND, 0x10010), op(RETK, 1)}},
        {"msh past the window", {op(BPF_LDX | BPF_B | BPF_MSH, 130), op(BPF_LD | BPF_B | BPF_IND, 100), op(RETA, 0)}},
        {"jeq/jge x", {op(LDB, 20), tax, op(LDB, 21), op(BPF_JMP | BPF_JEQ | BPF_X, 0, 2, 0),
                       op(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 1), op(RETK, 1), op(RETK, 0)}},
        {"word at 124 (fast) and 125 (slow)", {op(LDW, 124), op(BPF_ST, 0), op(LDW, 125), op(BPF_LDX | BPF_MEM, 0),
                                               alux(BPF_XOR), op(RETA, 0)}},
        {"half at 126/127, byte at 127/128", {op(LDH, 126), op(LDH, 127), op(LDB, 127), op(LDB, 128), op(RETA, 0)}},
        {"alu with high-bit constants",
         {op(LDW, 14), alu(BPF_ADD, 0xfffffff0), alu(BPF_MUL, 0x10001), alu(BPF_AND, 0x8fffffff),
          alu(BPF_OR, 0x80000001), alu(BPF_XOR, 0xffffffff), alu(BPF_SUB, 5), alu(BPF_DIV, 7),
          alu(BPF_MOD, 0x80000001), op(BPF_JMP | BPF_JGT | BPF_K, 0xfffffff8, 0, 1), op(RETK, 1),
          op(BPF_JMP | BPF_JGE | BPF_K, 0x80000000, 0, 1), op(RETK, 1), op(RETK, 0)}},
        {"alu with X", {op(LDW, 18), tax, op(LDW, 22), alux(BPF_ADD), alux(BPF_SUB), alux(BPF_MUL), alux(BPF_AND),
                        alux(BPF_OR), alux(BPF_XOR), op(BPF_JMP | BPF_JSET | BPF_K, 0x80000000, 0, 1), op(RETK, 1),
                        op(RETK, 0)}},
        {"constant shifts", {op(LDW, 14), alu(BPF_LSH, 31), alu(BPF_RSH, 31), op(RETA, 0)}},
        {"ret A with only the high bit", {op(LDB, 14), alu(BPF_LSH, 24), alu(BPF_AND, 0x80000000), op(RETA, 0)}},
        {"ret k large", {op(LDB, 14), op(BPF_JMP | BPF_JEQ | BPF_K, 0x45, 0, 1), op(RETK, 0x80000000), op(RETK, 0)}},
        {"ja forward, jt == jf", {op(LDB, 14), op(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 1), op(RETK, 0),
                                  op(BPF_JMP | BPF_JA, 1), op(RETK, 0), op(RETK, 1)}},
        {"ld len, ldx imm, txa chains", {op(BPF_LD | BPF_W | BPF_LEN, 0), op(BPF_LDX | BPF_IMM, 129),
                                         op(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 1), op(RETK, 1), op(RETK, 0)}},
    };
}

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

uint32_t ip4(int a, int b, int c, int d) { return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | uint32_t(d); }

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

// IPv6 with extension headers `ext` (each: next-header value of that header).
Bytes ipv6(const Ip6& src, const Ip6& dst, uint8_t proto, const Bytes& l4, const std::vector<uint8_t>& ext = {},
           uint8_t hop_limit = 64) {
    Bytes exts;
    for (size_t i = 0; i < ext.size(); ++i) {
        uint8_t next = i + 1 < ext.size() ? ext[i + 1] : proto;
        if (ext[i] == 44) {  // fragment header: 8 bytes
            Bytes h{next, 0, 0, 0, 0, 0, 0, 7};
            append(exts, h);
        } else {
            Bytes h{next, 0, 1, 4, 0, 0, 0, 0};
            append(exts, h);
        }
    }
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

// IPv4 and IPv6 packets starting at the network header.
void make_ip_packets(std::vector<Bytes>& v4, std::vector<Bytes>& v6) {
    const std::vector<std::pair<uint32_t, uint32_t>> addrs = {
        {ip4(10, 0, 0, 1), ip4(192, 168, 1, 2)}, {ip4(192, 168, 1, 2), ip4(10, 0, 0, 1)},
        {ip4(172, 16, 5, 4), ip4(10, 0, 0, 2)},  {ip4(10, 0, 0, 3), ip4(224, 0, 0, 5)},
        {ip4(8, 8, 8, 8), ip4(10, 0, 0, 5)},     {ip4(172, 31, 255, 1), ip4(172, 32, 0, 1)},
    };
    const std::vector<std::pair<uint16_t, uint16_t>> ports = {
        {12345, 80}, {80, 12345}, {22, 50000}, {443, 1500}, {8080, 8050}, {1000, 2000},
        {5353, 53},  {53, 5353},  {67, 68},    {3000, 4000}, {7, 19},     {2001, 999},
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
    const std::vector<std::vector<uint8_t>> ext_chains = {{}, {0}, {43}, {44}, {60}, {0, 60}};
    n = 0;
    for (const auto& [sport, dport] : ports) {
        for (const auto& ext : ext_chains) {
            auto [src, dst] = addrs6[n % addrs6.size()];
            if (n % 2 == 0)
                v6.push_back(ipv6(src, dst, 6, tcp(sport, dport, flags[n % 8], payload(sizes[n % 5], uint8_t(n))), ext));
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
    for (int i = 0; i < 120; ++i) {
        Bytes p(len(rng));
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

struct PacketSets {
    std::vector<Bytes> l2;
    std::vector<Bytes> l3;
};

PacketSets make_packets() {
    std::vector<Bytes> v4, v6;
    make_ip_packets(v4, v6);
    PacketSets s;
    s.l2 = make_l2_packets(v4, v6);
    s.l3 = v4;
    s.l3.insert(s.l3.end(), v6.begin(), v6.end());
    std::mt19937 rng(20240607);
    std::vector<Bytes> l2_templates = s.l2, l3_templates = s.l3;
    add_truncations(s.l2, l2_templates, 5, {0, 1, 13, 14, 15, 20, 23, 24, 33, 34, 36, 38, 47, 54, 55, 60, 127, 128, 129});
    add_truncations(s.l3, l3_templates, 5, {0, 1, 9, 10, 19, 20, 22, 24, 33, 40, 41, 54, 60, 127, 128, 129});
    add_random(s.l2, l2_templates, {0, 0x11, 0x22, 0x33, 0x44, 0x55, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45},
               {0, 0x11, 0x22, 0x33, 0x44, 0x55, 2, 0, 0, 0, 0, 1, 0x86, 0xdd, 0x60}, rng);
    add_random(s.l3, l3_templates, {0x45}, {0x60}, rng);
    return s;
}

// ---- capture corpus -------------------------------------------------------------

struct PcapCloser {
    void operator()(pcap_t* p) const { pcap_close(p); }
};

// Packets of every ../shared/testdata/pcap/*.pcap whose link type is `dlt`
// (DLT_RAW also accepts LINKTYPE_RAW's value 101). Read only.
std::vector<Bytes> read_corpus(int dlt, size_t& files) {
    namespace fs = std::filesystem;
    std::vector<Bytes> out;
    files = 0;
    fs::path dir = fs::path(PWRU_SHARED_DIR) / "testdata" / "pcap";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    std::vector<fs::path> paths;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".pcap") paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
        char err[PCAP_ERRBUF_SIZE] = {};
        std::unique_ptr<pcap_t, PcapCloser> pcap(pcap_open_offline(path.c_str(), err));
        if (!pcap) continue;
        int link = pcap_datalink(pcap.get());
        bool wanted = link == dlt || (dlt == DLT_RAW && link == 101 /* LINKTYPE_RAW */);
        if (!wanted) continue;
        ++files;
        pcap_pkthdr* hdr = nullptr;
        const u_char* data = nullptr;
        while (pcap_next_ex(pcap.get(), &hdr, &data) == 1) {
            size_t n = std::min<size_t>(hdr->caplen, pwru::test::kRawRunnerMaxPacket);
            out.emplace_back(data, data + n);
        }
    }
    return out;
}

// ---- the comparison ----------------------------------------------------------------

// libpcap's verdict, with caplen = len = the packet size.
bool libpcap_matches(const std::vector<sock_filter>& prog, const Bytes& pkt) {
    bpf_program bp{};
    bp.bf_len = static_cast<u_int>(prog.size());
    bp.bf_insns = reinterpret_cast<pcap_cbpf_insn*>(const_cast<sock_filter*>(prog.data()));
    pcap_pkthdr hdr{};
    hdr.caplen = hdr.len = static_cast<bpf_u_int32>(pkt.size());
    static const u_char empty[1] = {0};
    return pcap_offline_filter(&bp, &hdr, pkt.empty() ? empty : pkt.data()) != 0;
}

struct Loaded {
    std::string name;
    std::vector<sock_filter> cbpf;
    size_t insns = 0;
    size_t handle = 0;
};

struct Stats {
    size_t programs = 0;
    size_t packets = 0;
    size_t comparisons = 0;
    size_t disagreements = 0;
    size_t max_insns = 0;
};

std::string hex(const Bytes& p, size_t max = 96) {
    std::string s;
    char buf[4];
    for (size_t i = 0; i < std::min(p.size(), max); ++i) {
        std::snprintf(buf, sizeof(buf), "%02x", p[i]);
        s += buf;
    }
    return p.size() > max ? s + "..." : s;
}

// Loads one program into the runner; a verifier rejection fails the test
// with the log.
void load_into(pwru::test::RawFilterRunner& runner, std::vector<Loaded>& loaded, Stats& stats,
               const std::string& name, const std::vector<sock_filter>& cbpf) {
    auto ebpf = pwru::translate_cbpf(cbpf);
    INFO(name);
    if (!ebpf) FAIL("translation failed: " << ebpf.error().what);
    auto handle = runner.load(*ebpf);
    if (!handle) FAIL(handle.error().message() << "\n" << handle.error().context);
    loaded.push_back({name, cbpf, ebpf->insns.size(), *handle});
    stats.max_insns = std::max(stats.max_insns, ebpf->insns.size());
    ++stats.programs;
}

// Runs every loaded program on every packet, twice: with the full window and
// with a window cut at a pseudo-random point, so loads in the window take the
// slow path too.
void compare_all(pwru::test::RawFilterRunner& runner, const std::vector<Loaded>& loaded,
                 const std::vector<Bytes>& packets, const char* layer, Stats& stats) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> cut(0, PWRU_PKT_WINDOW);
    for (const Bytes& pkt : packets) {
        ++stats.packets;
        for (uint32_t window : {uint32_t{PWRU_PKT_WINDOW}, cut(rng)}) {
            auto set = runner.set_packet(pkt, window);
            REQUIRE(set.has_value());
            for (const Loaded& l : loaded) {
                auto got = runner.run(l.handle);
                REQUIRE(got.has_value());
                bool want = libpcap_matches(l.cbpf, pkt);
                ++stats.comparisons;
                if ((*got != 0) == want) continue;
                if (++stats.disagreements <= 20)
                    std::printf("DISAGREE %s [%s] window %u len %zu: ebpf %d libpcap %d\n  %s\n", layer,
                                l.name.c_str(), window, pkt.size(), *got, int(want), hex(pkt).c_str());
            }
        }
    }
}

bool have_root() {
    if (geteuid() == 0) return true;
    WARN("skipped: BPF_PROG_LOAD / BPF_PROG_TEST_RUN need root");
    return false;
}

}  // namespace

TEST_CASE("translated filters agree with libpcap on every packet", "[bpf]") {
    if (!have_root()) return;
    auto runner = pwru::test::RawFilterRunner::create();
    if (!runner) FAIL(runner.error().message());

    PacketSets packets = make_packets();
    size_t l2_files = 0, l3_files = 0;
    std::vector<Bytes> corpus_l2 = read_corpus(DLT_EN10MB, l2_files);
    std::vector<Bytes> corpus_l3 = read_corpus(DLT_RAW, l3_files);
    if (l2_files + l3_files == 0)
        std::printf("capture corpus %s/testdata/pcap missing: corpus part skipped\n", PWRU_SHARED_DIR);
    else
        std::printf("capture corpus: %zu L2 packets from %zu files, %zu L3 packets from %zu files\n",
                    corpus_l2.size(), l2_files, corpus_l3.size(), l3_files);
    packets.l2.insert(packets.l2.end(), corpus_l2.begin(), corpus_l2.end());
    packets.l3.insert(packets.l3.end(), corpus_l3.begin(), corpus_l3.end());

    Stats stats;
    std::vector<Loaded> l2, l3;
    size_t expressions = 0;
    std::printf("%-6s %-6s expression (eBPF instructions per link layer; - = does not compile there)\n", "L2", "L3");
    for (const std::string& expr : kExpressions) {
        auto c2 = pwru::compile_pcap(expr, LinkLayer::L2);
        auto c3 = pwru::compile_pcap(expr, LinkLayer::L3);
        INFO(expr);
        REQUIRE((c2 || c3));
        ++expressions;
        if (c2) load_into(*runner, l2, stats, expr, *c2);
        if (c3) load_into(*runner, l3, stats, expr, *c3);
        std::printf("%-6s %-6s %s\n", c2 ? std::to_string(l2.back().insns).c_str() : "-",
                    c3 ? std::to_string(l3.back().insns).c_str() : "-", expr.c_str());
    }
    for (const HandProgram& h : hand_programs()) {
        load_into(*runner, l2, stats, std::string("hand: ") + h.name, h.prog);
        std::printf("%-6zu %-6s hand-written: %s\n", l2.back().insns, "", h.name);
    }

    compare_all(*runner, l2, packets.l2, "L2", stats);
    compare_all(*runner, l3, packets.l3, "L3", stats);

    std::printf("translator differential: %zu expressions + %zu hand-written programs (%zu loaded programs) x "
                "%zu L2 / %zu L3 packets x 2 windows = %zu comparisons, %zu disagreements; max insns %zu\n",
                expressions, hand_programs().size(), stats.programs, packets.l2.size(), packets.l3.size(),
                stats.comparisons, stats.disagreements, stats.max_insns);
    CHECK(expressions >= 100);
    CHECK(stats.disagreements == 0);
}

TEST_CASE("run_raw_filter: constant filters, unwritten scratch slots, a simple expression", "[bpf]") {
    if (!have_root()) return;
    std::vector<Bytes> pkts = {Bytes(60, 0), Bytes(10, 1)};
    auto yes = pwru::test::run_raw_filter(pwru::constant_filter(true), pkts);
    REQUIRE(yes.has_value());
    CHECK(*yes == std::vector<int>{1, 1});
    auto no = pwru::test::run_raw_filter(pwru::constant_filter(false), pkts);
    REQUIRE(no.has_value());
    CHECK(*no == std::vector<int>{0, 0});

    // Scratch slots read before any write are 0 (newer libpcap and the
    // kernel's cBPF do that; libpcap 1.10 reads an uninitialised array).
    auto unwritten = pwru::translate_cbpf({op(BPF_LD | BPF_MEM, 5), op(RETA, 0)});
    REQUIRE(unwritten.has_value());
    auto u = pwru::test::run_raw_filter(*unwritten, pkts);
    REQUIRE(u.has_value());
    CHECK(*u == std::vector<int>{0, 0});
    auto ldx_unwritten = pwru::translate_cbpf(
        {op(BPF_LDX | BPF_MEM, 2), op(BPF_MISC | BPF_TXA, 0), op(BPF_ALU | BPF_ADD | BPF_K, 1), op(RETA, 0)});
    REQUIRE(ldx_unwritten.has_value());
    auto lu = pwru::test::run_raw_filter(*ldx_unwritten, pkts);
    REQUIRE(lu.has_value());
    CHECK(*lu == std::vector<int>{1, 1});

    auto cbpf = pwru::compile_pcap("len > 20", LinkLayer::L2);
    REQUIRE(cbpf.has_value());
    auto f = pwru::translate_cbpf(*cbpf);
    REQUIRE(f.has_value());
    auto v = pwru::test::run_raw_filter(*f, pkts);
    REQUIRE(v.has_value());
    CHECK(*v == std::vector<int>{1, 0});
}
