// The MCP client: one connection to one MCP server over a Transport.
//
// `connect` starts the transport and runs the lifecycle (initialize with the newest protocol
// version, accepting any older one devplane supports; then notifications/initialized). After
// that, requests may be made from any number of threads at once, up to `max_concurrent` in
// flight (more wait for a slot within their deadline). Each request has a deadline; when it
// passes, the server is told with notifications/cancelled and the caller gets
// kDeadlineExceeded `timeout`.
//
// Once the connection fails (the server process ended, it wrote something that is not
// JSON-RPC, a message over the size limit, or an HTTP failure during initialize), every
// pending and later request fails with the reason (`failure()`); the owner (the adapter
// registry) decides when to make a new Client. Over HTTP, a session the server forgot is
// re-initialized once, transparently.
//
// Thread safety: safe from any thread. Callbacks in Options run on a transport thread and must
// not block or call back into this client's close().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "mcp/jsonrpc.hpp"
#include "mcp/protocol.hpp"
#include "mcp/transport.hpp"

namespace dp::mcp {

struct ClientOptions {
  std::string client_name = "devplane";
  std::string client_version = "0.1.0";
  std::chrono::milliseconds request_timeout{30'000};
  std::chrono::milliseconds initialize_timeout{15'000};
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  std::size_t max_concurrent = 16;
  std::size_t max_tools = 5'000;
  std::size_t max_pages = 100;
  std::string log_name;  // adapter name for logs
  // Any notification from the server not handled by the client itself (progress, list_changed
  // and logging are handled, and still reported here).
  std::function<void(const std::string& method, const boost::json::value& params)> on_notification;
};

using ProgressFn = std::function<void(const boost::json::object& params)>;

struct CallOptions {
  std::optional<std::chrono::milliseconds> timeout;  // else the client's request_timeout
  ProgressFn on_progress;  // asks the server for progress notifications
  // Set by the caller to give up: the request ends with kAborted `cancelled` and the server is
  // told with notifications/cancelled (seen within kCancelPoll over stdio and SSE; over
  // Streamable HTTP, where the answer comes in the POST's response, within the HTTP client's
  // 50 ms poll, and the POST's connection is dropped).
  const std::atomic<bool>* cancel = nullptr;
};

inline constexpr std::chrono::milliseconds kCancelPoll{20};
// How long a caller reads for itself (Transport::pump) before it looks at its state again.
inline constexpr std::chrono::milliseconds kPumpSlice{200};

// A tool catalog as the server listed it (every page), with the pin hash of each tool.
struct ToolCatalog {
  std::vector<Tool> tools;
  std::vector<std::string> pin_hashes;  // Tool::pin_hash of each of `tools`, in order
};

class Client {
 public:
  Client(std::unique_ptr<Transport> transport, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the transport and initializes. kFailedPrecondition `unsupported_protocol_version`
  // when the server answers with a version devplane does not speak; transport errors as is.
  Status connect();

  // The tool catalog, all pages; served from a cache until the server announces a change.
  Result<std::vector<Tool>> list_tools(bool refresh = false);
  // The same catalog, shared rather than copied (for callers on every tool call), with each
  // tool's pin hash computed once per fetch.
  Result<std::shared_ptr<const ToolCatalog>> catalog(bool refresh = false);
  Result<CallToolResult> call_tool(const std::string& name, boost::json::value arguments,
                                   const CallOptions& options = {});
  // resources/list and prompts/list (every page: the items of each page's `resources` /
  // `prompts` array, as the server sent them), resources/read and prompts/get (the raw result).
  // kNotFound `method_not_found`-style rpc errors when the server offers no such capability.
  Result<boost::json::array> list_resources();
  Result<boost::json::value> read_resource(const std::string& uri);
  Result<boost::json::array> list_prompts();
  Result<boost::json::value> get_prompt(const std::string& name, boost::json::object arguments = {});
  // Round trip time of a ping.
  Result<std::chrono::microseconds> ping(std::optional<std::chrono::milliseconds> timeout = {});
  // Any request; the raw result.
  Result<boost::json::value> request(const std::string& method, boost::json::value params,
                                     const CallOptions& options = {});
  Status notify(const std::string& method, boost::json::value params = nullptr);

  bool healthy() const;
  std::optional<Error> failure() const;
  InitializeResult server() const;
  // Counts how often the catalog changed (list_changed notifications received).
  std::uint64_t catalog_generation() const;
  // Counters for tests and diagnostics.
  std::uint64_t stray_responses() const;
  std::uint64_t notifications_received() const;

  // Ends the connection (HTTP: DELETE of the session). Pending requests fail.
  void close();

 private:
  struct Pending {
    bool done = false;
    jsonrpc::Message reply;
    ProgressFn on_progress;
  };

  Status initialize();
  Result<boost::json::array> list_all(const std::string& method, const std::string& key);
  Result<boost::json::value> request_once(const std::string& method, const boost::json::value& params,
                                          const CallOptions& options, Clock::time_point deadline,
                                          std::uint64_t& session_gen);
  void on_message(std::string_view text);
  void handle(jsonrpc::Message m);
  void fail(Error why);

  std::unique_ptr<Transport> transport_;
  ClientOptions opt_;
  InitializeResult init_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Pending>> pending_;
  std::int64_t next_id_ = 1;
  std::size_t in_flight_ = 0;
  std::optional<Error> failed_;
  bool allow_batch_ = false;
  std::uint64_t catalog_gen_ = 0;
  std::shared_ptr<const ToolCatalog> tools_;  // the cached catalog; null: none
  std::uint64_t stray_ = 0;
  std::uint64_t notifications_ = 0;
  std::uint64_t session_gen_ = 0;
  std::mutex init_mu_;  // one re-initialization at a time
  bool closed_ = false;
};

}  // namespace dp::mcp
