// Server: the HTTP/1.1 listener and its sessions (Boost.Beast, C++20 coroutines).
//
// One io_context run by several threads; each connection is a coroutine on its own
// strand, until it becomes a WebSocket: then it moves onto one of a few shared strands
// (shards, see internal::WsShard) so that a fan-out posts once per shard. Handlers run on the
// blocking pool (mutating ones on the write pool when one is set) and the session awaits
// their result, so a slow query never stalls an I/O thread. Limits: body size (413), header size (431),
// a header timeout, an idle keep-alive timeout and a per-request read deadline.
//
// Shutdown: `shutdown()` stops accepting, closes idle keep-alive connections at once,
// closes WebSocket connections with 1001 (going away) and lets in-flight requests finish
// (answered with `Connection: close`); `on_drained` fires
// when the last session has ended or the deadline passed, whichever is first.
// Thread safety: start/shutdown from any thread; the rest is internal.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "http/router.hpp"
#include "http/security.hpp"
#include "http/websocket.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace dp::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::uint64_t max_body_bytes = 1024 * 1024;
  std::uint32_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds request_timeout{30'000};
  // After a request is refused before its body was read (413, 431, 400), the client may still
  // be sending it. The server then stops sending and reads and drops what comes, for at most
  // this long, before it closes: closing with unread bytes makes the kernel send a reset,
  // which can destroy the answer before the client reads it.
  std::chrono::milliseconds linger_timeout{2'000};
  // WebSocket connections are spread over this many strands (0: one per core); a fan-out
  // posts once per strand (see internal::WsShard).
  std::size_t ws_shards = 0;
};

// Observes every request; implemented by the metrics module. Called from any thread.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_start() = 0;
  virtual void on_finish(std::string_view route, std::string_view method, unsigned status,
                         double seconds) = 0;
  virtual void on_connection(int delta) = 0;
};

class Server {
 public:
  Server(boost::asio::io_context& io, boost::asio::thread_pool& blocking, const Router& router,
         ServerOptions options, RequestObserver* observer);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Every non-public route then needs a caller the authenticator accepts (401) and allows
  // (403); WebSocket upgrades too. Without one, every route is open. REQUIRES: before start().
  void set_authenticator(Authenticator& authenticator);
  // Sees every answered mutating request and every refused one. REQUIRES: before start().
  void set_auditor(RequestAuditor& auditor);
  // Runs mutating requests (every method but GET, HEAD and OPTIONS) on `writes` instead of
  // the blocking pool. They mostly wait for their commit's disk sync, so a pool with many
  // threads lets one sync carry many commits without taking threads from reads. Without
  // it, every request runs on the blocking pool. REQUIRES: before start(); `writes`
  // outlives the server's sessions.
  void set_write_pool(boost::asio::thread_pool& writes);

  // Serves WebSocket upgrades of GET `path` with `handler` (which must outlive the server).
  // `path` may hold `:name` segments (e.g. /api/v1/agents/:id/connect); the handler finds
  // them in the request's `params`, and the access table is asked about the pattern.
  // REQUIRES: called before start().
  void add_websocket(std::string path, WsHandler& handler, WsOptions options = {});
  // Open WebSocket connections.
  std::size_t websocket_connections() const noexcept;

  // Binds and listens. kUnavailable when the address is taken.
  Status listen();
  // The bound port (useful with port 0).
  std::uint16_t port() const noexcept;
  // Starts accepting; returns at once.
  void start();
  void shutdown(std::chrono::milliseconds deadline, std::function<void()> on_drained);
  std::size_t active_connections() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace dp::http
