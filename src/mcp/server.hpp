// McpServer: devplane as an MCP server (the JSON-RPC side of /mcp; the HTTP side, with its
// headers, Origin and Host checks, is api/mcp_endpoint.cpp).
//
// - Sessions: `initialize` opens one with a random id (160 bits from the OS CSPRNG), bound to
//   the caller that opened it: another caller presenting the id gets kNotFound, exactly as an
//   unknown or expired id does. Sessions end on `end` (HTTP DELETE), after `idle_timeout`
//   without a request, or when the caller opens more than `max_sessions_per_caller` (its
//   least recently used one goes). When `max_sessions` are open, `initialize` fails with
//   kUnavailable `too_many_sessions`.
// - Lifecycle: until the client's `notifications/initialized`, only `ping` is answered (a
//   request before it gets kInvalidRequest `not_initialized`).
// - Version: the client's protocolVersion when devplane supports it, else the latest.
// - Tools come from ToolSources (platform tools, the gateway), asked in order. A source shows
//   only the tools the caller's role may call and checks the role again on each call.
// - Cancellation: a client's notifications/cancelled for a tools/call of its session that is
//   still running raises that call's cancel flag (CallContext::cancel); the gateway passes it
//   to the adapter, which is sent notifications/cancelled in turn. The call's answer is then
//   an error, which the client ignores (it has cancelled).
// - capabilities.tools.listChanged is true: the endpoint's GET stream tells the client when
//   `catalog_generation` moves.
//
// Safe from any thread (one mutex over the session table, never held while a tool runs).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"
#include "http/message.hpp"
#include "mcp/client.hpp"
#include "mcp/jsonrpc.hpp"
#include "mcp/protocol.hpp"

namespace dp::mcp {

// Who calls a tool and under which request, for role checks, audit rows and logs.
struct CallContext {
  const http::Caller* caller = nullptr;
  std::string correlation_id;
  std::string remote_address;
  std::string session_id;
  // Set while a tools/call runs: raised when the client sends notifications/cancelled for it.
  const std::atomic<bool>* cancel = nullptr;
  // Progress of the call (the adapter's notifications/progress params, its own token), when
  // the client asked for progress and the answer can carry it (an SSE answer).
  ProgressFn on_progress;
};

// A set of tools offered on /mcp. Implementations: PlatformTools, GatewayTools.
class ToolSource {
 public:
  virtual ~ToolSource() = default;
  // Appends the tools the caller may call. An error is reported to the client (tools/list
  // fails) only when every source fails; a source that fails alone is skipped and logged.
  virtual Status list(const CallContext& ctx, std::vector<Tool>& out) = 0;
  // Whether `name` is one of this source's tools (a cheap check on the name alone).
  virtual bool owns(std::string_view name) const = 0;
  // Calls the tool: a CallToolResult object ({content, structuredContent?, isError}); failures
  // of the tool itself (bad arguments, refused, the adapter down) are results with isError so
  // the model sees them. Errors are protocol errors: kNotFound `unknown_tool`.
  virtual Result<boost::json::object> call(std::string_view name, const boost::json::value& arguments,
                                           const CallContext& ctx) = 0;
  // A number that changes whenever the set of tools this source may list changes (for
  // notifications/tools/list_changed); 0 for a fixed set.
  virtual std::uint64_t generation() const { return 0; }
};

struct McpServerOptions {
  std::size_t max_sessions = 1024;
  std::size_t max_sessions_per_caller = 32;
  std::chrono::milliseconds idle_timeout{30 * 60 * 1000};
  std::string server_version;
  std::string instructions;
  std::size_t max_background_calls = 64;
};

// Errors of `McpServer::handle` about the session itself (none, unknown, initialized twice,
// too many), which the endpoint answers with JSON-RPC -32600 Invalid Request.
bool is_session_error(const Error& e) noexcept;

class McpServer {
 public:
  McpServer(std::vector<ToolSource*> sources, McpServerOptions options);
  // Raises the cancel flag of every call in flight and waits for the background calls.
  ~McpServer();
  McpServer(const McpServer&) = delete;
  McpServer& operator=(const McpServer&) = delete;

  struct Session {
    std::string id;
    std::string caller_id;          // Caller::kind + ":" + Caller::id
    std::string protocol_version;   // negotiated
    bool initialized = false;       // notifications/initialized seen
    std::chrono::steady_clock::time_point last_used;
  };

  // The answer to one message on an existing session (or `initialize` without one):
  // `reply` for requests, nothing for notifications and responses. `opened` is the new
  // session's id after a successful initialize.
  struct Outcome {
    std::optional<jsonrpc::Message> reply;
    std::string opened;
  };

  // `session_id` empty: only `initialize` is allowed (anything else: kInvalidArgument
  // `session_required`). Otherwise the session must exist and belong to the caller
  // (kNotFound `unknown_session`). `initialize` with a session id: kInvalidArgument
  // `already_initialized`.
  Result<Outcome> handle(const jsonrpc::Message& message, std::string_view session_id,
                         const CallContext& ctx);

  // The negotiated version of a live session of `caller_id` (empty when none: unknown,
  // expired or another caller's). Does not touch the idle clock.
  std::string session_version(std::string_view session_id, std::string_view caller_id);
  // Ends the session and cancels its tool calls still running; kNotFound when it is unknown
  // or another caller's.
  Status end(std::string_view session_id, std::string_view caller_id);
  std::size_t sessions() const;
  // The sum of the sources' generations: changes when the tools on offer may have changed.
  std::uint64_t catalog_generation() const;
  // Tool calls in flight (for tests and diagnostics).
  std::size_t calls_in_flight() const;

  static std::string caller_key(const http::Caller& caller);

  // Runs `work` (a tools/call answered as a stream) on a thread owned by this server, at most
  // `max_background_calls` at once. False when all are busy: the caller answers inline.
  bool spawn(std::function<void()> work);

 private:
  Result<jsonrpc::Message> dispatch(const jsonrpc::Message& m, Session& s, const CallContext& ctx);
  Result<boost::json::value> list_tools(const boost::json::value& params, const CallContext& ctx);
  Result<boost::json::value> call_tool(const boost::json::value& params, const CallContext& ctx);
  Result<Outcome> initialize(const jsonrpc::Message& m, const CallContext& ctx);
  void expire_locked(std::chrono::steady_clock::time_point now);

  std::vector<ToolSource*> sources_;
  McpServerOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;  // guarded by mu_
  // Cancel flags of the tools/calls in flight, by session id + "\n" + request id key.
  std::unordered_map<std::string, std::shared_ptr<std::atomic<bool>>> in_flight_;  // guarded by mu_
  // Background calls: running threads, and the ids of those that ended (joined by the next spawn).
  std::mutex workers_mu_;
  std::unordered_map<std::thread::id, std::thread> workers_;  // guarded by workers_mu_
  std::vector<std::thread::id> finished_;                     // guarded by workers_mu_
  bool closing_ = false;                                      // guarded by workers_mu_
};

}  // namespace dp::mcp
