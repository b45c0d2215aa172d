// /api/v1/secrets: put, list and delete named secrets (LLM provider keys). A value goes in
// once and never comes back out: responses carry names and times only.
#include <boost/json/array.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

Response list(auth::SecretService& svc, Request& req) {
  if (!req.query.empty()) {
    Validator v;
    for (const auto& [k, val] : req.query) {
      v.unknown_query(k);
    }
    return fail(v.status("invalid query").error(), req);
  }
  auto all = svc.list();
  if (!all.ok()) return fail(all.error(), req);
  boost::json::array items;
  for (const auto& s : *all) items.push_back(auth::to_json(s));
  const auto total = static_cast<std::int64_t>(items.size());
  return http::data_response(200, std::move(items), boost::json::object{{"total", total}},
                             req.request_id);
}

Response put(auth::SecretService& svc, Request& req) {
  const std::string name(req.param("name"));
  auto body = parse_object_body(req.body);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  v.only_keys(*body, {"value"});
  auto value = v.string(*body, "value", "value", true, 1, 16 * 1024);
  if (!auth::SecretService::valid_name(name)) {
    v.fail("name", "bad_format", "a secret's name is 1..128 characters of A-Z a-z 0-9 _ . -");
  }
  if (auto s = v.status("invalid secret"); !s.ok()) return fail(s.error(), req);
  const std::string actor = req.caller.authenticated() ? req.caller.kind + ":" + req.caller.id : "";
  auto r = svc.put(name, *value, actor);
  if (!r.ok()) return fail(r.error(), req);
  return http::data_response(r->second ? 201 : 200, auth::to_json(r->first),
                             boost::json::object{{"created", r->second}}, req.request_id);
}

Response remove(auth::SecretService& svc, Request& req) {
  if (!req.body.empty()) {
    return fail(Error::invalid_argument("bad_request", "DELETE takes no body"), req);
  }
  Status s = svc.remove(req.param("name"));
  if (!s.ok()) return fail(s.error(), req);
  return http::data_response(200, boost::json::object{{"name", std::string(req.param("name"))},
                                                      {"deleted", true}},
                             {}, req.request_id);
}

}  // namespace

void register_secret_routes(http::Router& router, auth::SecretService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/secrets", [s](Request& r) { return list(*s, r); });
  router.add("PUT", "/api/v1/secrets/:name", [s](Request& r) { return put(*s, r); });
  router.add("DELETE", "/api/v1/secrets/:name", [s](Request& r) { return remove(*s, r); });
}

}  // namespace dp::api::v1
