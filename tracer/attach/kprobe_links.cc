#include "tracer/attach/kprobe_links.h"

#include <bpf/bpf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

namespace pwru {

Result<int> kprobe_pmu_type() {
    static std::once_flag once;
    static Result<int> type = fail("not read");
    std::call_once(once, [] {
        const char* path = "/sys/bus/event_source/devices/kprobe/type";
        FILE* f = std::fopen(path, "re");
        if (!f) {
            type = fail(std::string("this kernel has no kprobe PMU (") + path + ")", errno);
            return;
        }
        int t = -1;
        if (std::fscanf(f, "%d", &t) != 1 || t < 0)
            type = fail(std::string("cannot parse ") + path, EINVAL);
        else
            type = t;
        std::fclose(f);
    });
    return type;
}

Result<KprobeLink> open_kprobe_link(int pmu_type, int prog_fd, const std::string& func, int cpu, bool enable_event) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = static_cast<__u32>(pmu_type);
    attr.config1 = reinterpret_cast<__u64>(func.c_str());  // kprobe_func
    attr.config2 = 0;                                      // offset into it
    attr.disabled = 1;                                     // enabled below if asked
    KprobeLink link;
    link.cpu = cpu;
    // pid -1: every task; the kprobe fires on every CPU whatever `cpu` is.
    link.perf_event.reset(static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
    if (!link.perf_event) return fail("perf_event_open(kprobe " + func + ")", errno);
    link.bpf_link.reset(bpf_link_create(prog_fd, link.perf_event.get(), BPF_PERF_EVENT, nullptr));
    if (!link.bpf_link) return fail("BPF_LINK_CREATE(perf event of " + func + ")", errno);
    if (enable_event && ::ioctl(link.perf_event.get(), PERF_EVENT_IOC_ENABLE, 0) != 0)
        return fail("PERF_EVENT_IOC_ENABLE(kprobe " + func + ")", errno);
    return link;
}

}  // namespace pwru
