#include "tracer/output/event_decoder.h"

#include <fmt/format.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

namespace pwru {
namespace {

int64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string fmt_hex(uint64_t v) { return fmt::format("{:#x}", v); }

std::string format_addr(uint8_t l3, const uint8_t* addr) {
    // IPv4 by hand: inet_ntop goes through sprintf, a tenth of the decode
    // cost per event (perf on bench/decode_bench.cc). Same text.
    if (l3 == 4) {
        char v4[16];
        char* p = v4;
        for (int i = 0; i < 4; ++i) {
            unsigned v = addr[i];
            if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
            if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
            *p++ = static_cast<char>('0' + v % 10);
            if (i < 3) *p++ = '.';
        }
        return std::string(v4, p);
    }
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(l3 == 4 ? AF_INET : AF_INET6, addr, buf, sizeof(buf));
    return buf;
}

TupleRecord decode_tuple(const pwru_tuple& t) {
    TupleRecord r;
    r.l3 = t.l3;
    r.l4_proto = t.l4_proto;
    r.tcp_flags = t.tcp_flags;
    r.sport = t.sport;
    r.dport = t.dport;
    r.ip_id = t.ip_id;
    r.payload_len = t.payload_len;
    r.tcp_seq = t.tcp_seq;
    r.tcp_ack = t.tcp_ack;
    if (t.l3 == 4 || t.l3 == 6) {
        r.saddr = format_addr(t.l3, t.saddr);
        r.daddr = format_addr(t.l3, t.daddr);
    }
    return r;
}

}  // namespace

void WallClock::refresh() {
    // Bracket the realtime read with two monotonic reads to halve the error.
    int64_t m1 = clock_ns(CLOCK_MONOTONIC);
    int64_t r = clock_ns(CLOCK_REALTIME);
    int64_t m2 = clock_ns(CLOCK_MONOTONIC);
    offset_ns_ = r - (m1 + (m2 - m1) / 2);
}

EventDecoder::EventDecoder(const Plan& plan, std::shared_ptr<const Kallsyms> kallsyms,
                           std::shared_ptr<const DropReasons> reasons)
    : plan_(plan), kallsyms_(std::move(kallsyms)), reasons_(std::move(reasons)) {
    for (const auto& f : plan_.functions) by_name_.emplace(f.name, &f);
}

const EventDecoder::FuncInfo& EventDecoder::func_info(uint64_t addr) {
    auto it = funcs_.find(addr);
    if (it != funcs_.end()) return it->second;
    FuncInfo info;
    const Kallsyms::Symbol* sym = kallsyms_ ? kallsyms_->find(addr) : nullptr;
    if (sym) {
        info.name = std::string(sym->name);
        auto f = by_name_.find(std::string(sym->name));
        info.reason_after_skb = f != by_name_.end() && f->second->reason_pos == f->second->skb_pos + 1;
    } else {
        info.name = fmt_hex(addr);
    }
    return funcs_.emplace(addr, std::move(info)).first->second;
}

// "exe:pid" from /proc/PID/exe; the task's comm when the process is gone or
// is a kernel thread. Cached per pid, refreshed when the comm changes.
std::string EventDecoder::process_name(uint32_t pid, const char* comm_raw) {
    std::string comm(comm_raw, strnlen(comm_raw, PWRU_COMM_LEN));
    auto it = processes_.find(pid);
    if (it != processes_.end() && it->second.first == comm) return it->second.second;
    std::string exe;
    if (pid != 0) {
        char buf[4096];
        std::string link = "/proc/" + std::to_string(pid) + "/exe";
        ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
        if (n > 0) exe.assign(buf, static_cast<size_t>(n));
    }
    if (exe.empty()) exe = comm.empty() ? "<empty>" : comm;
    std::string name = exe + ":" + std::to_string(pid);
    processes_[pid] = {comm, name};
    return name;
}

// Frames of the tracing machinery itself (our BPF program, the tracepoint
// trampolines) lead a tracepoint's stack; the user wants the kernel's.
// Our programs load after kallsyms is read, so their frames resolve to
// whatever [bpf] symbol precedes them (bpf_dispatcher_xdp once an XDP
// program ran): every leading [bpf] frame is ours.
static bool is_tracing_frame(const Kallsyms* ks, uint64_t addr) {
    const Kallsyms::Symbol* s = ks ? ks->find(addr) : nullptr;
    if (!s || s->module == "bpf") return true;
    for (std::string_view prefix : {"bpf_trace_run", "__bpf_trace_", "__traceiter_", "bpf_prog_", "bpf_trampoline_"})
        if (s->name.starts_with(prefix)) return true;
    return false;
}

std::vector<std::string> EventDecoder::symbolize_stack(const std::vector<uint64_t>& frames) const {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < frames.size() && is_tracing_frame(kallsyms_.get(), frames[i])) ++i;
    if (i == frames.size()) i = 0;  // no symbols at all: show the raw addresses
    for (; i < frames.size(); ++i) out.push_back(kallsyms_ ? kallsyms_->symbolize(frames[i]) : fmt_hex(frames[i]));
    return out;
}

EventRecord EventDecoder::decode(const pwru_event& ev, const RecordExtras& extras) {
    const pwru_field_values* fields = extras.fields;
    EventRecord r;
    r.skb = ev.skb;
    r.cpu = ev.cpu;
    r.pid = ev.pid;
    r.process = process_name(ev.pid, ev.comm);
    r.ktime_ns = ev.ts_ns;
    r.wall_ns = clock_.to_wall_ns(ev.ts_ns);

    if (ev.probe_kind == PWRU_PROBE_TRACEPOINT) {
        r.func = ev.probe_id < plan_.tracepoints.size() ? plan_.tracepoints[ev.probe_id].name
                                                        : "tracepoint#" + std::to_string(ev.probe_id);
        if (ev.flags & PWRU_EV_HAS_REASON) r.drop_reason = reasons_ ? reasons_->name(ev.drop_reason) : "";
        // consume_skb carries a location too; only a drop's location is news.
        if ((ev.flags & PWRU_EV_HAS_LOCATION) && (ev.flags & PWRU_EV_HAS_REASON) && kallsyms_ &&
            kallsyms_->addresses_visible())
            r.location = kallsyms_->symbolize(ev.drop_location);
    } else if (ev.probe_kind == PWRU_PROBE_TC || ev.probe_kind == PWRU_PROBE_XDP) {
        // pwru's name for a traced BPF program: its kallsyms symbol, then "(tc)" / "(xdp)".
        const char* suffix = ev.probe_kind == PWRU_PROBE_TC ? "(tc)" : "(xdp)";
        r.func = (ev.probe_id < plan_.bpf_programs.size() ? plan_.bpf_programs[ev.probe_id].ksym
                                                          : func_info(ev.func_addr).name) +
                 suffix;
    } else {
        const FuncInfo& fi = func_info(ev.func_addr);
        r.func = fi.name;
        if (fi.reason_after_skb && reasons_) r.drop_reason = reasons_->name(static_cast<uint32_t>(ev.arg_after_skb));
    }

    if (ev.stack_frames > 0 && extras.stack) {
        const size_t n = std::min<size_t>(static_cast<size_t>(ev.stack_frames), PWRU_STACK_DEPTH);
        std::vector<uint64_t> ips(extras.stack->ips, extras.stack->ips + n);
        while (!ips.empty() && ips.back() == 0) ips.pop_back();
        std::vector<std::string> frames = symbolize_stack(ips);
        // A tracepoint's first kernel frame is the function that fired it; a
        // kprobe's is the probed function itself, its caller comes next.
        // fentry's stack starts above the traced program (a tracing frame too).
        size_t caller_at = ev.probe_kind == PWRU_PROBE_KPROBE ? 1 : 0;
        if (want_caller_ && frames.size() > caller_at)
            r.caller = frames[caller_at].substr(0, frames[caller_at].find('+'));
        if (keep_stack_) r.stack = std::move(frames);
    }

    if (extras.bpfmap && (ev.flags & PWRU_EV_HAS_BPFMAP)) {
        const pwru_bpfmap& m = *extras.bpfmap;
        BpfMapRecord b;
        b.op = m.op == PWRU_BPFMAP_LOOKUP ? "lookup" : m.op == PWRU_BPFMAP_UPDATE ? "update" : "delete";
        b.id = m.id;
        b.name.assign(m.name, strnlen(m.name, sizeof(m.name)));
        b.key_size = m.key_size;
        b.value_size = m.value_size;
        b.key.assign(m.key, m.key + std::min<size_t>(m.key_size, sizeof(m.key)));
        b.has_value = m.has_value != 0;
        if (b.has_value) b.value.assign(m.value, m.value + std::min<size_t>(m.value_size, sizeof(m.value)));
        r.bpfmap = std::move(b);
    }
    r.skb_dump = extras.skb_dump;
    r.shinfo_dump = extras.shinfo_dump;

    // --output-skb-metadata, or on an XDP event (no sk_buff yet) --output-xdp-metadata.
    const auto& members = ev.probe_kind == PWRU_PROBE_XDP ? plan_.xdp_fields : plan_.skb_fields;
    if (fields)
        for (size_t i = 0; i < members.size() && i < PWRU_MAX_FIELDS; ++i) {
            const MemberAccess& m = members[i];
            // A NULL pointer on the way: "?" (pwru prints 0, which a real 0 cannot be told from).
            r.skb_fields.push_back(
                {m.expr, m.leaf, fields->readable[i] ? format_member_value(m, fields->value[i]) : "?"});
        }

    r.netns = ev.meta.netns;
    r.mark = ev.meta.mark;
    r.ifindex = ev.meta.ifindex;
    r.ifname.assign(ev.meta.ifname, strnlen(ev.meta.ifname, PWRU_IFNAMSIZ));
    r.proto = ev.meta.protocol;
    r.mtu = ev.meta.mtu;
    r.len = ev.meta.len;
    if (skb_cb_) r.cb.assign(std::begin(ev.meta.cb), std::end(ev.meta.cb));
    if (netns_names_) r.netns_name = names_.name(r.netns);

    if (ev.flags & PWRU_EV_HAS_TUPLE) {
        r.has_tuple = true;
        r.tuple = decode_tuple(ev.tuple);
    }
    if (ev.flags & PWRU_EV_HAS_TUNNEL) {
        r.has_tunnel_tuple = true;
        r.tunnel_tuple = decode_tuple(ev.tunnel_tuple);
    }
    return r;
}

}  // namespace pwru
