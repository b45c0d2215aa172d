// /api/v1/agents: list, create, read, update, decommission or purge, start, stop, history.
#include <charconv>

#include <boost/json/array.hpp>

#include "agents/task_service.hpp"
#include "api/v1/agent_config.hpp"
#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "model/agent_json.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

// One agent in the envelope, its JSON written as text (model::append_json).
Response agent_response(unsigned status, const model::Agent& a, const Request& req) {
  std::string item;
  item.reserve(512);
  model::append_json(item, a);
  return http::data_response_text(status, item, {}, req.request_id);
}

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;
constexpr std::size_t kMaxName = 128;
constexpr std::size_t kMaxDescription = 2000;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

Response fail(Status&& s, const Request& req) { return fail(s.error(), req); }

// Ids are UUIDs; anything else cannot name an agent, so say so before asking the store.
std::optional<Error> check_id(std::string_view id) { return check_uuid(id, "agent"); }

Result<boost::json::object> body_object(const Request& req) { return parse_object_body(req.body); }

std::optional<std::string> validate_name(const boost::json::object& o, Validator& v,
                                         bool required) {
  auto name = v.string(o, "name", "name", required, 1, kMaxName);
  if (name && (has_control_chars(*name) || name->front() == ' ' || name->back() == ' ')) {
    v.fail("name", "bad_format", "name must not contain control characters or edge spaces");
    return std::nullopt;
  }
  return name;
}

Response create(agents::AgentService& svc, Request& req) {
  auto body = body_object(req);
  if (!body.ok()) return fail(body.error(), req);
  const auto& o = *body;
  Validator v;
  v.only_keys(o, {"name", "type", "description", "labels", "config"});
  agents::NewAgent spec;
  auto name = validate_name(o, v, true);
  auto type = v.string(o, "type", "type", true, 1, 64);
  if (type && !model::is_agent_kind(*type)) {
    v.fail("type", "not_allowed", "type must be one of: command, llm, remote");
    type.reset();
  }
  auto description = v.string(o, "description", "description", false, 0, kMaxDescription);
  auto labels = v.string_map(o, "labels", "labels", 64, 63, 256);
  const auto* config = v.object(o, "config", "config", false);
  if (type) {
    static const boost::json::object kEmpty;
    validate_agent_config(*type, config != nullptr ? *config : kEmpty, v);
  }
  if (auto s = v.status("invalid agent"); !s.ok()) return fail(std::move(s), req);
  spec.name = std::move(*name);
  spec.type = std::move(*type);
  spec.description = description.value_or("");
  if (labels) spec.labels = std::move(*labels);
  if (config != nullptr) spec.config = *config;
  auto a = svc.create(std::move(spec), req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  Response r = agent_response(201, *a, req);
  r.set_header("Location", "/api/v1/agents/" + a->id);
  r.set_header("ETag", "\"" + std::to_string(a->version) + "\"");
  return r;
}

// The `type` and `q` filters, shared by the list and the counts.
void type_and_name_filters(const Request& req, Validator& v, store::AgentFilter& f) {
  if (auto t = req.query_param("type")) {
    if (!model::is_agent_kind(*t)) {
      v.fail("type", "not_allowed", "type must be one of: command, llm, remote");
    } else {
      f.type = std::string(*t);
    }
  }
  if (auto q = req.query_param("q")) {
    if (q->size() > kMaxName) {
      v.fail("q", "too_long", "q must be at most 128 characters");
    } else if (!q->empty()) {
      f.name_contains = std::string(*q);
    }
  }
}

Response list(agents::AgentService& svc, Request& req) {
  store::AgentFilter f;
  Validator v;
  static const std::initializer_list<std::string_view> kKnown = {"status", "type", "q", "limit",
                                                                 "offset", "cursor"};
  for (const auto& [k, val] : req.query) {
    if (std::find(kKnown.begin(), kKnown.end(), k) == kKnown.end()) {
      v.fail(k, "unknown_parameter", "unknown query parameter '" + k.substr(0, 64) + "'");
    }
  }
  auto parse_int = [&](std::string_view name, std::int64_t min, std::int64_t max,
                       std::int64_t& out) {
    auto p = req.query_param(name);
    if (!p) return;
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(p->data(), p->data() + p->size(), n);
    if (ec != std::errc() || ptr != p->data() + p->size() || n < min || n > max) {
      v.fail(std::string(name), "out_of_range",
             std::string(name) + " must be an integer in " + std::to_string(min) + ".." +
                 std::to_string(max));
      return;
    }
    out = n;
  };
  std::int64_t limit = kDefaultLimit;
  parse_int("limit", 1, kMaxLimit, limit);
  f.limit = static_cast<int>(limit);
  parse_int("offset", 0, INT32_MAX, f.offset);
  if (auto s = req.query_param("status")) {
    if (!model::parse_agent_status(*s)) {
      v.fail("status", "not_allowed",
             "status must be one of: created, starting, running, stopping, stopped, error, "
             "decommissioned");
    } else {
      f.status = std::string(*s);
    }
  }
  type_and_name_filters(req, v, f);
  if (auto c = req.query_param("cursor")) {
    if (!ids::is_uuid(*c)) {
      v.fail("cursor", "bad_format", "cursor must be the `next` value of a previous page");
    } else {
      f.after = std::string(*c);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(std::move(s), req);
  auto page = svc.list(f);
  if (!page.ok()) return fail(page.error(), req);
  std::string items;
  items.reserve(page->items.size() * 512 + 2);
  items += '[';
  for (std::size_t i = 0; i < page->items.size(); ++i) {
    if (i > 0) items += ',';
    model::append_json(items, page->items[i]);
  }
  items += ']';
  boost::json::object meta{{"total", page->total},
                           {"limit", f.limit},
                           {"offset", f.after ? 0 : f.offset},
                           {"next", page->next_cursor ? boost::json::value(*page->next_cursor)
                                                      : boost::json::value(nullptr)}};
  return http::data_response_text(200, items, std::move(meta), req.request_id);
}

// GET /api/v1/agents/counts: how many agents are in each status (every status, zero included)
// and the total without the decommissioned ones, under the optional `type` and `q` filters
// of the list. One query whatever the number of agents: what the dashboard draws.
Response counts(agents::AgentService& svc, Request& req) {
  store::AgentFilter f;
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k != "type" && k != "q") v.unknown_query(k);
  }
  type_and_name_filters(req, v, f);
  if (auto s = v.status("invalid query"); !s.ok()) return fail(std::move(s), req);
  auto c = svc.count_by_status(f);
  if (!c.ok()) return fail(c.error(), req);
  boost::json::object by_status;
  std::int64_t total = 0;
  for (std::string_view s : model::agent_statuses()) {
    auto it = c->find(std::string(s));
    const std::int64_t n = it == c->end() ? 0 : it->second;
    by_status[s] = n;
    if (s != model::to_string(model::AgentStatus::kDecommissioned)) total += n;
  }
  boost::json::object data{{"total", total}, {"byStatus", std::move(by_status)}};
  return http::data_response(200, std::move(data), {}, req.request_id);
}

constexpr std::size_t kMaxActivityIds = 100;

boost::json::value sample_time(const std::optional<model::Metric>& m) {
  if (!m) return nullptr;
  return boost::json::value(clock::format_iso8601(m->timestamp));
}

// GET /api/v1/agents/activity?ids=a,b,...: what the agent cards show besides the agent (its
// current task, its latest resource sample), for a page of agents in one read.
Response activity(agents::AgentService& svc, Request& req) {
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k != "ids") v.unknown_query(k);
  }
  std::vector<std::string> ids;
  auto raw = req.query_param("ids");
  if (!raw || raw->empty()) {
    v.fail("ids", "required", "ids must list agent ids, comma-separated");
  } else {
    // One problem for `ids` at most, next to those of the other parameters.
    std::string_view rest = *raw;
    for (;;) {
      const auto comma = rest.find(',');
      const std::string_view id = rest.substr(0, comma);
      if (!ids::is_uuid(id)) {
        v.fail("ids", "bad_format", "each id must be an agent id (a UUID)");
        break;
      }
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
        if (ids.size() == kMaxActivityIds) {
          v.fail("ids", "too_many", "at most " + std::to_string(kMaxActivityIds) + " ids");
          break;
        }
        ids.emplace_back(id);
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(std::move(s), req);
  auto acts = svc.activity(ids);
  if (!acts.ok()) return fail(acts.error(), req);
  boost::json::array items;
  items.reserve(acts->size());
  for (const auto& a : *acts) {
    boost::json::value current = nullptr;
    if (!a.running.empty()) {
      const auto& t = a.running.front();
      current = boost::json::object{
          {"id", t.id},
          {"summary", agents::task_summary(t)},
          {"startedAt", t.started_at ? boost::json::value(clock::format_iso8601(*t.started_at))
                                     : boost::json::value(nullptr)},
          {"attempts", t.attempts}};
    }
    boost::json::object res;
    if (!a.resources_unavailable.empty()) {
      res = {{"available", false}, {"reason", a.resources_unavailable}};
    } else {
      auto label = [&](std::string_view k) -> boost::json::value {
        if (!a.memory) return nullptr;
        const auto* found = a.memory->labels.if_contains(k);
        return found != nullptr ? *found : boost::json::value(nullptr);
      };
      res = {{"available", true},
             {"cpuPercent", a.cpu ? boost::json::value(a.cpu->value) : boost::json::value(nullptr)},
             {"memoryBytes", a.memory ? boost::json::value(static_cast<std::int64_t>(a.memory->value))
                                      : boost::json::value(nullptr)},
             {"memoryLimitBytes", label("limitBytes")},
             {"tasks", label("tasks")},
             {"sampledAt", sample_time(a.memory)}};
    }
    items.push_back(boost::json::object{{"agentId", a.agent_id},
                                        {"currentTask", std::move(current)},
                                        {"runningTasks", a.running.size()},
                                        {"resources", std::move(res)}});
  }
  return http::data_response(200, std::move(items), {}, req.request_id);
}

Response get_one(agents::AgentService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  auto a = svc.get(id);
  if (!a.ok()) return fail(a.error(), req);
  Response r = agent_response(200, *a, req);
  r.set_header("ETag", "\"" + std::to_string(a->version) + "\"");
  return r;
}

// If-Match: "3", W/"3" or 3.
std::optional<std::int64_t> parse_if_match(std::string_view h) {
  if (h.starts_with("W/")) h.remove_prefix(2);
  if (h.size() >= 2 && h.front() == '"' && h.back() == '"') h = h.substr(1, h.size() - 2);
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(h.data(), h.data() + h.size(), n);
  if (ec != std::errc() || ptr != h.data() + h.size() || n < 1) return std::nullopt;
  return n;
}

Response update(agents::AgentService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  auto body = body_object(req);
  if (!body.ok()) return fail(body.error(), req);
  const auto& o = *body;
  Validator v;
  v.only_keys(o, {"name", "type", "description", "labels", "config", "version"});
  std::optional<std::int64_t> version = v.integer(o, "version", "version", false, 1, INT64_MAX);
  if (auto h = req.header("if-match")) {
    auto hv = parse_if_match(*h);
    if (!hv) {
      v.fail("If-Match", "bad_format", "If-Match must be the agent's version, e.g. \"3\"");
    } else if (version && *version != *hv) {
      v.fail("version", "mismatch", "the version in the body and If-Match differ");
    } else {
      version = hv;
    }
  }
  if (!version && v.ok()) {
    v.fail("version", "required",
           "send the version you read, as the `version` field or an If-Match header");
  }
  agents::AgentPatch patch;
  patch.name = validate_name(o, v, false);
  patch.description = v.string(o, "description", "description", false, 0, kMaxDescription);
  patch.labels = v.string_map(o, "labels", "labels", 64, 63, 256);
  const auto* config = v.object(o, "config", "config", false);
  auto type = v.string(o, "type", "type", false, 1, 64);
  if (auto s = v.status("invalid agent update"); !s.ok()) return fail(std::move(s), req);

  // Type-specific checks need the stored agent.
  auto current = svc.get(id);
  if (!current.ok()) return fail(current.error(), req);
  if (type && *type != current->type) {
    v.fail("type", "immutable", "type cannot be changed; create a new agent instead");
  }
  if (config != nullptr) {
    validate_agent_config(current->type, *config, v);
    patch.config = *config;
  }
  if (auto s = v.status("invalid agent update"); !s.ok()) return fail(std::move(s), req);
  auto a = svc.update(id, std::move(patch), *version, req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  Response r = agent_response(200, *a, req);
  r.set_header("ETag", "\"" + std::to_string(a->version) + "\"");
  return r;
}

Response remove(agents::AgentService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  bool purge = false;
  for (const auto& [k, val] : req.query) {
    if (k != "purge") {
      return fail(Error::validation("invalid query",
                                    boost::json::array{boost::json::object{
                                        {"field", k.substr(0, 64)},
                                        {"code", "unknown_parameter"},
                                        {"message", "unknown query parameter"}}}),
                  req);
    }
    if (val != "true" && val != "false") {
      return fail(Error::validation("invalid query", boost::json::array{boost::json::object{
                                                         {"field", "purge"},
                                                         {"code", "wrong_type"},
                                                         {"message", "purge must be true or false"}}}),
                  req);
    }
    purge = val == "true";
  }
  if (purge) {
    // Purging erases history; deciding that is an admin's (docs/security.md).
    if (req.caller.role != "admin") {
      return fail(Error{ErrorCode::kPermissionDenied, "permission_denied",
                        "only an admin may purge an agent (?purge=true)", {}},
                  req);
    }
    if (auto s = svc.purge(id, req.request_id); !s.ok()) return fail(std::move(s), req);
    Response r;
    r.status = 204;
    return r;
  }
  auto a = svc.decommission(id, req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  return agent_response(200, *a, req);
}

Response lifecycle(agents::AgentService& svc, Request& req, agents::LifecycleAction action) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  if (!req.body.empty()) {
    // Accept an empty object for clients that always send JSON; reject anything else.
    auto body = body_object(req);
    if (!body.ok()) return fail(body.error(), req);
    Validator v;
    v.only_keys(*body, {});
    if (auto s = v.status("invalid request"); !s.ok()) return fail(std::move(s), req);
  }
  auto a = svc.lifecycle(id, action, req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  return agent_response(200, *a, req);
}

Response history(agents::AgentService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_id(id)) return fail(*e, req);
  auto h = svc.history(id, kMaxLimit);
  if (!h.ok()) return fail(h.error(), req);
  boost::json::array items;
  for (const auto& e : *h) items.push_back(model::to_json(e));
  return http::data_response(200, std::move(items), {}, req.request_id);
}

}  // namespace

void register_agent_routes(http::Router& router, agents::AgentService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/agents", [s](Request& r) { return list(*s, r); });
  router.add("POST", "/api/v1/agents", [s](Request& r) { return create(*s, r); });
  // Before /:id, which would take "counts" for an id (the first matching route wins).
  router.add("GET", "/api/v1/agents/counts", [s](Request& r) { return counts(*s, r); });
  router.add("GET", "/api/v1/agents/activity", [s](Request& r) { return activity(*s, r); });
  router.add("GET", "/api/v1/agents/:id", [s](Request& r) { return get_one(*s, r); });
  router.add("PUT", "/api/v1/agents/:id", [s](Request& r) { return update(*s, r); });
  router.add("DELETE", "/api/v1/agents/:id", [s](Request& r) { return remove(*s, r); });
  router.add("POST", "/api/v1/agents/:id/start",
             [s](Request& r) { return lifecycle(*s, r, agents::LifecycleAction::kStart); });
  router.add("POST", "/api/v1/agents/:id/stop",
             [s](Request& r) { return lifecycle(*s, r, agents::LifecycleAction::kStop); });
  router.add("GET", "/api/v1/agents/:id/states", [s](Request& r) { return history(*s, r); });
  // The remote-agent link is a WebSocket (agents/remote/remote_hub.hpp); the server hands
  // upgrades to it before routing, so a plain GET lands here.
  router.add("GET", "/api/v1/agents/:id/connect", [](Request& r) {
    return fail(Error::invalid_argument("upgrade_required",
                                        "this route is a WebSocket: connect with an Upgrade "
                                        "request (see docs/agent-protocol.md)"),
                r);
  });
}

}  // namespace dp::api::v1
