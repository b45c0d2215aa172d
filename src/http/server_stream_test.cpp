// Response::stream on a real loopback Server: the chunks arrive in order and the body ends when
// the stream does; a client that leaves releases the stream at once (not at its next write); a
// graceful shutdown ends an open stream instead of waiting for its deadline; a normal response
// on the same server is unaffected.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>

#include "http/loopback_server_test.hpp"

namespace dp::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class ServerStreamTest : public LoopbackServerTest {
 protected:
  void SetUp() override {
    // Three chunks, then the end.
    router_.add("GET", "/count", [](Request&) {
      Response r;
      r.content_type = "text/event-stream";
      r.body = "start\n";
      auto n = std::make_shared<int>(0);
      r.stream = [n]() -> std::optional<std::string> {
        if (*n == 3) return std::nullopt;
        return "chunk" + std::to_string(++*n) + "\n";
      };
      return r;
    });
    // Never ends on its own; `alive_` counts the live copies of its state.
    router_.add("GET", "/forever", [this](Request&) {
      Response r;
      r.body = "open\n";
      auto token = std::make_shared<int>(0);
      alive_ = token;
      r.stream = [token]() -> std::optional<std::string> { return std::string(); };
      r.stream_poll = 20ms;
      return r;
    });
    router_.add("GET", "/plain", [](Request&) {
      Response r;
      r.body = "{}";
      return r;
    });
    start_server();
  }

  // Sends a GET on a fresh connection and reads until the server closes it or `limit` passes.
  std::string fetch(const std::string& target, std::chrono::milliseconds limit,
                    std::unique_ptr<asio::ip::tcp::socket>* keep = nullptr,
                    const std::string& version = "HTTP/1.1") {
    auto sock = std::make_unique<asio::ip::tcp::socket>(client_io_);
    sock->connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    const std::string req = "GET " + target + " " + version + "\r\nHost: x\r\n\r\n";
    asio::write(*sock, asio::buffer(req));
    sock->non_blocking(true);
    std::string got;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      const auto n = sock->read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        if (keep != nullptr && got.find("open") != std::string::npos) break;
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (ec) break;
      got.append(buf, n);
    }
    if (keep != nullptr) *keep = std::move(sock);
    return got;
  }

  std::weak_ptr<int> alive_;
};

TEST_F(ServerStreamTest, SendsTheBodyThenEachChunkAndEnds) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string got = fetch("/count", 5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "the server closes after the last chunk";
  EXPECT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  const auto a = got.find("start\n");
  const auto b = got.find("chunk1\n");
  const auto c = got.find("chunk3\n");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(c, std::string::npos) << got;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(got.find("\r\n0\r\n\r\n"), std::string::npos) << "the last chunk ends the body";
  // HTTP/1.0 has no chunks: the same bytes, ended by the close.
  const std::string old = fetch("/count", 5s, nullptr, "HTTP/1.0");
  EXPECT_NE(old.find("HTTP/1.0 200 OK"), std::string::npos) << old;
  EXPECT_EQ(old.find("chunked"), std::string::npos) << old;
  EXPECT_NE(old.find("\r\n\r\nstart\nchunk1\nchunk2\nchunk3\n"), std::string::npos) << old;
  // A normal response is as before.
  const std::string plain = fetch("/plain", 300ms);  // kept alive: read what comes
  EXPECT_NE(plain.find("Content-Length: 2"), std::string::npos) << plain;
}

TEST_F(ServerStreamTest, AClientThatLeavesReleasesTheStream) {
  std::unique_ptr<asio::ip::tcp::socket> sock;
  const std::string got = fetch("/forever", 5s, &sock);
  ASSERT_NE(got.find("open"), std::string::npos) << got;
  ASSERT_FALSE(alive_.expired());
  sock->close();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while ((!alive_.expired() || server_->active_connections() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(alive_.expired()) << "the stream outlived its client";
  EXPECT_EQ(server_->active_connections(), 0u);
}

TEST_F(ServerStreamTest, ShutdownEndsAnOpenStream) {
  std::unique_ptr<asio::ip::tcp::socket> sock;
  ASSERT_NE(fetch("/forever", 5s, &sock).find("open"), std::string::npos);
  std::atomic<bool> drained{false};
  const auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(30s, [&] { drained = true; });
  while (!drained && std::chrono::steady_clock::now() - t0 < 5s) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(drained.load());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "shutdown waited on the stream";
  EXPECT_TRUE(alive_.expired());
}

}  // namespace
}  // namespace dp::http
