#include "tracer/kernel/tracefs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "tracer/util/unique_fd.h"

namespace pwru {
namespace {

constexpr const char* kTracing = "/sys/kernel/tracing";
constexpr const char* kDebugTracing = "/sys/kernel/debug/tracing";
constexpr long kTracefsMagic = 0x74726163;  // TRACEFS_MAGIC, linux/magic.h

// The directories exist whether or not anything is mounted on them, so ask
// statfs which filesystem is really there.
bool is_tracefs(const char* dir) {
    struct statfs st {};
    return ::statfs(dir, &st) == 0 && st.f_type == kTracefsMagic;
}

}  // namespace

Result<std::string> find_or_mount_tracefs() {
    for (const char* dir : {kTracing, kDebugTracing})
        if (is_tracefs(dir)) return std::string(dir);
    const char* hint = "; mount it with 'mount -t tracefs nodev /sys/kernel/tracing'";
    if (::geteuid() != 0) return fail(std::string("tracefs is not mounted and only root can mount it") + hint, EPERM);
    if (::mount("nodev", kTracing, "tracefs", 0, nullptr) != 0) {
        int err = errno;
        return fail(std::string("cannot mount tracefs at ") + kTracing + hint, err);
    }
    return std::string(kTracing);
}

std::optional<std::string> tracefs_dir() {
    auto dir = find_or_mount_tracefs();
    if (!dir) return std::nullopt;
    return std::move(*dir);
}

Result<std::unordered_set<std::string>> read_available_filter_functions() {
    auto dir = find_or_mount_tracefs();
    if (!dir) return std::unexpected(dir.error());
    std::string path = *dir + "/available_filter_functions";
    const std::string what = "cannot read " + path +
                             " (run as root; a locked-down kernel refuses even root)"
                             "; the functions to probe come from BTF alone";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail(what, errno);

    std::unordered_set<std::string> funcs;
    funcs.reserve(1 << 16);
    std::string pending;  // a line cut by the end of a chunk
    char chunk[1 << 16];
    auto add_line = [&](std::string_view line) {
        std::string_view name = line.substr(0, line.find_first_of(" \t"));
        if (!name.empty()) funcs.emplace(name);
    };
    for (;;) {
        ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(what, errno);
        if (n == 0) break;
        std::string_view data(chunk, size_t(n));
        for (size_t nl; (nl = data.find('\n')) != std::string_view::npos; data.remove_prefix(nl + 1)) {
            if (pending.empty()) {
                add_line(data.substr(0, nl));
            } else {
                pending.append(data.substr(0, nl));
                add_line(pending);
                pending.clear();
            }
        }
        pending.append(data);
    }
    add_line(pending);
    return funcs;
}

}  // namespace pwru
