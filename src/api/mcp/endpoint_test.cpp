#include "api/mcp/endpoint.hpp"

#include <gtest/gtest.h>

namespace dp::api::mcp_endpoint {
namespace {

TEST(McpEndpointTest, HostMustNameThisServer) {
  Options o;
  o.bind_host = "127.0.0.1";
  for (const char* ok : {"127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]:8080", "127.0.0.1"}) {
    EXPECT_TRUE(host_allowed(ok, o)) << ok;
  }
  for (const char* bad : {"", "evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost:x",
                          "localhost:123456", "[::1", "[::1]x", "a b", "localhost@evil"}) {
    EXPECT_FALSE(host_allowed(bad, o)) << bad;
  }
  o.bind_host = "10.1.2.3";
  EXPECT_TRUE(host_allowed("10.1.2.3:8080", o));
  o.bind_host = "0.0.0.0";  // a wildcard names no host
  EXPECT_FALSE(host_allowed("0.0.0.0:8080", o));
  o.allowed_origins = {"https://devplane.example.com", "http://tools.example:8443"};
  EXPECT_TRUE(host_allowed("devplane.example.com", o));
  EXPECT_TRUE(host_allowed("tools.example:8443", o));
  EXPECT_FALSE(host_allowed("example.com", o));
}

TEST(McpEndpointTest, OriginMustBeOwnOrAllowed) {
  Options o;
  o.allowed_origins = {"https://app.example"};
  EXPECT_TRUE(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", o));
  EXPECT_TRUE(origin_allowed("https://app.example", "127.0.0.1:8080", o));
  EXPECT_FALSE(origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080", o));
  EXPECT_FALSE(origin_allowed("null", "127.0.0.1:8080", o));
  EXPECT_FALSE(origin_allowed("https://app.example.evil", "127.0.0.1:8080", o));
}

}  // namespace
}  // namespace dp::api::mcp_endpoint
