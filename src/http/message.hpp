// Request and Response: the HTTP messages handlers see. Plain values, independent of
// Beast, so handler code compiles without it. A Request is owned by one session and
// used by one thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/log.hpp"
#include "core/result.hpp"

namespace dp::http {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Who is calling, once the server's Authenticator has said so. Empty `id` means nobody
// (public routes, or a server without authentication).
struct Caller {
  std::string id;        // user id or API key id
  std::string name;      // username or key name, for logs and the audit trail
  std::string kind;      // "user" | "api_key"
  std::string role;      // "admin" | "operator" | "viewer" | "agent"
  std::string agent_id;  // for keys bound to one agent
  bool authenticated() const noexcept { return !id.empty(); }
};

struct Request {
  std::string method;  // upper case, e.g. "GET"
  std::string target;  // as sent, e.g. "/api/v1/agents?limit=5"
  std::string path;    // percent-decoded path without the query
  Fields query;        // decoded, in order
  Fields headers;      // names lower-cased
  std::string body;
  std::string request_id;
  std::string remote_address;
  Fields params;  // route parameters (":id" -> value)
  std::string route;  // the matched pattern, for metrics and logs
  Caller caller;      // set by the server's Authenticator before the handler runs
  log::Logger log;

  std::optional<std::string_view> header(std::string_view lower_name) const;
  std::optional<std::string_view> query_param(std::string_view name) const;
  std::string_view param(std::string_view name) const;
};

// Lets the producer of a streamed body (Response::stream) end the server's wait at once when
// it has data, instead of at the next `stream_poll`. The server attaches to it while it streams;
// wake() before that is remembered, wake() after it is a no-op.
// Thread safety: every method is safe from any thread.
class StreamWaker {
 public:
  void wake();
  // For the server: `fn` is called (under this object's lock, so it must only post work) on
  // each wake() until detach(); at once if a wake() came before.
  void attach(std::function<void()> fn);
  void detach();

 private:
  std::mutex mu_;
  std::function<void()> fn_;  // guarded by mu_
  bool pending_ = false;      // guarded by mu_: woken while nobody was attached
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  Fields headers;
  // Set by a handler that records the effects of the request itself (/mcp: each platform tool
  // that changes state is audited under its own route, each gatewayed call has its
  // tool_executions row): the server then writes no request-level audit entry for a success.
  // Refusals (401, 403) are audited whatever this says.
  bool audited_by_handler = false;
  // A body sent over time (chunked; e.g. Server-Sent Events). When set, `body` goes first, then
  // the server calls `stream` on the connection's I/O thread (so it must not block) and sends
  // what it returns: data is written (a write slower than request_timeout drops the client) and
  // `stream` is called again at once; "" means nothing yet, asked again after `stream_poll`;
  // nullopt ends the body. It also ends when the client closes its side or the server shuts
  // down; the connection then closes and the function is destroyed.
  std::function<std::optional<std::string>()> stream;
  std::chrono::milliseconds stream_poll{100};
  // Optional: with it, `stream` is also called again as soon as the producer calls wake().
  std::shared_ptr<StreamWaker> stream_waker;

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// {"data": data, "meta": {...meta, "requestId": id}}
Response data_response(unsigned status, boost::json::value data, boost::json::object meta,
                       std::string_view request_id);
// The same, with `data` already serialized (valid JSON text, written by the caller).
Response data_response_text(unsigned status, std::string_view data_json, boost::json::object meta,
                            std::string_view request_id);

// The one place an Error becomes an HTTP status and {"error": {code, message, details?}}.
Response error_response(const Error& error, std::string_view request_id);
unsigned status_for(const Error& error) noexcept;

// Parses a JSON request body. Malformed JSON: kInvalidArgument `invalid_json` with
// details {position, line, column}. Empty body: `invalid_json` too.
Result<boost::json::value> parse_json_body(std::string_view body);

}  // namespace dp::http
