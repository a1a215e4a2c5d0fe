#include "tracer/output/pcapng_writer.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace pwru {
namespace {

// pcapng block and option codes (draft-ietf-opsawg-pcapng).
constexpr uint32_t kSectionHeader = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescription = 0x00000001;
constexpr uint32_t kEnhancedPacket = 0x00000006;
constexpr uint16_t kOptEnd = 0, kOptComment = 1, kIfTsresol = 9, kIfName = 2;
constexpr uint16_t kLinktypeEthernet = 1;

void put32(std::string& b, uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); }
void put16(std::string& b, uint16_t v) { b.append(reinterpret_cast<const char*>(&v), 2); }
void pad4(std::string& b) { b.append((4 - b.size() % 4) % 4, '\0'); }

void put_option(std::string& b, uint16_t code, const std::string& value) {
    put16(b, code);
    put16(b, static_cast<uint16_t>(value.size()));
    b += value;
    pad4(b);
}

// Type, total length, body, total length again.
std::string block(uint32_t type, const std::string& body) {
    std::string b;
    uint32_t total = static_cast<uint32_t>(12 + body.size());
    put32(b, type);
    put32(b, total);
    b += body;
    put32(b, total);
    return b;
}

}  // namespace

std::string pcap_comment(const EventRecord& e) {
    return fmt::format("{} skb={:#x} netns={} iface={}", e.func_display(), e.skb, e.netns, e.iface_display());
}

Result<PcapngWriter> PcapngWriter::open(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return fail("cannot open --output-pcap " + path + "; check the directory exists and is writable", errno);
    PcapngWriter w(f, path);

    std::string shb;
    put32(shb, 0x1A2B3C4D);  // byte-order magic: readers detect our endianness
    put16(shb, 1);
    put16(shb, 0);
    put32(shb, 0xFFFFFFFF);  // section length unknown
    put32(shb, 0xFFFFFFFF);
    put_option(shb, kOptComment, "pwru-k8s trace");
    put_option(shb, kOptEnd, "");
    if (auto r = w.put(block(kSectionHeader, shb)); !r) return std::unexpected(r.error());

    std::string idb;
    put16(idb, kLinktypeEthernet);
    put16(idb, 0);
    put32(idb, PWRU_PCAP_SNAP + 14);
    put_option(idb, kIfName, "pwru");
    put_option(idb, kIfTsresol, std::string(1, '\x09'));  // nanoseconds
    put_option(idb, kOptEnd, "");
    if (auto r = w.put(block(kInterfaceDescription, idb)); !r) return std::unexpected(r.error());
    return w;
}

PcapngWriter::~PcapngWriter() {
    if (file_) std::fclose(file_);
}

Result<void> PcapngWriter::put(const std::string& b) {
    if (std::fwrite(b.data(), 1, b.size(), file_) != b.size())
        return fail("cannot write --output-pcap " + path_, errno);
    return {};
}

Result<void> PcapngWriter::write(const EventRecord& e, const pwru_packet& pkt) {
    std::string data;
    uint32_t orig = pkt.orig_len;
    if (!pkt.l2) {
        // An IP packet: a zero-address Ethernet header with the right ethertype.
        bool v6 = pkt.cap_len > 0 && (pkt.data[0] >> 4) == 6;
        data.assign(12, '\0');
        data += v6 ? std::string("\x86\xdd", 2) : std::string("\x08\x00", 2);
        orig += 14;
    }
    uint32_t cap = std::min<uint32_t>(pkt.cap_len, PWRU_PCAP_SNAP);
    data.append(reinterpret_cast<const char*>(pkt.data), cap);

    std::string epb;
    uint64_t ts = static_cast<uint64_t>(e.wall_ns);
    put32(epb, 0);  // interface id
    put32(epb, static_cast<uint32_t>(ts >> 32));
    put32(epb, static_cast<uint32_t>(ts));
    put32(epb, static_cast<uint32_t>(data.size()));
    put32(epb, std::max<uint32_t>(orig, static_cast<uint32_t>(data.size())));
    epb += data;
    pad4(epb);
    put_option(epb, kOptComment, pcap_comment(e));
    put_option(epb, kOptEnd, "");
    return put(block(kEnhancedPacket, epb));
}

void PcapngWriter::flush() {
    if (file_) std::fflush(file_);
}

}  // namespace pwru
