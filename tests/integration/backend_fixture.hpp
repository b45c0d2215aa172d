// BackendServerTest: the fixture of an integration test that runs once per store backend
// against a devplane of its own. Header-only: it needs gtest, which the harness does not.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace dp::it {

// The name of a Backend parameter ("sqlite", "postgres"), for INSTANTIATE_TEST_SUITE_P.
inline std::string backend_name(const ::testing::TestParamInfo<Backend>& p) { return to_string(p.param); }

class BackendServerTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Starts devplane on this test's backend with `args` and `env`; fatal when it does not start
  // (call it under ASSERT_NO_FATAL_FAILURE outside SetUp).
  void start(std::vector<std::string> args = {}, Env env = {}) {
    server_ = std::make_unique<TestServer>(GetParam(), std::move(args), std::move(env));
    ASSERT_EQ(server_->error(), "") << "server did not start";
    client_ = std::make_unique<HttpClient>(server_->port());
  }
  // Stops the server if it still runs and expects a clean exit.
  void TearDown() override {
    client_.reset();
    if (server_ && server_->process().running()) {
      EXPECT_EQ(server_->process().stop(), 0) << server_->process().stderr_text();
    }
    server_.reset();
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace dp::it
