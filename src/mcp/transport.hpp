// Transports carry JSON-RPC texts between devplane's MCP client and one server.
//
// A transport is started once with handlers; it delivers every message text it receives to
// `on_message` (on a thread of its own for stdio, on the sending thread for HTTP replies), and
// calls `on_closed` once when the connection ends for good (the process exited, the stream
// broke). `send` may be called from any thread; each transport serializes what must be.
// `close` ends the connection and waits for the transport's threads, except when called from
// inside a handler, where it only requests the end.
//
// Errors from `send`: kUnavailable (closed, server gone, HTTP failure), kDeadlineExceeded,
// and kFailedPrecondition reason `session_expired` when an HTTP server no longer knows the
// session (404, or the 400 "unknown session" some servers answer): the client initializes
// again and retries.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agents/sandbox/cgroup.hpp"
#include "core/result.hpp"
#include "http/message.hpp"

namespace dp::mcp {

using Clock = std::chrono::steady_clock;

struct TransportHandlers {
  std::function<void(std::string_view text)> on_message;
  std::function<void(const Error& why)> on_closed;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual Status start(TransportHandlers handlers) = 0;
  virtual Status send(const std::string& text, Clock::time_point deadline) = 0;
  // The same, given up when `cancel` becomes true (kAborted `cancelled`). Only a transport that
  // answers within the send (Streamable HTTP: the reply comes in the POST's response) needs to
  // watch it; the others send at once and the client waits for the answer itself.
  virtual Status send_cancellable(const std::string& text, Clock::time_point deadline,
                                  const std::atomic<bool>* /*cancel*/) {
    return send(text, deadline);
  }
  // The version initialize negotiated (HTTP sends it as MCP-Protocol-Version).
  virtual void set_protocol_version(std::string /*version*/) {}
  // Forgets the session so the next message starts a new one (HTTP).
  virtual void reset_session() {}
  virtual void close() = 0;
  // "stdio: node server.js" or "http: http://127.0.0.1:3001/mcp", for logs and errors.
  virtual std::string describe() const = 0;
  // True when every reply arrives during `send` (HTTP): no reply by then means none will come.
  virtual bool replies_inline() const { return false; }
  // For a caller waiting for a reply: reads and delivers what the server sent on the calling
  // thread, saving the wake-up of a reader thread (stdio). Returns after it delivered
  // something, after another thread did, or at `until`, whichever is first; the caller then
  // looks for its reply and calls again. False: this transport does not read on callers'
  // threads (wait for `on_message` instead). Handlers run on the thread that reads.
  virtual bool pump(Clock::time_point /*until*/) { return false; }
};

struct StdioOptions {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string workspace;         // cwd (unsandboxed) or /workspace (sandboxed)
  bool sandbox = false;          // run under bubblewrap + cgroups (agents/sandbox)
  bool network = false;          // sandboxed only
  std::vector<std::string> ro_binds;  // sandboxed only: extra read-only host paths
  // No CPU quota by default: a quota throttles a server for the rest of each 100 ms period
  // once its threads (Node's collector beside its main thread) went over it, which paused
  // calls for up to 40 ms in bench/mcp; memory and processes stay bounded.
  agents::sandbox::CgroupLimits limits{512LL * 1024 * 1024, 256, 0};
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  std::string log_name;          // adapter name in the server's stderr log lines
};

struct HttpOptions {
  std::string url;               // the MCP endpoint, e.g. http://127.0.0.1:3001/mcp
  http::Fields headers;          // sent with every request (e.g. Authorization)
  std::chrono::milliseconds connect_timeout{5'000};
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  std::size_t max_response_bytes = 64 * 1024 * 1024;  // one POST's whole reply stream
};

std::unique_ptr<Transport> make_stdio_transport(StdioOptions options);
std::unique_ptr<Transport> make_http_transport(HttpOptions options);
// The legacy HTTP+SSE transport (2024-11-05): `url` is the server's SSE endpoint (GET); the
// `endpoint` event it sends names where to POST (same origin only).
std::unique_ptr<Transport> make_sse_transport(HttpOptions options);

}  // namespace dp::mcp
