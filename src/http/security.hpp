// The HTTP layer's two security seams, implemented by the auth module and wired by app/:
//
//  - Authenticator: for every matched route that is not public, the server asks it who is
//    calling (401 when nobody valid is) and whether that caller may use the route (403). It
//    sees the route pattern, so one table in the auth module decides for every route.
//  - RequestAuditor: after a handler has answered, the server hands it the request and the
//    response, so every mutating request leaves an audit entry with its outcome.
//
// Both run on the blocking pool (they may call the store). Safe from any thread.
#pragma once

#include <string_view>

#include "core/result.hpp"
#include "http/message.hpp"

namespace dp::http {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // True for routes anyone may call (health, login, OIDC callback, static files).
  virtual bool is_public(std::string_view method, std::string_view route) const = 0;
  // Who is calling: from `Authorization: Bearer ...` (a JWT access token or an API key), or,
  // on a WebSocket upgrade, a `Sec-WebSocket-Protocol` entry `bearer.<token>`.
  // kUnauthenticated when no valid credential is present.
  virtual Result<Caller> authenticate(const Request& request) = 0;
  // kPermissionDenied when `caller` may not call `method route`.
  virtual Status authorize(const Caller& caller, std::string_view method,
                           std::string_view route) const = 0;
};

class RequestAuditor {
 public:
  virtual ~RequestAuditor() = default;
  // Called once per answered request whose method changes state (POST, PUT, PATCH, DELETE)
  // and for refused ones (401, 403), after the response is built, before it is sent.
  virtual void on_handled(const Request& request, const Response& response) = 0;
};

}  // namespace dp::http
