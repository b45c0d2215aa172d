// WebSocket connections on a real loopback Server: the frames a handler sends arrive whole and
// in order at every length the header encodes differently (7-bit, 16-bit and 64-bit lengths),
// a burst queued at once arrives complete, frames sent before a close arrive before the close
// frame, a ping gets its pong between data frames, a client that does not read is closed
// as a slow consumer without taking the server down, and the server's end sends without Nagle.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "http/router.hpp"
#include "http/server.hpp"
#include "http/websocket.hpp"

namespace dp::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

std::string payload(std::size_t n, char seed) {
  std::string s(n, 'x');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (static_cast<std::size_t>(seed) + i) % 26);
  return s;
}

// "sizes": one frame per listed size; "burst N": N numbered frames; "close": two frames then
// close 4001; "flood": 64 KiB frames until the connection is closed.
class TestHandler final : public WsHandler {
 public:
  Status accept(const Request&) override { return Ok{}; }
  void on_open(const std::shared_ptr<WsConnection>&, const Request&) override {}
  void on_close(const std::shared_ptr<WsConnection>&) override { closed_.fetch_add(1); }
  void on_message(const std::shared_ptr<WsConnection>& c, std::string_view text) override {
    if (text == "sizes") {
      for (std::size_t n : kSizes) c->send(payload(n, static_cast<char>(n % 26)));
    } else if (text.starts_with("burst ")) {
      const int n = std::stoi(std::string(text.substr(6)));
      for (int i = 0; i < n; ++i) c->send("m" + std::to_string(i));
    } else if (text == "close") {
      c->send("last-1");
      c->send("last-2");
      c->close(4001, "done here");
    } else if (text == "flood") {
      auto big = std::make_shared<const std::string>(payload(64 * 1024, 'f'));
      for (int i = 0; i < 4096; ++i) c->send(big);
    }
  }
  static constexpr std::size_t kSizes[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70000, 300000};
  std::atomic<int> closed_{0};
};

class WsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WsOptions wo;
    wo.max_queued_bytes = 1024 * 1024;  // small, so that "flood" trips it quickly
    ServerOptions o;
    o.port = 0;
    server_ = std::make_unique<Server>(io_, blocking_, router_, o, nullptr);
    server_->add_websocket("/ws", handler_, wo);
    ASSERT_TRUE(server_->listen().ok());
    server_->start();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
    blocking_.join();
  }

  std::unique_ptr<websocket::stream<asio::ip::tcp::socket>> connect() {
    auto ws = std::make_unique<websocket::stream<asio::ip::tcp::socket>>(client_io_);
    ws->next_layer().connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    ws->read_message_max(1024 * 1024);
    ws->handshake("127.0.0.1", "/ws");
    return ws;
  }
  static std::string read_text(websocket::stream<asio::ip::tcp::socket>& ws) {
    beast::flat_buffer b;
    ws.read(b);
    EXPECT_TRUE(ws.got_text());
    return beast::buffers_to_string(b.data());
  }

  asio::io_context io_;
  asio::io_context client_io_;
  asio::thread_pool blocking_{2};
  Router router_;
  TestHandler handler_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
};

TEST_F(WsSessionTest, EveryHeaderLengthArrivesWholeAndInOrder) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("sizes")));
  for (std::size_t n : TestHandler::kSizes) {
    const std::string got = read_text(*ws);
    ASSERT_EQ(got.size(), n);
    EXPECT_EQ(got, payload(n, static_cast<char>(n % 26))) << "length " << n;
  }
  ws->close(websocket::close_code::normal);
}

TEST_F(WsSessionTest, ABurstArrivesCompleteAndPingsGetPongsBetweenFrames) {
  auto ws = connect();
  std::atomic<int> pongs{0};
  ws->control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) pongs.fetch_add(1);
  });
  ws->write(asio::buffer(std::string("burst 5000")));
  ws->ping({});
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(read_text(*ws), "m" + std::to_string(i));
  ws->write(asio::buffer(std::string("burst 3")));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(read_text(*ws), "m" + std::to_string(i));
  EXPECT_EQ(pongs.load(), 1);
  ws->close(websocket::close_code::normal);
}

TEST_F(WsSessionTest, FramesSentBeforeACloseArriveBeforeTheCloseFrame) {
  auto ws = connect();
  ws->write(asio::buffer(std::string("close")));
  EXPECT_EQ(read_text(*ws), "last-1");
  EXPECT_EQ(read_text(*ws), "last-2");
  beast::flat_buffer b;
  beast::error_code ec;
  ws->read(b, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(ws->reason().code, 4001);
  EXPECT_EQ(std::string(ws->reason().reason.c_str()), "done here");
}

TEST_F(WsSessionTest, AClientThatDoesNotReadIsClosedAndOthersGoOn) {
  auto slow = connect();
  slow->write(asio::buffer(std::string("flood")));
  // The server gives up on it (1008) once its bound is passed; it never reads, so only the
  // server's side ending shows, within the close grace.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (handler_.closed_.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(handler_.closed_.load(), 1) << "the slow client must be closed";
  // Reading what is left ends in the slow-consumer close (or a cut socket) and no more data
  // than the bound allowed.
  beast::flat_buffer b;
  beast::error_code ec;
  std::size_t frames = 0;
  for (;;) {
    slow->read(b, ec);
    if (ec) break;
    b.consume(b.size());
    ++frames;
  }
  EXPECT_LT(frames, 4096U);
  if (ec == websocket::error::closed) {
    EXPECT_EQ(slow->reason().code, 1008);
  }
  // The server still serves a new connection.
  auto fresh = connect();
  fresh->write(asio::buffer(std::string("burst 2")));
  EXPECT_EQ(read_text(*fresh), "m0");
  EXPECT_EQ(read_text(*fresh), "m1");
  fresh->close(websocket::close_code::normal);
}

// The server's end of a connection in this process: the socket whose peer is `client`.
int server_side_fd(const asio::ip::tcp::endpoint& client) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (...) {
      continue;
    }
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 || peer.sin_family != AF_INET) continue;
    if (ntohs(peer.sin_port) == client.port() && ntohl(peer.sin_addr.s_addr) == client.address().to_v4().to_uint()) {
      return fd;
    }
  }
  return -1;
}

// Nagle would hold a frame sent while the previous one is unacknowledged, and a client may
// delay its ACK by up to 40 ms: the server's end of every WebSocket has TCP_NODELAY.
TEST_F(WsSessionTest, TheServersEndOfAWebSocketSendsWithoutNagle) {
  auto ws = connect();
  const int fd = server_side_fd(ws->next_layer().local_endpoint());
  ASSERT_GE(fd, 0) << "the server's end of the connection is in this process";
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0);
  // The client's end was left alone: only the server's frames are concerned.
  int client_nodelay = 1;
  len = sizeof client_nodelay;
  ASSERT_EQ(::getsockopt(ws->next_layer().native_handle(), IPPROTO_TCP, TCP_NODELAY, &client_nodelay, &len), 0);
  EXPECT_EQ(client_nodelay, 0);
  ws->write(asio::buffer(std::string("burst 2")));
  EXPECT_EQ(read_text(*ws), "m0");
  EXPECT_EQ(read_text(*ws), "m1");
  ws->close(websocket::close_code::normal);
}

}  // namespace
}  // namespace dp::http
