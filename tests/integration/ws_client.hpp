// WsClient: a small synchronous WebSocket client for the integration tests, on Boost.Beast.
//
// Connects to 127.0.0.1:<port><target> (e.g. "/ws?lastEventId=5") with optional extra
// upgrade headers (Origin, ...). A refused upgrade is reported with the HTTP status and body
// the server answered with. Every operation has a deadline.
//
// Reading: `receive(timeout)` returns the next text message, or says that the connection was
// closed (with the close code and reason when a close frame arrived, or the socket error when
// the server cut the connection), or that nothing arrived in time. A read interrupted by a
// deadline stays pending, so no frame is ever lost between two calls. A client that never
// calls `receive` never reads: the slow-consumer case (`ConnectOptions::receive_buffer`
// also shrinks the socket's receive buffer so the server's queue fills quickly).
//
// Not thread-safe: one object per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "harness.hpp"

namespace dp::it {

struct ConnectOptions {
  std::string target = "/ws";
  // Extra upgrade request headers (e.g. Origin). Without an Authorization header the
  // server's admin token (see harness.hpp) is sent; {"Authorization", ""} sends none.
  Headers headers;
  int receive_buffer = 0;    // SO_RCVBUF in bytes before connecting; 0 leaves the default
  std::chrono::milliseconds timeout{15'000};
};

struct WsMessage {
  enum class Kind { kText, kClosed, kTimeout, kError };
  Kind kind = Kind::kTimeout;
  std::string text;                  // kText
  boost::json::value json;           // kText, when it parses (else null)
  int close_code = -1;               // kClosed with a close frame; -1 when the socket was cut
  std::string close_reason;          // kClosed
  std::string error;                 // kClosed without a close frame, kError

  bool is_text() const { return kind == Kind::kText; }
  bool closed() const { return kind == Kind::kClosed; }
  bool timed_out() const { return kind == Kind::kTimeout; }
  // json["type"] / json["topic"] / json["id"] when present.
  std::string type() const;
  std::string topic() const;
  std::int64_t id() const;  // -1 when absent or not an integer
  std::string str(std::string_view pointer) const;
  std::int64_t num(std::string_view pointer, std::int64_t fallback = -1) const;
  std::string describe() const;
};

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Empty on success, else what went wrong. When the server refused the upgrade,
  // `http_status()` and `http_body()` hold its answer.
  std::string connect(std::uint16_t port, const ConnectOptions& options = {});
  unsigned http_status() const { return http_status_; }
  const std::string& http_body() const { return http_body_; }
  bool is_open() const;

  // Empty on success.
  std::string send(std::string_view text, std::chrono::milliseconds timeout = std::chrono::seconds(15));

  // The next message (see the file comment).
  WsMessage receive(std::chrono::milliseconds timeout);
  // The next message whose json "type" is not "event" when `skip_events`, else the next
  // message; bounded by `timeout` overall. Skipped events are kept in `skipped()`.
  WsMessage receive_reply(std::chrono::milliseconds timeout);
  std::vector<WsMessage>& skipped() { return skipped_; }

  // Receives until `pred` holds for a message, the connection closes or `timeout` passes;
  // returns every message received (the last one is the match, a close or a timeout).
  template <typename Pred>
  std::vector<WsMessage> receive_until(Pred pred, std::chrono::milliseconds timeout) {
    std::vector<WsMessage> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      out.push_back(receive(std::max(left, std::chrono::milliseconds(0))));
      const WsMessage& m = out.back();
      if (!m.is_text() || pred(m)) return out;
    }
  }

  // Sends a close frame (1000) and waits (bounded) for the server's; then drops the socket.
  void close();
  // Drops the TCP connection without a close handshake.
  void abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  unsigned http_status_ = 0;
  std::string http_body_;
  std::vector<WsMessage> skipped_;
};

}  // namespace dp::it
