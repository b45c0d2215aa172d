// The WebSocket side of an HTTP session after a successful upgrade. Private to http/.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
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

// Completes the handshake for `upgrade` on `stream`, then runs the connection until it
// closes. Runs on the stream's strand. `request` is the parsed upgrade (for the handler).
boost::asio::awaitable<void> run_websocket(
    boost::beast::tcp_stream stream,
    boost::beast::http::request<boost::beast::http::string_body> upgrade, Request request,
    WsHandler& handler, const WsOptions& options, WsRegistry& registry);

}  // namespace dp::http::internal
