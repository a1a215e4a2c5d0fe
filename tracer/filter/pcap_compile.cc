// Never include <linux/bpf.h> here: see pcap_compile.h.
#include "tracer/filter/pcap_compile.h"

#include <pcap/pcap.h>

#include <memory>
#include <mutex>

namespace pwru {
namespace {

// libpcap's instruction and the kernel's sock_filter are the same four fields.
static_assert(sizeof(struct bpf_insn) == sizeof(struct sock_filter));
static_assert(offsetof(struct bpf_insn, k) == offsetof(struct sock_filter, k));

constexpr int kSnapLen = 262144;  // tcpdump's default snap length

struct PcapClose {
    void operator()(pcap_t* p) const { pcap_close(p); }
};
using PcapHandle = std::unique_ptr<pcap_t, PcapClose>;

std::vector<sock_filter> to_sock_filters(const bpf_program& prog) {
    std::vector<sock_filter> out(prog.bf_len);
    for (u_int i = 0; i < prog.bf_len; ++i) {
        const bpf_insn& in = prog.bf_insns[i];
        out[i] = sock_filter{in.code, in.jt, in.jf, in.k};
    }
    return out;
}

}  // namespace

Result<std::vector<sock_filter>> compile_pcap(const std::string& expr, LinkLayer ll) {
    // pcap_compile() uses global lexer/parser state in some libpcap builds.
    static std::mutex compile_mutex;
    std::lock_guard<std::mutex> lock(compile_mutex);
    return compile_pcap_unlocked(expr, ll);
}

Result<std::vector<sock_filter>> compile_pcap_unlocked(const std::string& expr, LinkLayer ll) {
    PcapHandle pcap(pcap_open_dead(ll == LinkLayer::L2 ? DLT_EN10MB : DLT_RAW, kSnapLen));
    if (!pcap) return fail("pcap_open_dead failed (out of memory?)");
    bpf_program prog{};
    // BadInput: libpcap refused the expression (for this link layer); a
    // Failure above is ours (compile_pcap_bounded keeps the two apart).
    if (pcap_compile(pcap.get(), &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        return bad_input(pcap_geterr(pcap.get()));
    std::vector<sock_filter> out = to_sock_filters(prog);
    pcap_freecode(&prog);
    return out;
}

std::string join_filter_words(const std::vector<std::string>& words) {
    std::string out;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i > 0) out += ' ';
        out += words[i];
    }
    return out;
}

}  // namespace pwru
