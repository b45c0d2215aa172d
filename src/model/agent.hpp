// Agent: a worker that does steps of workflows (a sandboxed command, an LLM loop or a
// remote process). Plain value type; JSON mapping in agent_json.hpp.
//
// Lifecycle (an explicit state machine):
//   created -> starting -> running -> stopping -> stopped -> starting ...
//   any live state -> error;  error -> starting | stopped
//   any state but decommissioned -> decommissioned (terminal)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace dp::model {

enum class AgentStatus {
  kCreated,
  kStarting,
  kRunning,
  kStopping,
  kStopped,
  kError,
  kDecommissioned,
};

std::string_view to_string(AgentStatus s) noexcept;
std::optional<AgentStatus> parse_agent_status(std::string_view s) noexcept;
bool can_transition(AgentStatus from, AgentStatus to) noexcept;
const std::vector<std::string_view>& agent_statuses();

// Agent kinds known to this build. Unknown kinds are rejected at the API.
const std::vector<std::string_view>& agent_kinds();
bool is_agent_kind(std::string_view kind) noexcept;

struct Agent {
  std::string id;
  std::string name;
  std::string type;
  AgentStatus status = AgentStatus::kCreated;
  std::string status_reason;
  std::string description;
  boost::json::object labels;  // string -> string
  boost::json::object config;
  std::int64_t version = 1;
  std::int64_t created_at = 0;  // epoch ms
  std::int64_t updated_at = 0;
};

// One row of agent_states: a transition, appended in the same transaction as the change.
struct AgentStateEntry {
  std::int64_t id = 0;
  std::string agent_id;
  std::string from_status;  // empty for the first entry
  std::string status;
  std::string reason;
  std::int64_t version = 0;
  std::int64_t created_at = 0;
};

}  // namespace dp::model
