// A child process for tests: pwru (or any binary) started in the background,
// its stdout/stderr in files that can be read at any time, every wait bounded.
//
//   ChildProcess pwru({PWRU_BIN, "--ready-file", ready, "tcp and dst port 80"});
//   REQUIRE(pwru.wait_for_file(ready, 60s));   // the ready-file protocol, never a sleep
//   ... make traffic ...
//   pwru.interrupt();                          // SIGINT, like Ctrl-C
//   REQUIRE(pwru.wait(90s) == 0);
//   CHECK_THAT(pwru.stdout_text(), Contains("SKB_DROP_REASON_NETFILTER_DROP"));
//
// The destructor SIGKILLs the child's whole process group if it still runs.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace pwru::test {

struct ChildOptions {
    // Run the child in this network namespace ("/run/netns/NAME" or
    // "/proc/PID/ns/net"); empty = the caller's.
    std::string netns_path;
    // The child gets SIGKILL when the thread that started it dies, so a test
    // binary killed half-way leaves no pwru behind. Note: it is the *thread*
    // (Linux PR_SET_PDEATHSIG), so turn this off when starting a long-lived
    // child from a short-lived std::thread.
    bool die_with_parent = true;
};

class ChildProcess {
  public:
    // Starts argv[0] (looked up in PATH like execvp). Throws std::runtime_error
    // naming the command when it cannot be started (e.g. binary not found).
    explicit ChildProcess(std::vector<std::string> argv, ChildOptions options = {});
    ~ChildProcess();  // SIGKILLs the process group if still running, reaps, removes the temp dir

    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    const std::vector<std::string>& argv() const { return argv_; }
    // "argv0 arg1 ..." for messages.
    std::string command_line() const;

    // Polls (every 10 ms) until `path` exists or the child exits or the timeout
    // passes. True only if the file exists.
    bool wait_for_file(const std::filesystem::path& path, std::chrono::milliseconds timeout);

    // Polls (every 50 ms) until stdout holds every one of `needles`, or the
    // child exits or the timeout passes. True only if all are there.
    bool wait_for_stdout(const std::vector<std::string>& needles, std::chrono::milliseconds timeout);

    // True while the child has not exited (reaps it if it has).
    bool running();

    // SIGINT to the child (not its group: pwru's own signal handling is under test).
    void interrupt();
    // SIGKILL to the whole process group, then reaps (bounded).
    void kill();

    // Waits up to `timeout` for the exit. Returns the exit code, 128+N if killed
    // by signal N (the shell's convention), or nullopt if still running.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    // The exit status once known (same encoding as wait()).
    std::optional<int> exit_status() const { return status_; }

    const std::filesystem::path& stdout_path() const { return stdout_path_; }
    const std::filesystem::path& stderr_path() const { return stderr_path_; }
    std::string stdout_text() const;
    std::string stderr_text() const;
    // A temp dir owned by this child (removed by the destructor): a place for
    // its ready file or output files.
    const std::filesystem::path& dir() const { return dir_; }

  private:
    void reap(int options);

    std::vector<std::string> argv_;
    std::filesystem::path dir_;
    std::filesystem::path stdout_path_;
    std::filesystem::path stderr_path_;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

// Reads a whole file; "" if it does not exist.
std::string read_file_text(const std::filesystem::path& path);

}  // namespace pwru::test
