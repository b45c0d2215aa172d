#include "agents/task_service.hpp"

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"

namespace dp::agents {

std::string task_summary(const model::Task& t) {
  constexpr std::size_t kMax = 120;  // code points
  std::string text = t.input.is_string() ? std::string(t.input.as_string()) : boost::json::serialize(t.input);
  std::size_t points = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    // Count lead bytes only, so the cut never splits a UTF-8 sequence.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && points++ == kMax) {
      text.resize(i);
      text += "…";
      break;
    }
  }
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return text;
}

std::string task_event(const model::Task& t) {
  boost::json::object o{{"taskId", t.id},
                        {"agentId", t.agent_id},
                        {"status", t.status},
                        {"attempts", t.attempts},
                        {"idempotencyKey", t.idempotency_key}};
  if (!t.error.empty()) o["error"] = t.error;
  if (t.status == "running") {
    o["summary"] = task_summary(t);
    if (t.started_at) o["startedAt"] = clock::format_iso8601(*t.started_at);
  }
  if (t.finished() && t.result.is_object()) {
    const auto& r = t.result.as_object();
    for (const char* k :
         {"exitCode", "outcome", "wallMs", "wallUs", "startedAtUs", "endedAtUs", "stopReason"}) {
      if (auto* v = r.if_contains(k)) o[k] = *v;
    }
  }
  return boost::json::serialize(o);
}

Result<std::pair<model::Task, bool>> TaskService::create(NewTask&& spec,
                                                         const std::string& correlation_id) {
  PendingTasks pending;
  std::optional<std::pair<model::Task, bool>> out;
  Status written = store_.write([&](store::Tx& tx) -> Status {
    // The unit may run again (a retried serialization failure): the first run's claim was undone.
    settle(pending, false);
    NewTask copy = spec;
    DP_ASSIGN_OR_RETURN(out, create_in(tx, std::move(copy), correlation_id, pending));
    return Ok{};
  });
  settle(pending, written.ok());
  DP_TRY(std::move(written));
  return std::move(*out);
}

Result<std::pair<model::Task, bool>> TaskService::create_in(store::Tx& tx, NewTask&& spec,
                                                            const std::string& correlation_id,
                                                            PendingTasks& pending) {
  model::Task t;
  t.id = ids::uuid_v7();
  t.agent_id = std::move(spec.agent_id);
  t.input = std::move(spec.input);
  t.options = std::move(spec.options);
  t.idempotency_key = spec.idempotency_key.empty() ? t.id : std::move(spec.idempotency_key);
  t.created_by = std::move(spec.created_by);
  t.correlation_id = correlation_id;
  t.created_at = clock::now_ms();
  DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(t.agent_id));
  if (a.status == model::AgentStatus::kDecommissioned) {
    Error e = Error::failed_precondition("invalid_transition",
                                         "agent " + a.id + " is decommissioned and takes no tasks");
    e.details = boost::json::object{{"currentStatus", "decommissioned"}};
    return e;
  }
  DP_ASSIGN_OR_RETURN(auto existing, tx.tasks().find_by_key(t.agent_id, t.idempotency_key));
  if (existing) return std::pair<model::Task, bool>{std::move(*existing), false};
  DP_TRY(tx.tasks().insert(t));
  DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(t),
                                               correlation_id, t.created_at, std::nullopt}));
  std::optional<model::Task> claimed;
  if (starter_ != nullptr) {
    DP_ASSIGN_OR_RETURN(claimed, starter_->claim_new(tx, a));
  }
  if (claimed && claimed->id == t.id) {
    // The caller sees the task as it will be committed: already running here.
    t.status = claimed->status;
    t.attempts = claimed->attempts;
    t.started_at = claimed->started_at;
    t.node_id = claimed->node_id;
    t.lease_until = claimed->lease_until;
  } else {
    // The executor (or the remote agents' hub) is woken for it after the commit.
    pending.wake_ = true;
  }
  if (claimed) pending.claims_.push_back({std::move(*claimed), std::move(a)});
  return std::pair<model::Task, bool>{std::move(t), true};
}

void TaskService::settle(PendingTasks& pending, bool committed) {
  for (auto& c : pending.claims_) starter_->settle(std::move(c.task), c.agent, committed);
  pending.claims_.clear();
  if (committed && pending.wake_ && on_created_) on_created_();
  pending.wake_ = false;
}

Result<model::Task> TaskService::get(const std::string& agent_id, const std::string& task_id) {
  std::optional<model::Task> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.tasks().get(task_id));
    if (out->agent_id != agent_id) {
      return Error::not_found("task " + task_id + " not found for agent " + agent_id);
    }
    return Ok{};
  }));
  return std::move(*out);
}

Result<store::Page<model::Task>> TaskService::list(const store::TaskFilter& filter) {
  std::optional<store::Page<model::Task>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_TRY(tx.agents().get(filter.agent_id));
    DP_ASSIGN_OR_RETURN(out, tx.tasks().list(filter));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Task> TaskService::cancel(const std::string& agent_id, const std::string& task_id,
                                        const std::string& correlation_id) {
  std::optional<model::Task> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Task t, tx.tasks().get(task_id));
    if (t.agent_id != agent_id) {
      return Error::not_found("task " + task_id + " not found for agent " + agent_id);
    }
    const std::int64_t now = clock::now_ms();
    DP_ASSIGN_OR_RETURN(out, tx.tasks().request_cancel(task_id, now));
    if (out->status == "cancelled") {
      DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(*out),
                                                   correlation_id, now, std::nullopt}));
    }
    return Ok{};
  }));
  return std::move(*out);
}

Result<std::vector<model::Metric>> TaskService::metrics(const store::MetricFilter& filter) {
  std::vector<model::Metric> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_TRY(tx.agents().get(filter.agent_id));
    DP_ASSIGN_OR_RETURN(out, tx.metrics().list(filter));
    return Ok{};
  }));
  return out;
}

}  // namespace dp::agents
