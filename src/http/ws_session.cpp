#include "http/internal/ws_session.hpp"

#include <algorithm>
#include <list>

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "core/ids.hpp"
#include "core/log.hpp"

namespace dp::http::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kSubprotocol = "devplane.v1";
constexpr std::size_t kDrainSlice = 128;  // mails handed out per turn of a shard

}  // namespace

// One upgraded connection, on its shard's strand. A plain socket under the WebSocket stream
// (not beast::tcp_stream): the stream's own timeouts (handshake, idle, keep-alive pings)
// are the only deadlines a WebSocket needs, and each write then skips tcp_stream's timer
// bookkeeping. The socket and timer name the strand's type, so no handler goes through a
// type-erased executor. Strand-confined state (queue_, writing_, closing_) is touched only on
// the strand; public methods go through the shard's mailbox.
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  using Socket = asio::basic_stream_socket<asio::ip::tcp, WsShard::Executor>;
  using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                           asio::wait_traits<std::chrono::steady_clock>,
                                           WsShard::Executor>;

  WsSession(Socket&& socket, std::shared_ptr<WsShard> shard, const WsOptions& options,
            std::string remote)
      : ws_(std::move(socket)),
        shard_(shard),
        options_(options),
        id_(ids::uuid_v7()),
        remote_(std::move(remote)),
        grace_(shard->executor()) {}

  // http::WsConnection
  void send(std::shared_ptr<const std::string> text) override {
    if (text == nullptr) return;
    if (auto shard = shard_.lock()) shard->deliver(shared_from_this(), std::move(text));
  }
  void close(std::uint16_t code, std::string reason) override {
    if (auto shard = shard_.lock()) shard->deliver(shared_from_this(), nullptr, code, std::move(reason));
  }
  const std::string& id() const noexcept override { return id_; }
  const std::string& remote_address() const noexcept override { return remote_; }

  websocket::stream<Socket>& ws() { return ws_; }

  // Strand only: the connection has ended; nothing more is written.
  void ended() {
    closing_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    grace_.cancel();
  }

 private:
  friend class WsShard;

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
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).close(ignored);
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

  websocket::stream<Socket> ws_;
  // Weak: the shard's mailbox holds sessions, so a strong pointer back would be a cycle that
  // outlives the server when mail is left undelivered at shutdown (the server owns the shards).
  const std::weak_ptr<WsShard> shard_;
  const WsOptions options_;
  const std::string id_;
  const std::string remote_;
  Timer grace_;
  // A list, not a deque: an idle connection must not hold a deque's first 512-byte block.
  std::list<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  websocket::close_reason close_reason_;
};

WsShard::WsShard(asio::io_context& io) : strand_(asio::make_strand(io)) {}

void WsShard::deliver(std::shared_ptr<WsSession> session, std::shared_ptr<const std::string> text,
                      std::uint16_t code, std::string reason) {
  {
    std::lock_guard lock(mu_);
    mail_.push_back(Mail{std::move(session), std::move(text), code, std::move(reason)});
    if (scheduled_) return;
    scheduled_ = true;
  }
  asio::post(strand_, [self = shared_from_this()] { self->drain(); });
}

void WsShard::drain() {
  if (next_ == draining_.size()) {
    draining_.clear();
    next_ = 0;
    // Keep the capacity of a burst, not of the largest burst ever.
    if (draining_.capacity() > 4096) draining_.shrink_to_fit();
    std::lock_guard lock(mu_);
    draining_.swap(mail_);
    if (draining_.empty()) {
      scheduled_ = false;
      return;
    }
  }
  // A bounded share per turn, then back in line: HTTP sessions on the same I/O threads get
  // their turn between two slices of a large fan-out instead of after all of it.
  const std::size_t end = std::min(draining_.size(), next_ + kDrainSlice);
  for (; next_ < end; ++next_) {
    Mail& m = draining_[next_];
    if (m.text != nullptr) {
      m.session->enqueue(std::move(m.text));
    } else {
      m.session->begin_close(m.code, std::move(m.reason));
    }
    m.session.reset();
  }
  asio::post(strand_, [self = shared_from_this()] { self->drain(); });
}

asio::awaitable<void> run_websocket(asio::ip::tcp::socket socket, std::shared_ptr<WsShard> shard,
                                    beast::http::request<beast::http::string_body> upgrade,
                                    Request request, WsHandler& handler,
                                    const WsOptions& options, WsRegistry& registry) {
  // Move the connection onto the shard's strand: same descriptor, new executor.
  beast::error_code mec;
  const auto protocol = socket.local_endpoint(mec).protocol();
  const int fd = mec ? -1 : socket.release(mec);
  if (mec) {
    request.log.info("websocket upgrade failed", {{"error", mec.message()}});
    co_return;
  }
  WsSession::Socket own(shard->executor());
  own.assign(protocol, fd, mec);
  if (mec) {
    ::close(fd);
    request.log.info("websocket upgrade failed", {{"error", mec.message()}});
    co_return;
  }
  auto session = std::make_shared<WsSession>(std::move(own), std::move(shard), options,
                                             request.remote_address);
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
  beast::error_code ignored;
  beast::get_lowest_layer(ws).close(ignored);
}

}  // namespace dp::http::internal
