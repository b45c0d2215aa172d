// ChildProcess: a helper program a test needs beside devplane (an OpenID provider, the
// scripted LLM provider, ...), started with posix_spawn, stdout/stderr in files, and stopped
// (SIGTERM, then SIGKILL) at destruction so that a failed assertion never leaves one behind.
// Not thread-safe: one object per thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace dp::it {

// The node binary: DEVPLANE_TEST_NODE, else the one CMake found (DP_NODE_BINARY).
std::string node_binary();

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv with the environment minus DEVPLANE_* plus `env`; waits (bounded) for
  // `marker` on stdout and returns what follows it up to the end of the line. Empty on
  // failure, then `error()` says why.
  std::string start(const std::vector<std::string>& argv, const Env& env, const std::string& marker,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));
  void stop();
  bool running() const { return pid_ > 0; }
  std::string stderr_text() const;
  const std::string& error() const { return error_; }

 private:
  pid_t pid_ = -1;
  std::unique_ptr<TempDir> dir_;
  std::string error_;
};

}  // namespace dp::it
