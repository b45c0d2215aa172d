// WebSocket endpoints on the HTTP server: the transport under the event hub (/ws) and,
// later, the remote-agent protocol.
//
// The server owns each connection: it upgrades the HTTP session, reads text messages and
// hands them to the endpoint's handler, and writes what `send` queues, in order (frames queued
// together leave in one send).
// A connection has limits: the largest message it accepts (larger ones close it with 1009),
// a bounded send queue (a client that does not keep up is closed with 1008 "slow consumer"
// instead of slowing others or growing memory), and a heartbeat (pings at half the idle
// timeout; a peer silent for the whole idle timeout is dropped).
//
// Thread safety: `WsConnection`'s public methods are safe from any thread; they post onto
// the connection's strand. A handler's callbacks run on that strand (an I/O thread), one at
// a time per connection, and must not block.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "http/message.hpp"

namespace dp::http {

struct WsOptions {
  std::size_t max_message_bytes = 64 * 1024;
  std::size_t max_queued_bytes = 8 * 1024 * 1024;  // beyond this: close 1008
  std::size_t max_queued_messages = 8192;
  std::chrono::milliseconds idle_timeout{20'000};  // pings at half of it
  std::chrono::milliseconds close_grace{5'000};    // a stuck peer's socket is cut after this
};

class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Queues one text frame. Drops it silently once the connection is closing.
  virtual void send(std::shared_ptr<const std::string> text) = 0;
  void send(std::string text) { send(std::make_shared<const std::string>(std::move(text))); }
  // Sends a close frame with `code` and `reason` after the frames already sent, and ends the
  // connection. (A slow consumer's close, made by the server, drops the unsent backlog.)
  virtual void close(std::uint16_t code, std::string reason) = 0;
  virtual const std::string& id() const noexcept = 0;
  virtual const std::string& remote_address() const noexcept = 0;
};

class WsHandler {
 public:
  virtual ~WsHandler() = default;
  // Decides on the upgrade request (auth, Origin). An error refuses the upgrade with the
  // error's HTTP status and envelope.
  virtual Status accept(const Request& request) = 0;
  virtual void on_open(const std::shared_ptr<WsConnection>& connection,
                       const Request& request) = 0;
  virtual void on_message(const std::shared_ptr<WsConnection>& connection,
                          std::string_view text) = 0;
  // Called once when the connection is gone, whatever the reason.
  virtual void on_close(const std::shared_ptr<WsConnection>& connection) = 0;
};

}  // namespace dp::http
