#include "ws_client.hpp"

#include <algorithm>
#include <deque>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace dp::it {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------- WsMessage

std::string WsMessage::str(std::string_view pointer) const {
  if (!json.is_object()) return {};
  boost::system::error_code ec;
  const auto* v = json.find_pointer(pointer, ec);
  return (!ec && v != nullptr && v->is_string()) ? std::string(v->get_string()) : std::string();
}

std::int64_t WsMessage::num(std::string_view pointer, std::int64_t fallback) const {
  if (!json.is_object()) return fallback;
  boost::system::error_code ec;
  const auto* v = json.find_pointer(pointer, ec);
  if (ec || v == nullptr) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return fallback;
}

std::string WsMessage::type() const { return str("/type"); }
std::string WsMessage::topic() const { return str("/topic"); }
std::int64_t WsMessage::id() const { return num("/id"); }

std::string WsMessage::describe() const {
  switch (kind) {
    case Kind::kText:
      return "text " + (text.size() > 600 ? text.substr(0, 600) + "..." : text);
    case Kind::kClosed:
      return "closed code=" + std::to_string(close_code) + " reason='" + close_reason + "'" +
             (error.empty() ? "" : " error=" + error);
    case Kind::kTimeout:
      return "timeout";
    case Kind::kError:
      return "error " + error;
  }
  return "?";
}

// ---------------------------------------------------------------------------- WsClient

struct WsClient::Impl {
  asio::io_context io;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  bool read_pending = false;
  std::deque<WsMessage> inbox;  // completed reads not yet returned
  bool ended = false;           // a read reported the end of the connection

  // Runs handlers until `done` or `deadline`. False on deadline.
  bool run_until(const bool& done, std::chrono::steady_clock::time_point deadline) {
    io.restart();
    while (!done) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      io.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now, 100ms));
      if (io.stopped()) io.restart();
    }
    return true;
  }

  void start_read() {
    if (read_pending || ended || !ws) return;
    read_pending = true;
    ws->async_read(buffer, [this](beast::error_code ec, std::size_t) {
      read_pending = false;
      WsMessage m;
      if (!ec) {
        m.kind = WsMessage::Kind::kText;
        m.text = beast::buffers_to_string(buffer.cdata());
        buffer.consume(buffer.size());
        boost::system::error_code jec;
        auto v = boost::json::parse(m.text, jec);
        if (!jec) m.json = std::move(v);
      } else {
        ended = true;
        m.kind = WsMessage::Kind::kClosed;
        // A close frame may have arrived even when the read ends with another error: Beast
        // reports the teardown's failure (e.g. the peer reset the socket right after its
        // close frame) instead of `closed`.
        if (ws->reason().code != websocket::close_code::none) {
          m.close_code = static_cast<int>(ws->reason().code);
          m.close_reason = std::string(ws->reason().reason.c_str());
        }
        if (ec != websocket::error::closed) m.error = ec.message();
      }
      inbox.push_back(std::move(m));
    });
  }
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}

WsClient::~WsClient() { abort(); }

bool WsClient::is_open() const { return impl_->ws && impl_->ws->is_open() && !impl_->ended; }

std::string WsClient::connect(std::uint16_t port, const ConnectOptions& options) {
  abort();
  http_status_ = 0;
  http_body_.clear();
  skipped_.clear();
  impl_->inbox.clear();
  impl_->ended = false;
  impl_->buffer.clear();
  impl_->ws = std::make_unique<websocket::stream<beast::tcp_stream>>(impl_->io);
  auto& ws = *impl_->ws;
  auto& tcp_s = beast::get_lowest_layer(ws);
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;

  beast::error_code ec;
  tcp_s.socket().open(tcp::v4(), ec);
  if (ec) return "open: " + ec.message();
  if (options.receive_buffer > 0) {
    tcp_s.socket().set_option(asio::socket_base::receive_buffer_size(options.receive_buffer), ec);
    if (ec) return "SO_RCVBUF: " + ec.message();
  }
  bool done = false;
  tcp_s.expires_after(options.timeout);
  tcp_s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                      [&](beast::error_code e) {
                        ec = e;
                        done = true;
                      });
  if (!impl_->run_until(done, deadline)) return "connect: timed out";
  if (ec) return "connect: " + ec.message();

  Headers headers = options.headers;
  // Like HttpClient: the server's admin token unless the caller names a credential ("" for none).
  const bool has_auth = std::any_of(headers.begin(), headers.end(), [](const auto& kv) {
    return beast::iequals(kv.first, "authorization");
  });
  if (!has_auth) {
    if (std::string t = admin_token(port); !t.empty()) headers.emplace_back("Authorization", "Bearer " + t);
  }
  std::erase_if(headers, [](const auto& kv) {
    return beast::iequals(kv.first, "authorization") && kv.second.empty();
  });
  ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "devplane-integration-tests");
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  ws.read_message_max(64 * 1024 * 1024);
  websocket::response_type res;
  done = false;
  const std::string host = "127.0.0.1:" + std::to_string(port);
  ws.async_handshake(res, host, options.target, [&](beast::error_code e) {
    ec = e;
    done = true;
  });
  if (!impl_->run_until(done, deadline)) {
    abort();
    return "handshake: timed out";
  }
  http_status_ = res.result_int();
  http_body_ = res.body();
  if (ec) {
    std::string why = "handshake: " + ec.message() + " (HTTP " + std::to_string(http_status_) +
                      " " + http_body_ + ")";
    abort();
    return why;
  }
  // From now on the websocket's own timeouts rule (none for a client); ours are per call.
  tcp_s.expires_never();
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  return {};
}

std::string WsClient::send(std::string_view text, std::chrono::milliseconds timeout) {
  if (!impl_->ws) return "not connected";
  beast::error_code ec;
  bool done = false;
  impl_->ws->text(true);
  impl_->ws->async_write(asio::buffer(text.data(), text.size()),
                         [&](beast::error_code e, std::size_t) {
                           ec = e;
                           done = true;
                         });
  if (!impl_->run_until(done, std::chrono::steady_clock::now() + timeout)) {
    // The write cannot be abandoned safely: drop the connection.
    abort();
    return "send: timed out";
  }
  return ec ? "send: " + ec.message() : std::string();
}

WsMessage WsClient::receive(std::chrono::milliseconds timeout) {
  auto& in = impl_->inbox;
  if (in.empty()) {
    if (!impl_->ws) {
      WsMessage m;
      m.kind = WsMessage::Kind::kError;
      m.error = "not connected";
      return m;
    }
    if (impl_->ended) {
      WsMessage m;
      m.kind = WsMessage::Kind::kClosed;
      m.error = "already closed";
      return m;
    }
    impl_->start_read();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    impl_->io.restart();
    while (in.empty()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return WsMessage{};  // kTimeout; the read stays pending
      impl_->io.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now, 100ms));
      if (impl_->io.stopped()) impl_->io.restart();
    }
  }
  WsMessage m = std::move(in.front());
  in.pop_front();
  return m;
}

WsMessage WsClient::receive_reply(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    WsMessage m = receive(std::max(left, 0ms));
    if (m.is_text() && m.type() == "event") {
      skipped_.push_back(std::move(m));
      continue;
    }
    return m;
  }
}

void WsClient::close() {
  if (!impl_->ws) return;
  if (impl_->ws->is_open() && !impl_->ended) {
    bool done = false;
    impl_->ws->async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
    (void)impl_->run_until(done, std::chrono::steady_clock::now() + 5s);
    // Read until the server's close frame (bounded), so the close handshake completes.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!impl_->ended && std::chrono::steady_clock::now() < deadline) {
      auto m = receive(1s);
      if (m.closed()) break;
    }
  }
  abort();
}

void WsClient::abort() {
  if (!impl_->ws) return;
  beast::error_code ec;
  auto& s = beast::get_lowest_layer(*impl_->ws).socket();
  s.shutdown(tcp::socket::shutdown_both, ec);
  s.close(ec);
  // Let the cancelled operations finish so that nothing refers to the stream afterwards.
  impl_->io.restart();
  impl_->io.poll();
  for (int i = 0; i < 100 && impl_->read_pending; ++i) {
    impl_->io.run_one_for(10ms);
    if (impl_->io.stopped()) impl_->io.restart();
  }
  impl_->ws.reset();
  impl_->read_pending = false;
  impl_->ended = true;
  impl_->inbox.clear();
  impl_->buffer.clear();
}

}  // namespace dp::it
