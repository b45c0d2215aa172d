// Which pool runs a handler on a real loopback Server: reads on the blocking pool, mutating
// requests on the write pool when one is set (else on the blocking pool); a handler that
// throws or an authenticator that throws answers 500 and the connection keeps serving; many
// writes in flight at once each get their own answer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>

#include "http/loopback_server_test.hpp"

namespace dp::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Where a handler ran: "blocking", "writes" or "other".
class ServerPoolTest : public LoopbackServerTest {
 protected:
  ServerPoolTest() : LoopbackServerTest(4) {}

  void start(bool with_write_pool) {
    auto where = [this](Request&) {
      Response r;
      if (blocking_.get_executor().running_in_this_thread()) {
        r.body = "blocking";
      } else if (writes_.get_executor().running_in_this_thread()) {
        r.body = "writes";
      } else {
        r.body = "other";
      }
      return r;
    };
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) router_.add(m, "/where", where);
    router_.add("POST", "/throw", [](Request&) -> Response { throw std::runtime_error("boom"); });
    // Waits until `parked_` writes are in flight together (or 5 s pass), so the test sees
    // that writes do not queue behind each other on a pool of 4 threads.
    router_.add("POST", "/park", [this](Request&) {
      parked_.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (parked_.load() < kParked && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
      }
      Response r;
      r.body = std::to_string(parked_.load());
      return r;
    });
    start_server({}, [&](Server& server) {
      if (with_write_pool) server.set_write_pool(writes_);
    });
  }
  void TearDown() override {
    LoopbackServerTest::TearDown();
    writes_.join();
  }

  // One request on `sock` (keep-alive); returns "STATUS BODY".
  static std::string call(asio::ip::tcp::socket& sock, const std::string& method,
                          const std::string& target) {
    const std::string req = method + " " + target +
                            " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    asio::write(sock, asio::buffer(req));
    asio::streambuf buf;
    asio::read_until(sock, buf, "\r\n\r\n");
    std::string head(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
    const auto end = head.find("\r\n\r\n") + 4;
    std::string rest = head.substr(end);
    head.resize(end);
    std::size_t len = 0;
    if (auto p = head.find("Content-Length: "); p != std::string::npos) {
      len = std::stoul(head.substr(p + 16));
    }
    while (rest.size() < len) {
      char c[512];
      const auto n = sock.read_some(asio::buffer(c, std::min(sizeof c, len - rest.size())));
      rest.append(c, n);
    }
    return head.substr(9, 3) + " " + rest;
  }

  static constexpr int kParked = 12;
  asio::thread_pool writes_{16};
  std::atomic<int> parked_{0};
};

TEST_F(ServerPoolTest, ReadsOnTheBlockingPoolWritesOnTheWritePool) {
  start(true);
  auto sock = connect();
  EXPECT_EQ(call(sock, "GET", "/where"), "200 blocking");
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE"}) {
    EXPECT_EQ(call(sock, m, "/where"), "200 writes") << m;
  }
  EXPECT_EQ(call(sock, "GET", "/where"), "200 blocking");
}

TEST_F(ServerPoolTest, WithoutAWritePoolEverythingRunsOnTheBlockingPool) {
  start(false);
  auto sock = connect();
  EXPECT_EQ(call(sock, "GET", "/where"), "200 blocking");
  EXPECT_EQ(call(sock, "POST", "/where"), "200 blocking");
}

TEST_F(ServerPoolTest, AThrowingHandlerAnswers500AndTheConnectionGoesOn) {
  start(true);
  auto sock = connect();
  const std::string got = call(sock, "POST", "/throw");
  EXPECT_EQ(got.substr(0, 3), "500") << got;
  EXPECT_EQ(call(sock, "POST", "/where"), "200 writes");
}

TEST_F(ServerPoolTest, ManyWritesAreInFlightAtOnce) {
  start(true);
  std::vector<std::thread> clients;
  std::vector<std::string> answers(kParked);
  for (int i = 0; i < kParked; ++i) {
    clients.emplace_back([this, i, &answers] {
      asio::io_context own;
      asio::ip::tcp::socket sock(own);
      sock.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
      answers[static_cast<std::size_t>(i)] = call(sock, "POST", "/park");
    });
  }
  for (auto& t : clients) t.join();
  // Every handler saw all 12 in flight: more than the blocking pool's 4 threads could hold.
  for (const auto& a : answers) EXPECT_EQ(a, "200 " + std::to_string(kParked));
  // Reads were not starved meanwhile either.
  auto sock = connect();
  EXPECT_EQ(call(sock, "GET", "/where"), "200 blocking");
}

}  // namespace
}  // namespace dp::http
