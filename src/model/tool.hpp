// MCP adapters (registered MCP servers) and the record of every tool call made through them.
// Plain value types.
//
// Adapter status: unknown (never checked) -> healthy | unhealthy; `disabled` is set by an
// operator. Pinning: `pinned_tools` maps each approved tool name to the hash of its
// description and schemas (mcp::Tool::pin_hash); a tool whose live hash differs, or a tool
// that appeared after approval, is listed in `flagged_tools` and held until re-approved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace dp::model {

struct Adapter {
  std::string id;    // UUIDv7
  std::string name;  // unique; letters, digits, '-' and '_'
  // transport ("stdio" | "http"), command, args, env, cwd, sandbox, network, url, headers,
  // timeoutMs, maxConcurrent. Values of env and headers are sealed (auth::Secrets) at rest.
  boost::json::object config;
  std::string status = "unknown";
  std::string status_reason;
  std::optional<std::int64_t> last_health_check;  // epoch ms
  std::optional<std::int64_t> latency_us;         // of the last successful ping
  std::int64_t version = 1;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  boost::json::object pinned_tools;   // name -> pin hash
  boost::json::object flagged_tools;  // name -> {pinnedHash, currentHash, detectedAt}
  std::optional<std::int64_t> approved_at;
  std::string approved_by;
};

struct ToolExecution {
  std::string id;  // UUIDv7
  std::optional<std::string> adapter_id;  // null once the adapter is deleted
  std::string tool_name;
  boost::json::value parameters;  // the arguments, secrets redacted
  boost::json::value result;      // the tools/call result; null on failure
  std::string error;              // empty on success
  // succeeded | tool_error (isError) | failed (no result) | refused (held, invalid, unhealthy)
  // | cancelled (the caller gave up while the call was in flight)
  std::string status;
  std::int64_t duration_ms = 0;
  std::string caller;
  std::string correlation_id;
  std::int64_t executed_at = 0;
};

}  // namespace dp::model
