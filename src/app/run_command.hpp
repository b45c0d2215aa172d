// `devplane run FILE`: submits a workflow definition to a running server (creating the workflow,
// or a new version of the one with the same name when the text changed), starts an execution
// with the given inputs and, with --wait, follows it to the end, exiting 0 when it succeeded.
//
// The server comes from --server or DEVPLANE_SERVER (default http://127.0.0.1:8080); the
// credential from --token or DEVPLANE_TOKEN (an API key or an access token), else --user (or
// DEVPLANE_USER) with the password in DEVPLANE_PASSWORD, signed in with POST /api/v1/auth/login.
//
// Exit codes: 0 started (or, with --wait, succeeded); 1 the execution failed or was cancelled;
// 2 bad usage, the file or the server refused (validation problems are printed); 3 --wait
// timed out.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dp::app {

struct RunOptions {
  std::string file;
  std::vector<std::string> inputs;  // k=v; v is JSON when it parses, else a string
  std::string server;
  std::string token;
  std::string user;
  bool wait = false;
  int timeout_s = 600;
  bool quiet = false;
};

// Adds the `run` command to `cli`.
CLI::App* add_run_command(CLI::App& cli, RunOptions& opts);
// Exit code of `run` (see above).
int run_run_command(const RunOptions& opts);

}  // namespace dp::app
