// Workflow `tool` steps over the MCP layer: the Engine's ToolCaller made from mcp::ToolService.
//
// The adapter is found by name (or id); the call goes through ToolService::execute, the one
// audited entry point (a tool_executions row with the caller `execution:<id>/<step>` and the
// execution id as correlation id, and a `tool.execution.result` event). How it ends:
// - a result: `succeeded` with the step's outputs = the result's structuredContent when it is
//   an object, else `{content, text}` (the content items and their text joined by newlines);
// - a result with isError: `failed` (retried per the step's retry policy), the error is the text;
// - no such adapter or tool, a held tool, arguments that fail the tool's schema, a disabled
//   adapter: `refused` (the step fails, never retried);
// - the adapter down or backing off: `unavailable`; the call timed out: `timeout`; any other
//   failure: `failed`.
//
// Thread safety: the returned function may be called from any thread; it blocks.
#pragma once

#include "mcp/tool_service.hpp"
#include "workflow/engine.hpp"

namespace dp::workflow {

ToolCaller mcp_tool_caller(mcp::ToolService& service);

}  // namespace dp::workflow
