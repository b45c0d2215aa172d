// POST /api/v1/workflows/:id/hooks/:hookId: webhook triggers (workflow/hooks.hpp).
#include <boost/json/object.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "workflow/hooks.hpp"

namespace dp::api::v1 {
namespace {

namespace json = boost::json;
using http::Request;
using http::Response;

std::string header_or_empty(const Request& req, std::string_view name) {
  auto v = req.header(name);
  return v ? std::string(v->substr(0, 512)) : std::string();
}

Response deliver(workflow::HookService& svc, Request& req) {
  if (auto e = check_uuid(req.param("id"), "workflow")) return http::error_response(*e, req.request_id);
  const auto hook = req.param("hookId");
  if (hook.empty() || hook.size() > 64) {
    return http::error_response(Error::not_found("no such hook"), req.request_id);
  }
  workflow::HookDelivery d;
  d.workflow_id = std::string(req.param("id"));
  d.hook_id = std::string(hook);
  d.timestamp = header_or_empty(req, "x-devplane-timestamp");
  d.delivery_id = header_or_empty(req, "x-devplane-delivery");
  d.signature = header_or_empty(req, "x-devplane-signature");
  d.body = req.body;
  d.correlation_id = req.request_id;
  auto r = svc.deliver(d);
  if (!r.ok()) return http::error_response(r.error(), req.request_id);
  Response resp = http::data_response(r->duplicate ? 200 : 202, model::to_json(r->execution),
                                      json::object{{"duplicate", r->duplicate},
                                                   {"deliveryId", d.delivery_id}},
                                      req.request_id);
  resp.set_header("Location", "/api/v1/executions/" + r->execution.id);
  return resp;
}

}  // namespace

void register_workflow_hook_routes(http::Router& router, workflow::HookService& svc) {
  auto* s = &svc;
  router.add("POST", "/api/v1/workflows/:id/hooks/:hookId", [s](Request& r) { return deliver(*s, r); });
}

}  // namespace dp::api::v1
