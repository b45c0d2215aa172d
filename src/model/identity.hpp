// Users, API keys and refresh tokens: the identity aggregates. Plain values; times are
// epoch milliseconds (0 or nullopt when unset). Secrets never appear here in clear: a
// password is an Argon2id hash string, a key or refresh token a SHA-256 hex digest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace dp::model {

struct User {
  std::string id;  // UUIDv7
  std::string username;
  std::string display_name;
  std::string role;    // admin | operator | viewer
  std::string status;  // active | disabled
  std::string password_hash;  // empty for SSO-only users
  std::int64_t failed_logins = 0;
  std::optional<std::int64_t> locked_until;
  std::string external_issuer;   // both set for SSO users, both empty otherwise
  std::string external_subject;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> last_login_at;
};

struct ApiKey {
  std::string id;  // UUIDv7
  std::string name;
  std::string prefix;    // unique, shown in listings, used for lookup
  std::string key_hash;  // SHA-256 of the whole key, hex
  std::string role;      // admin | operator | viewer | agent
  std::string agent_id;  // empty when not bound to an agent
  std::string created_by;
  std::optional<std::int64_t> expires_at;
  std::optional<std::int64_t> last_used_at;
  std::optional<std::int64_t> revoked_at;
  std::int64_t created_at = 0;
};

struct RefreshToken {
  std::string id;  // UUIDv7
  std::string user_id;
  std::string family_id;   // every token rotated from one login shares it
  std::string token_hash;  // SHA-256 of the token, hex
  std::int64_t expires_at = 0;
  std::optional<std::int64_t> rotated_at;
  std::optional<std::int64_t> revoked_at;
  std::int64_t created_at = 0;
};

}  // namespace dp::model
