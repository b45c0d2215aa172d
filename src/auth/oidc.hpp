// OpenID Connect single sign-on: the authorization-code flow with PKCE (S256) against any
// standards-compliant provider named by its issuer URL (docs/security.md, "Single sign-on").
//
// Pieces, each usable alone (and unit-tested without network):
//  - `parse_discovery`: the provider's /.well-known/openid-configuration; its `issuer` must
//    equal the configured issuer exactly.
//  - `JwksCache`: the provider's signing keys (JWK -> OpenSSL EVP_PKEY), fetched on first
//    use, refetched when older than an hour, and refetched once when a token names an
//    unknown `kid` (key rotation), at most once per `min_refresh` so that tokens with
//    random kids cannot make devplane hammer the provider.
//  - `validate_id_token`: RS256 / ES256 only (the algorithm must match the key's type and
//    the key's own `alg`; `none`, HS* and everything else are refused), signature verified
//    with OpenSSL EVP, then iss, aud (+ azp when several audiences or when present), exp,
//    iat, nbf (with a small clock skew), nonce and sub.
//  - `map_role`: a claim (default `groups`) to a devplane role through `oidc_role_map`.
//  - `PendingLogins`: state -> {nonce, PKCE verifier}, single use, 10-minute TTL, capped.
//    In memory: in a multi-node deployment the callback must reach the node that started
//    the login (sticky sessions on the load balancer); otherwise it is refused as an
//    unknown state and the user simply signs in again.
//  - `OidcService`: ties them together for the routes in oidc_routes.cpp.
//
// Errors: kUnauthenticated (reason `invalid_id_token` with details.check naming the
// failed check, `invalid_state`, `state_mismatch`, `oidc_denied`, `token_exchange_failed`),
// kPermissionDenied `no_role`, kUnavailable `oidc_provider_unavailable` (discovery, JWKS or
// token endpoint unreachable or malformed), kNotFound `oidc_not_configured`.
// Thread safety: JwksCache, PendingLogins and OidcService are safe from any thread; their
// network calls block, so call them from the blocking pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "auth/external_identity.hpp"
#include "core/result.hpp"
#include "http/client.hpp"
#include "http/message.hpp"

struct evp_pkey_st;

namespace dp {
struct Config;
}

namespace dp::http {
class Router;
}

namespace dp::auth {

// ---- configuration --------------------------------------------------------------------

struct OidcSettings {
  std::string issuer;
  std::string client_id;
  std::string client_secret;  // empty: a public client (PKCE only)
  std::string redirect_url;   // https://devplane.example.com/api/v1/auth/oidc/callback
  std::string role_claim = "groups";
  // claim value -> role, in config order; the value "*" matches everybody (a default role).
  std::vector<std::pair<std::string, std::string>> role_map;
  std::string scopes = "openid profile email";
  std::string display_name;  // shown on the dashboard's sign-in button
  std::chrono::milliseconds jwks_min_refresh{10'000};
  std::chrono::seconds clock_skew{60};
  std::chrono::seconds login_ttl{600};
  std::size_t max_pending_logins = 10'000;
  std::chrono::milliseconds http_timeout{10'000};
};

// Settings from the effective config; nullopt when `oidc_issuer` is empty (SSO off).
// kInvalidArgument `bad_config` when the issuer is set but client id or redirect URL is not.
Result<std::optional<OidcSettings>> oidc_settings_from(const Config& config);

// "devplane-admins=admin, devplane-ops=operator, *=viewer" -> pairs. Roles must be admin,
// operator or viewer. kInvalidArgument `bad_config` naming the bad item.
Result<std::vector<std::pair<std::string, std::string>>> parse_role_map(std::string_view text);

// ---- discovery ------------------------------------------------------------------------

struct ProviderMetadata {
  std::string issuer;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string jwks_uri;
  std::vector<std::string> token_endpoint_auth_methods;  // empty: client_secret_basic
};

// kUnavailable `oidc_provider_unavailable` when malformed or for another issuer.
Result<ProviderMetadata> parse_discovery(std::string_view json, std::string_view expected_issuer);

// ---- keys -----------------------------------------------------------------------------

// One verification key from a JWKS. Immutable; shares the OpenSSL key.
struct Jwk {
  std::string kid;
  std::string kty;  // "RSA" | "EC"
  std::string alg;  // may be empty
  std::string use;  // may be empty
  std::shared_ptr<evp_pkey_st> key;
};

// A JWK of kty RSA (>= 2048 bits) or EC P-256; other keys are kInvalidArgument.
Result<Jwk> parse_jwk(const boost::json::object& jwk);

class JwksCache {
 public:
  using Fetch = std::function<Result<std::string>()>;  // the JWKS document
  using Now = std::function<std::chrono::steady_clock::time_point()>;

  explicit JwksCache(Fetch fetch, std::chrono::milliseconds min_refresh = std::chrono::seconds(10),
                     Now now = [] { return std::chrono::steady_clock::now(); });

  // The key a token signed with `alg` and `kid` (may be empty) must verify against.
  // kUnauthenticated `invalid_id_token` (check `kid`) when no fitting key exists even after
  // the allowed refetch; kUnavailable when the JWKS cannot be fetched.
  Result<Jwk> key_for(std::string_view kid, std::string_view alg);
  int fetches() const;

 private:
  Status refresh_locked();
  std::optional<Jwk> find_locked(std::string_view kid, std::string_view alg) const;

  Fetch fetch_;
  std::chrono::milliseconds min_refresh_;
  Now now_;
  mutable std::mutex mu_;
  std::vector<Jwk> keys_;                                    // GUARDED_BY(mu_)
  std::optional<std::chrono::steady_clock::time_point> fetched_at_;  // GUARDED_BY(mu_)
  int fetches_ = 0;                                          // GUARDED_BY(mu_)
};

// ---- ID tokens ------------------------------------------------------------------------

struct IdTokenCheck {
  std::string issuer;
  std::string client_id;
  std::string nonce;
  std::chrono::seconds skew{60};
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// The token's claims when every check passes.
Result<boost::json::object> validate_id_token(std::string_view token, const IdTokenCheck& check,
                                              JwksCache& keys);

// The most privileged role whose claim value the claims carry (the claim may be a string or
// an array of strings). kPermissionDenied `no_role` when none matches and there is no "*".
Result<std::string> map_role(const boost::json::object& claims, std::string_view claim,
                             const std::vector<std::pair<std::string, std::string>>& role_map);

// ---- pending logins -------------------------------------------------------------------

struct PendingLogin {
  std::string nonce;
  std::string code_verifier;
  std::chrono::steady_clock::time_point expires;
};

class PendingLogins {
 public:
  using Now = JwksCache::Now;
  PendingLogins(std::chrono::seconds ttl, std::size_t cap,
                Now now = [] { return std::chrono::steady_clock::now(); });
  // Stores a login; when full, expired entries go first, then the oldest.
  void put(const std::string& state, PendingLogin login);
  // Removes and returns the login for `state`; nullopt when unknown, used or expired.
  std::optional<PendingLogin> take(const std::string& state);
  std::size_t size() const;

 private:
  std::chrono::seconds ttl_;
  std::size_t cap_;
  Now now_;
  mutable std::mutex mu_;
  std::map<std::string, PendingLogin> by_state_;  // GUARDED_BY(mu_)
  std::multimap<std::chrono::steady_clock::time_point, std::string> by_expiry_;  // GUARDED_BY(mu_)
};

// ---- the flow -------------------------------------------------------------------------

// Signs the person in locally (AuthService::sign_in_external) and returns the token pair.
using SignIn =
    std::function<Result<boost::json::object>(const ExternalIdentity&, const http::Request&)>;
using HttpFetch = std::function<Result<http::ClientResponse>(const http::ClientRequest&)>;

struct LoginStart {
  std::string location;  // the provider's authorization URL
  std::string state;
};

class OidcService {
 public:
  OidcService(OidcSettings settings, SignIn sign_in, HttpFetch fetch = http::fetch);

  const OidcSettings& settings() const { return settings_; }

  // A fresh state, nonce and PKCE pair; kUnavailable when discovery fails.
  Result<LoginStart> start_login();
  // The callback: `query` is the callback's query (code, state, iss or error),
  // `cookie_state` the state cookie the browser sent. Returns the token pair from SignIn.
  Result<boost::json::object> finish_login(const http::Fields& query,
                                           std::string_view cookie_state,
                                           const http::Request& request);

  // For tests and diagnostics.
  JwksCache& jwks() { return jwks_; }
  PendingLogins& pending() { return pending_; }

 private:
  Result<ProviderMetadata> metadata();
  Result<std::string> fetch_jwks();
  Result<std::string> exchange_code(const ProviderMetadata& meta, std::string_view code,
                                    std::string_view verifier);

  OidcSettings settings_;
  SignIn sign_in_;
  HttpFetch fetch_;
  std::mutex meta_mu_;
  std::optional<ProviderMetadata> meta_;  // GUARDED_BY(meta_mu_)
  std::chrono::steady_clock::time_point meta_at_;  // GUARDED_BY(meta_mu_)
  JwksCache jwks_;
  PendingLogins pending_;
};

// Name of the cookie that binds a login to the browser that started it.
inline constexpr std::string_view kStateCookie = "dp_oidc_state";

// GET /api/v1/auth/oidc, /api/v1/auth/oidc/login, /api/v1/auth/oidc/callback (public).
// `service` may be null (SSO not configured): then /oidc says so and the others are 404.
void register_oidc_routes(http::Router& router, OidcService* service);

// Helpers shared with the tests, in their own namespace so that they never clash with the
// lookalikes of auth/crypto.hpp (dp_oidc does not depend on dp_auth).
namespace oidc {
std::string base64url_encode(std::string_view bytes);                // no padding
std::optional<std::string> base64url_decode(std::string_view text);  // strict: no padding
std::string random_token(std::size_t bytes = 32);  // base64url of fresh random bytes
std::string pkce_challenge(std::string_view verifier);  // base64url(SHA-256(verifier))
}  // namespace oidc

}  // namespace dp::auth
