// The accept/reject matrix of access tokens. Hostile tokens are built by hand here, so
// each case controls every header and claim.
#include "auth/jwt.hpp"

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "auth/crypto.hpp"

namespace dp::auth {
namespace {

const std::string kSecret = "unit-test-secret-0123456789abcdef0123456789";
constexpr std::int64_t kNow = 1'700'000'000;

JwtCodec codec() {
  JwtOptions o;
  o.secret = kSecret;
  return JwtCodec(o);
}

boost::json::object good_claims() {
  return {{"iss", "devplane"}, {"aud", "devplane-api"}, {"sub", "user-1"}, {"role", "viewer"},
          {"iat", kNow},       {"nbf", kNow},           {"exp", kNow + 900}};
}

std::string sign(const boost::json::object& header, const boost::json::object& claims,
                 const std::string& key = kSecret) {
  const std::string input = base64url_encode(boost::json::serialize(header)) + "." +
                            base64url_encode(boost::json::serialize(claims));
  return input + "." + base64url_encode(hmac_sha256(key, input));
}

std::string hs256(const boost::json::object& claims) {
  return sign({{"alg", "HS256"}, {"typ", "JWT"}}, claims);
}

void expect_rejected(const std::string& token, const std::string& why) {
  auto r = codec().verify(token, kNow);
  ASSERT_FALSE(r.ok()) << why;
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << why;
  EXPECT_EQ(r.error().reason, "unauthenticated") << why;
}

TEST(JwtTest, IssuedTokenVerifiesWithItsClaims) {
  AccessClaims c;
  c.subject = "user-1";
  c.name = "alice";
  c.role = "operator";
  auto token = codec().issue(c, kNow);
  ASSERT_TRUE(token.ok()) << token.error().message;
  auto v = codec().verify(*token, kNow + 10);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->subject, "user-1");
  EXPECT_EQ(v->name, "alice");
  EXPECT_EQ(v->role, "operator");
  EXPECT_EQ(v->expires_at, kNow + 900);
  EXPECT_FALSE(v->token_id.empty());
  EXPECT_TRUE(codec().verify(hs256(good_claims()), kNow).ok());
}

TEST(JwtTest, AlgorithmIsPinnedToHs256) {
  const auto claims = good_claims();
  const std::string body = base64url_encode(boost::json::serialize(claims));
  // alg none, with and without a signature.
  const std::string none_header = base64url_encode(R"({"alg":"none","typ":"JWT"})");
  expect_rejected(none_header + "." + body + ".", "alg none, empty signature");
  expect_rejected(sign({{"alg", "none"}}, claims), "alg none, HMAC signature");
  // HS/RS confusion: RS256 "signed" by HMAC with the public key text as the secret.
  const std::string pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
  expect_rejected(sign({{"alg", "RS256"}}, claims, pem), "RS256 with HMAC over the public key");
  expect_rejected(sign({{"alg", "RS256"}}, claims), "RS256 with the server secret");
  expect_rejected(sign({{"alg", "ES256"}}, claims), "ES256");
  expect_rejected(sign({{"alg", "HS512"}}, claims), "HS512");
  expect_rejected(sign({{"alg", "hs256"}}, claims), "lower-case alg");
  expect_rejected(sign({{"typ", "JWT"}}, claims), "no alg");
  expect_rejected(sign({{"alg", "HS256"}, {"crit", boost::json::array{"exp"}}}, claims), "crit");
  expect_rejected(sign({{"alg", "HS256"}, {"typ", "JWE"}}, claims), "typ not JWT");
}

TEST(JwtTest, SignatureMustMatchTheServerSecret) {
  expect_rejected(sign({{"alg", "HS256"}}, good_claims(), "another-secret-0123456789abcdef0123"),
                  "other secret");
  std::string token = hs256(good_claims());
  // Tamper with the payload, keep the signature.
  auto claims = good_claims();
  claims["role"] = "admin";
  const std::string tampered_body = base64url_encode(boost::json::serialize(claims));
  const auto d1 = token.find('.');
  const auto d2 = token.rfind('.');
  expect_rejected(token.substr(0, d1 + 1) + tampered_body + token.substr(d2), "tampered payload");
  expect_rejected(token.substr(0, d2 + 1), "signature stripped");
  // A character inside the signature: the last one also holds padding bits, which
  // decoding ignores, so flipping one of those would leave the signature valid.
  std::string flipped = token;
  char& c = flipped[d2 + 5];
  c = c == 'A' ? 'Q' : 'A';
  expect_rejected(flipped, "signature flipped");
}

TEST(JwtTest, TimesAreCheckedWithThirtySecondsOfSkew) {
  auto c = good_claims();
  c["exp"] = kNow - 29;
  EXPECT_TRUE(codec().verify(hs256(c), kNow).ok()) << "within skew";
  c["exp"] = kNow - 31;
  expect_rejected(hs256(c), "expired");
  c = good_claims();
  c["nbf"] = kNow + 29;
  c["iat"] = kNow + 29;
  EXPECT_TRUE(codec().verify(hs256(c), kNow).ok()) << "nbf within skew";
  c["nbf"] = kNow + 31;
  expect_rejected(hs256(c), "not yet valid");
  c = good_claims();
  c["iat"] = kNow + 3600;
  expect_rejected(hs256(c), "issued in the future");
  c = good_claims();
  c.erase("exp");
  expect_rejected(hs256(c), "no exp");
  c = good_claims();
  c["exp"] = "tomorrow";
  expect_rejected(hs256(c), "exp not a number");
  c = good_claims();
  c["nbf"] = "now";
  expect_rejected(hs256(c), "nbf not a number");
}

TEST(JwtTest, IssuerAudienceAndSubjectMustMatch) {
  auto c = good_claims();
  c["iss"] = "someone-else";
  expect_rejected(hs256(c), "wrong iss");
  c = good_claims();
  c.erase("iss");
  expect_rejected(hs256(c), "no iss");
  c = good_claims();
  c["aud"] = "other-api";
  expect_rejected(hs256(c), "wrong aud");
  c["aud"] = boost::json::array{"other-api", "devplane-api"};
  EXPECT_TRUE(codec().verify(hs256(c), kNow).ok()) << "aud array naming us";
  c["aud"] = boost::json::array{"other-api"};
  expect_rejected(hs256(c), "aud array without us");
  c = good_claims();
  c.erase("sub");
  expect_rejected(hs256(c), "no sub");
}

TEST(JwtTest, MalformedTokensAreRejected) {
  expect_rejected("", "empty");
  expect_rejected("garbage", "one segment");
  expect_rejected("a.b", "two segments");
  expect_rejected(hs256(good_claims()) + ".x", "four segments");
  expect_rejected("!!!.???.***", "not base64url");
  expect_rejected(base64url_encode("[1]") + "." + base64url_encode("{}") + ".sig", "header not an object");
  expect_rejected(std::string(9000, 'a') + ".b.c", "oversized");
}

TEST(JwtTest, SecretFromConfigMustBeLongEnough) {
  Config c;
  c.jwt_secret = "short";
  EXPECT_FALSE(load_or_create_jwt_secret(c).ok());
  c.jwt_secret = std::string(32, 'k');
  auto s = load_or_create_jwt_secret(c);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, std::string(32, 'k'));
}

}  // namespace
}  // namespace dp::auth
