// AuthService: sign-in (password and external), sessions (access JWT + rotating refresh
// token), API keys, users, and who a bearer credential belongs to.
//
// Every sign-in success or failure, logout, refresh-token reuse, and user or key change is
// handed to the audit Recorder (when one is set). No method logs or returns a password, a
// key's secret part after creation, or a refresh token other than the one it issues.
// All methods may block on the store; call them from the blocking pool. Safe from any
// thread.
//
// Errors: 401 `unauthenticated` (bad credentials), 403 `account_disabled` /
// `permission_denied`, 429 `rate_limited` / `account_locked` (details.retryAfterSeconds),
// 404, 409 `conflict` / `last_admin`, 422 `weak_password`, store errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "audit/recorder.hpp"
#include "auth/caller_cache.hpp"
#include "auth/external_identity.hpp"
#include "auth/jwt.hpp"
#include "auth/password.hpp"
#include "auth/rate_limiter.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "http/message.hpp"
#include "model/identity.hpp"
#include "store/store.hpp"

namespace dp::auth {

struct AuthOptions {
  JwtOptions jwt;
  std::chrono::seconds refresh_ttl{7 * 86'400};
  PasswordCost password_cost = PasswordCost::kModerate;
  // Persisted lockout: this many consecutive failures lock the account for the duration.
  std::int64_t lockout_threshold = 5;
  std::chrono::seconds lockout_duration{15 * 60};
  // In-memory sliding windows of failed sign-ins (also for unknown usernames).
  std::size_t failures_per_username = 10;
  std::size_t failures_per_address = 30;
  std::chrono::seconds failure_window{15 * 60};
  std::function<std::int64_t()> now_ms;  // empty: the system clock
  // How long who-a-token-is stays cached (0: not at all); changes made through this process
  // take effect at once, changes made elsewhere (other nodes, the CLI) within this time.
  std::chrono::milliseconds caller_cache_ttl{1000};
};

// AuthOptions from the effective config and the HS256 secret.
AuthOptions auth_options_from(const Config& config, std::string jwt_secret);

// Where a request came from, for rate limits and the audit trail.
struct RequestContext {
  std::string source_address;
  std::string request_id;
};

struct NewUser {
  std::string username;
  std::string display_name;
  std::string role;
  std::string password;
};

struct UserPatch {
  std::optional<std::string> display_name;
  std::optional<std::string> role;
  std::optional<std::string> status;
};

struct NewApiKey {
  std::string name;
  std::string role;
  std::string agent_id;                   // empty: not bound
  std::optional<std::int64_t> expires_at;  // epoch ms
};

struct CreatedApiKey {
  model::ApiKey key;
  std::string secret;  // the whole `dp_...` key: returned once, never stored
};

// The caller a CLI command acts as.
http::Caller system_caller(std::string name = "cli");

class AuthService {
 public:
  AuthService(store::Store& store, AuthOptions options);

  // Optional; set before use.
  void set_recorder(audit::Recorder* recorder) { recorder_ = recorder; }

  // {accessToken, tokenType, expiresIn, refreshToken, refreshExpiresIn, user}
  Result<boost::json::object> login(std::string_view username, std::string_view password,
                                    const RequestContext& ctx);
  // Rotates `refresh_token`: returns a new pair; a token that was already rotated revokes
  // its whole family (reuse means it was stolen) and is refused.
  Result<boost::json::object> refresh(std::string_view refresh_token, const RequestContext& ctx);
  // Revokes the family of `refresh_token` (it must be the caller's), or every session of
  // the caller when none is given.
  Status logout(const http::Caller& caller, std::optional<std::string_view> refresh_token,
                const RequestContext& ctx);
  // Finds or creates the SSO user for (issuer, subject), applies the mapped role and
  // display name, and returns the same pair as `login`. 403 `account_disabled` when the
  // local user was disabled.
  Result<boost::json::object> sign_in_external(const ExternalIdentity& identity,
                                               const RequestContext& ctx = {});

  // Who `token` (a JWT access token or a `dp_...` API key) belongs to; 401 otherwise.
  Result<http::Caller> authenticate_token(std::string_view token);

  // Users.
  Result<std::vector<model::User>> list_users();
  Result<model::User> get_user(std::string_view id);
  Result<model::User> find_user(std::string_view username);
  Result<model::User> create_user(NewUser user, const http::Caller& actor,
                                  const RequestContext& ctx);
  Result<model::User> update_user(std::string_view id, const UserPatch& patch,
                                  const http::Caller& actor, const RequestContext& ctx);
  // Sets a new password, clears any lockout and ends the user's sessions.
  Status set_password(std::string_view id, std::string_view password, const http::Caller& actor,
                      const RequestContext& ctx);

  // API keys.
  Result<std::vector<model::ApiKey>> list_api_keys();
  Result<CreatedApiKey> create_api_key(NewApiKey spec, const http::Caller& actor,
                                       const RequestContext& ctx);
  Status revoke_api_key(std::string_view id, const http::Caller& actor, const RequestContext& ctx);

  // First run: when no active admin exists and no user is named "admin", creates "admin"
  // with `password` (or a random one). Returns the password it set when it generated one,
  // "" when it used the given one, nullopt when nothing was created.
  Result<std::optional<std::string>> ensure_admin(std::optional<std::string> password);

  const AuthOptions& options() const noexcept { return options_; }

 private:
  std::int64_t now() const;
  Result<boost::json::object> issue_session(const model::User& user,
                                            const std::string& family_id);
  void audit(std::string action, std::string outcome, const http::Caller& actor,
             std::string target, const RequestContext& ctx, boost::json::object details = {});

  store::Store& store_;
  AuthOptions options_;
  JwtCodec jwt_;
  SlidingWindowLimiter by_username_;
  SlidingWindowLimiter by_address_;
  audit::Recorder* recorder_ = nullptr;
  CallerCache callers_;
};

// JSON of a user / a key for the API (never the hash).
boost::json::object to_json(const model::User& user);
boost::json::object to_json(const model::ApiKey& key, std::int64_t now_ms);

// Usernames: 2..64 of [a-z0-9._@-], starting with a letter or digit.
bool valid_username(std::string_view username);

}  // namespace dp::auth
