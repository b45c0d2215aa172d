#include "auth/auth_service.hpp"

#include <cctype>

#include <boost/json/array.hpp>

#include "auth/api_key.hpp"
#include "auth/caller_cache.hpp"
#include "auth/crypto.hpp"
#include "auth/policy.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace dp::auth {
namespace {

constexpr std::size_t kMaxRefreshTokenBytes = 256;
// API keys record their last use at most this often (a write per request would be waste).
constexpr std::int64_t kTouchEveryMs = 60'000;

Error with_retry(Error e, std::int64_t retry_ms) {
  const std::int64_t seconds = std::max<std::int64_t>(1, (retry_ms + 999) / 1000);
  e.details = boost::json::object{{"retryAfterSeconds", seconds}};
  return e;
}

Error rate_limited(std::int64_t retry_ms) {
  return with_retry(Error{ErrorCode::kResourceExhausted, "rate_limited",
                          "too many failed sign-ins; try again later", {}},
                    retry_ms);
}

Error account_locked(std::int64_t retry_ms) {
  return with_retry(Error{ErrorCode::kResourceExhausted, "account_locked",
                          "this account is locked after repeated failed sign-ins; try again "
                          "later or ask an admin to set a new password",
                          {}},
                    retry_ms);
}

Error account_disabled() {
  return Error{ErrorCode::kPermissionDenied, "account_disabled", "this account is disabled", {}};
}

Error permission_denied(std::string message) {
  return Error{ErrorCode::kPermissionDenied, "permission_denied", std::move(message), {}};
}

Error bad_credentials() { return unauthenticated("wrong username or password"); }

http::Caller user_caller(const model::User& u) {
  http::Caller c;
  c.id = u.id;
  c.name = u.username;
  c.kind = "user";
  c.role = u.role;
  return c;
}

http::Caller anonymous(std::string_view tried_name) {
  http::Caller c;
  c.name = std::string(tried_name.substr(0, 64));
  c.kind = "anonymous";
  return c;
}

boost::json::value opt_time(const std::optional<std::int64_t>& ms) {
  return ms ? boost::json::value(clock::format_iso8601(*ms)) : boost::json::value(nullptr);
}

// A local username from what the identity provider suggests: lower-cased, disallowed
// characters replaced, bounded.
std::string username_hint(const ExternalIdentity& id) {
  std::string base = id.preferred_username.empty() ? id.email : id.preferred_username;
  std::string out;
  for (char c : base) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '@' || c == '-';
    out.push_back(ok ? c : '-');
    if (out.size() >= 56) break;
  }
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.front()))) out.erase(0, 1);
  if (out.size() < 2) out = "user";
  return out;
}

}  // namespace

AuthOptions auth_options_from(const Config& config, std::string jwt_secret) {
  AuthOptions o;
  o.jwt.secret = std::move(jwt_secret);
  o.jwt.access_ttl = std::chrono::seconds(config.access_token_ttl_s);
  o.refresh_ttl = std::chrono::seconds(config.refresh_token_ttl_s);
  o.password_cost =
      config.password_hash_cost == "interactive" ? PasswordCost::kInteractive : PasswordCost::kModerate;
  return o;
}

http::Caller system_caller(std::string name) {
  http::Caller c;
  c.id = "system";
  c.name = std::move(name);
  c.kind = "system";
  c.role = "admin";
  return c;
}

bool valid_username(std::string_view u) {
  if (u.size() < 2 || u.size() > 64) return false;
  for (char c : u) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '@' || c == '-';
    if (!ok) return false;
  }
  return std::isalnum(static_cast<unsigned char>(u.front())) != 0;
}

boost::json::object to_json(const model::User& u) {
  return {{"id", u.id},
          {"username", u.username},
          {"displayName", u.display_name},
          {"role", u.role},
          {"status", u.status},
          {"sso", !u.external_issuer.empty()},
          {"lockedUntil", opt_time(u.locked_until)},
          {"lastLoginAt", opt_time(u.last_login_at)},
          {"createdAt", clock::format_iso8601(u.created_at)},
          {"updatedAt", clock::format_iso8601(u.updated_at)}};
}

boost::json::object to_json(const model::ApiKey& k, std::int64_t now_ms) {
  const char* status = k.revoked_at                                ? "revoked"
                       : (k.expires_at && *k.expires_at <= now_ms) ? "expired"
                                                                   : "active";
  return {{"id", k.id},
          {"name", k.name},
          {"prefix", k.prefix},
          {"role", k.role},
          {"agentId", k.agent_id.empty() ? boost::json::value(nullptr) : boost::json::value(k.agent_id)},
          {"createdBy", k.created_by},
          {"status", status},
          {"expiresAt", opt_time(k.expires_at)},
          {"lastUsedAt", opt_time(k.last_used_at)},
          {"revokedAt", opt_time(k.revoked_at)},
          {"createdAt", clock::format_iso8601(k.created_at)}};
}

AuthService::AuthService(store::Store& store, AuthOptions options)
    : store_(store),
      options_(std::move(options)),
      jwt_(options_.jwt),
      by_username_(options_.failures_per_username,
                   std::chrono::duration_cast<std::chrono::milliseconds>(options_.failure_window).count()),
      by_address_(options_.failures_per_address,
                  std::chrono::duration_cast<std::chrono::milliseconds>(options_.failure_window).count()),
      callers_(options_.caller_cache_ttl.count(), 4096) {
  ensure_sodium();
}

std::int64_t AuthService::now() const { return options_.now_ms ? options_.now_ms() : clock::now_ms(); }

void AuthService::audit(std::string action, std::string outcome, const http::Caller& actor,
                        std::string target, const RequestContext& ctx,
                        boost::json::object details) {
  if (recorder_ == nullptr) return;
  audit::Entry e;
  e.actor_id = actor.kind == "anonymous" ? "" : actor.id;
  e.actor_name = actor.name;
  e.actor_kind = actor.kind.empty() ? "anonymous" : actor.kind;
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = std::move(outcome);
  e.correlation_id = ctx.request_id;
  e.source_address = ctx.source_address;
  e.details = std::move(details);
  recorder_->record(std::move(e));
}

Result<boost::json::object> AuthService::issue_session(const model::User& user,
                                                       const std::string& family_id) {
  const std::int64_t t = now();
  const std::string refresh = base64url_encode(random_bytes(32));
  model::RefreshToken row;
  row.id = ids::uuid_v7();
  row.user_id = user.id;
  row.family_id = family_id;
  row.token_hash = sha256_hex(refresh);
  row.created_at = t;
  row.expires_at = t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.refresh_ttl).count();
  DP_TRY(store_.write([&](store::Tx& tx) { return tx.refresh_tokens().insert(row); }));
  AccessClaims claims;
  claims.subject = user.id;
  claims.name = user.username;
  claims.role = user.role;
  DP_ASSIGN_OR_RETURN(std::string access, jwt_.issue(claims, t / 1000));
  return boost::json::object{{"accessToken", access},
                             {"tokenType", "Bearer"},
                             {"expiresIn", options_.jwt.access_ttl.count()},
                             {"refreshToken", refresh},
                             {"refreshExpiresIn", options_.refresh_ttl.count()},
                             {"user", to_json(user)}};
}

Result<boost::json::object> AuthService::login(std::string_view username,
                                               std::string_view password,
                                               const RequestContext& ctx) {
  const std::int64_t t = now();
  const std::string user_key(username.substr(0, 128));
  const std::string addr_key = ctx.source_address;
  auto refuse = [&](Error e, std::string why) -> Error {
    audit("auth.login", "failure", anonymous(username), "", ctx, {{"reason", why}});
    return e;
  };
  if (auto ms = by_address_.retry_after_ms(addr_key, t); ms > 0) {
    return refuse(rate_limited(ms), "rate_limited_address");
  }
  if (auto ms = by_username_.retry_after_ms(user_key, t); ms > 0) {
    return refuse(rate_limited(ms), "rate_limited_username");
  }
  auto note_failure = [&] {
    by_address_.add(addr_key, t);
    by_username_.add(user_key, t);
  };

  std::optional<model::User> found;
  Status s = store_.read([&](store::Tx& tx) -> Status {
    auto u = tx.users().find_by_username(username);
    if (u.ok()) found = std::move(*u);
    return u.ok() || u.error().code == ErrorCode::kNotFound ? Status(Ok{}) : Status(std::move(u).error());
  });
  if (!s.ok()) return std::move(s).error();
  if (!found || found->password_hash.empty()) {
    burn_password_check(password, options_.password_cost);
    note_failure();
    return refuse(bad_credentials(), found ? "no_password" : "unknown_user");
  }
  if (found->locked_until && *found->locked_until > t) {
    note_failure();
    return refuse(account_locked(*found->locked_until - t), "account_locked");
  }
  if (!verify_password(password, found->password_hash)) {
    note_failure();
    // Count under a write so concurrent failures all count.
    bool locked = false;
    std::int64_t until = 0;
    Status w = store_.write([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(model::User u, tx.users().get(found->id));
      u.failed_logins += 1;
      if (u.failed_logins >= options_.lockout_threshold) {
        until = t + std::chrono::duration_cast<std::chrono::milliseconds>(options_.lockout_duration).count();
        u.locked_until = until;
        u.failed_logins = 0;
        locked = true;
      }
      u.updated_at = t;
      return tx.users().update(u);
    });
    if (!w.ok()) log::global().warn("cannot record a failed sign-in", {{"error", w.error().message}});
    if (locked) {
      audit("auth.lockout", "success", user_caller(*found), "user:" + found->id, ctx,
            {{"lockedUntil", clock::format_iso8601(until)}});
      return refuse(account_locked(until - t), "wrong_password_locked");
    }
    return refuse(bad_credentials(), "wrong_password");
  }
  if (found->status != "active") return refuse(account_disabled(), "account_disabled");
  model::User u = *found;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(u, tx.users().get(found->id));
    u.failed_logins = 0;
    u.locked_until.reset();
    u.last_login_at = t;
    return tx.users().update(u);
  }));
  by_username_.clear(user_key);
  DP_ASSIGN_OR_RETURN(boost::json::object session, issue_session(u, ids::uuid_v7()));
  audit("auth.login", "success", user_caller(u), "user:" + u.id, ctx, {{"method", "password"}});
  return session;
}

Result<boost::json::object> AuthService::refresh(std::string_view token, const RequestContext& ctx) {
  if (token.empty() || token.size() > kMaxRefreshTokenBytes) {
    return unauthenticated("invalid refresh token");
  }
  const std::int64_t t = now();
  const std::string hash = sha256_hex(token);
  enum class Verdict { kOk, kUnknown, kRevoked, kExpired, kReused, kDisabled };
  Verdict verdict = Verdict::kOk;
  model::RefreshToken row;
  model::User user;
  std::int64_t revoked = 0;
  // One unit: find, rotate (compare-and-set), and on reuse revoke the family. The unit
  // commits in every case so that a detected reuse stays revoked.
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    auto r = tx.refresh_tokens().find_by_hash(hash);
    if (!r.ok()) {
      if (r.error().code != ErrorCode::kNotFound) return std::move(r).error();
      verdict = Verdict::kUnknown;
      return Ok{};
    }
    row = std::move(*r);
    if (row.revoked_at) {
      verdict = Verdict::kRevoked;
      return Ok{};
    }
    bool rotated_now = false;
    if (!row.rotated_at) {
      if (row.expires_at <= t) {
        verdict = Verdict::kExpired;
        return Ok{};
      }
      DP_ASSIGN_OR_RETURN(rotated_now, tx.refresh_tokens().mark_rotated(row.id, t));
    }
    if (!rotated_now) {
      verdict = Verdict::kReused;
      DP_ASSIGN_OR_RETURN(revoked, tx.refresh_tokens().revoke_family(row.family_id, t));
      return Ok{};
    }
    DP_ASSIGN_OR_RETURN(user, tx.users().get(row.user_id));
    if (user.status != "active") {
      verdict = Verdict::kDisabled;
      DP_ASSIGN_OR_RETURN(revoked, tx.refresh_tokens().revoke_family(row.family_id, t));
    }
    return Ok{};
  }));
  switch (verdict) {
    case Verdict::kUnknown:
      return unauthenticated("invalid refresh token");
    case Verdict::kRevoked:
      return unauthenticated("refresh token revoked");
    case Verdict::kExpired:
      return unauthenticated("refresh token expired; sign in again");
    case Verdict::kReused: {
      http::Caller who;
      who.id = row.user_id;
      who.kind = "user";
      audit("auth.refresh_reuse", "denied", who, "user:" + row.user_id, ctx,
            {{"family", row.family_id}, {"revokedTokens", revoked}});
      log::global().warn("refresh token reused: family revoked",
                         {{"userId", row.user_id}, {"family", row.family_id}});
      return unauthenticated("refresh token already used; every session of this sign-in is revoked");
    }
    case Verdict::kDisabled:
      return account_disabled();
    case Verdict::kOk:
      break;
  }
  return issue_session(user, row.family_id);
}

Status AuthService::logout(const http::Caller& caller, std::optional<std::string_view> token,
                           const RequestContext& ctx) {
  if (caller.kind != "user") {
    return Error::invalid_argument("not_a_session",
                                   "an API key has no session to end; revoke the key instead");
  }
  const std::int64_t t = now();
  std::int64_t n = 0;
  bool known = true;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    if (!token) {
      DP_ASSIGN_OR_RETURN(n, tx.refresh_tokens().revoke_user(caller.id, t));
      return Ok{};
    }
    auto r = tx.refresh_tokens().find_by_hash(sha256_hex(*token));
    if (!r.ok() || r->user_id != caller.id) {
      // Someone else's token is as unknown as a made-up one.
      known = false;
      return r.ok() || r.error().code == ErrorCode::kNotFound ? Status(Ok{}) : Status(std::move(r).error());
    }
    DP_ASSIGN_OR_RETURN(n, tx.refresh_tokens().revoke_family(r->family_id, t));
    return Ok{};
  }));
  if (!known) return Error::not_found("unknown refresh token");
  callers_.clear();  // a cached caller must not outlive this change
  audit("auth.logout", "success", caller, "user:" + caller.id, ctx,
        {{"scope", token ? "session" : "all"}, {"revokedTokens", n}});
  return Ok{};
}

Result<boost::json::object> AuthService::sign_in_external(const ExternalIdentity& id,
                                                          const RequestContext& ctx) {
  if (id.issuer.empty() || id.subject.empty()) {
    return Error::invalid_argument("bad_identity", "an external identity needs issuer and subject");
  }
  if (!is_user_role(id.role)) {
    return Error::invalid_argument("bad_identity", "role must be admin, operator or viewer");
  }
  const std::int64_t t = now();
  std::optional<model::User> user;
  bool disabled = false;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    auto found = tx.users().find_by_external(id.issuer, id.subject);
    if (found.ok()) {
      model::User u = std::move(*found);
      if (u.status != "active") {
        disabled = true;
        return Ok{};
      }
      u.role = id.role;  // the provider's claims decide, on every sign-in
      if (!id.display_name.empty()) u.display_name = id.display_name.substr(0, 200);
      u.last_login_at = t;
      u.updated_at = t;
      DP_TRY(tx.users().update(u));
      user = std::move(u);
      return Ok{};
    }
    if (found.error().code != ErrorCode::kNotFound) return std::move(found).error();
    model::User u;
    u.id = ids::uuid_v7();
    u.display_name = id.display_name.substr(0, 200);
    u.role = id.role;
    u.status = "active";
    u.external_issuer = id.issuer;
    u.external_subject = id.subject;
    u.created_at = u.updated_at = t;
    u.last_login_at = t;
    const std::string base = username_hint(id);
    for (int n = 1; n <= 50 && !user; ++n) {
      u.username = n == 1 ? base : base + "-" + std::to_string(n);
      auto taken = tx.users().find_by_username(u.username);
      if (taken.ok()) continue;
      if (taken.error().code != ErrorCode::kNotFound) return std::move(taken).error();
      DP_TRY(tx.users().insert(u));
      user = u;
    }
    if (!user) return Error::conflict("no free username for '" + base + "'");
    return Ok{};
  }));
  if (disabled) {
    audit("auth.login", "failure", anonymous(id.preferred_username), "", ctx,
          {{"method", "oidc"}, {"reason", "account_disabled"}});
    return account_disabled();
  }
  DP_ASSIGN_OR_RETURN(boost::json::object session, issue_session(*user, ids::uuid_v7()));
  audit("auth.login", "success", user_caller(*user), "user:" + user->id, ctx,
        {{"method", "oidc"}, {"issuer", id.issuer}});
  return session;
}

Result<http::Caller> AuthService::authenticate_token(std::string_view token) {
  const std::int64_t t = now();
  if (auto hit = callers_.find(token, t)) return std::move(*hit);
  if (looks_like_api_key(token)) {
    auto parts = parse_api_key(token);
    if (!parts) return unauthenticated("malformed API key");
    std::optional<model::ApiKey> key;
    DP_TRY(store_.read([&](store::Tx& tx) -> Status {
      auto k = tx.api_keys().find_by_prefix(parts->prefix);
      if (k.ok()) key = std::move(*k);
      return k.ok() || k.error().code == ErrorCode::kNotFound ? Status(Ok{}) : Status(std::move(k).error());
    }));
    // Hash first and compare in constant time even for an unknown prefix.
    const std::string presented = hash_api_key(token);
    const std::string stored = key ? key->key_hash : std::string(presented.size(), '0');
    if (!constant_time_equal(presented, stored) || !key) return unauthenticated("invalid API key");
    if (key->revoked_at) return unauthenticated("API key revoked");
    if (key->expires_at && *key->expires_at <= t) return unauthenticated("API key expired");
    if (!key->last_used_at || *key->last_used_at + kTouchEveryMs <= t) {
      Status s = store_.write([&](store::Tx& tx) { return tx.api_keys().touch(key->id, t); });
      if (!s.ok()) log::global().warn("cannot record API key use", {{"error", s.error().message}});
    }
    http::Caller c;
    c.id = key->id;
    c.name = key->name;
    c.kind = "api_key";
    c.role = key->role;
    c.agent_id = key->agent_id;
    callers_.put(token, c, t, key->expires_at.value_or(0));
    return c;
  }
  DP_ASSIGN_OR_RETURN(AccessClaims claims, jwt_.verify(token, t / 1000));
  // The store, not the token, has the last word: a disabled user or a changed role takes
  // effect at once rather than when the token expires.
  std::optional<model::User> user;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    auto u = tx.users().get(claims.subject);
    if (u.ok()) user = std::move(*u);
    return u.ok() || u.error().code == ErrorCode::kNotFound ? Status(Ok{}) : Status(std::move(u).error());
  }));
  if (!user) return unauthenticated("token subject unknown");
  if (user->status != "active") return unauthenticated("account disabled");
  http::Caller c = user_caller(*user);
  callers_.put(token, c, t, claims.expires_at * 1000);
  return c;
}

Result<std::vector<model::User>> AuthService::list_users() {
  std::vector<model::User> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.users().list());
    return Ok{};
  }));
  return out;
}

Result<model::User> AuthService::get_user(std::string_view id) {
  std::optional<model::User> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.users().get(id));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::User> AuthService::find_user(std::string_view username) {
  std::optional<model::User> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.users().find_by_username(username));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::User> AuthService::create_user(NewUser spec, const http::Caller& actor,
                                             const RequestContext& ctx) {
  if (!valid_username(spec.username)) {
    return Error::invalid_argument("bad_username",
                                   "username must be 2-64 characters of a-z, 0-9, '.', '_', '@', "
                                   "'-', starting with a letter or digit");
  }
  if (!is_user_role(spec.role)) {
    return Error::invalid_argument("bad_role", "role must be admin, operator or viewer");
  }
  DP_TRY(check_password_rules(spec.password));
  model::User u;
  DP_ASSIGN_OR_RETURN(u.password_hash, hash_password(spec.password, options_.password_cost));
  u.id = ids::uuid_v7();
  u.username = std::move(spec.username);
  u.display_name = std::move(spec.display_name);
  u.role = std::move(spec.role);
  u.status = "active";
  u.created_at = u.updated_at = now();
  Status s = store_.write([&](store::Tx& tx) { return tx.users().insert(u); });
  if (!s.ok()) {
    audit("user.create", "failure", actor, "user:" + u.username, ctx, {{"reason", s.error().reason}});
    return std::move(s).error();
  }
  audit("user.create", "success", actor, "user:" + u.id, ctx,
        {{"username", u.username}, {"role", u.role}});
  return u;
}

Result<model::User> AuthService::update_user(std::string_view id, const UserPatch& patch,
                                             const http::Caller& actor, const RequestContext& ctx) {
  if (patch.role && !is_user_role(*patch.role)) {
    return Error::invalid_argument("bad_role", "role must be admin, operator or viewer");
  }
  if (patch.status && *patch.status != "active" && *patch.status != "disabled") {
    return Error::invalid_argument("bad_status", "status must be active or disabled");
  }
  const std::int64_t t = now();
  model::User before;
  model::User u;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(u, tx.users().get(id));
    before = u;
    if (patch.display_name) u.display_name = *patch.display_name;
    if (patch.role) u.role = *patch.role;
    if (patch.status) u.status = *patch.status;
    const bool was_admin = before.role == "admin" && before.status == "active";
    const bool is_admin = u.role == "admin" && u.status == "active";
    if (was_admin && !is_admin) {
      DP_ASSIGN_OR_RETURN(std::int64_t admins, tx.users().count_active("admin"));
      if (admins <= 1) {
        return Error::failed_precondition("last_admin",
                                          "this is the last active admin; make another admin first");
      }
    }
    u.updated_at = t;
    DP_TRY(tx.users().update(u));
    if (u.status == "disabled" && before.status != "disabled") {
      DP_TRY(tx.refresh_tokens().revoke_user(u.id, t));
    }
    return Ok{};
  }));
  boost::json::object changes;
  if (before.role != u.role) changes["role"] = boost::json::array{before.role, u.role};
  if (before.status != u.status) changes["status"] = boost::json::array{before.status, u.status};
  if (before.display_name != u.display_name) changes["displayName"] = u.display_name;
  callers_.clear();  // a cached caller must not outlive this change
  audit("user.update", "success", actor, "user:" + u.id, ctx, {{"changes", changes}});
  return u;
}

Status AuthService::set_password(std::string_view id, std::string_view password,
                                 const http::Caller& actor, const RequestContext& ctx) {
  DP_TRY(check_password_rules(password));
  DP_ASSIGN_OR_RETURN(std::string hash, hash_password(password, options_.password_cost));
  const std::int64_t t = now();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::User u, tx.users().get(id));
    u.password_hash = hash;
    u.failed_logins = 0;
    u.locked_until.reset();
    u.updated_at = t;
    DP_TRY(tx.users().update(u));
    DP_TRY(tx.refresh_tokens().revoke_user(u.id, t));
    return Ok{};
  }));
  callers_.clear();  // a cached caller must not outlive this change
  audit("user.password", "success", actor, "user:" + std::string(id), ctx);
  return Ok{};
}

Result<std::vector<model::ApiKey>> AuthService::list_api_keys() {
  std::vector<model::ApiKey> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.api_keys().list());
    return Ok{};
  }));
  return out;
}

Result<CreatedApiKey> AuthService::create_api_key(NewApiKey spec, const http::Caller& actor,
                                                  const RequestContext& ctx) {
  if (!is_role(spec.role)) {
    return Error::invalid_argument("bad_role", "role must be admin, operator, viewer or agent");
  }
  if (actor.kind != "system" && role_rank(spec.role) > role_rank(actor.role)) {
    audit("api_key.create", "denied", actor, "", ctx, {{"role", spec.role}});
    return permission_denied("a " + actor.role + " cannot create a key with role " + spec.role);
  }
  if (!spec.agent_id.empty() && spec.role != "agent") {
    return Error::invalid_argument("bad_binding", "only keys with role agent can be bound to an agent");
  }
  const std::int64_t t = now();
  if (spec.expires_at && *spec.expires_at <= t) {
    return Error::invalid_argument("bad_expiry", "expiresAt must be in the future");
  }
  CreatedApiKey out;
  model::ApiKey& k = out.key;
  k.id = ids::uuid_v7();
  k.name = std::move(spec.name);
  k.role = std::move(spec.role);
  k.agent_id = std::move(spec.agent_id);
  k.expires_at = spec.expires_at;
  k.created_by = actor.name;
  k.created_at = t;
  // A prefix collision (36^12 space) is astronomically unlikely; retry anyway.
  Status s = Ok{};
  for (int attempt = 0; attempt < 3; ++attempt) {
    NewApiKeySecret secret = generate_api_key();
    k.prefix = secret.prefix;
    k.key_hash = secret.hash;
    s = store_.write([&](store::Tx& tx) { return tx.api_keys().insert(k); });
    if (s.ok()) {
      out.secret = std::move(secret.key);
      break;
    }
    if (s.error().code != ErrorCode::kAlreadyExists) break;
  }
  DP_TRY(std::move(s));
  audit("api_key.create", "success", actor, "api_key:" + k.id, ctx,
        {{"name", k.name}, {"role", k.role}, {"prefix", k.prefix}});
  return out;
}

Status AuthService::revoke_api_key(std::string_view id, const http::Caller& actor,
                                   const RequestContext& ctx) {
  const std::int64_t t = now();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::ApiKey k, tx.api_keys().get(id));
    if (actor.kind != "system" && role_rank(k.role) > role_rank(actor.role)) {
      return permission_denied("a " + actor.role + " cannot revoke a key with role " + k.role);
    }
    return tx.api_keys().revoke(id, t);
  }));
  callers_.clear();  // a cached caller must not outlive this change
  audit("api_key.revoke", "success", actor, "api_key:" + std::string(id), ctx);
  return Ok{};
}

Result<std::optional<std::string>> AuthService::ensure_admin(std::optional<std::string> password) {
  std::int64_t admins = 0;
  bool named_admin = false;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(admins, tx.users().count_active("admin"));
    auto u = tx.users().find_by_username("admin");
    named_admin = u.ok();
    return Ok{};
  }));
  if (admins > 0) return std::optional<std::string>();
  if (named_admin) {
    log::global().warn(
        "no active admin, and a user named admin exists: run `devplane user add` or "
        "`devplane user passwd admin` to regain access");
    return std::optional<std::string>();
  }
  const bool generated = !password || password->empty();
  const std::string pw = generated ? generate_password() : *password;
  NewUser spec{"admin", "Administrator", "admin", pw};
  auto u = create_user(std::move(spec), system_caller("first-run"), {});
  if (!u.ok()) {
    // Another node created it first.
    if (u.error().code == ErrorCode::kAlreadyExists) return std::optional<std::string>();
    return std::move(u).error();
  }
  return std::optional<std::string>(generated ? pw : std::string());
}

}  // namespace dp::auth
