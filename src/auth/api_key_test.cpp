#include "auth/api_key.hpp"

#include <gtest/gtest.h>

#include "auth/crypto.hpp"

namespace dp::auth {
namespace {

TEST(ApiKeyTest, GeneratedKeyParsesBackAndHashesTheWholeKey) {
  const auto k = generate_api_key();
  EXPECT_TRUE(k.key.starts_with("dp_" + k.prefix + "_"));
  EXPECT_EQ(k.key.size(), 3 + 12 + 1 + 40u);
  auto parts = parse_api_key(k.key);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->prefix, k.prefix);
  EXPECT_EQ(k.hash, sha256_hex(k.key));
  EXPECT_EQ(k.hash.size(), 64u);
  EXPECT_NE(generate_api_key().key, k.key);
}

TEST(ApiKeyTest, MalformedKeysAreRejected) {
  const auto k = generate_api_key().key;
  EXPECT_FALSE(parse_api_key("").has_value());
  EXPECT_FALSE(parse_api_key("dp_").has_value());
  EXPECT_FALSE(parse_api_key(k.substr(0, k.size() - 1)).has_value());  // short
  EXPECT_FALSE(parse_api_key(k + "x").has_value());                      // long
  std::string upper_prefix = k;
  upper_prefix[3] = 'A';
  EXPECT_FALSE(parse_api_key(upper_prefix).has_value());
  std::string no_sep = k;
  no_sep[15] = 'x';
  EXPECT_FALSE(parse_api_key(no_sep).has_value());
  std::string bad_char = k;
  bad_char[20] = '-';
  EXPECT_FALSE(parse_api_key(bad_char).has_value());
  std::string wrong_scheme = k;
  wrong_scheme[0] = 'x';
  EXPECT_FALSE(parse_api_key(wrong_scheme).has_value());
  EXPECT_TRUE(looks_like_api_key("dp_whatever"));
  EXPECT_FALSE(looks_like_api_key("eyJhbGciOi"));
}

}  // namespace
}  // namespace dp::auth
