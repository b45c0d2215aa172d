// LoopbackServerTest: the fixture of the tests that run a real http::Server on 127.0.0.1 (a
// free port) with one I/O thread of its own, and talk to it over plain sockets. A test adds its
// routes to `router_`, then calls start_server(); TearDown stops everything.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include "http/router.hpp"
#include "http/server.hpp"

namespace dp::http {

class LoopbackServerTest : public ::testing::Test {
 protected:
  explicit LoopbackServerTest(int blocking_threads = 2) : blocking_(blocking_threads) {}

  // Listens on a free port with `options` (its port is ignored); `configure` runs before the
  // server starts (e.g. to give it a write pool).
  void start_server(ServerOptions options = {}, const std::function<void(Server&)>& configure = {}) {
    options.port = 0;
    server_ = std::make_unique<Server>(io_, blocking_, router_, options, nullptr);
    if (configure) configure(*server_);
    ASSERT_TRUE(server_->listen().ok());
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    blocking_.join();
  }

  boost::asio::ip::tcp::socket connect() {
    boost::asio::ip::tcp::socket sock(client_io_);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"), server_->port()});
    return sock;
  }

  boost::asio::io_context io_;
  boost::asio::io_context client_io_;
  boost::asio::thread_pool blocking_;
  Router router_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

}  // namespace dp::http
