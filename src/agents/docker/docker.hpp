// The `docker` runtime: runs one program in a container through the Docker Engine API over
// its unix socket (/var/run/docker.sock, or config `docker_socket`).
//
// A container is created with the agent's limits (memory, CPU, pids), no network unless the
// agent's config grants it, every capability dropped, no-new-privileges, a read-only root
// with a private /tmp, and the task's workspace bind-mounted read-write at /workspace; then
// started, waited for (with the deadline), its logs read, and removed. `RunControl::stop`
// kills it.
//
// The request building (URLs, JSON bodies) and the log stream decoding are plain functions,
// unit-tested without an engine. DockerClient speaks HTTP/1.1 over the socket (Boost.Beast,
// blocking): call it from a task thread, never an I/O thread. Errors: kUnavailable when the
// socket cannot be reached, kNotFound for an unknown image or container (the engine's
// message is kept), kInternal for other engine errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "agents/sandbox/runner.hpp"
#include "core/result.hpp"

namespace dp::agents::docker {

inline constexpr std::string_view kApiVersion = "v1.43";
inline constexpr std::string_view kDefaultSocket = "/var/run/docker.sock";

struct ContainerSpec {
  std::string name;   // container name (devplane-<task id>)
  std::string image;  // required
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string workspace;  // host folder, bound at /workspace
  std::string workdir;    // inside /workspace (relative); empty: /workspace
  std::int64_t memory_bytes = 512LL * 1024 * 1024;
  double cpus = 1.0;
  std::int64_t pids = 256;
  bool network = false;
  bool open_stdin = false;
  std::vector<std::pair<std::string, std::string>> labels;
};

// The body of POST /containers/create.
boost::json::object create_body(const ContainerSpec& spec);

// Request targets (with the API version prefix); ids and names are percent-encoded.
std::string create_target(std::string_view name);
std::string start_target(std::string_view id);
std::string wait_target(std::string_view id);
std::string logs_target(std::string_view id);
std::string kill_target(std::string_view id, std::string_view signal);
std::string remove_target(std::string_view id);

// Splits the engine's multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, size
// big-endian) into stdout and stderr, each capped at `limit` bytes. A truncated last frame
// keeps what arrived. kInvalidArgument when a header names an unknown stream.
struct Logs {
  std::string out;
  std::string err;
  std::int64_t out_bytes = 0;
  std::int64_t err_bytes = 0;
};
Result<Logs> demux_logs(std::string_view raw, std::size_t limit);

struct EngineResponse {
  unsigned status = 0;
  std::string body;
};

class DockerClient {
 public:
  explicit DockerClient(std::string socket_path = std::string(kDefaultSocket),
                        std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : socket_(std::move(socket_path)), timeout_(timeout) {}

  // One request on a fresh connection. kUnavailable when the socket cannot be reached or the
  // exchange fails or times out.
  Result<EngineResponse> request(std::string_view method, const std::string& target,
                                 const std::string& body = {},
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const;

  Status ping() const;
  Result<std::string> create(const ContainerSpec& spec) const;  // the container id
  Status start(const std::string& id) const;
  // The exit code once it stopped; kDeadlineExceeded after `timeout`.
  Result<int> wait(const std::string& id, std::chrono::milliseconds timeout) const;
  Result<Logs> logs(const std::string& id, std::size_t limit) const;
  Status kill(const std::string& id, std::string_view signal = "SIGKILL") const;
  Status remove(const std::string& id) const;

  const std::string& socket_path() const noexcept { return socket_; }

 private:
  std::string socket_;
  std::chrono::milliseconds timeout_;
};

// Runs `spec` to the end as sandbox::run does (same result shape; `isolated` is true), with
// the deadline and stop of `timeout` / `control`. The container is removed in every case.
Result<sandbox::RunResult> run(const DockerClient& client, const ContainerSpec& spec,
                               std::chrono::milliseconds timeout, std::size_t output_limit,
                               sandbox::RunControl* control = nullptr);

}  // namespace dp::agents::docker
