// /api/v1/agents/:id/tasks: give an agent a task, read its status and result, cancel it.

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/ids.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

constexpr std::size_t kMaxInputBytes = 256 * 1024;
constexpr std::size_t kMaxKey = 128;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

std::optional<Error> check_ids(const Request& req) {
  for (const char* p : {"id", "taskId"}) {
    const auto v = req.param(p);
    if (v.empty()) continue;
    if (auto e = check_uuid(v, std::string_view(p) == "id" ? "agent" : "task")) return e;
  }
  return std::nullopt;
}

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > kMaxKey) return false;
  for (char c : k) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  }
  return true;
}

// A git repository: an absolute local path or a URL this machine can reach.
bool valid_repo(std::string_view r) {
  if (r.empty() || r.front() == '-' || has_control_chars(r)) return false;
  if (r.front() == '/') return true;
  for (std::string_view scheme : {"https://", "http://", "git://", "ssh://", "file:///"}) {
    if (r.substr(0, scheme.size()) == scheme && r.size() > scheme.size()) return true;
  }
  return false;
}

// A ref as git accepts it in `rev-parse` (a branch, tag or commit), kept to a safe alphabet.
bool valid_ref(std::string_view r) {
  if (r.empty() || r.front() == '-' || r.find("..") != std::string_view::npos) return false;
  for (char c : r) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// repo, baseRef and limits of a new task, checked; what passed goes into the task's options.
boost::json::object check_options(Validator& v, const boost::json::object& o) {
  boost::json::object out;
  if (auto r = v.string(o, "repo", "repo", false, 1, 4096)) {
    if (!valid_repo(*r)) {
      v.fail("repo", "bad_format", "repo must be an absolute path or an http(s)://, git://, ssh:// or file:/// URL");
    } else {
      out["repo"] = *r;
    }
  }
  if (auto b = v.string(o, "baseRef", "baseRef", false, 1, 255)) {
    if (!valid_ref(*b)) {
      v.fail("baseRef", "bad_format", "baseRef must be a branch, tag or commit ([A-Za-z0-9/._-], not starting with '-')");
    } else if (!o.contains("repo")) {
      v.fail("baseRef", "requires_repo", "baseRef needs repo");
    } else {
      out["baseRef"] = *b;
    }
  }
  if (const auto* l = v.object(o, "limits", "limits", false)) {
    v.only_keys(*l, {"timeoutSeconds", "maxTokens", "maxCostUsd", "maxToolCalls", "maxOutputBytes"},
                "limits.");
    boost::json::object lim;
    if (auto x = v.integer(*l, "timeoutSeconds", "limits.timeoutSeconds", false, 1, 86'400)) lim["timeoutSeconds"] = *x;
    if (auto x = v.integer(*l, "maxTokens", "limits.maxTokens", false, 1, 1'000'000'000)) lim["maxTokens"] = *x;
    if (auto x = v.number(*l, "maxCostUsd", "limits.maxCostUsd", false, 0.000001, 1'000'000)) lim["maxCostUsd"] = *x;
    if (auto x = v.integer(*l, "maxToolCalls", "limits.maxToolCalls", false, 0, 100'000)) lim["maxToolCalls"] = *x;
    if (auto x = v.integer(*l, "maxOutputBytes", "limits.maxOutputBytes", false, 1, 1LL << 32)) lim["maxOutputBytes"] = *x;
    out["limits"] = std::move(lim);
  }
  return out;
}

Response create(agents::TaskService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  auto body = parse_object_body(req.body);
  if (!body.ok()) return fail(body.error(), req);
  Validator v;
  const auto& o = *body;
  v.only_keys(o, {"input", "idempotencyKey", "repo", "baseRef", "limits"});
  const auto* input = o.if_contains("input");
  if (input == nullptr) {
    v.fail("input", "required", "input is required (a string or an object)");
  } else if (!input->is_string() && !input->is_object()) {
    v.fail("input", "wrong_type", "input must be a string or an object");
  } else if (boost::json::serialize(*input).size() > kMaxInputBytes) {
    v.fail("input", "too_large", "input must serialize to at most 262144 bytes");
  }
  std::string key;
  if (auto k = v.string(o, "idempotencyKey", "idempotencyKey", false, 1, kMaxKey)) key = *k;
  if (auto h = req.header("idempotency-key")) {
    if (!key.empty() && key != *h) {
      v.fail("idempotencyKey", "mismatch", "the body's idempotencyKey and the Idempotency-Key header differ");
    }
    key = std::string(*h);
  }
  if (!key.empty() && !valid_key(key)) {
    v.fail("idempotencyKey", "bad_format", "idempotencyKey must be 1..128 printable ASCII characters");
  }
  boost::json::object options = check_options(v, o);
  if (auto s = v.status("invalid task"); !s.ok()) return fail(s.error(), req);
  agents::NewTask t;
  t.options = std::move(options);
  t.agent_id = std::string(req.param("id"));
  t.input = *input;
  t.idempotency_key = key;
  t.created_by = req.caller.authenticated() ? req.caller.kind + ":" + req.caller.id : "";
  auto r = svc.create(std::move(t), req.request_id);
  if (!r.ok()) return fail(r.error(), req);
  Response resp = http::data_response(r->second ? 201 : 200, model::to_json(r->first),
                                      boost::json::object{{"created", r->second}}, req.request_id);
  resp.set_header("Location", "/api/v1/agents/" + r->first.agent_id + "/tasks/" + r->first.id);
  return resp;
}

Response list(agents::TaskService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  store::TaskFilter f;
  f.agent_id = std::string(req.param("id"));
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      v.query_limit(val, 500, f.limit);
    } else if (k == "status") {
      if (val != "queued" && val != "running" && val != "succeeded" && val != "failed" && val != "cancelled") {
        v.fail("status", "not_allowed", "status must be one of: queued, running, succeeded, failed, cancelled");
      } else {
        f.status = val;
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
  boost::json::array items;
  for (const auto& t : page->items) items.push_back(model::to_json(t));
  return http::data_response(
      200, std::move(items),
      boost::json::object{{"total", page->total},
                          {"limit", f.limit},
                          {"next", page->next_cursor ? boost::json::value(*page->next_cursor)
                                                     : boost::json::value(nullptr)}},
      req.request_id);
}

Response get_one(agents::TaskService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  auto t = svc.get(std::string(req.param("id")), std::string(req.param("taskId")));
  if (!t.ok()) return fail(t.error(), req);
  return http::data_response(200, model::to_json(*t), {}, req.request_id);
}

Response cancel(agents::TaskService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  if (!req.body.empty()) {
    auto body = http::parse_json_body(req.body);
    if (!body.ok()) return fail(body.error(), req);
    Validator v;
    if (!body->is_object()) {
      v.fail("", "wrong_type", "request body must be a JSON object");
    } else {
      v.only_keys(body->as_object(), {});
    }
    if (auto s = v.status("invalid request"); !s.ok()) return fail(s.error(), req);
  }
  auto t = svc.cancel(std::string(req.param("id")), std::string(req.param("taskId")), req.request_id);
  if (!t.ok()) return fail(t.error(), req);
  return http::data_response(200, model::to_json(*t), {}, req.request_id);
}

Response metrics(agents::TaskService& svc, Request& req) {
  if (auto e = check_ids(req)) return fail(*e, req);
  store::MetricFilter f;
  f.agent_id = std::string(req.param("id"));
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      v.query_limit(val, 10'000, f.limit);
    } else if (k == "taskId") {
      if (!ids::is_uuid(val)) {
        v.fail("taskId", "bad_format", "taskId must be a task id");
      } else {
        f.task_id = val;
      }
    } else if (k == "type") {
      if (val.empty() || val.size() > 64) {
        v.fail("type", "out_of_range", "type must be 1..64 characters");
      } else {
        f.metric_type = val;
      }
    } else {
      v.unknown_query(k);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto rows = svc.metrics(f);
  if (!rows.ok()) return fail(rows.error(), req);
  boost::json::array items;
  for (const auto& m : *rows) items.push_back(model::to_json(m));
  const auto count = static_cast<std::int64_t>(items.size());
  return http::data_response(200, std::move(items),
                             boost::json::object{{"count", count}, {"limit", f.limit}},
                             req.request_id);
}

}  // namespace

void register_task_routes(http::Router& router, agents::TaskService& svc) {
  auto* s = &svc;
  router.add("POST", "/api/v1/agents/:id/tasks", [s](Request& r) { return create(*s, r); });
  router.add("GET", "/api/v1/agents/:id/tasks", [s](Request& r) { return list(*s, r); });
  router.add("GET", "/api/v1/agents/:id/tasks/:taskId", [s](Request& r) { return get_one(*s, r); });
  router.add("POST", "/api/v1/agents/:id/tasks/:taskId/cancel",
             [s](Request& r) { return cancel(*s, r); });
  router.add("GET", "/api/v1/agents/:id/metrics", [s](Request& r) { return metrics(*s, r); });
}

}  // namespace dp::api::v1
