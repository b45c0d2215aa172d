// /api/v1/workflows and /api/v1/executions: definitions (versioned) and their executions.
#include <charconv>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/ids.hpp"
#include "workflow/service.hpp"

namespace dp::api::v1 {
namespace {

namespace json = boost::json;
using http::Request;
using http::Response;
using workflow::WorkflowService;

constexpr std::size_t kMaxComment = 2000;
constexpr std::size_t kMaxInputsBytes = 256 * 1024;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

workflow::Caller caller_of(const Request& req) {
  workflow::Caller c;
  if (req.caller.authenticated()) {
    c.name = (req.caller.kind == "user" ? "user:" : "key:") + req.caller.name;
  }
  c.role = req.caller.role;
  c.correlation_id = req.request_id;
  return c;
}

std::optional<Error> check_ids(const Request& req) {
  if (auto v = req.param("id"); !v.empty()) {
    const bool exec = req.path.rfind("/api/v1/executions", 0) == 0;
    if (auto e = check_uuid(v, exec ? "execution" : "workflow")) return e;
  }
  return std::nullopt;
}

// An empty body, or `{}`: for actions without parameters.
std::optional<Error> check_empty_body(const Request& req) {
  if (req.body.empty()) return std::nullopt;
  auto body = parse_object_body(req.body);
  if (!body.ok()) return body.error();
  Validator v;
  v.only_keys(*body, {});
  if (auto s = v.status("invalid request"); !s.ok()) return s.error();
  return std::nullopt;
}

// The definition from a body {"definition": "<YAML or JSON text>" | {...}}.
Result<std::string> definition_of(const json::object& o, Validator& v) {
  const auto* d = o.if_contains("definition");
  if (d == nullptr || d->is_null()) {
    v.fail("definition", "required", "definition is required (YAML or JSON text, or an object)");
    return std::string();
  }
  if (d->is_string()) return std::string(d->get_string());
  if (d->is_object()) return json::serialize(*d);
  v.fail("definition", "wrong_type", "definition must be a string (YAML or JSON) or an object");
  return std::string();
}

json::value next_of(const std::optional<std::string>& c) {
  return c ? json::value(*c) : json::value(nullptr);
}

Response create(WorkflowService& svc, Request& req) {
  auto body = parse_object_body(req.body);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  v.only_keys(*body, {"definition"});
  auto text = definition_of(*body, v);
  if (auto s = v.status("invalid workflow"); !s.ok()) return fail(s.error(), req);
  auto w = svc.create(*text, caller_of(req));
  if (!w.ok()) return fail(w.error(), req);
  Response resp = http::data_response(201, model::to_json(*w, true), {}, req.request_id);
  resp.set_header("Location", "/api/v1/workflows/" + w->id);
  return resp;
}

Response list(WorkflowService& svc, Request& req) {
  store::WorkflowFilter f;
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      v.query_limit(val, 500, f.limit);
    } else if (k == "name") {
      if (val.empty() || val.size() > 200) {
        v.fail("name", "bad_value", "name must be 1..200 characters");
      } else {
        f.name_contains = val;
      }
    } else if (k == "archived") {
      if (val != "true" && val != "false") {
        v.fail("archived", "bad_value", "archived must be true or false");
      } else {
        f.include_archived = val == "true";
      }
    } else if (k == "cursor") {
      v.query_cursor(val, f.after);
    } else {
      v.unknown_query(k);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto page = svc.list(f);
  if (!page.ok()) return fail(page.error(), req);
  json::array items;
  for (const auto& w : page->items) items.push_back(model::to_json(w, false));
  return http::data_response(200, std::move(items),
                             json::object{{"total", page->total}, {"limit", f.limit}, {"next", next_of(page->next_cursor)}},
                             req.request_id);
}

Response get_one(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  auto w = svc.get(std::string(req.param("id")));
  if (!w.ok()) return fail(w.error(), req);
  return http::data_response(200, model::to_json(*w, true), {}, req.request_id);
}

Response update(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  auto body = parse_object_body(req.body);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  v.only_keys(*body, {"definition", "version"});
  auto text = definition_of(*body, v);
  auto expected = v.integer(*body, "version", "version", false, 1, INT64_MAX);
  if (auto s = v.status("invalid workflow"); !s.ok()) return fail(s.error(), req);
  auto w = svc.update(std::string(req.param("id")), *text, expected, caller_of(req));
  if (!w.ok()) return fail(w.error(), req);
  return http::data_response(200, model::to_json(*w, true), {}, req.request_id);
}

Response archive(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  if (auto e = check_empty_body(req)) return fail(*e, req);
  auto w = svc.archive(std::string(req.param("id")), caller_of(req));
  if (!w.ok()) return fail(w.error(), req);
  return http::data_response(200, model::to_json(*w, false), {}, req.request_id);
}

Response get_version(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  const auto n = req.param("n");
  std::int64_t version = 0;
  auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), version);
  if (ec != std::errc() || p != n.data() + n.size() || version < 1) {
    return fail(Error::invalid_argument("invalid_version", "'" + std::string(n.substr(0, 32)) +
                                                               "' is not a version number (1, 2, ...)"),
                req);
  }
  auto v = svc.version(std::string(req.param("id")), version);
  if (!v.ok()) return fail(v.error(), req);
  return http::data_response(200, model::to_json(*v), {}, req.request_id);
}

Response execute(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  json::object inputs;
  if (!req.body.empty()) {
    auto body = parse_object_body(req.body);
    if (!body.ok()) return fail(body.error(), req);
    Validator v;
    v.only_keys(*body, {"inputs"});
    if (const auto* in = v.object(*body, "inputs", "inputs", false)) {
      if (json::serialize(*in).size() > kMaxInputsBytes) {
        v.fail("inputs", "too_large", "inputs must serialize to at most 262144 bytes");
      } else {
        inputs = *in;
      }
    }
    if (auto s = v.status("invalid request"); !s.ok()) return fail(s.error(), req);
  }
  auto e = svc.execute(std::string(req.param("id")), inputs, caller_of(req));
  if (!e.ok()) return fail(e.error(), req);
  Response resp = http::data_response(202, model::to_json(*e), {}, req.request_id);
  resp.set_header("Location", "/api/v1/executions/" + e->id);
  return resp;
}

json::object view_json(const workflow::ExecutionView& v) {
  json::object o = model::to_json(v.execution);
  json::array steps;
  for (const auto& s : v.steps) steps.push_back(model::to_json(s));
  o["steps"] = std::move(steps);
  return o;
}

Response list_executions(WorkflowService& svc, Request& req) {
  store::ExecutionFilter f;
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      v.query_limit(val, 500, f.limit);
    } else if (k == "status") {
      if (val != "pending" && val != "running" && val != "succeeded" && val != "failed" &&
          val != "cancelled") {
        v.fail("status", "not_allowed", "status must be one of: pending, running, succeeded, failed, cancelled");
      } else {
        f.status = val;
      }
    } else if (k == "cause") {
      if (val != "manual" && val != "schedule" && val != "webhook" && val != "workflow") {
        v.fail("cause", "not_allowed", "cause must be one of: manual, schedule, webhook, workflow");
      } else {
        f.cause = val;
      }
    } else if (k == "workflowId" || k == "parentExecutionId" || k == "cursor") {
      if (!ids::is_uuid(val)) {
        v.fail(k, "bad_format", k + " must be a UUID");
      } else if (k == "workflowId") {
        f.workflow_id = val;
      } else if (k == "parentExecutionId") {
        f.parent_execution_id = val;
      } else {
        f.after = val;
      }
    } else {
      v.unknown_query(k);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto page = svc.executions(f);
  if (!page.ok()) return fail(page.error(), req);
  json::array items;
  for (const auto& e : page->items) items.push_back(model::to_json(e));
  return http::data_response(200, std::move(items),
                             json::object{{"total", page->total}, {"limit", f.limit}, {"next", next_of(page->next_cursor)}},
                             req.request_id);
}

Response get_execution(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  auto v = svc.execution(std::string(req.param("id")));
  if (!v.ok()) return fail(v.error(), req);
  return http::data_response(200, view_json(*v), {}, req.request_id);
}

Response cancel(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  if (auto e = check_empty_body(req)) return fail(*e, req);
  auto r = svc.cancel(std::string(req.param("id")), caller_of(req));
  if (!r.ok()) return fail(r.error(), req);
  return http::data_response(202, model::to_json(*r), {}, req.request_id);
}

Response retry(WorkflowService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  if (auto e = check_empty_body(req)) return fail(*e, req);
  auto r = svc.retry(std::string(req.param("id")), caller_of(req));
  if (!r.ok()) return fail(r.error(), req);
  return http::data_response(202, view_json(*r), {}, req.request_id);
}

Response decide(WorkflowService& svc, Request& req, bool approve) {
  if (auto e = check_ids(req)) return fail(*e, req);
  const auto step = req.param("step");
  if (step.empty() || step.size() > 80) {
    return fail(Error::invalid_argument("invalid_step", "the step id is 1..80 characters"), req);
  }
  std::string comment;
  if (!req.body.empty()) {
    auto body = parse_object_body(req.body);
    if (!body.ok()) return fail(body.error(), req);
    Validator v;
    v.only_keys(*body, {"comment"});
    if (auto c = v.string(*body, "comment", "comment", false, 0, kMaxComment)) comment = *c;
    if (auto s = v.status("invalid request"); !s.ok()) return fail(s.error(), req);
  }
  auto r = svc.decide(std::string(req.param("id")), std::string(step), approve, comment, caller_of(req));
  if (!r.ok()) return fail(r.error(), req);
  return http::data_response(200, model::to_json(*r), {}, req.request_id);
}

}  // namespace

void register_workflow_routes(http::Router& router, workflow::WorkflowService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/workflows", [s](Request& r) { return list(*s, r); });
  router.add("POST", "/api/v1/workflows", [s](Request& r) { return create(*s, r); });
  router.add("GET", "/api/v1/workflows/:id", [s](Request& r) { return get_one(*s, r); });
  router.add("PUT", "/api/v1/workflows/:id", [s](Request& r) { return update(*s, r); });
  router.add("DELETE", "/api/v1/workflows/:id", [s](Request& r) { return archive(*s, r); });
  router.add("GET", "/api/v1/workflows/:id/versions/:n", [s](Request& r) { return get_version(*s, r); });
  router.add("POST", "/api/v1/workflows/:id/execute", [s](Request& r) { return execute(*s, r); });
  router.add("GET", "/api/v1/executions", [s](Request& r) { return list_executions(*s, r); });
  router.add("GET", "/api/v1/executions/:id", [s](Request& r) { return get_execution(*s, r); });
  router.add("POST", "/api/v1/executions/:id/cancel", [s](Request& r) { return cancel(*s, r); });
  router.add("POST", "/api/v1/executions/:id/retry", [s](Request& r) { return retry(*s, r); });
  router.add("POST", "/api/v1/executions/:id/steps/:step/approve",
             [s](Request& r) { return decide(*s, r, true); });
  router.add("POST", "/api/v1/executions/:id/steps/:step/reject",
             [s](Request& r) { return decide(*s, r, false); });
}

}  // namespace dp::api::v1
