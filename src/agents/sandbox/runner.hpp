// Runner: starts one program in a sandbox and waits for it, with limits, a deadline, output
// capture and a stop that leaves no process behind.
//
// `Isolation::kSandbox` runs the program under bubblewrap with new user, pid, mount, ipc,
// uts and network namespaces (network shared only when the spec grants it), a read-only view
// of the system directories (not of the host's home, data or work folders), a private
// read-write workspace at /workspace, a fresh /proc, /dev and /tmp, `--die-with-parent` and
// `--new-session`; and in a cgroup with memory, pids and cpu limits, plus rlimits.
// `Isolation::kNone` runs it directly (same cgroup and limits when cgroups are available);
// it must be chosen explicitly and callers show it as a warning.
// If bubblewrap or cgroups are missing, a sandboxed run refuses to start with kUnavailable
// naming what is missing.
//
// `run` blocks until the program has ended and its whole process tree is gone: call it on the
// blocking pool. `RunControl::stop` (any thread) sends SIGTERM to the tree, waits the grace
// period, then kills the cgroup.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agents/sandbox/cgroup.hpp"
#include "core/result.hpp"

namespace dp::agents::sandbox {

enum class Isolation { kSandbox, kNone };

struct RunSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH inside the sandbox
  std::vector<std::pair<std::string, std::string>> env;  // the whole environment (nothing inherited but PATH)
  std::string workspace;          // host folder; /workspace inside the sandbox, cwd with kNone
  std::string workdir;            // a folder inside the workspace to start in (relative); empty: its root
  Isolation isolation = Isolation::kSandbox;
  bool network = false;
  CgroupLimits limits{512LL * 1024 * 1024, 256, 1.0};
  std::chrono::milliseconds timeout{0};  // 0: none
  std::chrono::milliseconds stop_grace{5'000};
  std::size_t output_limit = 1024 * 1024;  // bytes kept per stream; the rest is counted, dropped
  std::string stdin_data;
  // When >= 0 the program's stdin is this descriptor (the read end of the caller's pipe, for
  // programs that converse over stdin/stdout such as MCP servers) and `stdin_data` is ignored.
  // The caller keeps ownership and closes it after `run` returns.
  int stdin_fd = -1;
  // When >= 0 the program's stdout is this descriptor (the write end of the caller's pipe, for a
  // caller that reads the program's answers itself); `on_output` and the result then have
  // stderr only. `run` takes it over: it closes it in this process once the program has it, or
  // when it returns without starting the program, so the caller sees end-of-file when the
  // program is gone.
  int stdout_fd = -1;
  // Extra host paths the sandbox sees read-only, at the same path (a program's own files,
  // e.g. an npm package outside the system folders). Ignored with kNone.
  std::vector<std::string> ro_binds;
  // Called on the running thread with each chunk of output ("stdout" | "stderr"), for live logs.
  std::function<void(std::string_view stream, std::string_view chunk)> on_output;
  // When set, called once everything is prepared (cgroup made, arguments built), right before
  // the program starts; false: it does not start and `run` returns kAborted. Lets a caller
  // prepare while it waits for something else (the executor: a claim's commit).
  std::function<bool()> before_start;
};

struct RunResult {
  // "exited" (normally, any code), "signaled", "timeout", "stopped", "memory_limit"
  std::string outcome;
  int exit_code = -1;  // when exited
  int signal = 0;      // when killed by a signal
  std::string stdout_text;
  std::string stderr_text;
  std::int64_t stdout_bytes = 0;  // total produced, kept or not
  std::int64_t stderr_bytes = 0;
  std::int64_t wall_ms = 0;
  std::int64_t wall_us = 0;  // the same, in microseconds (benchmarks subtract it)
  CgroupStats stats;
  bool isolated = false;  // ran under bubblewrap
};

// Thread safety: safe from any thread.
class RunControl {
 public:
  void stop() noexcept { stop_.store(true); }
  bool stop_requested() const noexcept { return stop_.load(); }
  // The flag itself, for code that polls it (model calls of llm agents).
  const std::atomic<bool>& flag() const noexcept { return stop_; }

  // The current use of the run's cgroup (another thread samples it for the agent cards);
  // nullopt before the run has its group, after it has ended, or when it has none.
  std::optional<CgroupUsage> usage() const;
  // `run` attaches its group when the program starts and detaches it before removing it.
  void attach(const Cgroup* cgroup);
  // `run` hands over its ended (emptied) group, which is removed when this control is
  // destroyed or gets the next one: removing it is not on the way to the run's result.
  void retire(std::unique_ptr<Cgroup> spent);

 private:
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  const Cgroup* cgroup_ = nullptr;  // guarded by mu_
  std::unique_ptr<Cgroup> spent_;   // guarded by mu_
};

// Ok when `isolation` can be used on this host; kUnavailable naming what is missing.
Status check_available(Isolation isolation);

// Runs `spec` to the end. Errors are about starting it (kUnavailable, kInvalidArgument);
// everything about how the program ended is in the result.
Result<RunResult> run(const RunSpec& spec, RunControl* control = nullptr);

// The bubblewrap command line for `spec` (without the program's argv): for tests and logs.
std::vector<std::string> bwrap_args(const RunSpec& spec);

}  // namespace dp::agents::sandbox
