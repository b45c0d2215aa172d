// /api/v1/auth: login, refresh, logout, me.
#include <boost/json/array.hpp>

#include "api/v1/auth_errors.hpp"
#include "api/v1/routes.hpp"
#include "api/validation.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

Result<boost::json::object> body_object(const Request& req) { return parse_object_body(req.body); }

auth::RequestContext context(const Request& req) { return {req.remote_address, req.request_id}; }

Response login(auth::AuthService& svc, Request& req) {
  auto body = body_object(req);
  if (!body.ok()) return auth_error_response(body.error(), req);
  Validator v;
  v.only_keys(*body, {"username", "password"});
  auto username = v.string(*body, "username", "username", true, 1, 128);
  auto password = v.string(*body, "password", "password", true, 1, 1024);
  if (auto s = v.status("invalid login"); !s.ok()) return auth_error_response(s.error(), req);
  auto session = svc.login(*username, *password, context(req));
  if (!session.ok()) return auth_error_response(session.error(), req);
  Response r = http::data_response(200, std::move(*session), {}, req.request_id);
  r.set_header("Cache-Control", "no-store");
  return r;
}

Response refresh(auth::AuthService& svc, Request& req) {
  auto body = body_object(req);
  if (!body.ok()) return auth_error_response(body.error(), req);
  Validator v;
  v.only_keys(*body, {"refreshToken"});
  auto token = v.string(*body, "refreshToken", "refreshToken", true, 1, 256);
  if (auto s = v.status("invalid refresh"); !s.ok()) return auth_error_response(s.error(), req);
  auto session = svc.refresh(*token, context(req));
  if (!session.ok()) return auth_error_response(session.error(), req);
  Response r = http::data_response(200, std::move(*session), {}, req.request_id);
  r.set_header("Cache-Control", "no-store");
  return r;
}

Response logout(auth::AuthService& svc, Request& req) {
  std::optional<std::string> token;
  if (!req.body.empty()) {
    auto body = body_object(req);
    if (!body.ok()) return auth_error_response(body.error(), req);
    Validator v;
    v.only_keys(*body, {"refreshToken"});
    token = v.string(*body, "refreshToken", "refreshToken", false, 1, 256);
    if (auto s = v.status("invalid logout"); !s.ok()) return auth_error_response(s.error(), req);
  }
  std::optional<std::string_view> view;
  if (token) view = *token;
  if (auto s = svc.logout(req.caller, view, context(req)); !s.ok()) {
    return auth_error_response(s.error(), req);
  }
  Response r;
  r.status = 204;
  return r;
}

Response me(auth::AuthService& svc, Request& req) {
  if (req.caller.kind == "user") {
    auto u = svc.get_user(req.caller.id);
    if (!u.ok()) return auth_error_response(u.error(), req);
    boost::json::object o = auth::to_json(*u);
    o["kind"] = "user";
    return http::data_response(200, std::move(o), {}, req.request_id);
  }
  boost::json::object o{{"kind", req.caller.kind},
                        {"id", req.caller.id},
                        {"name", req.caller.name},
                        {"role", req.caller.role},
                        {"agentId", req.caller.agent_id.empty()
                                        ? boost::json::value(nullptr)
                                        : boost::json::value(req.caller.agent_id)}};
  return http::data_response(200, std::move(o), {}, req.request_id);
}

}  // namespace

void register_auth_routes(http::Router& router, auth::AuthService& svc) {
  auto* s = &svc;
  router.add("POST", "/api/v1/auth/login", [s](Request& r) { return login(*s, r); });
  router.add("POST", "/api/v1/auth/refresh", [s](Request& r) { return refresh(*s, r); });
  router.add("POST", "/api/v1/auth/logout", [s](Request& r) { return logout(*s, r); });
  router.add("GET", "/api/v1/auth/me", [s](Request& r) { return me(*s, r); });
}

}  // namespace dp::api::v1
