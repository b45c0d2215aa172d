// MCP protocol types devplane's client uses: versions, tools, call results, server info.
// Plain values with their JSON mapping; safe from any thread.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace dp::mcp {

// Offered first; older versions a server may answer with, newest first.
inline constexpr std::string_view kLatestProtocolVersion = "2025-11-25";
inline constexpr std::array<std::string_view, 4> kSupportedProtocolVersions = {
    "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

bool is_supported_version(std::string_view version) noexcept;
// JSON-RPC batches exist only in 2025-03-26.
bool version_allows_batch(std::string_view version) noexcept;

struct Implementation {
  std::string name;
  std::string version;
  std::string title;
};

struct InitializeResult {
  std::string protocol_version;
  Implementation server_info;
  boost::json::object capabilities;
  std::string instructions;
};

struct Tool {
  std::string name;
  std::string title;
  std::string description;
  boost::json::object input_schema;
  boost::json::value output_schema;  // null when absent
  boost::json::value annotations;    // null when absent

  // The hash of what a model sees of the tool (name, title, description, schemas,
  // annotations), canonical JSON with sorted keys, SHA-256 hex: used to pin a tool.
  std::string pin_hash() const;
};

struct CallToolResult {
  boost::json::array content;
  boost::json::value structured_content;  // null when absent
  bool is_error = false;
  boost::json::value raw;                 // the whole result object as received
};

Result<InitializeResult> parse_initialize_result(const boost::json::value& v);
// One tool of a tools/list page; kInvalidArgument `invalid_message` when malformed.
Result<Tool> parse_tool(const boost::json::value& v);
Result<CallToolResult> parse_call_tool_result(const boost::json::value& v);

boost::json::object to_json(const Tool& t);

// Canonical JSON: objects with keys sorted, no spaces (for hashing).
std::string canonical_json(const boost::json::value& v);

}  // namespace dp::mcp
