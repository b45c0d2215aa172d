// ChildProcess: a helper program the integration tests run beside devplane (an OpenID
// provider, a remote agent), with stdout and stderr in files of its own temp dir. The
// environment is the test's minus every DEVPLANE_* variable, plus what the test gives.
// SIGTERM (then SIGKILL) at destruction, so a failed assertion never leaves one behind.
// Not thread-safe: one object per thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace dp::it {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv (argv[0] a path). With a non-empty `marker`, waits (bounded) for it on stdout
  // and returns what follows it up to the end of the line; with an empty one returns "" at
  // once. On failure returns "" and `error()` says why.
  std::string start(const std::vector<std::string>& argv, const Env& env, const std::string& marker,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Waits (bounded) until `pred(stdout so far)` holds; false on timeout or when the process
  // exited first (then `error()` says so).
  bool wait_for(const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after 15 s; returns the exit code (128+signal; -1 when not running).
  int stop();
  void kill9();
  // True while it runs (reaps it when it has exited).
  bool running();
  // Its exit code once it has exited (128+signal when killed); -1 while running.
  int exit_code() const { return exit_code_; }
  std::string stdout_text() const;
  // The last 4000 bytes of stderr.
  std::string stderr_text() const;
  const std::string& error() const { return error_; }
  // One line per thread of the running process: id, name, state and what it waits in
  // (/proc); for the message of a start that timed out.
  std::string describe_threads() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::unique_ptr<TempDir> dir_;
  std::string error_;
};

// A loopback port nothing listens on right now (the kernel's pick for a socket then closed).
std::uint16_t free_loopback_port();
// Waits until something accepts connections on 127.0.0.1:port (servers that announce their
// readiness on stderr, which ChildProcess does not watch).
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Node for tests that run JavaScript helpers: DEVPLANE_TEST_NODE, else the one CMake found
// (`fallback`).
std::string node_binary(const std::string& fallback);

}  // namespace dp::it
