-- MCP adapters: pinned tool catalog (tool name -> hash of description and schemas), tools
-- held after a change until an operator re-approves them, and the latency of the last ping.
-- Tool executions: the outcome of each call.
ALTER TABLE mcp_adapters ADD COLUMN pinned_tools JSONB NOT NULL DEFAULT '{}';
ALTER TABLE mcp_adapters ADD COLUMN flagged_tools JSONB NOT NULL DEFAULT '{}';
ALTER TABLE mcp_adapters ADD COLUMN approved_at TIMESTAMPTZ;
ALTER TABLE mcp_adapters ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE mcp_adapters ADD COLUMN latency_us BIGINT;
ALTER TABLE tool_executions ADD COLUMN status TEXT NOT NULL DEFAULT '';
CREATE INDEX tool_executions_time ON tool_executions (executed_at);
