#include "auth/oidc.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/config.hpp"

namespace dp::auth {

using oidc::base64url_decode;
using oidc::base64url_encode;
using oidc::pkce_challenge;
using oidc::random_token;

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxTokenBytes = 16 * 1024;
constexpr auto kJwksMaxAge = std::chrono::hours(1);
constexpr auto kMetadataMaxAge = std::chrono::hours(1);

Error bad_config(std::string message) {
  return Error::invalid_argument("bad_config", std::move(message));
}

Error token_error(std::string check, std::string message) {
  return Error{ErrorCode::kUnauthenticated, "invalid_id_token", std::move(message),
               json::object{{"check", std::move(check)}}};
}

Error provider_error(std::string message) {
  return Error{ErrorCode::kUnavailable, "oidc_provider_unavailable", std::move(message), nullptr};
}

Error unauthenticated(std::string reason, std::string message, json::value details = nullptr) {
  return Error{ErrorCode::kUnauthenticated, std::move(reason), std::move(message),
               std::move(details)};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const json::string* str_member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

std::string str_or_empty(const json::object& o, std::string_view key) {
  const auto* s = str_member(o, key);
  return s != nullptr ? std::string(*s) : std::string();
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

// Builds a public key from OpenSSL 3 parameters.
Result<std::shared_ptr<EVP_PKEY>> key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  const bool ok = params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
                  EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok || pkey == nullptr) {
    return Error::invalid_argument("bad_jwk", std::string("JWK is not a valid ") + type + " key");
  }
  return std::shared_ptr<EVP_PKEY>(pkey, PkeyDeleter{});
}

Result<BnPtr> bn_member(const json::object& jwk, std::string_view key) {
  const auto* s = str_member(jwk, key);
  auto raw = s != nullptr ? base64url_decode(*s) : std::nullopt;
  if (!raw || raw->empty()) {
    return Error::invalid_argument("bad_jwk", "JWK lacks a valid '" + std::string(key) + "'");
  }
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()),
                         static_cast<int>(raw->size()), nullptr);
  if (bn == nullptr) return Error::internal("BN_bin2bn failed");
  return BnPtr(bn);
}

// ES256 signatures are r||s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> es256_to_der(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (sig == nullptr) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, 32, nullptr);
  BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
  if (r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verify_signature(const Jwk& key, std::string_view alg, std::string_view signing_input,
                      std::string_view signature) {
  std::string sig;
  if (alg == "ES256") {
    auto der = es256_to_der(signature);
    if (!der) return false;
    sig = std::move(*der);
  } else {
    sig = std::string(signature);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return false;
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key.key.get()) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

std::string_view kty_for(std::string_view alg) {
  if (alg == "RS256") return "RSA";
  if (alg == "ES256") return "EC";
  return {};
}

bool key_fits(const Jwk& k, std::string_view alg) {
  return k.kty == kty_for(alg) && (k.alg.empty() || k.alg == alg) &&
         (k.use.empty() || k.use == "sig");
}

std::optional<std::int64_t> int_claim(const json::object& claims, std::string_view key) {
  const auto* v = claims.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return std::nullopt;
}

int role_rank(std::string_view role) {
  if (role == "admin") return 3;
  if (role == "operator") return 2;
  if (role == "viewer") return 1;
  return 0;
}

std::string append_query(std::string url, const http::Fields& params) {
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    url += sep;
    url += http::url_encode(k) + "=" + http::url_encode(v);
    sep = '&';
  }
  return url;
}

std::string form_body(const http::Fields& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += http::form_encode(k) + "=" + http::form_encode(v);
  }
  return out;
}

std::string base64_std(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string_view> field(const http::Fields& fields, std::string_view name) {
  for (const auto& [k, v] : fields) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

bool constant_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// ---- helpers --------------------------------------------------------------------------

namespace oidc {

std::string base64url_encode(std::string_view bytes) {
  std::string s = base64_std(bytes);
  for (auto& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return std::nullopt;  // no padding, no standard alphabet, no whitespace (RFC 7515)
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFU));
    }
  }
  if (bits >= 6) return std::nullopt;  // a lone trailing character
  return out;
}

std::string random_token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // The CSPRNG failing means the process cannot make secrets at all.
    std::abort();
  }
  return base64url_encode(raw);
}

std::string pkce_challenge(std::string_view verifier) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest.data());
  return base64url_encode(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace oidc

// ---- configuration --------------------------------------------------------------------

Result<std::vector<std::pair<std::string, std::string>>> parse_role_map(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    if (!item.empty()) {
      const auto eq = item.rfind('=');
      if (eq == std::string_view::npos) {
        return bad_config("oidc_role_map: '" + std::string(item) + "' is not value=role");
      }
      const auto value = trim(item.substr(0, eq));
      const auto role = trim(item.substr(eq + 1));
      if (value.empty() || role_rank(role) == 0) {
        return bad_config("oidc_role_map: '" + std::string(item) +
                          "' must map a value to admin, operator or viewer");
      }
      out.emplace_back(value, role);
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

Result<std::optional<OidcSettings>> oidc_settings_from(const Config& c) {
  if (c.oidc_issuer.empty()) return std::optional<OidcSettings>();
  OidcSettings s;
  s.issuer = c.oidc_issuer;
  s.client_id = c.oidc_client_id;
  s.client_secret = c.oidc_client_secret;
  s.redirect_url = c.oidc_redirect_url;
  if (!c.oidc_role_claim.empty()) s.role_claim = c.oidc_role_claim;
  if (!c.oidc_scopes.empty()) s.scopes = c.oidc_scopes;
  s.display_name = c.oidc_display_name;
  s.jwks_min_refresh = std::chrono::milliseconds(c.oidc_jwks_min_refresh_ms);
  if (s.client_id.empty() || s.redirect_url.empty()) {
    return bad_config("oidc_issuer is set: oidc_client_id and oidc_redirect_url are required too");
  }
  DP_ASSIGN_OR_RETURN(s.role_map, parse_role_map(c.oidc_role_map));
  if (s.scopes.find("openid") == std::string::npos) s.scopes = "openid " + s.scopes;
  if (s.display_name.empty()) s.display_name = "Single sign-on";
  return std::optional<OidcSettings>(std::move(s));
}

// ---- discovery ------------------------------------------------------------------------

Result<ProviderMetadata> parse_discovery(std::string_view text, std::string_view expected_issuer) {
  boost::system::error_code ec;
  const json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return provider_error("discovery document is not a JSON object");
  const auto& o = doc.get_object();
  ProviderMetadata m;
  m.issuer = str_or_empty(o, "issuer");
  if (m.issuer != expected_issuer) {
    return provider_error("discovery names issuer '" + m.issuer + "', expected '" +
                          std::string(expected_issuer) + "' exactly");
  }
  m.authorization_endpoint = str_or_empty(o, "authorization_endpoint");
  m.token_endpoint = str_or_empty(o, "token_endpoint");
  m.jwks_uri = str_or_empty(o, "jwks_uri");
  if (m.authorization_endpoint.empty() || m.token_endpoint.empty() || m.jwks_uri.empty()) {
    return provider_error(
        "discovery lacks authorization_endpoint, token_endpoint or jwks_uri");
  }
  if (const auto* methods = o.if_contains("token_endpoint_auth_methods_supported");
      methods != nullptr && methods->is_array()) {
    for (const auto& v : methods->get_array()) {
      if (v.is_string()) m.token_endpoint_auth_methods.emplace_back(v.get_string());
    }
  }
  return m;
}

// ---- keys -----------------------------------------------------------------------------

Result<Jwk> parse_jwk(const json::object& o) {
  Jwk k;
  k.kid = str_or_empty(o, "kid");
  k.kty = str_or_empty(o, "kty");
  k.alg = str_or_empty(o, "alg");
  k.use = str_or_empty(o, "use");
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return Error::internal("OSSL_PARAM_BLD_new failed");
  Result<std::shared_ptr<EVP_PKEY>> key = Error::invalid_argument("bad_jwk", "unsupported JWK");
  if (k.kty == "RSA") {
    auto n = bn_member(o, "n");
    auto e = bn_member(o, "e");
    if (!n.ok() || !e.ok()) {
      OSSL_PARAM_BLD_free(bld);
      return n.ok() ? e.error() : n.error();
    }
    if (BN_num_bits(n->get()) < 2048) {
      OSSL_PARAM_BLD_free(bld);
      return Error::invalid_argument("bad_jwk", "RSA keys under 2048 bits are refused");
    }
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n->get());
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e->get());
    key = key_from_params("RSA", bld);
  } else if (k.kty == "EC") {
    const auto* xs = str_member(o, "x");
    const auto* ys = str_member(o, "y");
    auto x = xs != nullptr ? base64url_decode(*xs) : std::nullopt;
    auto y = ys != nullptr ? base64url_decode(*ys) : std::nullopt;
    if (str_or_empty(o, "crv") != "P-256" || !x || !y || x->size() != 32 || y->size() != 32) {
      OSSL_PARAM_BLD_free(bld);
      return Error::invalid_argument("bad_jwk", "EC JWK must be P-256 with 32-byte x and y");
    }
    std::string point = "\x04" + *x + *y;
    static const char kGroup[] = "prime256v1";
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, kGroup, 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
    key = key_from_params("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  if (!key.ok()) return key.error();
  k.key = std::move(*key);
  return k;
}

JwksCache::JwksCache(Fetch fetch, std::chrono::milliseconds min_refresh, Now now)
    : fetch_(std::move(fetch)), min_refresh_(min_refresh), now_(std::move(now)) {}

int JwksCache::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

Status JwksCache::refresh_locked() {
  ++fetches_;
  fetched_at_ = now_();  // a failed fetch counts too: the rate limit protects the provider
  DP_ASSIGN_OR_RETURN(std::string body, fetch_());
  boost::system::error_code ec;
  const json::value doc = json::parse(body, ec);
  const json::array* arr = nullptr;
  if (!ec && doc.is_object()) {
    if (const auto* k = doc.get_object().if_contains("keys"); k != nullptr) arr = k->if_array();
  }
  if (arr == nullptr) return provider_error("JWKS is not a JSON object with a keys array");
  std::vector<Jwk> keys;
  for (const auto& v : *arr) {
    if (!v.is_object()) continue;
    auto k = parse_jwk(v.get_object());
    if (k.ok()) keys.push_back(std::move(*k));  // keys of other types are not ours to use
  }
  keys_ = std::move(keys);
  return Ok{};
}

std::optional<Jwk> JwksCache::find_locked(std::string_view kid, std::string_view alg) const {
  if (!kid.empty()) {
    for (const auto& k : keys_) {
      if (k.kid == kid) return k;
    }
    return std::nullopt;
  }
  // No kid: only unambiguous when exactly one key fits the algorithm.
  std::optional<Jwk> found;
  for (const auto& k : keys_) {
    if (key_fits(k, alg)) {
      if (found) return std::nullopt;
      found = k;
    }
  }
  return found;
}

Result<Jwk> JwksCache::key_for(std::string_view kid, std::string_view alg) {
  std::lock_guard lock(mu_);  // fetches are serialized: one refresh serves every waiter
  const auto now = now_();
  if (!fetched_at_ || now - *fetched_at_ >= kJwksMaxAge) DP_TRY(refresh_locked());
  auto key = find_locked(kid, alg);
  if (!key && now - *fetched_at_ >= min_refresh_) {
    // Perhaps the provider rotated its keys: look once more.
    DP_TRY(refresh_locked());
    key = find_locked(kid, alg);
  }
  if (!key) {
    return token_error("kid", "no signing key '" + std::string(kid) + "' in the provider's JWKS");
  }
  if (!key_fits(*key, alg)) {
    return token_error("alg", "key '" + key->kid + "' (" + key->kty + (key->alg.empty() ? "" : " ") +
                                  key->alg + ") cannot verify " + std::string(alg));
  }
  return *key;
}

// ---- ID tokens ------------------------------------------------------------------------

Result<boost::json::object> validate_id_token(std::string_view token, const IdTokenCheck& check,
                                              JwksCache& keys) {
  if (token.size() > kMaxTokenBytes) return token_error("format", "ID token too large");
  const auto d1 = token.find('.');
  const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return token_error("format", "ID token is not a compact JWS");
  }
  auto header_raw = base64url_decode(token.substr(0, d1));
  auto payload_raw = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto signature = base64url_decode(token.substr(d2 + 1));
  if (!header_raw || !payload_raw || !signature) {
    return token_error("format", "ID token is not valid base64url");
  }
  boost::system::error_code ec;
  const json::value header = json::parse(*header_raw, ec);
  if (ec || !header.is_object()) return token_error("format", "ID token header is not JSON");
  const auto& h = header.get_object();
  const std::string alg = str_or_empty(h, "alg");
  // Pinned: only the asymmetric algorithms a provider's JWKS can back. `none` and HS*
  // (a MAC keyed with the client secret, or a public key misused as one) never pass.
  if (alg != "RS256" && alg != "ES256") {
    return token_error("alg", "ID token algorithm '" + alg + "' is not accepted (RS256, ES256)");
  }
  if (h.contains("crit")) return token_error("format", "ID token has critical extensions");
  const auto* kid_v = h.if_contains("kid");
  if (kid_v != nullptr && !kid_v->is_string()) return token_error("format", "kid is not a string");
  const std::string kid = kid_v != nullptr ? std::string(kid_v->get_string()) : std::string();

  DP_ASSIGN_OR_RETURN(Jwk key, keys.key_for(kid, alg));
  if (!verify_signature(key, alg, token.substr(0, d2), *signature)) {
    return token_error("signature", "ID token signature does not verify");
  }

  const json::value payload = json::parse(*payload_raw, ec);
  if (ec || !payload.is_object()) return token_error("format", "ID token payload is not JSON");
  const auto& claims = payload.get_object();

  if (str_or_empty(claims, "iss") != check.issuer) {
    return token_error("iss", "ID token issuer '" + str_or_empty(claims, "iss") +
                                  "' is not the configured issuer");
  }
  const auto* aud = claims.if_contains("aud");
  std::vector<std::string> audiences;
  if (aud != nullptr && aud->is_string()) {
    audiences.emplace_back(aud->get_string());
  } else if (aud != nullptr && aud->is_array()) {
    for (const auto& a : aud->get_array()) {
      if (!a.is_string()) return token_error("aud", "ID token aud holds a non-string");
      audiences.emplace_back(a.get_string());
    }
  }
  if (std::find(audiences.begin(), audiences.end(), check.client_id) == audiences.end()) {
    return token_error("aud", "ID token is not meant for this client");
  }
  const auto* azp = claims.if_contains("azp");
  if (audiences.size() > 1 && azp == nullptr) {
    return token_error("azp", "ID token has several audiences and no azp");
  }
  if (azp != nullptr && (!azp->is_string() || azp->get_string() != check.client_id)) {
    return token_error("azp", "ID token azp is not this client");
  }
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       check.now.time_since_epoch()).count();
  const auto skew = check.skew.count();
  const auto exp = int_claim(claims, "exp");
  if (!exp) return token_error("exp", "ID token has no exp");
  if (now > *exp + skew) return token_error("exp", "ID token has expired");
  const auto iat = int_claim(claims, "iat");
  if (!iat) return token_error("iat", "ID token has no iat");
  if (*iat > now + skew) return token_error("iat", "ID token was issued in the future");
  if (const auto nbf = int_claim(claims, "nbf"); nbf && *nbf > now + skew) {
    return token_error("nbf", "ID token is not valid yet");
  }
  if (claims.contains("nbf") && !int_claim(claims, "nbf")) {
    return token_error("nbf", "ID token nbf is not a number");
  }
  const auto* nonce = str_member(claims, "nonce");
  if (nonce == nullptr || !constant_equal(*nonce, check.nonce)) {
    return token_error("nonce", "ID token nonce does not match this login");
  }
  const auto* sub = str_member(claims, "sub");
  if (sub == nullptr || sub->empty()) return token_error("sub", "ID token has no sub");
  return claims;
}

Result<std::string> map_role(const json::object& claims, std::string_view claim,
                             const std::vector<std::pair<std::string, std::string>>& role_map) {
  std::vector<std::string> values;
  if (const auto* v = claims.if_contains(claim); v != nullptr) {
    if (v->is_string()) {
      values.emplace_back(v->get_string());
    } else if (v->is_array()) {
      for (const auto& x : v->get_array()) {
        if (x.is_string()) values.emplace_back(x.get_string());
      }
    }
  }
  std::string best;
  for (const auto& [value, role] : role_map) {
    const bool hit =
        value == "*" || std::find(values.begin(), values.end(), value) != values.end();
    if (hit && role_rank(role) > role_rank(best)) best = role;
  }
  if (best.empty()) {
    return Error{ErrorCode::kPermissionDenied, "no_role",
                 "your identity provider account maps to no devplane role (claim '" +
                     std::string(claim) + "')",
                 nullptr};
  }
  return best;
}

// ---- pending logins -------------------------------------------------------------------

PendingLogins::PendingLogins(std::chrono::seconds ttl, std::size_t cap, Now now)
    : ttl_(ttl), cap_(std::max<std::size_t>(cap, 1)), now_(std::move(now)) {}

void PendingLogins::put(const std::string& state, PendingLogin login) {
  std::lock_guard lock(mu_);
  const auto now = now_();
  login.expires = now + ttl_;
  while (!by_expiry_.empty() &&
         (by_expiry_.begin()->first <= now || by_state_.size() >= cap_)) {
    by_state_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
  by_expiry_.emplace(login.expires, state);
  by_state_[state] = std::move(login);
}

std::optional<PendingLogin> PendingLogins::take(const std::string& state) {
  std::lock_guard lock(mu_);
  auto it = by_state_.find(state);
  if (it == by_state_.end()) return std::nullopt;
  PendingLogin login = std::move(it->second);
  by_state_.erase(it);
  auto [lo, hi] = by_expiry_.equal_range(login.expires);
  for (auto e = lo; e != hi; ++e) {
    if (e->second == state) {
      by_expiry_.erase(e);
      break;
    }
  }
  if (login.expires <= now_()) return std::nullopt;
  return login;
}

std::size_t PendingLogins::size() const {
  std::lock_guard lock(mu_);
  return by_state_.size();
}

// ---- the flow -------------------------------------------------------------------------

OidcService::OidcService(OidcSettings settings, SignIn sign_in, HttpFetch fetch)
    : settings_(std::move(settings)),
      sign_in_(std::move(sign_in)),
      fetch_(std::move(fetch)),
      jwks_([this] { return fetch_jwks(); }, settings_.jwks_min_refresh),
      pending_(settings_.login_ttl, settings_.max_pending_logins) {}

Result<ProviderMetadata> OidcService::metadata() {
  std::lock_guard lock(meta_mu_);
  if (meta_ && Clock::now() - meta_at_ < kMetadataMaxAge) return *meta_;
  std::string base = settings_.issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  http::ClientRequest req;
  req.url = base + "/.well-known/openid-configuration";
  req.headers = {{"Accept", "application/json"}};
  req.timeout = settings_.http_timeout;
  req.max_response_bytes = 256 * 1024;
  auto res = fetch_(req);
  if (!res.ok()) return provider_error("OpenID discovery failed: " + res.error().message);
  if (res->status != 200) {
    return provider_error("OpenID discovery answered " + std::to_string(res->status));
  }
  DP_ASSIGN_OR_RETURN(ProviderMetadata m, parse_discovery(res->body, settings_.issuer));
  meta_ = m;
  meta_at_ = Clock::now();
  return m;
}

Result<std::string> OidcService::fetch_jwks() {
  DP_ASSIGN_OR_RETURN(ProviderMetadata m, metadata());
  http::ClientRequest req;
  req.url = m.jwks_uri;
  req.headers = {{"Accept", "application/json"}};
  req.timeout = settings_.http_timeout;
  req.max_response_bytes = 256 * 1024;
  auto res = fetch_(req);
  if (!res.ok()) return provider_error("JWKS fetch failed: " + res.error().message);
  if (res->status != 200) return provider_error("JWKS answered " + std::to_string(res->status));
  return std::move(res->body);
}

Result<LoginStart> OidcService::start_login() {
  DP_ASSIGN_OR_RETURN(ProviderMetadata m, metadata());
  LoginStart out;
  out.state = random_token();
  PendingLogin login;
  login.nonce = random_token();
  login.code_verifier = random_token();  // 43 characters of base64url, as RFC 7636 wants
  out.location = append_query(m.authorization_endpoint,
                              {{"response_type", "code"},
                               {"client_id", settings_.client_id},
                               {"redirect_uri", settings_.redirect_url},
                               {"scope", settings_.scopes},
                               {"state", out.state},
                               {"nonce", login.nonce},
                               {"code_challenge", pkce_challenge(login.code_verifier)},
                               {"code_challenge_method", "S256"}});
  pending_.put(out.state, std::move(login));
  return out;
}

Result<std::string> OidcService::exchange_code(const ProviderMetadata& m, std::string_view code,
                                               std::string_view verifier) {
  http::Fields form = {{"grant_type", "authorization_code"},
                       {"code", std::string(code)},
                       {"redirect_uri", settings_.redirect_url},
                       {"code_verifier", std::string(verifier)}};
  http::ClientRequest req;
  req.method = "POST";
  req.url = m.token_endpoint;
  req.timeout = settings_.http_timeout;
  req.max_response_bytes = 256 * 1024;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  const auto& methods = m.token_endpoint_auth_methods;
  const auto supports = [&methods](std::string_view x) {
    return std::find(methods.begin(), methods.end(), x) != methods.end();
  };
  if (settings_.client_secret.empty()) {
    form.emplace_back("client_id", settings_.client_id);
  } else if (methods.empty() || supports("client_secret_basic")) {
    // RFC 6749 2.3.1: both parts are form-encoded before base64.
    req.headers.emplace_back(
        "Authorization", "Basic " + base64_std(http::form_encode(settings_.client_id) + ":" +
                                               http::form_encode(settings_.client_secret)));
  } else if (supports("client_secret_post")) {
    form.emplace_back("client_id", settings_.client_id);
    form.emplace_back("client_secret", settings_.client_secret);
  } else {
    return provider_error("the provider supports neither client_secret_basic nor _post");
  }
  req.body = form_body(form);
  auto res = fetch_(req);
  if (!res.ok()) return provider_error("token endpoint failed: " + res.error().message);
  boost::system::error_code ec;
  const json::value doc = json::parse(res->body, ec);
  const json::object* o = !ec ? doc.if_object() : nullptr;
  if (res->status != 200) {
    json::object details{{"status", res->status}};
    if (o != nullptr) details["error"] = str_or_empty(*o, "error");
    return unauthenticated("token_exchange_failed", "the provider refused the authorization code",
                           std::move(details));
  }
  if (o == nullptr || str_member(*o, "id_token") == nullptr) {
    return provider_error("token endpoint answered without an id_token");
  }
  return str_or_empty(*o, "id_token");
}

Result<boost::json::object> OidcService::finish_login(const http::Fields& query,
                                                      std::string_view cookie_state,
                                                      const http::Request& request) {
  const auto state = field(query, "state");
  // The state is consumed first, whatever happens next: it can never be replayed.
  std::optional<PendingLogin> login;
  if (state && !state->empty()) login = pending_.take(std::string(*state));
  if (const auto err = field(query, "error")) {
    return unauthenticated("oidc_denied", "the identity provider refused the sign-in",
                           json::object{{"error", *err}});
  }
  if (!state || !login) {
    return unauthenticated("invalid_state", "unknown, used or expired sign-in state; start again");
  }
  if (!constant_equal(*state, cookie_state)) {
    return unauthenticated("state_mismatch",
                           "this sign-in was started in another browser; start again");
  }
  const auto code = field(query, "code");
  if (!code || code->empty()) return unauthenticated("invalid_state", "callback without a code");
  DP_ASSIGN_OR_RETURN(ProviderMetadata m, metadata());
  // RFC 9207: a provider that names itself must be ours (mix-up defence).
  if (const auto iss = field(query, "iss"); iss && *iss != m.issuer) {
    return unauthenticated("invalid_state", "the callback names another issuer");
  }
  DP_ASSIGN_OR_RETURN(std::string id_token, exchange_code(m, *code, login->code_verifier));
  IdTokenCheck check;
  check.issuer = m.issuer;
  check.client_id = settings_.client_id;
  check.nonce = login->nonce;
  check.skew = settings_.clock_skew;
  check.now = std::chrono::system_clock::now();
  DP_ASSIGN_OR_RETURN(json::object claims, validate_id_token(id_token, check, jwks_));
  DP_ASSIGN_OR_RETURN(std::string role, map_role(claims, settings_.role_claim, settings_.role_map));
  ExternalIdentity id;
  id.issuer = m.issuer;
  id.subject = str_or_empty(claims, "sub");
  id.preferred_username = str_or_empty(claims, "preferred_username");
  id.email = str_or_empty(claims, "email");
  if (id.preferred_username.empty()) id.preferred_username = id.email;
  if (id.preferred_username.empty()) id.preferred_username = id.subject;
  id.display_name = str_or_empty(claims, "name");
  id.role = std::move(role);
  return sign_in_(id, request);
}

}  // namespace dp::auth
