#include "support/child_process.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sched.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace pwru::test {
namespace {

using namespace std::chrono_literals;

int open_or_throw(const char* path, int flags, const std::string& why) {
    int fd = ::open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(why + ": open " + path + ": " + std::strerror(errno));
    return fd;
}

// What the child reports through the exec pipe when a step before exec fails.
struct ExecFailure {
    int stage;  // 1 setns, 2 exec
    int err;
};

[[noreturn]] void child_fail(int pipe_fd, int stage) {
    ExecFailure f{stage, errno};
    (void)!::write(pipe_fd, &f, sizeof f);
    ::_exit(127);
}

int encode_status(int raw) {
    if (WIFEXITED(raw)) return WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
    return -1;
}

}  // namespace

std::string read_file_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

ChildProcess::ChildProcess(std::vector<std::string> argv, ChildOptions options) : argv_(std::move(argv)) {
    if (argv_.empty()) throw std::invalid_argument("ChildProcess: empty argv");

    // The pid in the name lets NetnsPair::sweep_stale() remove it after a crash.
    std::string tmpl =
        (std::filesystem::temp_directory_path() / ("pwrut-child-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = tmpl;
    stdout_path_ = dir_ / "stdout";
    stderr_path_ = dir_ / "stderr";

    // Everything the child needs is prepared here: between fork and exec only
    // async-signal-safe calls are allowed (other threads may hold malloc locks).
    std::vector<char*> cargv;
    for (auto& a : argv_) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    const std::string what = "starting `" + command_line() + "`";
    int in_fd = open_or_throw("/dev/null", O_RDONLY, what);
    int out_fd = -1, err_fd = -1, ns_fd = -1;
    int pipe_fds[2] = {-1, -1};
    auto close_all = [&] {
        for (int fd : {in_fd, out_fd, err_fd, ns_fd, pipe_fds[0], pipe_fds[1]})
            if (fd >= 0) ::close(fd);
    };
    try {
        out_fd = open_or_throw(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, what);
        err_fd = open_or_throw(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, what);
        if (!options.netns_path.empty()) ns_fd = open_or_throw(options.netns_path.c_str(), O_RDONLY, what);
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error(what + ": pipe2: " + std::strerror(errno));
    } catch (...) {
        close_all();
        std::filesystem::remove_all(dir_);
        throw;
    }

    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
        // Own process group, so kill() reaches anything the child spawns.
        ::setpgid(0, 0);
        if (options.die_with_parent) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);  // parent already gone
        }
        if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0) child_fail(pipe_fds[1], 1);
        ::dup2(in_fd, 0);
        ::dup2(out_fd, 1);
        ::dup2(err_fd, 2);
        // exec keeps ignored signals ignored and the signal mask: a test run
        // from a non-interactive shell has SIGINT ignored, which would make
        // interrupt() a no-op.
        for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGHUP}) ::signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execvp(cargv[0], cargv.data());
        child_fail(pipe_fds[1], 2);
    }
    int fork_errno = errno;
    ::close(pipe_fds[1]);
    pipe_fds[1] = -1;
    if (pid < 0) {
        close_all();
        std::filesystem::remove_all(dir_);
        throw std::runtime_error(what + ": fork: " + std::strerror(fork_errno));
    }
    pid_ = pid;
    ::setpgid(pid, pid);  // also here: no window where kill(-pid) misses

    // The pipe closes on a successful exec (O_CLOEXEC) or carries the failure.
    ExecFailure f{};
    ssize_t n;
    do n = ::read(pipe_fds[0], &f, sizeof f);
    while (n < 0 && errno == EINTR);
    close_all();
    if (n == static_cast<ssize_t>(sizeof f)) {
        reap(0);
        std::filesystem::remove_all(dir_);
        throw std::runtime_error(what + ": " + (f.stage == 1 ? "setns " + options.netns_path : std::string("exec")) +
                                 ": " + std::strerror(f.err));
    }
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0) {
        // The group too: `ip netns exec`, shells and the like leave children.
        // (pid numbers are not reused while the group has members.)
        ::kill(-pid_, SIGKILL);
        if (!status_) {
            ::kill(pid_, SIGKILL);
            wait(5s);  // SIGKILL cannot be ignored; bounded anyway
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string ChildProcess::command_line() const {
    std::string s;
    for (auto& a : argv_) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

void ChildProcess::reap(int options) {
    if (status_ || pid_ <= 0) return;
    int raw = 0;
    pid_t r;
    do r = ::waitpid(pid_, &raw, options);
    while (r < 0 && errno == EINTR);
    if (r == pid_)
        status_ = encode_status(raw);
    else if (r < 0 && errno == ECHILD)
        status_ = -1;  // reaped elsewhere; don't wait forever
}

bool ChildProcess::running() {
    reap(WNOHANG);
    return !status_;
}

bool ChildProcess::wait_for_file(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (std::filesystem::exists(path)) return true;
        if (!running()) return std::filesystem::exists(path);
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
}

bool ChildProcess::wait_for_stdout(const std::vector<std::string>& needles, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const bool exited = !running();  // before reading: output after the exit is complete
        const std::string out = stdout_text();
        bool all = true;
        for (const auto& n : needles) all = all && out.find(n) != std::string::npos;
        if (all) return true;
        if (exited || std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
}

void ChildProcess::interrupt() {
    if (running()) ::kill(pid_, SIGINT);
}

void ChildProcess::kill() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    if (running()) ::kill(pid_, SIGKILL);
    wait(5s);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (!running()) return status_;
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(2ms);
    }
}

std::string ChildProcess::stdout_text() const { return read_file_text(stdout_path_); }
std::string ChildProcess::stderr_text() const { return read_file_text(stderr_path_); }

}  // namespace pwru::test
