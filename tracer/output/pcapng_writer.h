// --output-pcap: the traced packets as a pcapng file, each with the kernel
// function (and skb, netns, interface) as its comment, so Wireshark and
// tcpdump users can open the trajectory. One Ethernet interface: packets the
// kernel holds from their IP header get a made-up Ethernet header (libpcap
// reads only single-link-type pcapng files).
#pragma once

#include <cstdio>
#include <string>

#include "pwru_abi.h"
#include "tracer/events/event_record.h"
#include "tracer/util/result.h"

namespace pwru {

class PcapngWriter {
  public:
    static Result<PcapngWriter> open(const std::string& path);
    PcapngWriter(PcapngWriter&& o) noexcept : file_(o.file_), path_(std::move(o.path_)) { o.file_ = nullptr; }
    PcapngWriter(const PcapngWriter&) = delete;
    PcapngWriter& operator=(const PcapngWriter&) = delete;
    ~PcapngWriter();

    Result<void> write(const EventRecord& e, const pwru_packet& pkt);
    void flush();

  private:
    PcapngWriter(FILE* f, std::string path) : file_(f), path_(std::move(path)) {}
    Result<void> put(const std::string& block);

    FILE* file_;
    std::string path_;
};

// The comment stored with each packet: "FUNC skb=0x... netns=N iface=IF".
std::string pcap_comment(const EventRecord& e);

}  // namespace pwru
