// Workflows, their versions, executions and execution steps. Plain value types.
//
// A workflow keeps its current definition; every change writes a new version row, and an
// execution records the version it runs. Execution lifecycle: pending -> running ->
// succeeded | failed | cancelled (and back to running on a retry of a failed execution).
// Step lifecycle (docs/workflows.md): pending -> ready -> dispatched -> running ->
// succeeded | failed | skipped | cancelled, with retrying (waiting out a backoff),
// waiting (a wait step's timer) and waiting_approval (a human gate) in between.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace dp::model {

struct Workflow {
  std::string id;  // UUIDv7
  std::string name;
  std::string description;
  std::string definition;  // the text as submitted (YAML or JSON)
  std::string status = "active";  // active | archived
  std::int64_t version = 1;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

struct WorkflowVersion {
  std::string workflow_id;
  std::int64_t version = 0;
  std::string definition;
  std::int64_t created_at = 0;
};

struct Execution {
  std::string id;  // UUIDv7
  std::string workflow_id;
  std::int64_t workflow_version = 0;
  std::string status = "pending";
  boost::json::object inputs;
  boost::json::value outputs;  // null until succeeded
  std::string error;
  std::string correlation_id;
  std::string cause = "manual";  // manual | schedule | webhook | workflow (a parent's step)
  // What exactly: {by} for manual, {trigger, scheduledAt} for schedule, {hook, deliveryId}
  // for webhook, {parentExecutionId, parentStepId} for workflow.
  boost::json::object cause_detail;
  std::string created_by;
  std::string parent_execution_id;
  std::string parent_step_id;
  std::string lease_owner;
  std::int64_t lease_until = 0;
  bool cancel_requested = false;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> started_at;
  std::optional<std::int64_t> completed_at;
  // Bumped by the store on every write of one of the execution's step rows (read only).
  std::int64_t steps_version = 0;

  bool finished() const noexcept {
    return status == "succeeded" || status == "failed" || status == "cancelled";
  }
};

struct ExecutionStep {
  std::string execution_id;
  std::string step_id;      // the definition's id; forEach items are "<id>[<n>]"
  std::string parent_step;  // forEach items: the step they belong to
  std::int64_t seq = 0;     // order of creation inside the execution
  std::string status = "pending";
  std::int64_t attempt = 0;
  boost::json::value inputs;   // rendered inputs of the current attempt
  boost::json::value outputs;
  std::string error;
  boost::json::value item;     // forEach item
  std::string task_id;         // agent: the task; workflow: the child execution
  std::string lease_owner;
  std::int64_t lease_until = 0;
  std::int64_t wake_at_us = 0;  // epoch µs of the next timer; 0: none
  boost::json::array history;  // finished attempts: {attempt, status, error, startedAt, finishedAt}
  std::string decided_by;      // approval steps
  std::optional<std::int64_t> started_at;
  std::optional<std::int64_t> completed_at;
  std::int64_t updated_at = 0;

  bool terminal() const noexcept {
    return status == "succeeded" || status == "failed" || status == "skipped" ||
           status == "cancelled";
  }
};

boost::json::object to_json(const Workflow& w, bool with_definition);
boost::json::object to_json(const WorkflowVersion& v);
boost::json::object to_json(const Execution& e);
boost::json::object to_json(const ExecutionStep& s);

}  // namespace dp::model
