// TaskService: ad-hoc tasks for agents (POST/GET /api/v1/agents/:id/tasks, .../cancel).
//
// Creating a task writes it (status queued) and an `agent.task.update` event in one store
// transaction; the executor of some node claims it when the agent is running and has room
// under its concurrency limit (this node's executor, when set as the TaskStarter, in that
// same transaction). Each task has an idempotency key, given by the client or
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
#include "model/agent.hpp"
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

// Starts tasks on this node as they are created (the executor), so that a task's creation and
// its claim are one commit instead of two, and it starts without waiting for a wake-up.
// Thread safety: safe from any thread.
class TaskStarter {
 public:
  virtual ~TaskStarter() = default;
  // Inside the transaction that created a task of `agent`: claims the agent's next queued task
  // (the new one, or an older one still waiting) for this node when it may run now, writing
  // the claim and its event in `tx`. nullopt when it may not (not a kind this node runs, the
  // agent is not running, no room); an error aborts the creation.
  virtual Result<std::optional<model::Task>> claim_new(store::Tx& tx, const model::Agent& agent) = 0;
  // After the transaction: `committed` tells whether the claim returned by the last claim_new
  // of this thread was committed; if so the task starts now, else it is forgotten. Called once
  // per claim that returned a task.
  virtual void settle(model::Task&& task, const model::Agent& agent, bool committed) = 0;
};

class TaskService;

// The tasks created inside a caller's store transaction (TaskService::create_in) that this
// node's starter claimed there, kept until the transaction has ended (TaskService::settle).
// Thread safety: one thread at a time.
class PendingTasks {
 public:
  PendingTasks() = default;
  PendingTasks(const PendingTasks&) = delete;
  PendingTasks& operator=(const PendingTasks&) = delete;
  ~PendingTasks() = default;  // REQUIRES: settled (TaskService::settle)

 private:
  friend class TaskService;
  struct Claim {
    model::Task task;
    model::Agent agent;
  };
  std::vector<Claim> claims_;
  bool wake_ = false;  // a task was created that did not start here
};

class TaskService {
 public:
  // `on_created` wakes the local executor (may be empty).
  TaskService(store::Store& store, std::function<void()> on_created)
      : store_(store), on_created_(std::move(on_created)) {}

  // Set before use (may stay null): claims new tasks in their creating transaction.
  void set_starter(TaskStarter* starter) { starter_ = starter; }

  // The task and whether it was created now (false: the key was already used).
  // kNotFound for an unknown agent, kFailedPrecondition `invalid_transition` for a
  // decommissioned one.
  Result<std::pair<model::Task, bool>> create(NewTask&& task, const std::string& correlation_id);
  // The same inside the caller's write transaction `tx` (the workflow engine creates a step's
  // task in the commit that starts the step): the task, its event and this node's claim are
  // written in `tx`. REQUIRES: `settle(pending, committed)` once the transaction has ended,
  // and before each further run of a unit that is run again (a retried transaction) with
  // committed false.
  Result<std::pair<model::Task, bool>> create_in(store::Tx& tx, NewTask&& task,
                                                 const std::string& correlation_id,
                                                 PendingTasks& pending);
  // Starts the tasks claimed in the transaction when it committed (else they stay queued for a
  // later claim), and wakes the executor for those that did not start here. Leaves `pending`
  // empty.
  void settle(PendingTasks& pending, bool committed);
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
  TaskStarter* starter_ = nullptr;
};

// A short text for `task` (its input's first 120 characters; an object's JSON), for lists and
// the agent cards.
std::string task_summary(const model::Task& task);

// The `agent.task.update` event payload for `task` (a running task's also carries its
// `summary` and `startedAt`).
std::string task_event(const model::Task& task);

}  // namespace dp::agents
