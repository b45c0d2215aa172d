// Registration of /api/v1/tools (MCP adapters and tool calls). Built in the dp_api_tools
// library, so dp_api does not depend on the MCP client.
#pragma once

#include "http/router.hpp"
#include "mcp/tool_service.hpp"

namespace dp::api::v1 {

void register_tool_routes(http::Router& router, mcp::ToolService& service);

}  // namespace dp::api::v1
