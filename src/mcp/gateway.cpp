#include "mcp/gateway.hpp"

#include <boost/json/parse.hpp>

#include "core/log.hpp"

namespace dp::mcp {
namespace {

namespace json = boost::json;

constexpr std::string_view kExecuteRoute = "/api/v1/tools/:id/execute";

json::object error_result(const Error& e, std::string_view correlation_id) {
  auto resp = http::error_response(e, correlation_id);
  json::value body = json::parse(resp.body);
  json::object r;
  r["content"] = json::array{json::object{{"type", "text"}, {"text", resp.body}}};
  r["structuredContent"] = std::move(body);
  r["isError"] = true;
  return r;
}

Error unknown_tool(std::string_view name) {
  Error e = Error::not_found("unknown tool '" + std::string(name.substr(0, 128)) + "'");
  e.reason = "unknown_tool";
  return e;
}

}  // namespace

GatewayTools::GatewayTools(ToolService& tools, const http::Authenticator& authenticator)
    : tools_(tools), authenticator_(authenticator) {}

bool GatewayTools::may_call(const http::Caller& caller) const {
  return caller.role == "agent" || authenticator_.authorize(caller, "POST", kExecuteRoute).ok();
}

std::uint64_t GatewayTools::generation() const { return tools_.catalog_generation(); }

bool GatewayTools::owns(std::string_view name) const {
  return name.find(kGatewaySeparator) != std::string_view::npos;
}

Status GatewayTools::list(const CallContext& ctx, std::vector<Tool>& out) {
  if (!may_call(*ctx.caller)) return Ok{};
  DP_ASSIGN_OR_RETURN(auto adapters, tools_.list());
  for (const auto& a : adapters) {
    if (a.status != "healthy") continue;
    auto c = tools_.catalog(a.id, ctx.correlation_id);
    if (!c.ok()) {
      // The adapter went down since its last health check: leave its tools out this time.
      log::Logger(ctx.correlation_id)
          .warn("gateway: adapter catalog unavailable",
                {{"adapter", a.name}, {"error", c.error().message}});
      continue;
    }
    for (auto& e : c->tools) {
      if (e.held) continue;
      Tool t = std::move(e.tool);
      t.name = a.name + std::string(kGatewaySeparator) + t.name;
      out.push_back(std::move(t));
    }
  }
  return Ok{};
}

Result<json::object> GatewayTools::call(std::string_view name, const json::value& arguments,
                                        const CallContext& ctx) {
  if (!may_call(*ctx.caller)) {
    Error e{ErrorCode::kPermissionDenied, "permission_denied",
            "role '" + ctx.caller->role + "' may not call gatewayed tools (POST " +
                std::string(kExecuteRoute) + ")",
            nullptr};
    return error_result(e, ctx.correlation_id);
  }
  // Adapter names may hold "__" themselves: the longest adapter name that prefixes the tool
  // name wins.
  DP_ASSIGN_OR_RETURN(auto adapters, tools_.list());
  const model::Adapter* chosen = nullptr;
  for (const auto& a : adapters) {
    const std::string prefix = a.name + std::string(kGatewaySeparator);
    if (name.size() > prefix.size() && name.starts_with(prefix) &&
        (chosen == nullptr || a.name.size() > chosen->name.size())) {
      chosen = &a;
    }
  }
  if (chosen == nullptr) return unknown_tool(name);
  ExecuteRequest req;
  req.adapter_id = chosen->id;
  req.tool = std::string(name.substr(chosen->name.size() + kGatewaySeparator.size()));
  req.arguments = arguments;
  req.caller = ctx.caller->kind + ":" + ctx.caller->id;
  req.correlation_id = ctx.correlation_id;
  req.cancel = ctx.cancel;
  req.on_progress = ctx.on_progress;
  req.adapter = *chosen;
  auto r = tools_.execute(std::move(req));
  if (!r.ok()) {
    if (r.error().reason == "tool_not_found") return unknown_tool(name);
    return error_result(r.error(), ctx.correlation_id);
  }
  if (!r->result.is_object()) {
    return error_result(Error::internal("the adapter returned no result"), ctx.correlation_id);
  }
  return r->result.get_object();
}

}  // namespace dp::mcp
