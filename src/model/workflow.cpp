#include "model/workflow.hpp"

#include "core/clock.hpp"

namespace dp::model {
namespace {

boost::json::value time(const std::optional<std::int64_t>& v) {
  return v ? boost::json::value(clock::format_iso8601(*v)) : boost::json::value(nullptr);
}
boost::json::value text_or_null(const std::string& s) {
  return s.empty() ? boost::json::value(nullptr) : boost::json::value(s);
}

}  // namespace

boost::json::object to_json(const Workflow& w, bool with_definition) {
  boost::json::object o{{"id", w.id},
                        {"name", w.name},
                        {"description", w.description},
                        {"status", w.status},
                        {"version", w.version},
                        {"createdAt", clock::format_iso8601(w.created_at)},
                        {"updatedAt", clock::format_iso8601(w.updated_at)}};
  if (with_definition) o["definition"] = w.definition;
  return o;
}

boost::json::object to_json(const WorkflowVersion& v) {
  return boost::json::object{{"workflowId", v.workflow_id},
                             {"version", v.version},
                             {"definition", v.definition},
                             {"createdAt", clock::format_iso8601(v.created_at)}};
}

boost::json::object to_json(const Execution& e) {
  return boost::json::object{{"id", e.id},
                             {"workflowId", e.workflow_id},
                             {"workflowVersion", e.workflow_version},
                             {"status", e.status},
                             {"inputs", e.inputs},
                             {"outputs", e.outputs},
                             {"error", text_or_null(e.error)},
                             {"cause", e.cause},
                             {"causeDetail", e.cause_detail},
                             {"createdBy", e.created_by},
                             {"parentExecutionId", text_or_null(e.parent_execution_id)},
                             {"parentStepId", text_or_null(e.parent_step_id)},
                             {"cancelRequested", e.cancel_requested},
                             {"correlationId", e.correlation_id},
                             {"createdAt", clock::format_iso8601(e.created_at)},
                             {"startedAt", time(e.started_at)},
                             {"completedAt", time(e.completed_at)}};
}

boost::json::object to_json(const ExecutionStep& s) {
  boost::json::object o{{"stepId", s.step_id},
                        {"status", s.status},
                        {"attempt", s.attempt},
                        {"inputs", s.inputs},
                        {"outputs", s.outputs},
                        {"error", text_or_null(s.error)},
                        {"history", s.history},
                        {"startedAt", time(s.started_at)},
                        {"completedAt", time(s.completed_at)},
                        {"updatedAt", clock::format_iso8601(s.updated_at)}};
  if (!s.parent_step.empty()) {
    o["parentStep"] = s.parent_step;
    o["item"] = s.item;
  }
  if (!s.task_id.empty()) o["taskId"] = s.task_id;
  if (s.wake_at_us > 0) o["wakeAt"] = clock::format_iso8601(s.wake_at_us / 1000);
  if (!s.decided_by.empty()) o["decidedBy"] = s.decided_by;
  return o;
}

}  // namespace dp::model
