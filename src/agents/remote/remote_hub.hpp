// RemoteHub: the server side of remote agents, at GET /api/v1/agents/:id/connect (WebSocket).
//
// A process anywhere connects with an API key of role `agent` bound to the agent in the URL
// (api_keys.agent_id); the agent must be of kind `remote` and not stopped. It then speaks the
// versioned JSON protocol of docs/agent-protocol.md: hello/welcome, heartbeats, tasks offered
// from the agent's queue (agent_tasks) with their idempotency key and attempt, log lines
// (-> `agent.log` events), results (-> the task's end and `agent.task.update`, fenced by
// attempt and connection), messages (-> delivered_at once acknowledged).
//
// Ownership of work: a task offered to a connection is claimed in the store under the holder
// `remote/<connection id>` with a lease this hub renews while the connection lives. When the
// connection ends the lease lapses and the executor's sweep queues the task again (a new
// attempt); an agent that reconnects before that takes its running tasks over with the same
// attempt, and they are offered again (same task id, same idempotency key). A result is
// accepted only from the connection holding the task, for its current attempt.
//
// One connection per agent on a node: a newer connection replaces the older one, which is
// closed with 4001. The agent's status follows its connection: connected -> running; lost
// (heartbeat timeout, network, server shutdown) -> error with the reason; an operator's stop
// closes the connection (4003) and further connections are refused until it is started.
//
// Threads: the WsHandler callbacks run on the connection's strand and never block: frames go
// to a per-connection inbox drained in order on the blocking pool. A ticker thread sweeps
// every connection (heartbeat deadline, lease renewal, cancel requests, new tasks and
// messages). Safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "agents/agent_logs.hpp"
#include "agents/agent_service.hpp"
#include "http/websocket.hpp"
#include "store/store.hpp"

namespace dp::agents::remote {

inline constexpr int kProtocolVersion = 1;

struct RemoteOptions {
  std::string node_id;
  std::chrono::milliseconds heartbeat_timeout{30'000};  // silence before a connection is dropped
  std::chrono::milliseconds tick{250};
  std::chrono::milliseconds lease{30'000};
  std::size_t max_frame_bytes = 256 * 1024;  // larger frames get an error frame (the socket's
                                             // own limit, larger still, closes with 1009)
  std::size_t max_inbox = 256;               // frames waiting to be handled; beyond: close 1008
  int max_errors = 20;                       // protocol errors before a connection is closed
  std::size_t max_log_bytes_per_task = 1024 * 1024;  // beyond: counted, not announced
  int max_concurrency = 64;                  // cap on an agent's config.concurrency
  AgentLogs* logs = nullptr;  // keeps each agent's output (GET .../logs); may be null
  // Called after a task's end (sent by the agent) was committed; may be empty. Runs on the
  // blocking pool.
  std::function<void(const model::Task&)> on_finished;
};

// The WebSocket options the connect endpoint should be served with.
http::WsOptions remote_ws_options(const RemoteOptions& options);

class RemoteHub final : public http::WsHandler {
 public:
  RemoteHub(store::Store& store, AgentService& agents, boost::asio::thread_pool& blocking,
            RemoteOptions options);
  ~RemoteHub() override;
  RemoteHub(const RemoteHub&) = delete;
  RemoteHub& operator=(const RemoteHub&) = delete;

  // Starts the ticker thread.
  void start();
  // Stops the ticker; open connections are left to the server's shutdown.
  void stop();
  // Looks for new work at once (a task was created on this node).
  void notify();
  // Connections that said hello.
  std::size_t connected() const;

  // http::WsHandler
  Status accept(const http::Request& request) override;
  void on_open(const std::shared_ptr<http::WsConnection>& connection,
               const http::Request& request) override;
  void on_message(const std::shared_ptr<http::WsConnection>& connection,
                  std::string_view text) override;
  void on_close(const std::shared_ptr<http::WsConnection>& connection) override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dp::agents::remote
