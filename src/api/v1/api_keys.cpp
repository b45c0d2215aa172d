// /api/v1/api-keys (admins and operators): list (no secrets), create (the key is in the
// response once and never again), revoke.
#include <boost/json/array.hpp>

#include "api/v1/auth_errors.hpp"
#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

Response fail(const Error& e, const Request& req) { return auth_error_response(e, req); }

auth::RequestContext context(const Request& req) { return {req.remote_address, req.request_id}; }

Response list(auth::AuthService& svc, Request& req) {
  auto keys = svc.list_api_keys();
  if (!keys.ok()) return fail(keys.error(), req);
  const std::int64_t now = clock::now_ms();
  boost::json::array items;
  for (const auto& k : *keys) items.push_back(auth::to_json(k, now));
  boost::json::object meta{{"total", items.size()}};
  return http::data_response(200, std::move(items), std::move(meta), req.request_id);
}

Response create(auth::AuthService& svc, Request& req) {
  auto parsed = http::parse_json_body(req.body);
  if (!parsed.ok()) return fail(parsed.error(), req);
  if (!parsed->is_object()) {
    return fail(Error::validation("request body must be a JSON object",
                                  boost::json::array{boost::json::object{
                                      {"field", ""}, {"code", "wrong_type"},
                                      {"message", "request body must be a JSON object"}}}),
                req);
  }
  const auto& o = parsed->as_object();
  Validator v;
  v.only_keys(o, {"name", "role", "agentId", "expiresAt"});
  auto name = v.string(o, "name", "name", true, 1, 128);
  if (name && has_control_chars(*name)) {
    v.fail("name", "bad_format", "name must not contain control characters");
  }
  auto role = v.one_of(o, "role", "role", true, {"admin", "operator", "viewer", "agent"});
  auto agent = v.string(o, "agentId", "agentId", false, 36, 36);
  if (agent && !ids::is_uuid(*agent)) v.fail("agentId", "bad_format", "agentId must be an agent id");
  std::optional<std::int64_t> expires;
  if (auto e = v.string(o, "expiresAt", "expiresAt", false, 1, 64)) {
    expires = clock::parse_timestamp(*e);
    if (!expires) {
      v.fail("expiresAt", "bad_format", "expiresAt must be an ISO-8601 time, e.g. 2030-01-01T00:00:00Z");
    }
  }
  if (auto s = v.status("invalid API key"); !s.ok()) return fail(s.error(), req);
  auto k = svc.create_api_key({*name, *role, agent.value_or(""), expires}, req.caller, context(req));
  if (!k.ok()) {
    const char* field = k.error().reason == "bad_expiry" ? "expiresAt" : "agentId";
    return fail(as_field_error(k.error(), field), req);
  }
  boost::json::object data = auth::to_json(k->key, clock::now_ms());
  data["key"] = k->secret;
  Response r = http::data_response(201, std::move(data), {}, req.request_id);
  r.set_header("Cache-Control", "no-store");
  return r;
}

Response revoke(auth::AuthService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (!ids::is_uuid(id)) {
    return fail(Error::invalid_argument("invalid_id", "'" + id.substr(0, 64) +
                                                          "' is not a valid API key id (a UUID)"),
                req);
  }
  if (auto s = svc.revoke_api_key(id, req.caller, context(req)); !s.ok()) return fail(s.error(), req);
  Response r;
  r.status = 204;
  return r;
}

}  // namespace

void register_api_key_routes(http::Router& router, auth::AuthService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/api-keys", [s](Request& r) { return list(*s, r); });
  router.add("POST", "/api/v1/api-keys", [s](Request& r) { return create(*s, r); });
  router.add("DELETE", "/api/v1/api-keys/:id", [s](Request& r) { return revoke(*s, r); });
}

}  // namespace dp::api::v1
