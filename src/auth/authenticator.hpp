// The auth module's http::Authenticator: bearer credentials (header, or a
// `Sec-WebSocket-Protocol` entry `bearer.<token>` on upgrades) checked by AuthService, and
// the access table of policy.hpp. Safe from any thread.
#pragma once

#include <optional>
#include <string_view>

#include "auth/auth_service.hpp"
#include "http/security.hpp"

namespace dp::auth {

// The bearer token of a request: `Authorization: Bearer <t>` (scheme case-insensitive),
// else a `bearer.<t>` subprotocol entry. nullopt when neither is present.
std::optional<std::string_view> bearer_token(const http::Request& request);

class Authenticator final : public http::Authenticator {
 public:
  explicit Authenticator(AuthService& service) : service_(service) {}

  // http::Authenticator
  bool is_public(std::string_view method, std::string_view route) const override;
  Result<http::Caller> authenticate(const http::Request& request) override;
  Status authorize(const http::Caller& caller, std::string_view method,
                   std::string_view route) const override;

 private:
  AuthService& service_;
};

}  // namespace dp::auth
