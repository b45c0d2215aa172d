// TaskService: ad-hoc tasks for agents (POST/GET /api/v1/agents/:id/tasks, .../cancel).
//
// Creating a task writes it (status queued) and an `agent.task.update` event in one store
// transaction; the executor of some node claims it when the agent is running and has room
// under its concurrency limit. Each task has an idempotency key, given by the client or
// made here: creating a task with a key the agent already used returns the first task
// instead of a second one (at least once, made safe).
// Blocking (calls the store): run on the blocking pool. Safe from any thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"
#include "model/task.hpp"
#include "store/store.hpp"

namespace dp::agents {

struct NewTask {
  std::string agent_id;
  boost::json::value input;
  std::string idempotency_key;  // empty: one is made
  std::string created_by;
  boost::json::object options;  // {repo?, baseRef?, limits?}, validated by the caller
};

class TaskService {
 public:
  // `on_created` wakes the local executor (may be empty).
  TaskService(store::Store& store, std::function<void()> on_created)
      : store_(store), on_created_(std::move(on_created)) {}

  // The task and whether it was created now (false: the key was already used).
  // kNotFound for an unknown agent, kFailedPrecondition `invalid_transition` for a
  // decommissioned one.
  Result<std::pair<model::Task, bool>> create(NewTask&& task, const std::string& correlation_id);
  // kNotFound unless the task exists and belongs to the agent.
  Result<model::Task> get(const std::string& agent_id, const std::string& task_id);
  Result<store::Page<model::Task>> list(const store::TaskFilter& filter);
  // The agent's metrics (token use, latency, turns), oldest first. kNotFound for an unknown
  // agent.
  Result<std::vector<model::Metric>> metrics(const store::MetricFilter& filter);
  // kFailedPrecondition `invalid_transition` when it has already finished.
  Result<model::Task> cancel(const std::string& agent_id, const std::string& task_id,
                             const std::string& correlation_id);

 private:
  store::Store& store_;
  std::function<void()> on_created_;
};

// The `agent.task.update` event payload for `task`.
std::string task_event(const model::Task& task);

}  // namespace dp::agents
