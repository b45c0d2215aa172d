#include "mcp/platform_tools.hpp"

#include <array>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "mcp/schema.hpp"

namespace dp::mcp {
namespace {

namespace json = boost::json;

// One argument that becomes part of the REST request.
struct Arg {
  std::string_view name;     // the tool argument
  std::string_view target;   // ":id" for a path parameter, "?status" for a query parameter,
                             // "body" for a body member of the same name
};

struct Def {
  std::string_view name;
  std::string_view title;
  std::string_view description;
  std::string_view method;
  std::string_view route;
  std::string schema;  // JSON
  std::vector<Arg> args;
  bool read_only;
};

// An id that is put into a path: the route then checks its format; here it only must not
// leave its segment.
constexpr std::string_view kId = R"({"type":"string","minLength":1,"maxLength":80})";

std::string obj(std::string_view props, std::string_view required) {
  return std::string(R"({"type":"object","additionalProperties":false,"properties":{)") +
         std::string(props) + "},\"required\":[" + std::string(required) + "]}";
}

const std::vector<Def>& defs() {
  static const std::vector<Def> kDefs = [] {
    const std::string id(kId);
    const std::string limit = R"({"type":"integer","minimum":1,"maximum":500})";
    const std::string cursor = R"({"type":"string","maxLength":80,"description":"`meta.next` of the previous page"})";
    auto keep = [](std::string s) { return s; };
    std::vector<Def> d;
    d.push_back({"list_agents", "List agents",
                 "Agents registered in devplane with their status, newest first. Filters: status "
                 "(created, starting, running, stopping, stopped, error, decommissioned), type "
                 "(command, llm, remote), q (name contains).",
                 "GET", "/api/v1/agents",
                 keep(obj(R"("status":{"type":"string","enum":["created","starting","running","stopping","stopped","error","decommissioned"]},)"
                          R"("type":{"type":"string","enum":["command","llm","remote"]},)"
                          R"("q":{"type":"string","maxLength":128},"limit":)" + limit + R"(,"cursor":)" + cursor,
                          "")),
                 {{"status", "?status"}, {"type", "?type"}, {"q", "?q"}, {"limit", "?limit"}, {"cursor", "?cursor"}},
                 true});
    d.push_back({"get_agent", "Get an agent", "One agent: kind, status, configuration (secrets masked).",
                 "GET", "/api/v1/agents/:id", keep(obj(R"("agentId":)" + id, R"("agentId")")),
                 {{"agentId", ":id"}}, true});
    d.push_back({"start_agent", "Start an agent", "Starts an agent (created, stopped or error -> running).",
                 "POST", "/api/v1/agents/:id/start", keep(obj(R"("agentId":)" + id, R"("agentId")")),
                 {{"agentId", ":id"}}, false});
    d.push_back({"stop_agent", "Stop an agent", "Stops a running agent; its running tasks are stopped.",
                 "POST", "/api/v1/agents/:id/stop", keep(obj(R"("agentId":)" + id, R"("agentId")")),
                 {{"agentId", ":id"}}, false});
    d.push_back({"create_task", "Give an agent a task",
                 "Queues a task for an agent; it runs when the agent is running. The same "
                 "idempotencyKey returns the first task instead of a second one. Read the outcome "
                 "with get_task.",
                 "POST", "/api/v1/agents/:id/tasks",
                 keep(obj(R"("agentId":)" + id +
                              R"(,"input":{"type":["string","object"],"description":"what to do: text, or an object for command agents"},)"
                              R"("idempotencyKey":{"type":"string","minLength":1,"maxLength":128})",
                          R"("agentId","input")")),
                 {{"agentId", ":id"}, {"input", "body"}, {"idempotencyKey", "body"}}, false});
    d.push_back({"get_task", "Get a task", "One task of an agent: status, result or error, timings.",
                 "GET", "/api/v1/agents/:id/tasks/:taskId",
                 keep(obj(R"("agentId":)" + id + R"(,"taskId":)" + id, R"("agentId","taskId")")),
                 {{"agentId", ":id"}, {"taskId", ":taskId"}}, true});
    d.push_back({"list_workflows", "List workflows", "Workflow definitions (current versions).",
                 "GET", "/api/v1/workflows",
                 keep(obj(R"("name":{"type":"string","maxLength":128},"limit":)" + limit + R"(,"cursor":)" + cursor, "")),
                 {{"name", "?name"}, {"limit", "?limit"}, {"cursor", "?cursor"}}, true});
    d.push_back({"get_workflow", "Get a workflow", "One workflow with its current definition.",
                 "GET", "/api/v1/workflows/:id", keep(obj(R"("workflowId":)" + id, R"("workflowId")")),
                 {{"workflowId", ":id"}}, true});
    d.push_back({"execute_workflow", "Run a workflow",
                 "Starts an execution of the workflow's current version with inputs (checked "
                 "against the workflow's declared inputs). Watch it with get_execution.",
                 "POST", "/api/v1/workflows/:id/execute",
                 keep(obj(R"("workflowId":)" + id + R"(,"inputs":{"type":"object"})", R"("workflowId")")),
                 {{"workflowId", ":id"}, {"inputs", "body"}}, false});
    d.push_back({"get_execution", "Get an execution",
                 "One workflow execution with every step: status, outputs, errors, approvals waiting.",
                 "GET", "/api/v1/executions/:id", keep(obj(R"("executionId":)" + id, R"("executionId")")),
                 {{"executionId", ":id"}}, true});
    d.push_back({"approve_step", "Approve a step",
                 "Approves a step waiting for approval; the execution goes on. The step's "
                 "approvers (roles) decide who may.",
                 "POST", "/api/v1/executions/:id/steps/:step/approve",
                 keep(obj(R"("executionId":)" + id + R"(,"stepId":)" + id +
                              R"(,"comment":{"type":"string","maxLength":2000})",
                          R"("executionId","stepId")")),
                 {{"executionId", ":id"}, {"stepId", ":step"}, {"comment", "body"}}, false});
    d.push_back({"reject_step", "Reject a step",
                 "Rejects a step waiting for approval; the step fails.",
                 "POST", "/api/v1/executions/:id/steps/:step/reject",
                 keep(obj(R"("executionId":)" + id + R"(,"stepId":)" + id +
                              R"(,"comment":{"type":"string","maxLength":2000})",
                          R"("executionId","stepId")")),
                 {{"executionId", ":id"}, {"stepId", ":step"}, {"comment", "body"}}, false});
    d.push_back({"search_memory", "Search memory",
                 "Searches devplane's memory (notes and the outcomes of agents' tasks) by meaning: "
                 "the k memories most similar to the query, best first, each with its score "
                 "(cosine similarity, -1..1). Filters: kind (note, task_outcome, ...), agentId.",
                 "GET", "/api/v1/memory/search",
                 keep(obj(R"("query":{"type":"string","minLength":1,"maxLength":2048},)"
                          R"("k":{"type":"integer","minimum":1,"maximum":50},)"
                          R"("kind":{"type":"string","maxLength":32},"agentId":)" + id +
                              R"(,"minScore":{"type":"number","minimum":-1,"maximum":1})",
                          R"("query")")),
                 {{"query", "?q"}, {"k", "?k"}, {"kind", "?kind"}, {"agentId", "?agentId"}, {"minScore", "?minScore"}},
                 true});
    return d;
  }();
  return kDefs;
}

const Def* find(std::string_view name) {
  for (const auto& d : defs()) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

Tool tool_of(const Def& d) {
  Tool t;
  t.name = std::string(d.name);
  t.title = std::string(d.title);
  t.description = std::string(d.description);
  t.input_schema = json::parse(d.schema).as_object();
  t.annotations = json::object{{"readOnlyHint", d.read_only},
                               {"destructiveHint", false},
                               {"openWorldHint", false}};
  return t;
}

std::string scalar_text(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  return json::serialize(v);
}

json::object result_of(json::value envelope, bool is_error) {
  json::object r;
  r["content"] = json::array{json::object{{"type", "text"}, {"text", json::serialize(envelope)}}};
  if (envelope.is_object()) r["structuredContent"] = std::move(envelope);
  r["isError"] = is_error;
  return r;
}

json::object error_result(const Error& e, std::string_view correlation_id) {
  auto resp = http::error_response(e, correlation_id);
  auto body = json::parse(resp.body);
  return result_of(std::move(body), true);
}

}  // namespace

PlatformTools::PlatformTools(const http::Router& router, const http::Authenticator& authenticator,
                             http::RequestAuditor* auditor)
    : router_(router), authenticator_(authenticator), auditor_(auditor) {}

std::vector<Tool> PlatformTools::all() {
  std::vector<Tool> out;
  for (const auto& d : defs()) out.push_back(tool_of(d));
  return out;
}

bool PlatformTools::owns(std::string_view name) const { return find(name) != nullptr; }

Status PlatformTools::list(const CallContext& ctx, std::vector<Tool>& out) {
  for (const auto& d : defs()) {
    if (authenticator_.authorize(*ctx.caller, d.method, d.route).ok()) out.push_back(tool_of(d));
  }
  return Ok{};
}

Result<json::object> PlatformTools::call(std::string_view name, const json::value& arguments,
                                         const CallContext& ctx) {
  const Def* d = find(name);
  if (d == nullptr) {
    Error e = Error::not_found("unknown tool '" + std::string(name.substr(0, 128)) + "'");
    e.reason = "unknown_tool";
    return e;
  }
  // The route's own access rule, as a REST request would meet it.
  if (auto s = authenticator_.authorize(*ctx.caller, d->method, d->route); !s.ok()) {
    return error_result(s.error(), ctx.correlation_id);
  }
  const json::object schema = json::parse(d->schema).as_object();
  if (auto s = validate_arguments(arguments, schema); !s.ok()) {
    return error_result(s.error(), ctx.correlation_id);
  }
  const auto& args = arguments.as_object();

  http::Request req;
  req.method = std::string(d->method);
  req.route = std::string(d->route);
  req.request_id = ctx.correlation_id;
  req.remote_address = ctx.remote_address;
  req.caller = *ctx.caller;
  req.log = log::Logger(ctx.correlation_id);
  std::string path(d->route);
  json::object body;
  for (const auto& a : d->args) {
    const auto* v = args.if_contains(a.name);
    if (v == nullptr) continue;
    if (a.target.starts_with(":")) {
      const std::string text = scalar_text(*v);
      // The schema bounds its length; a path parameter must also stay in its segment.
      if (text.find_first_of("/?#%") != std::string::npos) {
        return error_result(Error::invalid_argument("bad_format", std::string(a.name) + " is not an id"),
                            ctx.correlation_id);
      }
      const auto at = path.find(a.target);
      path.replace(at, a.target.size(), text);
      req.params.emplace_back(std::string(a.target.substr(1)), text);
    } else if (a.target.starts_with("?")) {
      req.query.emplace_back(std::string(a.target.substr(1)), scalar_text(*v));
    } else {
      body[a.name] = *v;
    }
  }
  req.path = path;
  req.target = path;
  if (!body.empty()) {
    req.body = json::serialize(body);
    req.headers.emplace_back("content-type", "application/json");
  }
  // The router finds the handler; the pattern must be the tool's own route (an argument cannot
  // steer the call to another one).
  http::Fields params;
  auto m = router_.match(req.method, req.path, params);
  if (m.outcome != http::Router::Outcome::kFound || m.pattern != d->route) {
    return error_result(Error::invalid_argument("bad_format", "the arguments do not name a valid " +
                                                                  std::string(d->route) + " request"),
                        ctx.correlation_id);
  }
  req.params = std::move(params);
  http::Response resp;
  try {
    resp = (*m.handler)(req);
  } catch (const std::exception& e) {
    req.log.error("platform tool threw", {{"tool", std::string(name)}, {"error", e.what()}});
    resp = http::error_response(Error::internal(e.what()), ctx.correlation_id);
  }
  if (auditor_ != nullptr && req.method != "GET") {
    try {
      auditor_->on_handled(req, resp);
    } catch (const std::exception& e) {
      req.log.error("audit failed", {{"tool", std::string(name)}, {"error", e.what()}});
    }
  }
  json::value envelope;
  if (!resp.body.empty()) {
    boost::system::error_code ec;
    envelope = json::parse(resp.body, ec);
    if (ec) envelope = json::object{{"status", resp.status}};
  } else {
    envelope = json::object{{"status", resp.status}};
  }
  return result_of(std::move(envelope), resp.status >= 400);
}

}  // namespace dp::mcp
