#include "http/internal/ws_session.hpp"

#include <algorithm>
#include <string_view>

#include <unistd.h>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/teardown.hpp>

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

using PlainSocket = asio::basic_stream_socket<asio::ip::tcp, WsShard::Executor>;

// The layer under the WebSocket stream: a socket whose writes are gathered.
//
// Event frames do not go through Beast's write operations: the session frames each text
// message itself (a server's frames are not masked, so the bytes are the same for every
// client) and appends them here; the shard sends what a session has gathered once per turn
// of its mailbox (flush). A client with several events waiting so gets them in one send,
// and a frame costs an append instead of a Beast write operation, a posted completion and a
// strand hop. What Beast itself writes (the handshake response, pongs, keep-alive pings, the
// close frame) is appended the same way, whole, and sent at once; it completes immediately,
// so Beast never has a frame half written here and the two kinds of writes cannot
// interleave within a frame. After Beast's close frame nothing else is appended. At most one
// send is in flight; what is appended meanwhile waits for its completion, so bytes leave in
// order. Strand-confined, like the session that owns it.
class GatherSocket {
 public:
  using executor_type = WsShard::Executor;
  using next_layer_type = PlainSocket;

  explicit GatherSocket(PlainSocket&& socket) : socket_(std::move(socket)) {}

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  PlainSocket& next_layer() noexcept { return socket_; }
  const PlainSocket& next_layer() const noexcept { return socket_; }

  // Keeps the owner (the session, which holds this layer) alive while a send is in flight.
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }
  // From here on, what Beast writes is WebSocket frames (before: the HTTP handshake).
  void handshake_done() noexcept { framing_ = true; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          beast::error_code ec = failed_;
          std::size_t n = 0;
          if (!ec) {
            for (auto it = asio::buffer_sequence_begin(b); it != asio::buffer_sequence_end(b);
                 ++it) {
              const asio::const_buffer part(*it);
              if (n == 0 && part.size() > 0 && framing_ &&
                  (*static_cast<const unsigned char*>(part.data()) & 0x0F) == 0x8) {
                close_written_ = true;  // opcode 8: Beast's close frame
              }
              out_.append(static_cast<const char*>(part.data()), part.size());
              n += part.size();
            }
            ++out_frames_;
            flush();
          }
          // Never complete inside the initiating call: post, as an asynchronous operation must.
          auto ex = socket_.get_executor();
          asio::post(ex, asio::append(std::move(handler), ec, n));
        },
        token, buffers);
  }

  // Appends one text message as a single unmasked frame; sent at the next flush. Returns
  // false (and appends nothing) after a failed send or after the close frame.
  bool append_text(std::string_view text) {
    if (failed_ || close_written_) return false;
    unsigned char header[10];
    std::size_t h = 0;
    header[h++] = 0x81;  // FIN, text
    const std::size_t n = text.size();
    if (n < 126) {
      header[h++] = static_cast<unsigned char>(n);
    } else if (n <= 0xFFFF) {
      header[h++] = 126;
      header[h++] = static_cast<unsigned char>(n >> 8);
      header[h++] = static_cast<unsigned char>(n & 0xFF);
    } else {
      header[h++] = 127;
      for (int shift = 56; shift >= 0; shift -= 8) {
        header[h++] = static_cast<unsigned char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF);
      }
    }
    out_.append(reinterpret_cast<const char*>(header), h);
    out_.append(text);
    ++out_frames_;
    return true;
  }

  // Hands what was appended to the kernel (one send), unless a send is in flight: then it
  // goes when that one completes.
  void flush() {
    if (sending_active_ || out_.empty() || failed_) return;
    auto keep = owner_.lock();
    if (keep == nullptr) return;  // the session is going away: nothing more is written
    // Try the kernel first: a send that completes at once needs no operation waiting in the
    // reactor, nor a posted completion. The socket's non-blocking flag only changes
    // synchronous calls like this one; Beast's reads here are asynchronous.
    beast::error_code ec;
    if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
    std::size_t sent = 0;
    if (!ec) sent = socket_.write_some(asio::buffer(out_), ec);
    if (!ec && sent == out_.size()) {
      std::string().swap(out_);  // an idle connection keeps no buffer
      out_frames_ = 0;
      return;
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
      // Later writes fail with the same error; the read loop sees the broken connection.
      failed_ = ec;
      std::string().swap(out_);
      out_frames_ = 0;
      return;
    }
    out_.erase(0, sent);  // the rest waits for the socket to be writable
    sending_.swap(out_);
    sending_frames_ = out_frames_;
    out_frames_ = 0;
    sending_active_ = true;
    asio::async_write(socket_, asio::buffer(sending_),
                      [this, keep = std::move(keep)](beast::error_code wec, std::size_t) {
                        sending_active_ = false;
                        sending_frames_ = 0;
                        if (wec) {
                          // Later writes fail with the same error; the read loop sees the
                          // broken connection and ends the session.
                          failed_ = wec;
                          std::string().swap(out_);
                          out_frames_ = 0;
                          std::string().swap(sending_);
                          return;
                        }
                        sending_.clear();
                        if (out_.empty()) {
                          std::string().swap(sending_);  // an idle connection keeps no buffer
                          return;
                        }
                        flush();
                      });
  }

  // Bytes and frames appended but not yet taken by the kernel.
  std::size_t buffered_bytes() const noexcept { return out_.size() + sending_.size(); }
  std::size_t buffered_frames() const noexcept { return out_frames_ + sending_frames_; }
  // Drops what is appended but not yet being sent (whole frames only).
  void drop_unsent() {
    std::string().swap(out_);
    out_frames_ = 0;
  }

  template <class Handler>
  friend void async_teardown(beast::role_type role, GatherSocket& s, Handler&& handler) {
    beast::websocket::async_teardown(role, s.socket_, std::forward<Handler>(handler));
  }
  friend void teardown(beast::role_type role, GatherSocket& s, beast::error_code& ec) {
    beast::websocket::teardown(role, s.socket_, ec);
  }

 private:
  PlainSocket socket_;
  std::weak_ptr<void> owner_;
  std::string out_;      // appended, not yet handed to the kernel
  std::string sending_;  // in the send in flight
  std::size_t out_frames_ = 0;
  std::size_t sending_frames_ = 0;
  bool framing_ = false;
  bool close_written_ = false;
  bool sending_active_ = false;
  beast::error_code failed_;
};

}  // namespace

// One upgraded connection, on its shard's strand. A plain socket (under the gathering layer)
// rather than beast::tcp_stream: the stream's own timeouts (handshake, idle, keep-alive pings)
// are the only deadlines a WebSocket needs. The socket and timer name the strand's type, so
// no handler goes through a type-erased executor. Strand-confined state (the layer's buffers,
// closing_) is touched only on the strand; public methods go through the shard's mailbox.
// Outgoing messages are framed by the session and gathered by the layer (see GatherSocket);
// the send queue's bounds apply to what the layer holds and the kernel has not taken yet.
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  using Socket = PlainSocket;
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

  websocket::stream<GatherSocket>& ws() { return ws_; }

  // Strand only: the connection has ended; nothing more is written.
  void ended() {
    closing_ = true;
    ws_.next_layer().drop_unsent();
    grace_.cancel();
  }

 private:
  friend class WsShard;

  // Strand only. Appends the frame; the shard flushes at the end of its turn.
  void enqueue(const std::string& text) {
    if (closing_) return;
    auto& layer = ws_.next_layer();
    const std::size_t frames = layer.buffered_frames();
    const std::size_t bytes = layer.buffered_bytes();
    if (frames >= options_.max_queued_messages ||
        bytes + text.size() > options_.max_queued_bytes) {
      log::global().warn("websocket client too slow; closing",
                         {{"connection", id_},
                          {"remote", remote_},
                          {"queuedMessages", frames},
                          {"queuedBytes", bytes}});
      begin_close(static_cast<std::uint16_t>(websocket::close_code::policy_error),
                  "slow consumer: send queue full", /*drop_unsent=*/true);
      return;
    }
    layer.append_text(text);
  }

  void flush() { ws_.next_layer().flush(); }

  // `drop_unsent` (a slow consumer): what is not yet being sent is dropped, so the close frame
  // goes out right after the send in flight and the peer learns why without waiting for a
  // backlog it cannot drain. Otherwise (the application closes) frames sent before the close
  // go out before it, in order.
  void begin_close(std::uint16_t code, std::string reason, bool drop_unsent) {
    if (closing_) return;
    closing_ = true;
    if (drop_unsent) ws_.next_layer().drop_unsent();
    // The peer may already be gone; the read loop ends either way.
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code),
                                            reason.substr(0, 120)),
                    [self = shared_from_this()](beast::error_code) {});
    // A peer that reads nothing never lets the close frame out: cut the socket after a grace.
    grace_.expires_after(options_.close_grace);
    grace_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).close(ignored);
    });
  }

  websocket::stream<GatherSocket> ws_;
  // Weak: the shard's mailbox holds sessions, so a strong pointer back would be a cycle that
  // outlives the server when mail is left undelivered at shutdown (the server owns the shards).
  const std::weak_ptr<WsShard> shard_;
  const WsOptions options_;
  const std::string id_;
  const std::string remote_;
  Timer grace_;
  bool closing_ = false;
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
  const std::size_t begin = next_;
  for (; next_ < end; ++next_) {
    Mail& m = draining_[next_];
    if (m.text != nullptr) {
      m.session->enqueue(*m.text);
      m.text.reset();
    } else {
      m.session->begin_close(m.code, std::move(m.reason), /*drop_unsent=*/false);
    }
  }
  // One send per connection for all it got in this slice (a no-op for the ones already sent).
  for (std::size_t i = begin; i < end; ++i) {
    draining_[i].session->flush();
    draining_[i].session.reset();
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
  // TCP_NODELAY: with Nagle on, a frame sent while the client has not yet acknowledged the
  // previous one waits for that ACK, and a client may delay its ACK by up to 40 ms (delayed
  // ACK), so the occasional client got an event tens of milliseconds late. Measured with
  // bench/ws (1,000 clients, 50 events/s): the last client of an event at p99 went from
  // 34-38 ms to 19-20 ms. The price is up to a third more CPU per delivery when the server is
  // saturated (every send becomes its own segment); frames queued meanwhile still leave
  // together in one send (GatherSocket).
  beast::error_code nodelay_ec;  // without it the connection still works, only slower
  own.set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
  auto session = std::make_shared<WsSession>(std::move(own), std::move(shard), options,
                                             request.remote_address);
  auto& ws = session->ws();
  ws.next_layer().set_owner(session);
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
  ws.next_layer().handshake_done();
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
