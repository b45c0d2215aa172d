// MCP tools for `llm` agents: the ToolSource (agents/tools.hpp) over the registered MCP
// adapters (mcp::ToolService).
//
// A config name `<adapter>.<tool>` selects one tool of the adapter named `<adapter>` (split at
// the first '.'; adapter names have no dots), `<adapter>.*` every tool it lists. The tool's
// description and input schema come from the adapter's live catalog; its wire name for the
// model is the config name with '.' (and anything else outside [A-Za-z0-9_-]) made '_'.
//
// A call goes through ToolService::execute, the one audited entry point: caller
// `agent:<agentId>`, the task's correlation id, a tool_executions row and a
// `tool.execution.result` event. What the model reads: the text of the result's content
// items (other items described in a line, structuredContent as JSON when there is no text),
// flagged as an error on `isError`; a refused call (a held tool, arguments that fail the
// schema, an adapter down) is an error output naming the reason, never a task failure.
//
// Thread safety: immutable after construction; calls block (store, MCP) and may come from any
// thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/tools.hpp"
#include "mcp/tool_service.hpp"

namespace dp::agents {

class McpToolSource final : public ToolSource {
 public:
  explicit McpToolSource(mcp::ToolService& service) : service_(service) {}

  Result<std::vector<std::shared_ptr<const Tool>>> resolve(
      const std::vector<std::string>& names, const std::string& correlation_id) const override;

 private:
  mcp::ToolService& service_;
};

// The text a model reads for a tools/call result (the raw result object).
std::string tool_result_text(const boost::json::value& result);

}  // namespace dp::agents
