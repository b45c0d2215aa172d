#include "workflow/tool_steps.hpp"

#include "agents/mcp_tools.hpp"
#include "core/ids.hpp"

namespace dp::workflow {

namespace json = boost::json;

ToolCaller mcp_tool_caller(mcp::ToolService& service) {
  return [&service](const ToolCall& call) -> ToolCallResult {
    auto adapters = service.list();
    if (!adapters.ok()) return {"unavailable", nullptr, "cannot read the MCP adapters: " + adapters.error().message};
    const model::Adapter* a = nullptr;
    for (const auto& x : *adapters) {
      if (x.name == call.adapter || (ids::is_uuid(call.adapter) && x.id == call.adapter)) a = &x;
    }
    if (a == nullptr) return {"refused", nullptr, "there is no MCP adapter named '" + call.adapter + "'"};
    mcp::ExecuteRequest req;
    req.adapter_id = a->id;
    req.tool = call.tool;
    req.arguments = call.arguments;
    req.caller = call.caller;
    req.correlation_id = call.correlation_id;
    req.cancel = call.cancel;
    auto r = service.execute(std::move(req));
    if (!r.ok()) {
      const Error& e = r.error();
      const std::string msg = e.reason + ": " + e.message;
      if (e.code == ErrorCode::kAborted && e.reason == "cancelled") return {"cancelled", nullptr, msg};
      switch (e.code) {
        case ErrorCode::kNotFound:
        case ErrorCode::kInvalidArgument:
        case ErrorCode::kFailedPrecondition:
        case ErrorCode::kPermissionDenied:
          return {"refused", nullptr, msg};
        case ErrorCode::kUnavailable:
          return {"unavailable", nullptr, msg};
        case ErrorCode::kDeadlineExceeded:
          return {"timeout", nullptr, msg};
        default:
          return {"failed", nullptr, msg};
      }
    }
    const std::string text = agents::tool_result_text(r->result);
    if (r->status == "tool_error") {
      return {"failed", nullptr, "the tool answered with an error: " + text.substr(0, 4000)};
    }
    if (r->result.is_object()) {
      const auto& o = r->result.get_object();
      if (const auto* sc = o.if_contains("structuredContent"); sc != nullptr && sc->is_object()) {
        return {"succeeded", *sc, ""};
      }
      const auto* content = o.if_contains("content");
      return {"succeeded",
              json::object{{"content", content != nullptr ? *content : json::value(json::array{})},
                           {"text", text}},
              ""};
    }
    return {"succeeded", json::object{{"content", json::array{}}, {"text", text}}, ""};
  };
}

}  // namespace dp::workflow
