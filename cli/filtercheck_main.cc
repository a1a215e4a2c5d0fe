// pwru-filtercheck [--l3] EXPR FILE.pcap
// Runs the probes' translated filter over every packet of a capture through
// BPF_PROG_TEST_RUN and prints "<index> <1|0>" per packet, whatever its
// length (FilterHarness: the kernel's test skb, or the buffer route for what
// it refuses). The capture's link type says where packets start: Ethernet
// (DLT_EN10MB) or the IP header (DLT_RAW, DLT_IPV4, DLT_IPV6); any other is
// refused with the reason, as are a bad expression (libpcap's message) and an
// --l3 that contradicts the capture. Exit 2 for those, 1 for a failure.
#include <pcap/pcap.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "tracer/filter/filter_harness.h"
#include "tracer/kernel/log.h"

int main(int argc, char** argv) {
    CLI::App app{"Runs pwru's in-kernel pcap filter over a capture, one verdict per packet.", "pwru-filtercheck"};
    bool l3 = false;
    std::string expr, file;
    app.add_flag("--l3", l3,
                 "packets start at the IP header (the capture's link type says so already; kept for scripts)");
    app.add_option("expression", expr, "tcpdump expression")->required();
    app.add_option("file", file, "pcap file")->required();
    CLI11_PARSE(app, argc, argv);
    pwru::init_logging(false);

    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_open_offline(file.c_str(), errbuf);
    if (!p) {
        std::fprintf(stderr, "pwru-filtercheck: cannot read %s: %s; give a pcap or pcapng file\n", file.c_str(),
                     errbuf);
        return 2;
    }
    // Where the capture's packets start decides the filter's layer.
    const int dlt = pcap_datalink(p);
    const char* dlt_name = pcap_datalink_val_to_name(dlt);
    const std::string link = dlt_name ? dlt_name : "link type " + std::to_string(dlt);
    bool capture_l3;
    if (dlt == DLT_EN10MB) {
        capture_l3 = false;
    } else if (dlt == DLT_RAW || dlt == DLT_IPV4 || dlt == DLT_IPV6) {
        capture_l3 = true;
    } else {
        std::fprintf(stderr,
                     "pwru-filtercheck: %s is a %s capture; pwru's filters start at an Ethernet header (EN10MB) or "
                     "an IP header (RAW, IPV4, IPV6): convert it first (e.g. editcap -T ether or -T rawip)\n",
                     file.c_str(), link.c_str());
        pcap_close(p);
        return 2;
    }
    if (l3 && !capture_l3) {
        std::fprintf(stderr, "pwru-filtercheck: %s is an Ethernet (EN10MB) capture: drop --l3\n", file.c_str());
        pcap_close(p);
        return 2;
    }
    auto harness = pwru::FilterHarness::create(expr, capture_l3);
    if (!harness) {
        std::fprintf(stderr, "pwru-filtercheck: %s\n", harness.error().message().c_str());
        pcap_close(p);
        return harness.error().users_fault() ? 2 : 1;
    }
    pcap_pkthdr* hdr;
    const u_char* data;
    size_t index = 0;
    int rc = 0;
    while (pcap_next_ex(p, &hdr, &data) == 1) {
        auto verdict = (*harness)->run(data, hdr->caplen);
        if (!verdict) {
            std::fprintf(stderr, "pwru-filtercheck: packet %zu: %s\n", index, verdict.error().message().c_str());
            rc = verdict.error().users_fault() ? 2 : 1;
            break;
        }
        std::printf("%zu %d\n", index++, *verdict ? 1 : 0);
    }
    pcap_close(p);
    return rc;
}
