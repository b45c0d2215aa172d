// /api/v1/tools: MCP adapters (register, read, change, delete), their health and catalog,
// approval of changed tools, and audited tool calls. See mcp/tool_service.hpp.

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "api/v1/routes.hpp"
#include "api/v1/tools_routes.hpp"
#include "api/validation.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"

namespace dp::api::v1 {
namespace {

namespace json = boost::json;
using http::Request;
using http::Response;

constexpr std::size_t kMaxArgumentsBytes = 1024 * 1024;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

std::string caller_of(const Request& req) {
  return req.caller.authenticated() ? req.caller.kind + ":" + req.caller.id : std::string();
}

bool absolute_path(std::string_view p) { return !p.empty() && p.front() == '/' && p.find('\0') == std::string_view::npos; }

// {name, config}: the config's shape depends on its transport.
Result<mcp::AdapterInput> parse_adapter(std::string_view body) {
  DP_ASSIGN_OR_RETURN(json::object o, parse_object_body(body));
  Validator v;
  v.only_keys(o, {"name", "config", "version"});
  mcp::AdapterInput in;
  if (auto n = v.string(o, "name", "name", true, 1, 64)) {
    if (!mcp::valid_adapter_name(*n)) {
      v.fail("name", "bad_format", "name must be 1..64 letters, digits, '-' or '_'");
    }
    in.name = *n;
  }
  (void)v.integer(o, "version", "version", false, 1, std::numeric_limits<std::int64_t>::max());
  const json::object* c = v.object(o, "config", "config", true);
  if (c != nullptr) {
    auto transport = v.one_of(*c, "transport", "config.transport", true, {"stdio", "http", "sse"});
    (void)v.integer(*c, "timeoutMs", "config.timeoutMs", false, 100, 600'000);
    (void)v.integer(*c, "maxConcurrent", "config.maxConcurrent", false, 1, 64);
    if (transport == "stdio") {
      v.only_keys(*c, {"transport", "command", "args", "env", "cwd", "sandbox", "network",
                       "readOnlyPaths", "timeoutMs", "maxConcurrent", "memoryMb", "pids", "cpus"},
                  "config.");
      (void)v.integer(*c, "memoryMb", "config.memoryMb", false, 16, 1024 * 1024);
      (void)v.integer(*c, "pids", "config.pids", false, 1, 65536);
      (void)v.number(*c, "cpus", "config.cpus", false, 0, 1024);
      (void)v.string(*c, "command", "config.command", true, 1, 4096);
      v.string_list(*c, "args", "config.args", false, 64, 4096);
      (void)v.string_map(*c, "env", "config.env", 64, 128, 8192);
      if (auto cwd = v.string(*c, "cwd", "config.cwd", false, 1, 4096); cwd && !absolute_path(*cwd)) {
        v.fail("config.cwd", "bad_format", "cwd must be an absolute path");
      }
      (void)v.boolean(*c, "sandbox", "config.sandbox", false);
      (void)v.boolean(*c, "network", "config.network", false);
      if (const auto* ro = v.array(*c, "readOnlyPaths", "config.readOnlyPaths", false, 16)) {
        for (const auto& p : *ro) {
          if (!p.is_string() || !absolute_path(p.get_string()) || p.get_string().size() > 4096) {
            v.fail("config.readOnlyPaths", "bad_format", "readOnlyPaths must be absolute paths");
            break;
          }
        }
      }
    } else if (transport == "http" || transport == "sse") {
      v.only_keys(*c, {"transport", "url", "headers", "timeoutMs", "maxConcurrent"}, "config.");
      if (auto url = v.string(*c, "url", "config.url", true, 1, 2048)) {
        if (!url->starts_with("http://") && !url->starts_with("https://")) {
          v.fail("config.url", "bad_format", "url must be an http:// or https:// URL");
        }
      }
      (void)v.string_map(*c, "headers", "config.headers", 32, 128, 8192);
    }
    in.config = *c;
  }
  DP_TRY(v.status("invalid MCP adapter"));
  return in;
}

Response list(mcp::ToolService& svc, Request& req) {
  if (!req.query.empty()) {
    Validator v;
    for (const auto& [k, val] : req.query) {
      v.unknown_query(k);
    }
    return fail(v.status("invalid query").error(), req);
  }
  auto all = svc.list();
  if (!all.ok()) return fail(all.error(), req);
  json::array items;
  for (const auto& a : *all) items.push_back(mcp::ToolService::adapter_json(a));
  const auto n = static_cast<std::int64_t>(items.size());
  return http::data_response(200, std::move(items), json::object{{"total", n}}, req.request_id);
}

Response create(mcp::ToolService& svc, Request& req) {
  auto in = parse_adapter(req.body);
  if (!in.ok()) return fail(in.error(), req);
  auto a = svc.create(std::move(*in), caller_of(req), req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  Response r = http::data_response(201, mcp::ToolService::adapter_json(*a), {}, req.request_id);
  r.set_header("Location", "/api/v1/tools/" + a->id);
  return r;
}

Response get_one(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  auto a = svc.get(id);
  if (!a.ok()) return fail(a.error(), req);
  Response r = http::data_response(200, mcp::ToolService::adapter_json(*a), {}, req.request_id);
  r.set_header("ETag", "\"" + std::to_string(a->version) + "\"");
  return r;
}

Response update(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  auto in = parse_adapter(req.body);
  if (!in.ok()) return fail(in.error(), req);
  std::optional<std::int64_t> version;
  if (auto o = parse_object_body(req.body); o.ok()) {
    if (const auto* v = o->if_contains("version"); v != nullptr && v->is_int64()) version = v->get_int64();
  }
  auto a = svc.update(id, std::move(*in), version, req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  Response r = http::data_response(200, mcp::ToolService::adapter_json(*a), {}, req.request_id);
  r.set_header("ETag", "\"" + std::to_string(a->version) + "\"");
  return r;
}

Response remove(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  if (auto s = svc.remove(id, req.request_id); !s.ok()) return fail(s.error(), req);
  Response r;
  r.status = 204;
  return r;
}

Response health(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  auto h = svc.check_health(id, req.request_id);
  if (!h.ok()) return fail(h.error(), req);
  const auto& a = h->adapter;
  json::object o{{"adapterId", a.id},
                 {"status", a.status},
                 {"reason", a.status_reason},
                 {"latencyMs", a.status == "healthy" && a.latency_us
                                   ? json::value(static_cast<double>(*a.latency_us) / 1000.0)
                                   : json::value(nullptr)},
                 {"lastHealthCheck", a.last_health_check ? json::value(clock::format_iso8601(*a.last_health_check))
                                                         : json::value(nullptr)},
                 {"changed", h->changed}};
  return http::data_response(200, std::move(o), {}, req.request_id);
}

Response catalog(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  auto c = svc.catalog(id, req.request_id);
  if (!c.ok()) return fail(c.error(), req);
  json::array items;
  std::int64_t held = 0;
  for (const auto& e : c->tools) {
    json::object t = mcp::to_json(e.tool);
    t["pinHash"] = e.pin_hash;
    t["pinnedHash"] = e.pinned_hash.empty() ? json::value(nullptr) : json::value(e.pinned_hash);
    t["held"] = e.held;
    held += e.held ? 1 : 0;
    items.push_back(std::move(t));
  }
  const auto n = static_cast<std::int64_t>(items.size());
  json::object meta{{"total", n},
                    {"held", held},
                    {"protocolVersion", c->server.protocol_version},
                    {"server", json::object{{"name", c->server.server_info.name},
                                            {"version", c->server.server_info.version}}}};
  return http::data_response(200, std::move(items), std::move(meta), req.request_id);
}

Response approve(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  std::vector<std::string> names;
  if (!req.body.empty()) {
    auto o = parse_object_body(req.body);
    if (!o.ok()) return fail(o.error(), req);
    Validator v;
    v.only_keys(*o, {"tools"});
    v.string_list(*o, "tools", "tools", false, 1000, 128);
    if (auto s = v.status("invalid approval"); !s.ok()) return fail(s.error(), req);
    if (const auto* t = o->if_contains("tools")) {
      for (const auto& n : t->as_array()) names.emplace_back(n.as_string());
    }
  }
  std::string actor = req.caller.authenticated() ? req.caller.name : std::string("system");
  auto a = svc.approve(id, names, actor, req.request_id);
  if (!a.ok()) return fail(a.error(), req);
  return http::data_response(200, mcp::ToolService::adapter_json(*a), {}, req.request_id);
}

Response execute(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  auto o = parse_object_body(req.body);
  if (!o.ok()) return fail(o.error(), req);
  Validator v;
  v.only_keys(*o, {"tool", "arguments"});
  auto tool = v.string(*o, "tool", "tool", true, 1, 128);
  json::value arguments = json::object{};
  if (const auto* a = o->if_contains("arguments")) {
    if (!a->is_object()) {
      v.fail("arguments", "wrong_type", "arguments must be an object");
    } else if (json::serialize(*a).size() > kMaxArgumentsBytes) {
      v.fail("arguments", "too_large", "arguments must serialize to at most 1048576 bytes");
    } else {
      arguments = *a;
    }
  }
  if (auto s = v.status("invalid tool call"); !s.ok()) return fail(s.error(), req);
  mcp::ExecuteRequest call;
  call.adapter_id = id;
  call.tool = *tool;
  call.arguments = std::move(arguments);
  call.caller = caller_of(req);
  call.correlation_id = req.request_id;
  auto e = svc.execute(std::move(call));
  if (!e.ok()) return fail(e.error(), req);
  return http::data_response(200, mcp::ToolService::execution_json(*e), {}, req.request_id);
}

Response executions(mcp::ToolService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "MCP adapter")) return fail(*e, req);
  store::ToolExecutionFilter f;
  f.adapter_id = id;
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      v.query_limit(val, 500, f.limit);
    } else if (k == "tool") {
      if (val.empty() || val.size() > 128) {
        v.fail("tool", "bad_format", "tool must be 1..128 characters");
      } else {
        f.tool_name = val;
      }
    } else if (k == "cursor") {
      v.query_cursor(val, f.after);
    } else {
      v.unknown_query(k);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto page = svc.executions(f);
  if (!page.ok()) return fail(page.error(), req);
  json::array items;
  for (const auto& e : page->items) items.push_back(mcp::ToolService::execution_json(e));
  return http::data_response(
      200, std::move(items),
      json::object{{"total", page->total},
                   {"limit", f.limit},
                   {"next", page->next_cursor ? json::value(*page->next_cursor) : json::value(nullptr)}},
      req.request_id);
}

}  // namespace

void register_tool_routes(http::Router& router, mcp::ToolService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/tools", [s](Request& r) { return list(*s, r); });
  router.add("POST", "/api/v1/tools", [s](Request& r) { return create(*s, r); });
  router.add("GET", "/api/v1/tools/:id", [s](Request& r) { return get_one(*s, r); });
  router.add("PUT", "/api/v1/tools/:id", [s](Request& r) { return update(*s, r); });
  router.add("DELETE", "/api/v1/tools/:id", [s](Request& r) { return remove(*s, r); });
  router.add("GET", "/api/v1/tools/:id/health", [s](Request& r) { return health(*s, r); });
  router.add("GET", "/api/v1/tools/:id/tools", [s](Request& r) { return catalog(*s, r); });
  router.add("POST", "/api/v1/tools/:id/approve", [s](Request& r) { return approve(*s, r); });
  router.add("POST", "/api/v1/tools/:id/execute", [s](Request& r) { return execute(*s, r); });
  router.add("GET", "/api/v1/tools/:id/executions", [s](Request& r) { return executions(*s, r); });
}

}  // namespace dp::api::v1
