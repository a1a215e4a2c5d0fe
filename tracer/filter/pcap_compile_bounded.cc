// Never include <linux/bpf.h> here: see pcap_compile.h.
#include "tracer/filter/pcap_compile_bounded.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "tracer/util/unique_fd.h"

namespace pwru {
namespace {

using Clock = std::chrono::steady_clock;

// What the child writes to the pipe: this header, then `length` bytes (the
// instructions, or the message).
enum class ChildVerdict : uint32_t { compiled = 1, refused = 2, failed = 3 };
struct ChildReply {
    ChildVerdict verdict;
    uint32_t length;
};

// A cBPF program of this many instructions is far beyond anything the
// translator takes; more from the child is a broken reply, not a filter.
constexpr size_t kMaxReplyBytes = (1u << 20) * sizeof(sock_filter);

bool write_all(int fd, const void* data, size_t len) {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

// The child: single-threaded (a fork of the caller's thread), so libpcap's
// lock is not taken: another thread may have held it at the fork.
[[noreturn]] void run_child(int out, pid_t parent, const std::string& expr, LinkLayer ll) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
    auto r = compile_pcap_unlocked(expr, ll);
    ChildReply h{};
    const void* payload = nullptr;
    if (r) {
        h.verdict = ChildVerdict::compiled;
        h.length = static_cast<uint32_t>(r->size() * sizeof(sock_filter));
        payload = r->data();
    } else {
        h.verdict = r.error().kind == ErrorKind::BadInput ? ChildVerdict::refused : ChildVerdict::failed;
        h.length = static_cast<uint32_t>(r.error().what.size());
        payload = r.error().what.data();
    }
    bool sent = write_all(out, &h, sizeof h) && write_all(out, payload, h.length);
    ::_exit(sent ? 0 : 1);  // no atexit handlers, no stdio flush of the parent's buffers
}

void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

std::string seconds_text(Clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return std::to_string(ms / 1000) + (ms % 1000 ? "." + std::to_string(ms % 1000 / 100) : "") + " s";
}

}  // namespace

Result<void> check_filter_size(const std::string& expr, const char* what) {
    if (expr.size() <= kMaxFilterBytes) return {};
    return bad_input(std::string(what) + " is " + std::to_string(expr.size()) + " bytes, above the limit of " +
                     std::to_string(kMaxFilterBytes) + "; shorten it (e.g. one `net` instead of many `host` terms)");
}

Result<PcapOutcome> compile_pcap_bounded(const std::string& expr, LinkLayer ll, const CompileBudget& budget) {
    if (auto r = check_filter_size(expr, "the filter"); !r) return std::unexpected(r.error());

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail("cannot make a pipe for the filter compiler", errno);
    UniqueFd rd(fds[0]), wr(fds[1]);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return fail("cannot fork the filter compiler", errno);
    if (pid == 0) run_child(wr.get(), parent, expr, ll);
    wr.reset();  // EOF once the child is done

    std::string reply;
    for (;;) {
        if (budget.cancelled && budget.cancelled()) {
            kill_and_reap(pid);
            return fail(kCompileCancelled);
        }
        const auto now = Clock::now();
        if (now >= budget.deadline) {
            kill_and_reap(pid);
            return bad_input("the filter did not compile within " + seconds_text(budget.deadline - budget.started) +
                             " (libpcap's optimizer grows fast with the number of terms); shorten it, e.g. one "
                             "`net` instead of many `host` terms");
        }
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(budget.deadline - now).count() + 1;
        pollfd p{rd.get(), POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(wait, 50)));
        if (n < 0 && errno != EINTR) {
            kill_and_reap(pid);
            return fail("cannot wait for the filter compiler", errno);
        }
        if (n <= 0) continue;
        char buf[16384];
        ssize_t got = ::read(rd.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;  // EOF (or an error: the reply below is then short)
        reply.append(buf, static_cast<size_t>(got));
        if (reply.size() > sizeof(ChildReply) + kMaxReplyBytes) {
            kill_and_reap(pid);
            return fail("the filter compiler's reply is larger than any filter; report this expression");
        }
    }

    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ChildReply h{};
    if (reply.size() < sizeof h) {
        if (WIFSIGNALED(status))
            return fail("the filter compiler was killed by signal " + std::to_string(WTERMSIG(status)) +
                        " (out of memory?); shorten the filter");
        return fail("the filter compiler ended without an answer (exit " + std::to_string(WEXITSTATUS(status)) + ")");
    }
    std::memcpy(&h, reply.data(), sizeof h);
    if (reply.size() != sizeof h + h.length) return fail("the filter compiler's answer is cut short");
    const char* payload = reply.data() + sizeof h;
    PcapOutcome out;
    switch (h.verdict) {
        case ChildVerdict::compiled: break;
        case ChildVerdict::refused: out.refused = std::string(payload, h.length); return out;
        case ChildVerdict::failed: return fail("the filter compiler failed: " + std::string(payload, h.length));
        default: return fail("the filter compiler's answer is not one it gives");
    }
    if (h.length % sizeof(sock_filter) != 0) return fail("the filter compiler's answer is not whole instructions");
    out.insns.resize(h.length / sizeof(sock_filter));
    std::memcpy(out.insns.data(), payload, h.length);
    return out;
}

}  // namespace pwru
