#include "tracer/kernel/resource_errors.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdlib>

namespace pwru {
namespace {

std::string limit_text(rlim_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

}  // namespace

std::optional<std::string> explain_resource_error(int err, const std::string& doing) {
    err = std::abs(err);
    if (err == EMFILE) {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        return doing + ": this process is at its open-file limit (RLIMIT_NOFILE soft " + limit_text(rl.rlim_cur) +
               ", hard " + limit_text(rl.rlim_max) +
               "; every BPF program, map and link is a descriptor); raise it (ulimit -n, LimitNOFILE= of a "
               "service, or the container runtime's nofile limit) or end other traces";
    }
    if (err == ENFILE)
        return doing +
               ": the system's file table is full (fs.file-max in /proc/sys/fs/file-nr); close "
               "descriptors elsewhere or raise fs.file-max";
    if (err == ENOMEM) {
        rlimit rl{};
        ::getrlimit(RLIMIT_MEMLOCK, &rl);
        return doing +
               ": the kernel could not allocate memory for BPF programs or maps (ENOMEM: the memory "
               "cgroup's limit on Linux 5.11 and later, RLIMIT_MEMLOCK before it, soft " +
               limit_text(rl.rlim_cur) +
               "); give the process more memory (its cgroup, ulimit -l on older kernels), a smaller "
               "--ring-buffer-size, or run fewer traces";
    }
    return std::nullopt;
}

}  // namespace pwru
