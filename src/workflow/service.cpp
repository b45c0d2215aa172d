#include "workflow/service.hpp"

#include <algorithm>

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "workflow/cron.hpp"

namespace dp::workflow {

namespace json = boost::json;

std::string progress_event(const model::Execution& e, const model::ExecutionStep* step,
                           std::int64_t at_us) {
  json::object o{{"executionId", e.id},
                 {"workflowId", e.workflow_id},
                 {"workflowVersion", e.workflow_version},
                 {"status", e.status},
                 {"atUs", at_us}};
  if (!e.error.empty()) o["error"] = e.error;
  if (step != nullptr) {
    o["stepId"] = step->step_id;
    o["stepStatus"] = step->status;
    o["attempt"] = step->attempt;
    if (!step->error.empty()) o["stepError"] = step->error;
  }
  return json::serialize(o);
}

namespace {

Status announce(store::Tx& tx, const model::Execution& e, const model::ExecutionStep* step,
               std::int64_t now) {
  return tx.outbox().append(store::OutboxEvent{0, "workflow.progress.update",
                                               progress_event(e, step, now * 1000), e.correlation_id, now,
                                               std::nullopt});
}

Error invalid_transition(std::string message, std::string_view current) {
  Error e = Error::failed_precondition("invalid_transition", std::move(message));
  e.details = json::object{{"currentStatus", current}};
  return e;
}

}  // namespace

Status insert_execution(store::Tx& tx, const model::Execution& e, const Definition& def,
                        std::int64_t now) {
  DP_TRY(tx.executions().insert(e));
  std::int64_t seq = 0;
  for (const auto& s : def.steps) {
    model::ExecutionStep row;
    row.execution_id = e.id;
    row.step_id = s.id;
    row.seq = ++seq * 10'000;  // forEach items take the numbers in between
    row.status = "pending";
    row.updated_at = now;
    DP_TRY(tx.executions().insert_step(row));
  }
  return announce(tx, e, nullptr, now);
}

Status sync_triggers(store::Tx& tx, const std::string& workflow_id, const Definition& def,
                     std::int64_t now) {
  DP_ASSIGN_OR_RETURN(std::vector<store::TriggerState> rows, tx.triggers().list(workflow_id));
  for (const auto& row : rows) {
    const Trigger* t = def.trigger(row.trigger_id);
    if (t == nullptr || t->kind != row.kind) DP_TRY(tx.triggers().remove(workflow_id, row.trigger_id));
  }
  for (const auto& t : def.triggers) {
    store::TriggerState row;
    row.workflow_id = workflow_id;
    row.trigger_id = t.id;
    row.kind = t.kind;
    for (const auto& r : rows) {
      if (r.trigger_id == t.id && r.kind == t.kind) row = r;
    }
    if (t.kind == "schedule") {
      // An unchanged schedule keeps its next time (and so its missed-run accounting); a new
      // or changed one starts from now: a schedule never fires for times before it existed.
      if (row.spec != t.schedule_spec() || row.next_fire_at == 0) {
        row.spec = t.schedule_spec();
        DP_ASSIGN_OR_RETURN(CronSpec spec, parse_cron(t.cron));
        DP_ASSIGN_OR_RETURN(const date::time_zone* zone, find_zone(t.timezone));
        row.next_fire_at = next_fire(spec, zone, now).value_or(0);
      }
    } else {
      row.spec = t.secret;
      row.next_fire_at = 0;
    }
    DP_TRY(tx.triggers().put(row));
  }
  return Ok{};
}

Result<model::Execution> start_execution(store::Tx& tx, const std::string& workflow_id,
                                         const json::object& inputs, ExecutionCause cause,
                                         std::int64_t now, const Definition* def_hint) {
  DP_ASSIGN_OR_RETURN(model::Workflow w, tx.workflows().get(workflow_id));
  if (w.status == "archived") {
    return invalid_transition("workflow " + workflow_id + " is archived", w.status);
  }
  std::optional<Definition> parsed;
  if (def_hint == nullptr) {
    DP_ASSIGN_OR_RETURN(parsed, parse_definition(w.definition));
    def_hint = &*parsed;
  }
  DP_ASSIGN_OR_RETURN(json::object complete, check_inputs(*def_hint, inputs));
  model::Execution e;
  e.id = ids::uuid_v7();
  e.workflow_id = w.id;
  e.workflow_version = w.version;
  e.inputs = std::move(complete);
  e.correlation_id = cause.correlation_id.empty() ? e.id : cause.correlation_id;
  e.created_by = std::move(cause.created_by);
  e.cause = std::move(cause.cause);
  e.cause_detail = std::move(cause.detail);
  e.created_at = now;
  DP_TRY(insert_execution(tx, e, *def_hint, now));
  return e;
}

Result<model::Workflow> WorkflowService::create(const std::string& text, const Caller& caller) {
  DP_ASSIGN_OR_RETURN(Definition def, parse_definition(text));
  model::Workflow w;
  w.id = ids::uuid_v7();
  w.name = def.name;
  w.description = def.description;
  w.definition = text;
  w.created_at = w.updated_at = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_TRY(tx.workflows().insert(w));
    return sync_triggers(tx, w.id, def, now_ms_ ? now_ms_() : w.created_at);
  }));
  (void)caller;
  return w;
}

Result<model::Workflow> WorkflowService::get(const std::string& id) {
  std::optional<model::Workflow> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.workflows().get(id));
    return Ok{};
  }));
  return std::move(*out);
}

Result<store::Page<model::Workflow>> WorkflowService::list(const store::WorkflowFilter& filter) {
  std::optional<store::Page<model::Workflow>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.workflows().list(filter));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Workflow> WorkflowService::update(const std::string& id, const std::string& text,
                                                std::optional<std::int64_t> expected,
                                                const Caller& caller) {
  DP_ASSIGN_OR_RETURN(Definition def, parse_definition(text));
  (void)caller;
  std::optional<model::Workflow> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Workflow w, tx.workflows().get(id));
    if (w.status == "archived") {
      return invalid_transition("workflow " + id + " is archived", w.status);
    }
    const std::int64_t current = w.version;
    if (expected && *expected != current) {
      Error e = Error::failed_precondition(
          "version_conflict", "workflow " + id + " is at version " + std::to_string(current) +
                                  ", not " + std::to_string(*expected));
      e.details = json::object{{"currentVersion", current}};
      return e;
    }
    w.name = def.name;
    w.description = def.description;
    w.definition = text;
    w.version = current + 1;
    w.updated_at = clock::now_ms();
    DP_TRY(tx.workflows().update(w, current));
    DP_TRY(sync_triggers(tx, w.id, def, now_ms_ ? now_ms_() : w.updated_at));
    out = std::move(w);
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Workflow> WorkflowService::archive(const std::string& id, const Caller& caller) {
  (void)caller;
  std::optional<model::Workflow> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Workflow w, tx.workflows().get(id));
    if (w.status == "archived") return invalid_transition("workflow " + id + " is already archived", w.status);
    const std::int64_t current = w.version;
    w.status = "archived";
    w.version = current + 1;
    w.updated_at = clock::now_ms();
    DP_TRY(tx.workflows().update(w, current));
    out = std::move(w);
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::WorkflowVersion> WorkflowService::version(const std::string& id, std::int64_t n) {
  std::optional<model::WorkflowVersion> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_TRY(tx.workflows().get(id));
    DP_ASSIGN_OR_RETURN(out, tx.workflows().get_version(id, n));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Execution> WorkflowService::execute(const std::string& workflow_id,
                                                  const json::object& inputs,
                                                  const Caller& caller) {
  std::optional<model::Workflow> w;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(w, tx.workflows().get(workflow_id));
    return Ok{};
  }));
  if (w->status == "archived") {
    return invalid_transition("workflow " + workflow_id + " is archived", w->status);
  }
  DP_ASSIGN_OR_RETURN(Definition def, parse_definition(w->definition));
  DP_ASSIGN_OR_RETURN(json::object complete, check_inputs(def, inputs));
  model::Execution e;
  e.id = ids::uuid_v7();
  e.workflow_id = w->id;
  e.workflow_version = w->version;
  e.inputs = std::move(complete);
  e.correlation_id = caller.correlation_id;
  e.created_by = caller.name;
  e.cause = "manual";
  e.cause_detail = json::object{{"by", caller.name}};
  e.created_at = clock::now_ms();
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    // The version read above must still be current, so the execution runs what was checked.
    DP_ASSIGN_OR_RETURN(model::Workflow now, tx.workflows().get(workflow_id));
    if (now.version != w->version) {
      return Error::aborted("workflow " + workflow_id + " changed while starting; try again");
    }
    return insert_execution(tx, e, def, e.created_at);
  }));
  if (started_) {
    started_(e.id);
  } else {
    wake();
  }
  return e;
}

Result<ExecutionView> WorkflowService::execution(const std::string& id) {
  std::optional<ExecutionView> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    ExecutionView v;
    DP_ASSIGN_OR_RETURN(v.execution, tx.executions().get(id));
    DP_ASSIGN_OR_RETURN(v.steps, tx.executions().steps(id));
    out = std::move(v);
    return Ok{};
  }));
  return std::move(*out);
}

Result<store::Page<model::Execution>> WorkflowService::executions(const store::ExecutionFilter& f) {
  std::optional<store::Page<model::Execution>> out;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.executions().list(f));
    return Ok{};
  }));
  return std::move(*out);
}

Result<model::Execution> WorkflowService::cancel(const std::string& id, const Caller& caller) {
  std::optional<model::Execution> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Execution e, tx.executions().get(id));
    if (e.finished()) {
      return invalid_transition("execution " + id + " has already " +
                                    (e.status == "cancelled" ? std::string("been cancelled") : e.status),
                                e.status);
    }
    e.cancel_requested = true;
    DP_TRY(tx.executions().update(e));
    out = e;
    return announce(tx, e, nullptr, clock::now_ms());
  }));
  (void)caller;
  wake();
  return std::move(*out);
}

Result<model::ExecutionStep> WorkflowService::decide(const std::string& execution_id,
                                                     const std::string& step_id, bool approve,
                                                     const std::string& comment,
                                                     const Caller& caller) {
  std::optional<model::ExecutionStep> out;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Execution e, tx.executions().get(execution_id));
    DP_ASSIGN_OR_RETURN(model::ExecutionStep s, tx.executions().step(execution_id, step_id));
    if (s.status != "waiting_approval" || e.finished()) {
      return invalid_transition("step '" + step_id + "' is not waiting for an approval (it is " +
                                    s.status + ")",
                                s.status);
    }
    // Who may decide: the step's approvers (roles), from the version the execution runs.
    DP_ASSIGN_OR_RETURN(model::WorkflowVersion v,
                        tx.workflows().get_version(e.workflow_id, e.workflow_version));
    DP_ASSIGN_OR_RETURN(Definition def, parse_definition(v.definition));
    const Step* spec = def.step(s.parent_step.empty() ? s.step_id : s.parent_step);
    std::vector<std::string> allowed = spec != nullptr ? spec->approvers : std::vector<std::string>{};
    if (allowed.empty()) allowed = {"admin", "operator"};
    if (std::find(allowed.begin(), allowed.end(), caller.role) == allowed.end()) {
      Error err;
      err.code = ErrorCode::kPermissionDenied;
      err.reason = "forbidden";
      err.message = "only these roles may decide step '" + step_id + "': " + [&] {
        std::string r;
        for (const auto& a : allowed) r += (r.empty() ? "" : ", ") + a;
        return r;
      }();
      return err;
    }
    const std::int64_t now = clock::now_ms();
    const std::string expected = s.status;
    s.status = approve ? "succeeded" : "failed";
    // The decision joins the request the engine stored (message, approvers, expiresAt).
    json::object decided = s.outputs.is_object() ? s.outputs.get_object() : json::object{};
    decided["approved"] = approve;
    decided["by"] = caller.name;
    decided["role"] = caller.role;
    decided["comment"] = comment;
    decided["decidedAt"] = clock::format_iso8601(now);
    s.outputs = std::move(decided);
    s.decided_by = caller.name;
    s.error = approve ? "" : "rejected by " + caller.name + (comment.empty() ? "" : ": " + comment);
    s.wake_at_us = 0;
    s.completed_at = now;
    s.updated_at = now;
    s.history.push_back(json::object{{"attempt", s.attempt},
                                     {"status", s.status},
                                     {"error", s.error},
                                     {"finishedAt", clock::format_iso8601(now)}});
    DP_TRY(tx.executions().update_step(s, expected, s.attempt));
    out = s;
    return announce(tx, e, &s, now);
  }));
  wake();
  return std::move(*out);
}

Result<ExecutionView> WorkflowService::retry(const std::string& id, const Caller& caller) {
  (void)caller;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Execution e, tx.executions().get(id));
    if (e.status != "failed" && e.status != "cancelled") {
      return invalid_transition("only a failed or cancelled execution can be retried (this one is " +
                                    e.status + ")",
                                e.status);
    }
    const std::int64_t now = clock::now_ms();
    DP_ASSIGN_OR_RETURN(auto steps, tx.executions().steps(id));
    for (auto& s : steps) {
      if (s.status != "failed" && s.status != "cancelled" && s.status != "skipped") continue;
      const std::string expected = s.status;
      s.status = "pending";
      s.error.clear();
      s.outputs = nullptr;
      s.task_id.clear();
      s.wake_at_us = 0;
      s.completed_at.reset();
      s.updated_at = now;
      // The attempt number keeps counting, so the next attempt has a fresh idempotency key;
      // the marker restarts the count the retry policy sees.
      s.history.push_back(json::object{{"retryFrom", s.attempt}, {"at", clock::format_iso8601(now)}});
      DP_TRY(tx.executions().update_step(s, expected, s.attempt));
    }
    e.status = "running";
    e.error.clear();
    e.cancel_requested = false;
    e.completed_at.reset();
    DP_TRY(tx.executions().update(e));
    return announce(tx, e, nullptr, now);
  }));
  wake();
  return execution(id);
}

}  // namespace dp::workflow
