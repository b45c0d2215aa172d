// Response::stream on a real loopback Server: the chunks arrive in order and the body ends when
// the stream does; a client that leaves releases the stream at once (not at its next write); a
// graceful shutdown ends an open stream instead of waiting for its deadline; a normal response
// on the same server is unaffected.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
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
    // Sends what the test queues in `pending_`, waking through `waker_`; its poll alone would
    // take 30 s.
    router_.add("GET", "/woken", [this](Request&) {
      Response r;
      r.body = "open\n";
      r.stream_waker = std::make_shared<StreamWaker>();
      waker_ = r.stream_waker;
      r.stream = [this]() -> std::optional<std::string> {
        std::lock_guard lock(pending_mu_);
        return std::exchange(pending_, std::string());
      };
      r.stream_poll = 30s;
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

  // Reads from a socket that fetch() left non-blocking until `want` arrives or `limit` passes.
  static bool read_until(asio::ip::tcp::socket& sock, std::string& got, const std::string& want,
                         std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[1024];
    while (got.find(want) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      const auto n = sock.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      if (ec) break;
      got.append(buf, n);
    }
    return got.find(want) != std::string::npos;
  }

  std::weak_ptr<int> alive_;
  std::mutex pending_mu_;
  std::string pending_;  // guarded by pending_mu_
  std::shared_ptr<StreamWaker> waker_;
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

// With a StreamWaker the producer's data goes out when it wakes the stream, not at the next
// poll (30 s here); a wake after the stream ended is harmless.
TEST_F(ServerStreamTest, AWakeSendsNewDataAtOnceInsteadOfAtTheNextPoll) {
  std::unique_ptr<asio::ip::tcp::socket> sock;
  std::string got = fetch("/woken", 5s, &sock);
  ASSERT_NE(got.find("open"), std::string::npos) << got;
  ASSERT_NE(waker_, nullptr);
  for (int i = 1; i <= 3; ++i) {
    const std::string tick = "tick" + std::to_string(i) + "\n";
    {
      std::lock_guard lock(pending_mu_);
      pending_ += tick;
    }
    waker_->wake();
    EXPECT_TRUE(read_until(*sock, got, tick, 10s)) << "not sent before the 30 s poll: " << got;
  }
  sock->close();
  server_->shutdown(5s, [] {});
  waker_->wake();
}

TEST(StreamWakerTest, AWakeBeforeAttachIsKeptAndOneAfterDetachIsDropped) {
  StreamWaker w;
  int calls = 0;
  w.wake();
  w.wake();
  w.attach([&] { ++calls; });
  EXPECT_EQ(calls, 1);  // the wakes before attach count once
  w.wake();
  EXPECT_EQ(calls, 2);
  w.detach();
  w.wake();
  EXPECT_EQ(calls, 2);
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
