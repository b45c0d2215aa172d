// AgentService: the agent use cases behind the API (create, read, list, update,
// lifecycle transitions, decommission, purge). It owns the rules (state machine,
// optimistic concurrency, history, outbox events); the store owns persistence.
//
// Every change writes, in one store transaction: the agent row, an agent_states row
// for each transition, and an `agent.status.update` (or `agent.updated`) outbox event.
// Blocking (calls the store): run on the blocking pool. Safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"
#include "model/agent.hpp"
#include "model/metric.hpp"
#include "model/task.hpp"
#include "agents/tools.hpp"
#include "store/store.hpp"

namespace dp::agents {

struct NewAgent {
  std::string name;
  std::string type;
  std::string description;
  boost::json::object labels;
  boost::json::object config;
};

// Fields absent from an update keep their value.
struct AgentPatch {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<boost::json::object> labels;
  std::optional<boost::json::object> config;
};

enum class LifecycleAction { kStart, kStop };

// What an agent card shows besides the agent itself (GET /api/v1/agents/activity).
struct AgentActivity {
  std::string agent_id;
  std::vector<model::Task> running;      // its running tasks, oldest first
  std::optional<model::Metric> cpu;      // newest agent.cpu_percent sample
  std::optional<model::Metric> memory;   // newest agent.memory_bytes sample (labels: limitBytes, tasks)
  // Non-empty when devplane cannot measure this agent's resource use, saying why.
  std::string resources_unavailable;
};

// Where a remote agent is connected, as every node sees it: a lease in the store named
// `lease` ("remote-agent:<id>"), held by the live connection (`holder`) and renewed while it
// lasts. A sweeper uses the same struct with its own holder.
struct RemotePresence {
  std::string lease;
  std::string holder;
  std::int64_t ttl_ms = 0;
};

class AgentService {
 public:
  explicit AgentService(store::Store& store) : store_(store) {}

  // Where `<adapter>.<tool>` names in an llm agent's config.tools are checked on create and
  // update: a name that selects nothing is refused (kInvalidArgument validation_failed, field
  // config.tools, code unknown_tool); an adapter that cannot be reached now is let through
  // (the task fails with the reason if it still cannot). Null: not checked. Set before use.
  void set_tool_source(const ToolSource* source) { tool_source_ = source; }

  Result<model::Agent> create(NewAgent&& spec, const std::string& correlation_id);
  Result<model::Agent> get(const std::string& id);
  Result<store::Page<model::Agent>> list(const store::AgentFilter& filter);
  // Agents per status under the filter's type and name (see AgentRepository::count_by_status).
  Result<std::map<std::string, std::int64_t>> count_by_status(const store::AgentFilter& filter);
  // kFailedPrecondition `version_conflict` when `expected_version` is stale;
  // kFailedPrecondition `invalid_transition` on a decommissioned agent.
  Result<model::Agent> update(const std::string& id, AgentPatch&& patch,
                              std::int64_t expected_version, const std::string& correlation_id);
  // kFailedPrecondition `invalid_transition` naming the current state.
  Result<model::Agent> lifecycle(const std::string& id, LifecycleAction action,
                                 const std::string& correlation_id);
  Result<model::Agent> decommission(const std::string& id, const std::string& correlation_id);
  // A remote agent's process connected: created | starting | error -> (starting ->) running,
  // each step recorded; nothing when it is already running (a reconnect that replaced the
  // previous connection). kFailedPrecondition `agent_stopped` when it is stopping, stopped or
  // decommissioned (an operator starts it first).
  // The connection takes the presence lease in the same transaction (the newest connection
  // wins; an older one elsewhere learns it when it renews).
  Result<model::Agent> remote_connected(const std::string& id, const std::string& correlation_id,
                                        const RemotePresence& presence);
  // A remote agent's connection ended: gives up its presence and, when it still held it,
  // starting | running -> error with `reason`. Nothing when a newer connection holds the
  // presence, or in any other state.
  Status remote_lost(const std::string& id, const std::string& reason,
                     const std::string& correlation_id, const RemotePresence& presence);
  // A remote agent shown starting | running whose presence lapsed (its node died and it never
  // came back): -> error with `reason`, in one transaction that takes the presence for
  // `sweeper` and gives it back. False, changing nothing, when a connection holds it.
  Result<bool> remote_orphaned(const std::string& id, const std::string& reason,
                               const RemotePresence& sweeper);
  Status purge(const std::string& id, const std::string& correlation_id);
  Result<std::vector<model::AgentStateEntry>> history(const std::string& id, int limit);
  // For each of `ids` (in that order): its running tasks and newest resource samples, in one
  // read. kNotFound naming the first id that is no agent. REQUIRES: ids.size() <= 100.
  Result<std::vector<AgentActivity>> activity(const std::vector<std::string>& ids);

 private:
  Status check_tools(const boost::json::object& config, const std::string& correlation_id) const;

  store::Store& store_;
  const ToolSource* tool_source_ = nullptr;
};

}  // namespace dp::agents
