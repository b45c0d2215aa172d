#include "model/agent.hpp"

#include <algorithm>

namespace dp::model {

std::string_view to_string(AgentStatus s) noexcept {
  switch (s) {
    case AgentStatus::kCreated: return "created";
    case AgentStatus::kStarting: return "starting";
    case AgentStatus::kRunning: return "running";
    case AgentStatus::kStopping: return "stopping";
    case AgentStatus::kStopped: return "stopped";
    case AgentStatus::kError: return "error";
    case AgentStatus::kDecommissioned: return "decommissioned";
  }
  return "error";
}

const std::vector<std::string_view>& agent_statuses() {
  static const std::vector<std::string_view> v = {"created", "starting", "running", "stopping",
                                                  "stopped", "error",    "decommissioned"};
  return v;
}

std::optional<AgentStatus> parse_agent_status(std::string_view s) noexcept {
  if (s == "created") return AgentStatus::kCreated;
  if (s == "starting") return AgentStatus::kStarting;
  if (s == "running") return AgentStatus::kRunning;
  if (s == "stopping") return AgentStatus::kStopping;
  if (s == "stopped") return AgentStatus::kStopped;
  if (s == "error") return AgentStatus::kError;
  if (s == "decommissioned") return AgentStatus::kDecommissioned;
  return std::nullopt;
}

bool can_transition(AgentStatus from, AgentStatus to) noexcept {
  using S = AgentStatus;
  if (from == S::kDecommissioned) return false;
  if (to == S::kDecommissioned) return true;
  switch (from) {
    case S::kCreated: return to == S::kStarting;
    case S::kStarting: return to == S::kRunning || to == S::kError || to == S::kStopping;
    case S::kRunning: return to == S::kStopping || to == S::kError;
    case S::kStopping: return to == S::kStopped || to == S::kError;
    case S::kStopped: return to == S::kStarting;
    case S::kError: return to == S::kStarting || to == S::kStopped;
    case S::kDecommissioned: return false;
  }
  return false;
}

const std::vector<std::string_view>& agent_kinds() {
  static const std::vector<std::string_view> v = {"command", "llm", "remote"};
  return v;
}

bool is_agent_kind(std::string_view kind) noexcept {
  const auto& k = agent_kinds();
  return std::find(k.begin(), k.end(), kind) != k.end();
}

}  // namespace dp::model
