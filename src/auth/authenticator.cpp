#include "auth/authenticator.hpp"

#include <cctype>

#include "auth/policy.hpp"
#include "core/log.hpp"

namespace dp::auth {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string_view> bearer_token(const http::Request& request) {
  if (auto h = request.header("authorization")) {
    std::string_view v = trim(*h);
    if (v.size() > 7 && iequals(v.substr(0, 7), "bearer ")) return trim(v.substr(7));
    return std::string_view();  // present but not a bearer credential
  }
  if (auto p = request.header("sec-websocket-protocol")) {
    std::string_view rest = *p;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      if (item.starts_with("bearer.")) return item.substr(7);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return std::nullopt;
}

bool Authenticator::is_public(std::string_view method, std::string_view route) const {
  return is_public_route(method, route);
}

Result<http::Caller> Authenticator::authenticate(const http::Request& request) {
  auto token = bearer_token(request);
  if (!token) return unauthenticated("this route needs a bearer token (Authorization: Bearer ...)");
  if (token->empty()) return unauthenticated("the Authorization header must be 'Bearer <token>'");
  return service_.authenticate_token(*token);
}

Status Authenticator::authorize(const http::Caller& caller, std::string_view method,
                                std::string_view route) const {
  if (find_rule(method, route) == nullptr) {
    // Fail closed, loudly: a route nobody wrote a rule for is a bug, not an open door.
    log::global().error("route has no access rule; refusing it",
                        {{"method", std::string(method)}, {"route", std::string(route)}});
    return Error{ErrorCode::kPermissionDenied, "permission_denied",
                 "no access rule covers " + std::string(method) + " " + std::string(route), {}};
  }
  if (role_allows(caller.role, method, route)) return Ok{};
  return Error{ErrorCode::kPermissionDenied, "permission_denied",
               "role '" + caller.role + "' may not call " + std::string(method) + " " +
                   std::string(route),
               {}};
}

}  // namespace dp::auth
