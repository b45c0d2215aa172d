// The OIDC pieces without a network: ID tokens signed here with RSA and P-256 keys made by
// OpenSSL, a JWKS served from memory, a manual clock for the caches.
#include "auth/oidc.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/config.hpp"

namespace dp::auth {
namespace {

namespace json = boost::json;
using std::chrono::seconds;
using oidc::base64url_decode;
using oidc::base64url_encode;
using oidc::pkce_challenge;
using oidc::random_token;

struct Key {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string alg;
  std::string kid;
  json::object jwk;  // public
};

std::string bn_b64(const BIGNUM* bn) {
  std::string raw(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(raw.data()));
  return base64url_encode(raw);
}

Key make_rsa(std::string kid, unsigned bits = 2048) {
  Key k;
  k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)),
               EVP_PKEY_free);
  k.alg = "RS256";
  k.kid = std::move(kid);
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  EVP_PKEY_get_bn_param(k.pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(k.pkey.get(), OSSL_PKEY_PARAM_RSA_E, &e);
  k.jwk = {{"kty", "RSA"}, {"kid", k.kid}, {"use", "sig"}, {"alg", "RS256"},
           {"n", bn_b64(n)}, {"e", bn_b64(e)}};
  BN_free(n);
  BN_free(e);
  return k;
}

Key make_ec(std::string kid) {
  Key k;
  k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  k.alg = "ES256";
  k.kid = std::move(kid);
  unsigned char pub[65];
  size_t len = 0;
  EVP_PKEY_get_octet_string_param(k.pkey.get(), OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len);
  EXPECT_EQ(len, 65u);
  const std::string raw(reinterpret_cast<const char*>(pub), len);
  k.jwk = {{"kty", "EC"}, {"kid", k.kid}, {"crv", "P-256"}, {"alg", "ES256"},
           {"x", base64url_encode(raw.substr(1, 32))}, {"y", base64url_encode(raw.substr(33, 32))}};
  return k;
}

std::string sign_raw(const Key& k, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k.pkey.get());
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (k.alg != "ES256") return sig;
  // DER -> r||s
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string out(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(out.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
  ECDSA_SIG_free(es);
  return out;
}

std::string make_token(const Key& k, json::object payload, json::object header = {}) {
  if (header.empty()) header = {{"alg", k.alg}, {"kid", k.kid}, {"typ", "JWT"}};
  const std::string input = base64url_encode(json::serialize(header)) + "." +
                            base64url_encode(json::serialize(payload));
  return input + "." + base64url_encode(sign_raw(k, input));
}

class OidcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new Key(make_rsa("rsa-1"));
    rsa2_ = new Key(make_rsa("rsa-2"));
    ec_ = new Key(make_ec("ec-1"));
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete rsa2_;
    delete ec_;
  }

  void SetUp() override {
    publish({*rsa_, *ec_});
    cache_ = std::make_unique<JwksCache>(
        [this]() -> Result<std::string> {
          ++fetches_;
          return jwks_;
        },
        std::chrono::milliseconds(10'000), [this] { return clock_; });
    check_.issuer = "https://idp.example.test";
    check_.client_id = "devplane";
    check_.nonce = "n-123";
    check_.now = std::chrono::system_clock::now();
  }

  void publish(std::vector<Key> keys) {
    json::array arr;
    for (const auto& k : keys) arr.push_back(k.jwk);
    jwks_ = json::serialize(json::object{{"keys", arr}});
  }

  json::object claims() const {
    const auto now = std::chrono::duration_cast<seconds>(check_.now.time_since_epoch()).count();
    return {{"iss", check_.issuer}, {"aud", "devplane"}, {"sub", "alice"},
            {"nonce", "n-123"},     {"iat", now},        {"exp", now + 300},
            {"groups", json::array{"devplane-ops", "staff"}}};
  }

  // The failed check's name, or "ok".
  std::string outcome(const std::string& token) {
    auto r = validate_id_token(token, check_, *cache_);
    if (r.ok()) return "ok";
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << r.error().message;
    const auto* o = r.error().details.if_object();
    return o != nullptr && o->contains("check") ? std::string(o->at("check").as_string())
                                                : r.error().reason;
  }

  static Key* rsa_;
  static Key* rsa2_;
  static Key* ec_;
  std::string jwks_;
  int fetches_ = 0;
  std::chrono::steady_clock::time_point clock_ = std::chrono::steady_clock::now();
  std::unique_ptr<JwksCache> cache_;
  IdTokenCheck check_;
};
Key* OidcTest::rsa_ = nullptr;
Key* OidcTest::rsa2_ = nullptr;
Key* OidcTest::ec_ = nullptr;

TEST_F(OidcTest, AcceptsRs256AndEs256) {
  auto r = validate_id_token(make_token(*rsa_, claims()), check_, *cache_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at("sub").as_string(), "alice");
  EXPECT_EQ(outcome(make_token(*ec_, claims())), "ok");
  EXPECT_EQ(fetches_, 1);  // cached
}

TEST_F(OidcTest, RefusesTamperedPayloadAndSignature) {
  const std::string good = make_token(*rsa_, claims());
  const auto d1 = good.find('.');
  const auto d2 = good.find('.', d1 + 1);
  auto forged = claims();
  forged["groups"] = json::array{"devplane-admins"};
  const std::string tampered = good.substr(0, d1 + 1) + base64url_encode(json::serialize(forged)) +
                               good.substr(d2);
  EXPECT_EQ(outcome(tampered), "signature");
  // Change a character inside the signature: the last one may carry only padding bits,
  // which decoding ignores (flipping it left the signature valid now and then).
  std::string flipped = good;
  char& c = flipped[d2 + 10];
  c = c == 'A' ? 'Q' : 'A';
  EXPECT_EQ(outcome(flipped), "signature");
  // A valid ES256 signature over another input.
  const std::string other = make_token(*ec_, claims());
  const std::string es_mix = make_token(*ec_, forged);
  EXPECT_EQ(outcome(other.substr(0, other.rfind('.')) + es_mix.substr(es_mix.rfind('.'))),
            "signature");
}

TEST_F(OidcTest, RefusesNoneHmacAndOtherAlgorithms) {
  const std::string payload = base64url_encode(json::serialize(claims()));
  const auto header = [](json::object h) { return base64url_encode(json::serialize(h)); };
  EXPECT_EQ(outcome(header({{"alg", "none"}}) + "." + payload + "."), "alg");
  EXPECT_EQ(outcome(header({{"alg", "None"}, {"kid", "rsa-1"}}) + "." + payload + "."), "alg");
  // HS256 keyed with the RSA public key's bytes: the classic confusion attack.
  const std::string input = header({{"alg", "HS256"}, {"kid", "rsa-1"}}) + "." + payload;
  const std::string secret = json::serialize(rsa_->jwk);
  unsigned char mac[32];
  unsigned len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  EXPECT_EQ(outcome(input + "." +
                    base64url_encode(std::string(reinterpret_cast<char*>(mac), len))),
            "alg");
  EXPECT_EQ(outcome(make_token(*rsa_, claims(), {{"alg", "RS384"}, {"kid", "rsa-1"}})), "alg");
  EXPECT_EQ(outcome(make_token(*rsa_, claims(), {{"alg", "PS256"}, {"kid", "rsa-1"}})), "alg");
  // The algorithm must fit the key: ES256 claimed for an RSA key.
  EXPECT_EQ(outcome(make_token(*ec_, claims(), {{"alg", "ES256"}, {"kid", "rsa-1"}})), "alg");
  // crit extensions are not understood, so refused.
  EXPECT_EQ(outcome(make_token(*rsa_, claims(),
                               {{"alg", "RS256"}, {"kid", "rsa-1"}, {"crit", json::array{"b64"}}})),
            "format");
}

TEST_F(OidcTest, RefusesMalformedTokens) {
  EXPECT_EQ(outcome(""), "format");
  EXPECT_EQ(outcome("a.b"), "format");
  EXPECT_EQ(outcome("a.b.c.d"), "format");
  EXPECT_EQ(outcome("!!.??.**"), "format");
  EXPECT_EQ(outcome(base64url_encode("[1]") + ".e30.AA"), "format");
  EXPECT_EQ(outcome(std::string(20'000, 'a')), "format");
}

TEST_F(OidcTest, ChecksIssuerAudienceAndAzp) {
  auto c = claims();
  c["iss"] = "https://idp.example.test/";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "iss");
  c = claims();
  c.erase("iss");
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "iss");
  c = claims();
  c["aud"] = "someone-else";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "aud");
  c["aud"] = json::array{"devplane", "someone-else"};
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "azp");
  c["azp"] = "someone-else";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "azp");
  c["azp"] = "devplane";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "ok");
  c = claims();
  c["aud"] = json::array{"devplane"};
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "ok");
  c["azp"] = "other";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "azp");
}

TEST_F(OidcTest, ChecksTimesWithSkew) {
  const auto now = std::chrono::duration_cast<seconds>(check_.now.time_since_epoch()).count();
  auto c = claims();
  c["exp"] = now - 3600;
  c["iat"] = now - 7200;
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "exp");
  c["exp"] = now - 30;  // within the 60 s skew
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "ok");
  c = claims();
  c.erase("exp");
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "exp");
  c = claims();
  c["exp"] = "tomorrow";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "exp");
  c = claims();
  c["iat"] = now + 3600;
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "iat");
  c = claims();
  c.erase("iat");
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "iat");
  c = claims();
  c["nbf"] = now + 3600;
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "nbf");
  c["nbf"] = now;
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "ok");
}

TEST_F(OidcTest, ChecksNonceAndSubject) {
  auto c = claims();
  c["nonce"] = "other";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "nonce");
  c.erase("nonce");
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "nonce");
  c = claims();
  c["sub"] = "";
  EXPECT_EQ(outcome(make_token(*rsa_, c)), "sub");
}

TEST_F(OidcTest, UnknownKidRefetchesOnceThenRateLimits) {
  EXPECT_EQ(outcome(make_token(*rsa_, claims())), "ok");
  EXPECT_EQ(fetches_, 1);
  // The provider rotates to rsa-2 but we saw the JWKS a moment ago: refused, no refetch.
  publish({*rsa2_, *rsa_});
  EXPECT_EQ(outcome(make_token(*rsa2_, claims())), "kid");
  EXPECT_EQ(fetches_, 1);
  // Once min_refresh has passed, an unknown kid refetches once and finds the new key.
  clock_ += seconds(11);
  EXPECT_EQ(outcome(make_token(*rsa2_, claims())), "ok");
  EXPECT_EQ(fetches_, 2);
  // A kid the provider never had: one refetch (rate-limited), still refused.
  clock_ += seconds(11);
  Key stray = make_ec("stray");
  EXPECT_EQ(outcome(make_token(stray, claims())), "kid");
  EXPECT_EQ(fetches_, 3);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(outcome(make_token(stray, claims())), "kid");
  EXPECT_EQ(fetches_, 3);
  // Keys older than an hour are refetched anyway.
  clock_ += std::chrono::hours(2);
  EXPECT_EQ(outcome(make_token(*rsa_, claims())), "ok");
  EXPECT_EQ(fetches_, 4);
}

TEST_F(OidcTest, TokenWithoutKidNeedsAnUnambiguousKey) {
  EXPECT_EQ(outcome(make_token(*rsa_, claims(), {{"alg", "RS256"}})), "ok");
  publish({*rsa_, *rsa2_, *ec_});
  clock_ += std::chrono::hours(2);
  EXPECT_EQ(outcome(make_token(*rsa_, claims(), {{"alg", "RS256"}})), "kid");
}

TEST_F(OidcTest, JwksFetchFailureIsUnavailable) {
  JwksCache broken([]() -> Result<std::string> { return Error::unavailable("down"); });
  auto r = validate_id_token(make_token(*rsa_, claims()), check_, broken);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  JwksCache garbage([]() -> Result<std::string> { return std::string("<html>"); });
  auto g = validate_id_token(make_token(*rsa_, claims()), check_, garbage);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().reason, "oidc_provider_unavailable");
}

TEST_F(OidcTest, ParsesOnlyStrongKeys) {
  EXPECT_TRUE(parse_jwk(rsa_->jwk).ok());
  EXPECT_TRUE(parse_jwk(ec_->jwk).ok());
  EXPECT_FALSE(parse_jwk(make_rsa("small", 1024).jwk).ok());
  auto off_curve = ec_->jwk;
  off_curve["y"] = base64url_encode(std::string(32, '\x01'));
  EXPECT_FALSE(parse_jwk(off_curve).ok());
  auto p384 = ec_->jwk;
  p384["crv"] = "P-384";
  EXPECT_FALSE(parse_jwk(p384).ok());
  EXPECT_FALSE(parse_jwk({{"kty", "oct"}, {"k", "c2VjcmV0"}}).ok());
  EXPECT_FALSE(parse_jwk({{"kty", "RSA"}, {"n", "!!"}, {"e", "AQAB"}}).ok());
}

TEST(OidcHelpersTest, Base64Url) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "\xff\xfe\x00\x01"}) {
    auto d = base64url_decode(base64url_encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("ab=").has_value());
  EXPECT_FALSE(base64url_decode("a+b").has_value());
  EXPECT_FALSE(base64url_decode("abcde").has_value());
  // RFC 7636 appendix B.
  EXPECT_EQ(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  EXPECT_NE(random_token(), random_token());
  EXPECT_EQ(random_token().size(), 43u);
}

TEST(OidcHelpersTest, RoleMapping) {
  auto map = parse_role_map("devplane-admins=admin, devplane-ops = operator,staff=viewer");
  ASSERT_TRUE(map.ok()) << map.error().message;
  ASSERT_EQ(map->size(), 3u);
  json::object c{{"groups", json::array{"staff", "devplane-ops"}}};
  EXPECT_EQ(*map_role(c, "groups", *map), "operator");
  c["groups"] = json::array{"devplane-admins", "staff"};
  EXPECT_EQ(*map_role(c, "groups", *map), "admin");
  c["groups"] = "staff";  // a single string works too
  EXPECT_EQ(*map_role(c, "groups", *map), "viewer");
  c["groups"] = json::array{"contractors"};
  auto none = map_role(c, "groups", *map);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(none.error().reason, "no_role");
  EXPECT_FALSE(map_role({}, "groups", *map).ok());
  auto with_default = parse_role_map("devplane-admins=admin,*=viewer");
  EXPECT_EQ(*map_role(c, "groups", *with_default), "viewer");
  EXPECT_EQ(*map_role({{"groups", json::array{"devplane-admins"}}}, "groups", *with_default),
            "admin");
  EXPECT_EQ(*map_role({{"roles", "devplane-admins"}}, "roles", *with_default), "admin");
  EXPECT_TRUE(parse_role_map("").ok());
  EXPECT_FALSE(parse_role_map("admins").ok());
  EXPECT_FALSE(parse_role_map("x=superuser").ok());
  EXPECT_FALSE(parse_role_map("x=agent").ok());
  EXPECT_FALSE(parse_role_map("=admin").ok());
}

TEST(OidcHelpersTest, PendingLoginsAreSingleUseExpireAndAreCapped) {
  auto now = std::chrono::steady_clock::now();
  PendingLogins p(seconds(600), 3, [&now] { return now; });
  p.put("s1", {"n1", "v1", {}});
  auto got = p.take("s1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->nonce, "n1");
  EXPECT_FALSE(p.take("s1").has_value());  // replay
  EXPECT_FALSE(p.take("never").has_value());
  p.put("s2", {"n2", "v2", {}});
  now += seconds(601);
  EXPECT_FALSE(p.take("s2").has_value());  // expired
  p.put("a", {});
  now += seconds(1);
  p.put("b", {});
  now += seconds(1);
  p.put("c", {});
  now += seconds(1);
  p.put("d", {});  // over the cap: the oldest goes
  EXPECT_EQ(p.size(), 3u);
  EXPECT_FALSE(p.take("a").has_value());
  EXPECT_TRUE(p.take("d").has_value());
}

TEST(OidcHelpersTest, Discovery) {
  const std::string doc =
      R"({"issuer":"https://idp.test","authorization_endpoint":"https://idp.test/auth",)"
      R"("token_endpoint":"https://idp.test/token","jwks_uri":"https://idp.test/jwks",)"
      R"("token_endpoint_auth_methods_supported":["client_secret_post"]})";
  auto m = parse_discovery(doc, "https://idp.test");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->token_endpoint, "https://idp.test/token");
  EXPECT_EQ(m->token_endpoint_auth_methods.size(), 1u);
  EXPECT_FALSE(parse_discovery(doc, "https://idp.test/").ok());  // exact match only
  EXPECT_FALSE(parse_discovery(doc, "https://evil.test").ok());
  EXPECT_FALSE(parse_discovery(R"({"issuer":"https://idp.test"})", "https://idp.test").ok());
  EXPECT_FALSE(parse_discovery("nope", "https://idp.test").ok());
}

TEST(OidcHelpersTest, SettingsFromConfig) {
  Config c;
  auto off = oidc_settings_from(c);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->has_value());
  ASSERT_TRUE(c.set("oidc_issuer", "https://idp.test", "test").ok());
  EXPECT_FALSE(oidc_settings_from(c).ok());  // client id and redirect URL missing
  ASSERT_TRUE(c.set("oidc_client_id", "devplane", "test").ok());
  ASSERT_TRUE(c.set("oidc_redirect_url", "https://dp.test/api/v1/auth/oidc/callback", "test").ok());
  ASSERT_TRUE(c.set("oidc_role_map", "a=admin,*=viewer", "test").ok());
  ASSERT_TRUE(c.set("oidc_client_secret", "s3cret", "test").ok());
  ASSERT_TRUE(c.set("oidc_scopes", "profile groups", "test").ok());
  auto on = oidc_settings_from(c);
  ASSERT_TRUE(on.ok()) << on.error().message;
  ASSERT_TRUE(on->has_value());
  EXPECT_EQ((*on)->scopes, "openid profile groups");
  EXPECT_EQ((*on)->role_map.size(), 2u);
  EXPECT_EQ((*on)->role_claim, "groups");
  EXPECT_EQ(c.to_json_masked().at("oidc_client_secret").as_string(), "***");
  EXPECT_FALSE(c.set("oidc_role_map", "nonsense", "test").ok());
  EXPECT_FALSE(c.set("oidc_issuer", "idp.test", "test").ok());
  ASSERT_TRUE(c.set("oidc_role_map", "a=root", "test").ok());  // syntax fine, role checked later
  EXPECT_FALSE(oidc_settings_from(c).ok());
}

}  // namespace
}  // namespace dp::auth
