// /api/v1/users (admins): list, create, read, update role / display name / status, set a
// password. Passwords go in, never out.
#include <boost/json/array.hpp>

#include "api/v1/auth_errors.hpp"
#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/ids.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

constexpr std::size_t kMaxDisplayName = 200;

Response fail(const Error& e, const Request& req) { return auth_error_response(e, req); }

Result<boost::json::object> body_object(const Request& req) { return parse_object_body(req.body); }

std::optional<Error> check_id(std::string_view id) { return check_uuid(id, "user"); }

auth::RequestContext context(const Request& req) { return {req.remote_address, req.request_id}; }

std::optional<std::string> display_name(const boost::json::object& o, Validator& v) {
  auto d = v.string(o, "displayName", "displayName", false, 0, kMaxDisplayName);
  if (d && has_control_chars(*d)) {
    v.fail("displayName", "bad_format", "displayName must not contain control characters");
    return std::nullopt;
  }
  return d;
}

Response list(auth::AuthService& svc, Request& req) {
  auto users = svc.list_users();
  if (!users.ok()) return fail(users.error(), req);
  boost::json::array items;
  for (const auto& u : *users) items.push_back(auth::to_json(u));
  boost::json::object meta{{"total", items.size()}};
  return http::data_response(200, std::move(items), std::move(meta), req.request_id);
}

Response create(auth::AuthService& svc, Request& req) {
  auto body = body_object(req);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  v.only_keys(*body, {"username", "displayName", "role", "password"});
  auto username = v.string(*body, "username", "username", true, 2, 64);
  auto name = display_name(*body, v);
  auto role = v.one_of(*body, "role", "role", true, {"admin", "operator", "viewer"});
  auto password = v.string(*body, "password", "password", true, 1, 1024);
  if (auto s = v.status("invalid user"); !s.ok()) return fail(s.error(), req);
  auto u = svc.create_user({*username, name.value_or(""), *role, *password}, req.caller,
                           context(req));
  if (!u.ok()) {
    const char* field = u.error().reason == "weak_password" ? "password" : "username";
    return fail(as_field_error(u.error(), field), req);
  }
  Response r = http::data_response(201, auth::to_json(*u), {}, req.request_id);
  r.set_header("Location", "/api/v1/users/" + u->id);
  return r;
}

Response get_one(auth::AuthService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  auto u = svc.get_user(id);
  if (!u.ok()) return fail(u.error(), req);
  return http::data_response(200, auth::to_json(*u), {}, req.request_id);
}

Response update(auth::AuthService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  auto body = body_object(req);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  v.only_keys(*body, {"displayName", "role", "status"});
  auth::UserPatch patch;
  patch.display_name = display_name(*body, v);
  patch.role = v.one_of(*body, "role", "role", false, {"admin", "operator", "viewer"});
  patch.status = v.one_of(*body, "status", "status", false, {"active", "disabled"});
  if (v.ok() && !patch.display_name && !patch.role && !patch.status) {
    v.fail("", "empty_update", "send at least one of displayName, role, status");
  }
  if (auto s = v.status("invalid user update"); !s.ok()) return fail(s.error(), req);
  auto u = svc.update_user(id, patch, req.caller, context(req));
  if (!u.ok()) return fail(u.error(), req);
  return http::data_response(200, auth::to_json(*u), {}, req.request_id);
}

Response set_password(auth::AuthService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  auto body = body_object(req);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  v.only_keys(*body, {"password"});
  auto password = v.string(*body, "password", "password", true, 1, 1024);
  if (auto s = v.status("invalid password change"); !s.ok()) return fail(s.error(), req);
  if (auto s = svc.set_password(id, *password, req.caller, context(req)); !s.ok()) {
    return fail(as_field_error(s.error(), "password"), req);
  }
  Response r;
  r.status = 204;
  return r;
}

}  // namespace

void register_user_routes(http::Router& router, auth::AuthService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/users", [s](Request& r) { return list(*s, r); });
  router.add("POST", "/api/v1/users", [s](Request& r) { return create(*s, r); });
  router.add("GET", "/api/v1/users/:id", [s](Request& r) { return get_one(*s, r); });
  router.add("PATCH", "/api/v1/users/:id", [s](Request& r) { return update(*s, r); });
  router.add("POST", "/api/v1/users/:id/password", [s](Request& r) { return set_password(*s, r); });
}

}  // namespace dp::api::v1
