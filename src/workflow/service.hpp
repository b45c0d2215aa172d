// WorkflowService: workflows (create, read, versioned update, archive) and the human side of
// executions (start, cancel, approve or reject a gate, retry failed steps). The engine
// (workflow/engine.hpp) drives executions; this service only writes the requests down, each
// with its `workflow.progress.update` event in the same transaction, and wakes the engine.
//
// Blocking (calls the store): run on the blocking pool. Safe from any thread.
// Errors: kInvalidArgument `validation_failed` (422, one detail per problem), kNotFound,
// kAlreadyExists (name taken), kFailedPrecondition (`version_conflict`, `invalid_transition`),
// kPermissionDenied (a role not among an approval's approvers).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"
#include "model/workflow.hpp"
#include "store/store.hpp"
#include "workflow/definition.hpp"

namespace dp::workflow {

struct ExecutionView {
  model::Execution execution;
  std::vector<model::ExecutionStep> steps;
};

struct Caller {
  std::string name;  // "user:<id>" / "key:<id>" as recorded
  std::string role;
  std::string correlation_id;
};

class WorkflowService {
 public:
  // `wake` nudges the local engine; `started` (may be empty) gets a new execution's id so the
  // engine can take its first steps before the caller is answered.
  WorkflowService(store::Store& store, std::function<void()> wake,
                  std::function<void(const std::string&)> started = {})
      : store_(store), wake_(std::move(wake)), started_(std::move(started)) {}

  // Tests: the clock new schedules count from (default: the system clock).
  void set_clock(std::function<std::int64_t()> now_ms) { now_ms_ = std::move(now_ms); }

  Result<model::Workflow> create(const std::string& definition, const Caller& caller);
  Result<model::Workflow> get(const std::string& id);
  Result<store::Page<model::Workflow>> list(const store::WorkflowFilter& filter);
  // A new version; `expected_version` (when given) must be the current one.
  Result<model::Workflow> update(const std::string& id, const std::string& definition,
                                 std::optional<std::int64_t> expected_version, const Caller& caller);
  Result<model::Workflow> archive(const std::string& id, const Caller& caller);
  Result<model::WorkflowVersion> version(const std::string& id, std::int64_t version);

  // Starts the workflow's current version with `inputs` (checked against its declaration).
  Result<model::Execution> execute(const std::string& workflow_id, const boost::json::object& inputs,
                                   const Caller& caller);
  Result<ExecutionView> execution(const std::string& id);
  Result<store::Page<model::Execution>> executions(const store::ExecutionFilter& filter);
  Result<model::Execution> cancel(const std::string& id, const Caller& caller);
  Result<model::ExecutionStep> decide(const std::string& execution_id, const std::string& step_id,
                                     bool approve, const std::string& comment, const Caller& caller);
  // Failed, cancelled and skipped steps go back to pending; the execution runs again.
  Result<ExecutionView> retry(const std::string& id, const Caller& caller);

 private:
  void wake() const {
    if (wake_) wake_();
  }
  store::Store& store_;
  std::function<void()> wake_;
  std::function<void(const std::string&)> started_;
  std::function<std::int64_t()> now_ms_;
};

// Writes a new execution of `workflow` at `version` with its step rows and the announcing event
// (inside a store write). Used by the service and by the engine for sub-workflows.
Status insert_execution(store::Tx& tx, const model::Execution& execution, const Definition& def,
                        std::int64_t now_ms);

// What starts an execution (docs/workflows.md, "Triggers").
struct ExecutionCause {
  std::string cause;          // manual | schedule | webhook | workflow
  boost::json::object detail;  // the execution's causeDetail
  std::string created_by;
  std::string correlation_id;  // empty: the execution's id
};

// Inside a store write: checks `inputs` against the current version of the workflow (whose
// parsed definition `def` may pass in when the caller has it) and inserts its execution.
// kNotFound, kFailedPrecondition (`invalid_transition`: archived), kInvalidArgument (inputs).
Result<model::Execution> start_execution(store::Tx& tx, const std::string& workflow_id,
                                         const boost::json::object& inputs, ExecutionCause cause,
                                         std::int64_t now_ms, const Definition* def = nullptr);

// Inside a store write: makes the workflow's trigger rows match `def` (new schedules get their
// next time after `now_ms`; unchanged ones keep theirs; removed triggers lose their rows).
Status sync_triggers(store::Tx& tx, const std::string& workflow_id, const Definition& def,
                     std::int64_t now_ms);

// The `workflow.progress.update` payload; `at_us` is when the change was made (epoch µs: the
// engine pass's clock; the service's own changes have only their millisecond).
std::string progress_event(const model::Execution& e, const model::ExecutionStep* step,
                           std::int64_t at_us);

}  // namespace dp::workflow
