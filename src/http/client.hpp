// The outbound HTTP/1.1 client: one request, one response, on a fresh connection, or on a
// kept-alive one from a ConnectionPool when the request names one.
//
// Used for calls devplane makes to other services (OpenID providers today; MCP servers and
// LLM APIs next). `fetch` blocks the calling thread, so call it from the blocking pool (every
// route handler runs there), never from an I/O thread. Each call runs its own small
// io_context, so calls are independent and safe from any thread at the same time.
//
// - http:// and https://. TLS verifies the peer's certificate chain against the system store
//   (or `ca_file` when given) and the certificate against the URL's host name, and sends SNI.
// - Deadlines: `connect_timeout` for resolve + connect + TLS handshake, `timeout` for the whole
//   exchange (connect included). Exceeded: kDeadlineExceeded, reason `timeout`.
// - Size: a response whose header block or body exceeds the limits is refused
//   (kResourceExhausted, reason `response_too_large`) and the connection dropped.
// - Streaming: with `on_body` set, a 2xx response's body is handed over piece by piece as it
//   arrives (`ClientResponse::body` stays empty); the callback returning false ends the
//   exchange with kAborted, reason `aborted`. The size limit counts every piece. Other statuses
//   are read whole into `body` as usual, so their error text stays available.
// - Redirects are not followed unless `max_redirects` > 0; a 3xx is then followed for GET
//   (and HEAD) only, and never from https:// to http://.
//
// - Keep-alive: with `pool` set, the request goes on an idle connection to the same origin
//   (scheme, host, port, CA file) when the pool has one that is still open, and the connection
//   goes back to the pool after a complete response the server did not mark `Connection:
//   close`. A connection the server closed while it sat idle is noticed before use (it is
//   readable) and dropped. If a reused connection fails before the request was written, or
//   (for GET, HEAD, PUT, DELETE, OPTIONS only) closes before the first byte of the answer, the
//   request is sent once more on a fresh connection: the server cannot have acted on it, or
//   acting twice is harmless. A POST whose reused connection dies after the write is not
//   repeated; its error says so. Errors, deadlines, cancels and streams the reader stopped
//   never return a connection to the pool.
//
// Errors: kInvalidArgument `bad_url` (unparsable URL, unsupported scheme, no host);
// kUnavailable `connect_failed` (name not resolved, connection refused or reset),
// `tls_failed` (handshake or certificate verification failed), `bad_response` (not HTTP);
// kDeadlineExceeded `timeout`; kResourceExhausted `response_too_large`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "http/message.hpp"

namespace dp::http {

struct ClientResponse;
class ConnectionPool;

struct ClientRequest {
  std::string method = "GET";
  std::string url;   // http://host[:port]/path?query or https://...
  Fields headers;    // sent as given; Host, Content-Length and User-Agent are added when absent
  std::string body;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds timeout{15'000};
  std::size_t max_response_bytes = 4 * 1024 * 1024;  // body
  std::size_t max_header_bytes = 64 * 1024;
  int max_redirects = 0;
  // PEM bundle of trusted CAs for https; empty: the system store.
  std::string ca_file;
  // Streaming (see above): called on the calling thread with each piece of a 2xx body; `head`
  // holds the status and headers (its `body` is empty).
  std::function<bool(const ClientResponse& head, std::string_view piece)> on_body;
  // Polled every 50 ms while the exchange runs; when it becomes true the connection is dropped
  // and fetch returns kAborted, reason `aborted`. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Keep-alive (see above); null: a fresh connection, closed after the response. The pool must
  // outlive the call.
  ConnectionPool* pool = nullptr;
};

struct ClientResponse {
  unsigned status = 0;
  Fields headers;  // names lower-cased, in order
  std::string body;
  std::string url;  // the URL that answered (differs from the request's after redirects)

  std::optional<std::string_view> header(std::string_view lower_name) const;
};

namespace internal {
struct Connection;
struct ConnectionDeleter {
  void operator()(Connection* c) const noexcept;
};
using ConnectionPtr = std::unique_ptr<Connection, ConnectionDeleter>;
}  // namespace internal

// Idle HTTP/1.1 connections kept for reuse, per origin, for a caller that talks to the same
// server again and again (an MCP adapter, an LLM provider). Thread-safe; a connection serves
// one exchange at a time and is out of the pool while it does.
class ConnectionPool {
 public:
  struct Options {
    std::size_t max_idle_per_origin = 4;
    // An idle connection older than this is closed rather than reused. Under the 5 s that
    // Node's and many other servers wait before closing an idle connection; a server's
    // `Keep-Alive: timeout=N` shortens it to N - 1 s.
    std::chrono::milliseconds max_idle{4'000};
  };
  ConnectionPool();
  explicit ConnectionPool(Options options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Idle connections held now, and exchanges that reused a connection since construction.
  std::size_t idle() const;
  std::uint64_t reused() const noexcept { return reused_.load(); }
  // Closes every idle connection.
  void clear();

  // For fetch: an idle, still open connection to `origin`, or null; and the way back.
  internal::ConnectionPtr take(const std::string& origin);
  void give(const std::string& origin, internal::ConnectionPtr connection,
            std::chrono::milliseconds keep_for);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::uint64_t> reused_{0};
};

// Sends one request and reads the response; any status code is a successful exchange.
Result<ClientResponse> fetch(const ClientRequest& request);

// Convenience: GET `url` with the default limits.
Result<ClientResponse> fetch_get(std::string_view url, Fields headers = {});

// application/x-www-form-urlencoded encoding of one component ("a b&" -> "a+b%26").
std::string form_encode(std::string_view text);
// Percent-encoding for a URL query component ("a b&" -> "a%20b%26").
std::string url_encode(std::string_view text);

}  // namespace dp::http
