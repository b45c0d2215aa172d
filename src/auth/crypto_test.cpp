#include "auth/crypto.hpp"

#include <set>

#include <gtest/gtest.h>

namespace dp::auth {
namespace {

TEST(CryptoTest, Base64UrlRoundTripsAndRejectsForeignAlphabets) {
  const std::string bytes("\x00\xff\xfe?>/+", 7);
  const std::string enc = base64url_encode(bytes);
  EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
  EXPECT_EQ(base64url_decode(enc), bytes);
  EXPECT_FALSE(base64url_decode("ab+c").has_value());
  EXPECT_FALSE(base64url_decode("abc=").has_value());
  EXPECT_FALSE(base64url_decode("a b").has_value());
}

TEST(CryptoTest, Sha256AndHmacMatchKnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(base64url_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            base64url_encode(std::string(
                "\x5b\xdc\xc1\x46\xbf\x60\x75\x4e\x6a\x04\x24\x26\x08\x95\x75\xc7\x5a\x00\x3f\x08"
                "\x9d\x27\x39\x83\x9d\xec\x58\xb9\x64\xec\x38\x43",
                32)));
}

TEST(CryptoTest, RandomValuesDifferAndUseTheirAlphabet) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random_alnum(20));
  EXPECT_EQ(seen.size(), 100u);
  for (char c : random_lower_alnum(200)) EXPECT_TRUE(std::islower(c) || std::isdigit(c)) << c;
  EXPECT_EQ(random_bytes(32).size(), 32u);
}

TEST(CryptoTest, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace dp::auth
