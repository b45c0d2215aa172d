#include "agents/agent_service.hpp"

#include <map>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "agents/sandbox/cgroup.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "model/agent_json.hpp"

namespace dp::agents {
namespace {

using model::AgentStatus;

Error invalid_transition(const model::Agent& a, std::string_view action) {
  Error e = Error::failed_precondition(
      "invalid_transition", "cannot " + std::string(action) + " agent " + a.id + ": it is " +
                                std::string(model::to_string(a.status)));
  e.details = boost::json::object{{"currentStatus", model::to_string(a.status)},
                                  {"action", action}};
  return e;
}

// Moves `a` to `to`, bumping its version, and records the transition and its event.
Status transition(store::Tx& tx, model::Agent& a, AgentStatus to, std::string_view reason,
                  const std::string& correlation_id, std::int64_t now) {
  const AgentStatus from = a.status;
  a.status = to;
  a.status_reason = std::string(reason);
  a.version += 1;
  a.updated_at = now;
  DP_TRY(tx.agents().append_state(model::AgentStateEntry{
      0, a.id, std::string(model::to_string(from)), std::string(model::to_string(to)),
      std::string(reason), a.version, now}));
  boost::json::object payload{{"agentId", a.id},
                              {"name", a.name},
                              {"from", model::to_string(from)},
                              {"status", model::to_string(to)},
                              {"reason", reason},
                              {"version", a.version},
                              {"timestamp", clock::format_iso8601(now)}};
  DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.status.update",
                                               boost::json::serialize(payload), correlation_id,
                                               now, std::nullopt}));
  return Ok{};
}

}  // namespace

Status AgentService::check_tools(const boost::json::object& config, const std::string& correlation_id) const {
  if (tool_source_ == nullptr) return Ok{};
  const auto names = external_tool_names(config);
  if (names.empty()) return Ok{};
  auto r = tool_source_->resolve(names, correlation_id);
  if (r.ok() || r.error().code != ErrorCode::kNotFound) return Ok{};
  return Error::validation("invalid agent",
                           boost::json::array{boost::json::object{{"field", "config.tools"},
                                                                  {"code", "unknown_tool"},
                                                                  {"message", r.error().message}}});
}

Result<model::Agent> AgentService::create(NewAgent&& spec, const std::string& correlation_id) {
  if (spec.type == "llm") DP_TRY(check_tools(spec.config, correlation_id));
  model::Agent a;
  a.id = ids::uuid_v7();
  a.name = std::move(spec.name);
  a.type = std::move(spec.type);
  a.description = std::move(spec.description);
  a.labels = std::move(spec.labels);
  a.config = std::move(spec.config);
  a.status = AgentStatus::kCreated;
  a.version = 1;
  a.created_at = a.updated_at = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_TRY(tx.agents().insert(a));
    DP_TRY(tx.agents().append_state(model::AgentStateEntry{
        0, a.id, "", "created", "created", a.version, a.created_at}));
    boost::json::object payload{{"agentId", a.id},
                                {"name", a.name},
                                {"from", nullptr},
                                {"status", "created"},
                                {"reason", "created"},
                                {"version", a.version},
                                {"timestamp", clock::format_iso8601(a.created_at)}};
    DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.status.update",
                                                 boost::json::serialize(payload), correlation_id,
                                                 a.created_at, std::nullopt}));
    return Ok{};
  }));
  return a;
}

Result<model::Agent> AgentService::get(const std::string& id) {
  std::optional<model::Agent> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
    out = std::move(a);
    return Ok{};
  }));
  return std::move(*out);
}

namespace {

// Why devplane cannot know what `a` uses ("" when it can: a command agent in a cgroup).
std::string resources_unavailable(const model::Agent& a) {
  if (a.type == "remote") return "a remote agent runs outside devplane";
  if (a.type == "llm") return "an llm agent's loop runs inside devplane's own process, not in a cgroup of its own";
  const auto* iso = a.config.if_contains("isolation");
  if (iso != nullptr && iso->is_string() && iso->as_string() == "docker") {
    return "a Docker container's use is not sampled (see docker stats)";
  }
  // Without cgroups a sandboxed agent does not run at all; isolation none runs unmeasured.
  static const bool kHasCgroups = sandbox::Cgroup::detect().ok();
  if (!kHasCgroups) return "this host offers no cgroups to measure the agent's processes";
  return {};
}

}  // namespace

Result<std::vector<AgentActivity>> AgentService::activity(const std::vector<std::string>& ids) {
  std::vector<AgentActivity> out;
  static const std::vector<std::string> kTypes = {"agent.cpu_percent", "agent.memory_bytes"};
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    std::map<std::string, std::size_t> index;
    out.clear();
    for (const auto& id : ids) {
      DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
      index[id] = out.size();
      AgentActivity act;
      act.agent_id = id;
      act.resources_unavailable = resources_unavailable(a);
      out.push_back(std::move(act));
    }
    DP_ASSIGN_OR_RETURN(std::vector<model::Task> running, tx.tasks().list_running(ids));
    for (auto& t : running) out[index.at(t.agent_id)].running.push_back(std::move(t));
    std::vector<std::string> measured;
    for (const auto& a : out) {
      if (a.resources_unavailable.empty()) measured.push_back(a.agent_id);
    }
    DP_ASSIGN_OR_RETURN(std::vector<model::Metric> samples, tx.metrics().latest(measured, kTypes));
    for (auto& m : samples) {
      auto& act = out[index.at(m.agent_id)];
      (m.metric_type == "agent.cpu_percent" ? act.cpu : act.memory) = std::move(m);
    }
    return Ok{};
  }));
  return out;
}

Result<store::Page<model::Agent>> AgentService::list(const store::AgentFilter& filter) {
  std::optional<store::Page<model::Agent>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(store::Page<model::Agent> p, tx.agents().list(filter));
    out = std::move(p);
    return Ok{};
  }));
  return std::move(*out);
}

Result<std::map<std::string, std::int64_t>> AgentService::count_by_status(
    const store::AgentFilter& filter) {
  std::optional<std::map<std::string, std::int64_t>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(auto counts, tx.agents().count_by_status(filter));
    out = std::move(counts);
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Agent> AgentService::update(const std::string& id, AgentPatch&& patch,
                                          std::int64_t expected_version,
                                          const std::string& correlation_id) {
  // Only llm configs may carry `tools` (the API validates the config per type).
  if (patch.config) DP_TRY(check_tools(*patch.config, correlation_id));
  std::optional<model::Agent> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
    if (a.status == AgentStatus::kDecommissioned) return invalid_transition(a, "update");
    if (a.version != expected_version) {
      Error e = Error::failed_precondition(
          "version_conflict", "agent " + a.id + " is at version " + std::to_string(a.version) +
                                  ", not " + std::to_string(expected_version));
      e.details = boost::json::object{{"currentVersion", a.version}};
      return e;
    }
    if (patch.name) a.name = *patch.name;
    if (patch.description) a.description = *patch.description;
    if (patch.labels) a.labels = *patch.labels;
    if (patch.config) a.config = *patch.config;
    a.version += 1;
    a.updated_at = clock::now_ms();
    DP_TRY(tx.agents().update(a, expected_version));
    boost::json::object payload{{"agentId", a.id},
                                {"name", a.name},
                                {"version", a.version},
                                {"timestamp", clock::format_iso8601(a.updated_at)}};
    DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.updated",
                                                 boost::json::serialize(payload), correlation_id,
                                                 a.updated_at, std::nullopt}));
    out = std::move(a);
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Agent> AgentService::lifecycle(const std::string& id, LifecycleAction action,
                                             const std::string& correlation_id) {
  std::optional<model::Agent> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
    const std::int64_t expected = a.version;
    const std::int64_t now = clock::now_ms();
    // No runtime yet: a start passes through `starting` to `running` and a stop through
    // `stopping` to `stopped` in one unit, each step recorded.
    if (action == LifecycleAction::kStart) {
      if (!model::can_transition(a.status, AgentStatus::kStarting)) {
        return invalid_transition(a, "start");
      }
      DP_TRY(transition(tx, a, AgentStatus::kStarting, "start requested", correlation_id, now));
      // A remote agent runs once its process connects (agents/remote/link.hpp).
      if (a.type != "remote") {
        DP_TRY(transition(tx, a, AgentStatus::kRunning, "started", correlation_id, now));
      }
    } else {
      if (a.status == AgentStatus::kError) {
        DP_TRY(transition(tx, a, AgentStatus::kStopped, "stopped after error", correlation_id, now));
      } else {
        if (!model::can_transition(a.status, AgentStatus::kStopping)) {
          return invalid_transition(a, "stop");
        }
        DP_TRY(transition(tx, a, AgentStatus::kStopping, "stop requested", correlation_id, now));
        DP_TRY(transition(tx, a, AgentStatus::kStopped, "stopped", correlation_id, now));
      }
    }
    DP_TRY(tx.agents().update(a, expected));
    out = std::move(a);
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Agent> AgentService::decommission(const std::string& id,
                                                const std::string& correlation_id) {
  std::optional<model::Agent> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
    if (!model::can_transition(a.status, AgentStatus::kDecommissioned)) {
      return invalid_transition(a, "decommission");
    }
    const std::int64_t expected = a.version;
    DP_TRY(transition(tx, a, AgentStatus::kDecommissioned, "decommissioned", correlation_id,
                      clock::now_ms()));
    DP_TRY(tx.agents().update(a, expected));
    out = std::move(a);
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Agent> AgentService::remote_connected(const std::string& id,
                                                    const std::string& correlation_id,
                                                    const RemotePresence& presence) {
  std::optional<model::Agent> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
    if (a.status == AgentStatus::kStopping || a.status == AgentStatus::kStopped ||
        a.status == AgentStatus::kDecommissioned) {
      Error e = Error::failed_precondition(
          "agent_stopped", "agent " + a.id + " is " + std::string(model::to_string(a.status)) +
                               "; start it (POST /api/v1/agents/:id/start) before it connects");
      e.details = boost::json::object{{"currentStatus", model::to_string(a.status)}};
      return e;
    }
    if (a.status != AgentStatus::kRunning) {
      const std::int64_t expected = a.version;
      const std::int64_t now = clock::now_ms();
      if (a.status != AgentStatus::kStarting) {
        DP_TRY(transition(tx, a, AgentStatus::kStarting, "remote agent connecting", correlation_id, now));
      }
      DP_TRY(transition(tx, a, AgentStatus::kRunning, "remote agent connected", correlation_id, now));
      DP_TRY(tx.agents().update(a, expected));
    }
    DP_TRY(tx.leases().take(presence.lease, presence.holder, clock::now_ms(), presence.ttl_ms));
    out = std::move(a);
    return Ok{};
  }));
  return std::move(*out);
}

Status AgentService::remote_lost(const std::string& id, const std::string& reason,
                                 const std::string& correlation_id,
                                 const RemotePresence& presence) {
  return store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(const bool held, tx.leases().release(presence.lease, presence.holder));
    if (!held) return Ok{};  // a newer connection (here or on another node) has the agent
    auto got = tx.agents().get(id);
    if (!got.ok()) return got.error().code == ErrorCode::kNotFound ? Status(Ok{}) : Status(got.error());
    model::Agent a = std::move(*got);
    if (a.status != AgentStatus::kRunning && a.status != AgentStatus::kStarting) return Ok{};
    const std::int64_t expected = a.version;
    DP_TRY(transition(tx, a, AgentStatus::kError, reason, correlation_id, clock::now_ms()));
    return tx.agents().update(a, expected);
  });
}

Result<bool> AgentService::remote_orphaned(const std::string& id, const std::string& reason,
                                           const RemotePresence& sweeper) {
  bool orphaned = false;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    const std::int64_t now = clock::now_ms();
    DP_ASSIGN_OR_RETURN(const bool free,
                        tx.leases().acquire(sweeper.lease, sweeper.holder, now, sweeper.ttl_ms));
    if (!free) return Ok{};
    DP_TRY(tx.leases().release(sweeper.lease, sweeper.holder));
    auto got = tx.agents().get(id);
    if (!got.ok()) return got.error().code == ErrorCode::kNotFound ? Status(Ok{}) : Status(got.error());
    model::Agent a = std::move(*got);
    if (a.status != AgentStatus::kRunning && a.status != AgentStatus::kStarting) return Ok{};
    const std::int64_t expected = a.version;
    DP_TRY(transition(tx, a, AgentStatus::kError, reason, "", now));
    DP_TRY(tx.agents().update(a, expected));
    orphaned = true;
    return Ok{};
  }));
  return orphaned;
}

Status AgentService::purge(const std::string& id, const std::string& correlation_id) {
  return store_.write([&](store::Tx& tx) -> Status {
    DP_TRY(tx.agents().purge(id));
    const std::int64_t now = clock::now_ms();
    boost::json::object payload{{"agentId", id}, {"timestamp", clock::format_iso8601(now)}};
    DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.purged", boost::json::serialize(payload),
                                                 correlation_id, now, std::nullopt}));
    return Ok{};
  });
}

Result<std::vector<model::AgentStateEntry>> AgentService::history(const std::string& id,
                                                                  int limit) {
  std::vector<model::AgentStateEntry> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_TRY(tx.agents().get(id));
    DP_ASSIGN_OR_RETURN(out, tx.agents().history(id, limit));
    return Ok{};
  }));
  return out;
}

}  // namespace dp::agents
