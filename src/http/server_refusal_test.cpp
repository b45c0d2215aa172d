// A request refused before its body is read (413 by Content-Length, 413 while reading a
// chunked body, 431) still gets its answer to a client that writes the whole request before
// it reads: the server half-closes and drops what follows instead of closing with unread
// bytes, which would make the kernel send a reset. The drain is bounded by linger_timeout,
// and shutdown does not wait for it.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "http/loopback_server_test.hpp"

namespace dp::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

class ServerRefusalTest : public LoopbackServerTest {
 protected:
  void start(std::chrono::milliseconds linger) {
    router_.add("POST", "/echo", [](Request& req) {
      Response r;
      r.body = std::to_string(req.body.size());
      return r;
    });
    ServerOptions o;
    o.max_body_bytes = 64 * 1024;
    o.linger_timeout = linger;
    start_server(o);
  }

  // Writes all of `bytes` (blocking), then reads until the server closes. Returns what was
  // read, or "" with `error` set when the write or the read failed.
  std::string send_all_then_read(const std::string& bytes, std::string& error) {
    auto sock = connect();
    boost::system::error_code ec;
    asio::write(sock, asio::buffer(bytes), ec);
    if (ec) {
      error = "write: " + ec.message();
      return {};
    }
    std::string got;
    asio::read(sock, asio::dynamic_buffer(got), ec);
    if (ec != asio::error::eof) {
      error = "read: " + ec.message();
      return {};
    }
    return got;
  }
};

// 8 MiB is far more than the loopback socket buffers hold, so without the drain the write
// would fail (or the reset would eat the answer) every time.
TEST_F(ServerRefusalTest, AnOversizedBodyIsAnsweredToAClientThatSendsItAll) {
  start(5s);
  const std::string body(8 << 20, 'b');
  for (int i = 0; i < 5; ++i) {
    std::string error;
    const std::string got = send_all_then_read(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body,
        error);
    ASSERT_EQ(got.substr(0, 12), "HTTP/1.1 413") << error << got.substr(0, 200);
    EXPECT_NE(got.find("payload_too_large"), std::string::npos) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  }
}

TEST_F(ServerRefusalTest, AChunkedBodyOverTheLimitIsAnsweredToo) {
  start(5s);
  std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(64 * 1024, 'c');
  for (int i = 0; i < 128; ++i) req += "10000\r\n" + chunk + "\r\n";
  req += "0\r\n\r\n";
  std::string error;
  const std::string got = send_all_then_read(req, error);
  ASSERT_EQ(got.substr(0, 12), "HTTP/1.1 413") << error << got.substr(0, 200);
  EXPECT_NE(got.find("payload_too_large"), std::string::npos) << got;
}

TEST_F(ServerRefusalTest, HeadersOverTheLimitAreAnsweredWithTheRestStillComing) {
  start(5s);
  std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'h') +
                    "\r\nContent-Length: 4194304\r\n\r\n" + std::string(4 << 20, 'b');
  std::string error;
  const std::string got = send_all_then_read(req, error);
  ASSERT_EQ(got.substr(0, 12), "HTTP/1.1 431") << error << got.substr(0, 200);
}

TEST_F(ServerRefusalTest, ARequestWithinTheLimitIsServedAndTheConnectionStaysOpen) {
  start(5s);
  auto sock = connect();
  const std::string body(1000, 'x');
  for (int i = 0; i < 2; ++i) {
    asio::write(sock, asio::buffer("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                                   body));
    std::string got;
    const auto head = asio::read_until(sock, asio::dynamic_buffer(got), "\r\n\r\n");
    if (got.size() < head + 4) asio::read(sock, asio::dynamic_buffer(got), asio::transfer_exactly(head + 4 - got.size()));
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;
    EXPECT_EQ(got.substr(head), "1000") << got;
  }
}

// A client that goes on sending after the answer is cut off once linger_timeout passes.
TEST_F(ServerRefusalTest, TheDrainEndsWhenTheLingerTimePasses) {
  start(300ms);
  auto sock = connect();
  asio::write(sock, asio::buffer(std::string(
                        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")));
  const auto t0 = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  const std::string trickle(1024, 't');
  bool closed = false;
  while (std::chrono::steady_clock::now() - t0 < 20s) {
    asio::write(sock, asio::buffer(trickle), ec);
    if (ec) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(closed) << "the server was still reading after 20 s";
}

// Shutdown cancels a drain at once instead of waiting out a long linger_timeout.
TEST_F(ServerRefusalTest, ShutdownDoesNotWaitForADrain) {
  start(60s);
  auto sock = connect();
  asio::write(sock, asio::buffer(std::string(
                        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")));
  std::string head(12, '\0');
  asio::read(sock, asio::buffer(head));
  ASSERT_EQ(head, "HTTP/1.1 413");
  std::promise<void> drained;
  auto done = drained.get_future();
  const auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(30s, [&drained] { drained.set_value(); });
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

}  // namespace
}  // namespace dp::http
