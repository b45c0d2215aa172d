// GatewayTools: the tools of every healthy registered MCP adapter, offered on /mcp as
// `<adapter>__<tool>` (one endpoint for all of a team's tools).
//
// Calls go through ToolService::execute, so everything a REST tool call gets applies: the
// tool's pin (a changed, unapproved tool is neither listed nor callable), argument validation,
// a tool_executions row with the caller and correlation id, and a `tool.execution.result`
// event. Who may call: the roles of POST /api/v1/tools/:id/execute, plus agent keys (the
// access table names /mcp the agents' tool gateway). Listing shows nothing to other roles.
//
// A gatewayed result is the adapter's own tools/call result, passed through; a call that
// fails or is refused gives a result with isError and devplane's error envelope (with the
// executionId of its record when one was written).
//
// Safe from any thread; calls block (store, MCP): run them on the blocking pool.
#pragma once

#include <string_view>
#include <vector>

#include "http/security.hpp"
#include "mcp/server.hpp"
#include "mcp/tool_service.hpp"

namespace dp::mcp {

inline constexpr std::string_view kGatewaySeparator = "__";

class GatewayTools final : public ToolSource {
 public:
  GatewayTools(ToolService& tools, const http::Authenticator& authenticator);

  // ToolSource
  Status list(const CallContext& ctx, std::vector<Tool>& out) override;
  bool owns(std::string_view name) const override;
  Result<boost::json::object> call(std::string_view name, const boost::json::value& arguments,
                                   const CallContext& ctx) override;
  std::uint64_t generation() const override;

 private:
  bool may_call(const http::Caller& caller) const;

  ToolService& tools_;
  const http::Authenticator& authenticator_;
};

}  // namespace dp::mcp
