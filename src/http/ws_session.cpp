#include "http/internal/ws_session.hpp"

#include <atomic>
#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "core/ids.hpp"
#include "core/log.hpp"

namespace dp::http::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kSubprotocol = "devplane.v1";

// One upgraded connection. Strand-confined state (queue_, writing_, closing_) is touched
// only on the stream's executor; public methods post there.
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream&& stream, const WsOptions& options, std::string remote)
      : ws_(std::move(stream)),
        options_(options),
        id_(ids::uuid_v7()),
        remote_(std::move(remote)),
        grace_(ws_.get_executor()) {}

  // http::WsConnection
  void send(std::shared_ptr<const std::string> text) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
      self->enqueue(std::move(text));
    });
  }
  void close(std::uint16_t code, std::string reason) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), code, r = std::move(reason)]() mutable {
      self->begin_close(code, std::move(r));
    });
  }
  const std::string& id() const noexcept override { return id_; }
  const std::string& remote_address() const noexcept override { return remote_; }

  websocket::stream<beast::tcp_stream>& ws() { return ws_; }

  // Strand only: the connection has ended; nothing more is written.
  void ended() {
    closing_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    grace_.cancel();
  }

 private:
  void enqueue(std::shared_ptr<const std::string> text) {
    if (closing_) return;
    if (queue_.size() >= options_.max_queued_messages ||
        queued_bytes_ + text->size() > options_.max_queued_bytes) {
      log::global().warn("websocket client too slow; closing",
                         {{"connection", id_},
                          {"remote", remote_},
                          {"queuedMessages", queue_.size()},
                          {"queuedBytes", queued_bytes_}});
      begin_close(static_cast<std::uint16_t>(websocket::close_code::policy_error),
                  "slow consumer: send queue full");
      return;
    }
    queued_bytes_ += text->size();
    queue_.push_back(std::move(text));
    start_writer();
  }

  void begin_close(std::uint16_t code, std::string reason) {
    if (closing_) return;
    closing_ = true;
    // Whatever is queued is dropped: the close frame goes out right after the frame being
    // written, so a slow peer learns why without waiting for a backlog it cannot drain.
    queue_.clear();
    queued_bytes_ = 0;
    close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code),
                                            reason.substr(0, 120));
    close_pending_ = true;
    start_writer();
    // A peer that reads nothing never lets the close frame out: cut the socket after a grace.
    grace_.expires_after(options_.close_grace);
    grace_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      beast::get_lowest_layer(self->ws_).close();
    });
  }

  void start_writer() {
    if (writing_) return;
    writing_ = true;
    write_next();
  }

  // Strand only. Writes the queue's front, or the close frame once the queue is empty; each
  // completion comes back here. A chain of completion handlers rather than a coroutine: the
  // hub fans every event out to every connection, and a coroutine started per burst cost
  // more than the write itself.
  void write_next() {
    if (!queue_.empty()) {
      std::shared_ptr<const std::string> msg = queue_.front();
      ws_.text(true);
      const auto buffer = asio::buffer(*msg);
      ws_.async_write(buffer, [self = shared_from_this(), msg = std::move(msg)](
                                  beast::error_code ec, std::size_t) {
        if (ec) {
          // The read loop sees the same failure and ends the connection.
          self->writing_ = false;
          self->ended();
          return;
        }
        // begin_close may have cleared the queue while we were writing.
        if (!self->queue_.empty() && self->queue_.front() == msg) {
          self->queued_bytes_ -= msg->size();
          self->queue_.pop_front();
        }
        self->write_next();
      });
      return;
    }
    if (close_pending_) {
      close_pending_ = false;
      // The peer may already be gone; the read loop ends either way.
      ws_.async_close(close_reason_,
                      [self = shared_from_this()](beast::error_code) { self->writing_ = false; });
      return;
    }
    writing_ = false;
  }

  websocket::stream<beast::tcp_stream> ws_;
  const WsOptions options_;
  const std::string id_;
  const std::string remote_;
  asio::steady_timer grace_;
  // A list, not a deque: an idle connection must not hold a deque's first 512-byte block.
  std::list<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  websocket::close_reason close_reason_;
};

}  // namespace

asio::awaitable<void> run_websocket(beast::tcp_stream stream,
                                    beast::http::request<beast::http::string_body> upgrade,
                                    Request request, WsHandler& handler,
                                    const WsOptions& options, WsRegistry& registry) {
  // Beast's websocket stream keeps its own timers; the HTTP deadline must not fire under it.
  stream.expires_never();
  auto session = std::make_shared<WsSession>(std::move(stream), options, request.remote_address);
  auto& ws = session->ws();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(10);
  t.idle_timeout = options.idle_timeout;
  t.keep_alive_pings = true;
  ws.set_option(t);
  ws.read_message_max(options.max_message_bytes);
  // Frames go out whole, straight from the shared event text: the write buffer is then only
  // used for control frames, and a small one saves memory on every idle connection.
  ws.auto_fragment(false);
  ws.write_buffer_bytes(256);
  // Browsers cannot set headers on a WebSocket: they pass the token as a subprotocol
  // ("devplane.v1", "bearer.<token>"), and the server must then pick one it speaks.
  bool offers_v1 = false;
  if (auto p = request.header("sec-websocket-protocol")) {
    std::string_view rest = *p;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      offers_v1 = offers_v1 || item == kSubprotocol;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  ws.set_option(websocket::stream_base::decorator([offers_v1](websocket::response_type& res) {
    res.set(beast::http::field::server, "devplane");
    if (offers_v1) res.set(beast::http::field::sec_websocket_protocol, kSubprotocol);
  }));
  auto [aec] = co_await ws.async_accept(upgrade, kUseTuple);
  if (aec) {
    request.log.info("websocket handshake failed", {{"error", aec.message()}});
    co_return;
  }
  // The upgrade request is not needed any more: free its headers now rather than at the end
  // of the connection.
  upgrade = {};
  registry.opened(session);
  handler.on_open(session, request);
  const log::Logger logger = request.log;
  request = Request{};
  beast::flat_buffer buffer;
  for (;;) {
    auto [ec, n] = co_await ws.async_read(buffer, kUseTuple);
    if (ec) {
      if (ec != websocket::error::closed && ec != asio::error::operation_aborted &&
          ec != beast::error::timeout && ec != asio::error::eof &&
          ec != asio::error::connection_reset) {
        logger.info("websocket closed", {{"connection", session->id()}, {"error", ec.message()}});
      }
      break;
    }
    const auto data = buffer.cdata();
    handler.on_message(session,
                       std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer.consume(buffer.size());
  }
  session->ended();
  registry.closed(*session);
  handler.on_close(session);
  beast::get_lowest_layer(ws).close();
}

}  // namespace dp::http::internal
