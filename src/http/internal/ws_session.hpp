// The WebSocket side of an HTTP session after a successful upgrade. Private to http/.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/websocket.hpp"

namespace dp::http::internal {

// Tracks open connections so the server can close them on shutdown. Safe from any thread.
class WsRegistry {
 public:
  virtual ~WsRegistry() = default;
  virtual void opened(const std::shared_ptr<WsConnection>& c) = 0;
  virtual void closed(const WsConnection& c) = 0;
};

class WsSession;

// A group of WebSocket connections sharing one strand. What is sent to any of them goes
// through the shard's mailbox: the first send after a drain posts one handler, which hands
// every waiting frame (and close request) to its connection in the order they came, a slice
// at a time. An event fanned out to N connections so costs a few posts per shard instead of
// one per connection.
// The server keeps about one shard per I/O thread. Safe from any thread.
class WsShard : public std::enable_shared_from_this<WsShard> {
 public:
  using Executor = boost::asio::strand<boost::asio::io_context::executor_type>;

  explicit WsShard(boost::asio::io_context& io);
  const Executor& executor() const noexcept { return strand_; }

  // A frame for `session`, or (when `text` is null) a close with `code` and `reason`.
  void deliver(std::shared_ptr<WsSession> session, std::shared_ptr<const std::string> text,
               std::uint16_t code = 0, std::string reason = {});

 private:
  struct Mail {
    std::shared_ptr<WsSession> session;
    std::shared_ptr<const std::string> text;
    std::uint16_t code = 0;
    std::string reason;
  };
  void drain();

  Executor strand_;
  std::mutex mu_;
  std::vector<Mail> mail_;  // guarded by mu_
  bool scheduled_ = false;  // guarded by mu_: a drain is posted or running
  std::vector<Mail> draining_;  // strand only: taken from mail_, handed out from next_ on
  std::size_t next_ = 0;        // strand only
};

// Completes the handshake for `upgrade` on `socket` (moved onto `shard`'s strand), then
// runs the connection until it closes. Must be spawned on `shard->executor()`. `request` is
// the parsed upgrade (for the handler).
boost::asio::awaitable<void> run_websocket(
    boost::asio::ip::tcp::socket socket, std::shared_ptr<WsShard> shard,
    boost::beast::http::request<boost::beast::http::string_body> upgrade, Request request,
    WsHandler& handler, const WsOptions& options, WsRegistry& registry);

}  // namespace dp::http::internal
