// pwru-filtercheck [--l3] EXPR FILE.pcap
// Runs the probes' translated filter over every packet of a capture through
// BPF_PROG_TEST_RUN and prints "<index> <1|0>" per packet. Exit 2 with
// libpcap's message for a bad expression.
#include <pcap/pcap.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "tracer/filter/filter_harness.h"
#include "tracer/kernel/log.h"

int main(int argc, char** argv) {
    CLI::App app{"Runs pwru's in-kernel pcap filter over a capture, one verdict per packet.", "pwru-filtercheck"};
    bool l3 = false;
    std::string expr, file;
    app.add_flag("--l3", l3, "hand packets over from the network header (expression compiled for DLT_RAW)");
    app.add_option("expression", expr, "tcpdump expression")->required();
    app.add_option("file", file, "pcap file")->required();
    CLI11_PARSE(app, argc, argv);
    pwru::init_logging(false);

    auto harness = pwru::FilterHarness::create(expr, l3);
    if (!harness) {
        std::fprintf(stderr, "pwru-filtercheck: %s\n", harness.error().message().c_str());
        return harness.error().users_fault() ? 2 : 1;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_open_offline(file.c_str(), errbuf);
    if (!p) {
        std::fprintf(stderr, "pwru-filtercheck: cannot read %s: %s\n", file.c_str(), errbuf);
        return 1;
    }
    pcap_pkthdr* hdr;
    const u_char* data;
    size_t index = 0;
    int rc = 0;
    while (pcap_next_ex(p, &hdr, &data) == 1) {
        auto verdict = (*harness)->run(data, hdr->caplen);
        if (!verdict) {
            std::fprintf(stderr, "pwru-filtercheck: packet %zu: %s\n", index, verdict.error().message().c_str());
            rc = 1;
            break;
        }
        std::printf("%zu %d\n", index++, *verdict ? 1 : 0);
    }
    pcap_close(p);
    return rc;
}
