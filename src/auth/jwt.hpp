// Access tokens: JWTs signed with HS256 (libjwt), the algorithm pinned by the server.
//
// A token is accepted only when its header says exactly `"alg":"HS256"` (no `none`, no
// RS*/ES*/PS*, no `crit`), its HMAC matches under the server's secret (checked in constant
// time), and its claims hold: `iss` and `aud` equal the configured values, `exp` is in the
// future and `nbf`/`iat` are not, each with `skew` of tolerance, `sub` is present.
// Immutable after construction; safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"

namespace dp::auth {

struct JwtOptions {
  std::string secret;  // at least 32 bytes
  std::string issuer = "devplane";
  std::string audience = "devplane-api";
  std::chrono::seconds access_ttl{15 * 60};
  std::chrono::seconds skew{30};
};

struct AccessClaims {
  std::string subject;  // user id
  std::string name;     // username, for logs
  std::string role;
  std::string token_id;  // jti
  std::int64_t issued_at = 0;   // seconds since the epoch
  std::int64_t expires_at = 0;  // seconds since the epoch
};

class JwtCodec {
 public:
  explicit JwtCodec(JwtOptions options);

  // Signs a token for `claims.subject` valid from now_s for access_ttl; fills the times and jti.
  Result<std::string> issue(AccessClaims& claims, std::int64_t now_s) const;

  // kUnauthenticated (reason `unauthenticated`) with a short reason in the message when the
  // token is malformed, signed otherwise, expired, not yet valid or meant for someone else.
  Result<AccessClaims> verify(std::string_view token, std::int64_t now_s) const;

  const JwtOptions& options() const noexcept { return options_; }

 private:
  JwtOptions options_;
};

// The HS256 secret: config `jwt_secret` when set (at least 32 characters), else the
// contents of `<data_dir>/jwt.key`, created with 48 random bytes (base64url) and mode 0600
// on first run. A key file readable by group or others is refused.
Result<std::string> load_or_create_jwt_secret(const Config& config);

Error unauthenticated(std::string message);

}  // namespace dp::auth
