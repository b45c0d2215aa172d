#include "workflow/engine.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_map>

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "workflow/expr.hpp"
#include "workflow/service.hpp"

namespace dp::workflow {

namespace json = boost::json;

std::int64_t backoff_ms(const RetryPolicy& p, std::int64_t attempt) {
  double d = static_cast<double>(p.backoff_ms) *
             std::pow(p.factor, static_cast<double>(std::max<std::int64_t>(attempt - 1, 0)));
  d = std::min(d, static_cast<double>(p.max_backoff_ms));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return static_cast<std::int64_t>(d * jitter(rng));
}

namespace {

constexpr std::size_t kMaxForEachItems = 1000;
constexpr std::size_t kMaxKeptExecutions = 4096;

// Every field, as the store would give it back (debug builds check kept rows against it).
bool same_step(const model::ExecutionStep& a, const model::ExecutionStep& b) {
  return a.execution_id == b.execution_id && a.step_id == b.step_id &&
         a.parent_step == b.parent_step && a.seq == b.seq && a.status == b.status &&
         a.attempt == b.attempt && a.inputs == b.inputs && a.outputs == b.outputs &&
         a.error == b.error && a.item == b.item && a.task_id == b.task_id &&
         a.lease_owner == b.lease_owner && a.lease_until == b.lease_until &&
         a.wake_at_us == b.wake_at_us && a.history == b.history && a.decided_by == b.decided_by &&
         a.started_at == b.started_at && a.completed_at == b.completed_at &&
         a.updated_at == b.updated_at;
}

bool active(const std::string& status) {
  return status == "dispatched" || status == "running" || status == "waiting" ||
         status == "waiting_approval" || status == "retrying";
}

// The step's input as a task input: strings and objects as they are, anything else wrapped.
json::value task_input(const json::value& v) {
  if (v.is_string() || v.is_object()) return v;
  if (v.is_null()) return json::object{};
  return json::object{{"value", v}};
}

json::object agent_outputs(const json::value& result) {
  json::object out;
  if (!result.is_object()) return out;
  const auto& r = result.get_object();
  for (const char* k : {"outcome", "exitCode", "stdout", "stderr", "wallMs"}) {
    if (const auto* v = r.if_contains(k)) out[k] = *v;
  }
  if (const auto* files = r.if_contains("outputs")) out["files"] = *files;
  if (const auto* so = r.if_contains("stdout"); so != nullptr && so->is_string()) {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = 64;
    json::value parsed = json::parse(so->get_string(), ec, {}, opts);
    if (!ec) out["json"] = std::move(parsed);
  }
  return out;
}

// Picks the agent a step names: an id, a name, or {id | name | kind, labels}; running agents
// are preferred when several match.
Result<model::Agent> resolve_agent(store::Tx& tx, const json::value& selector) {
  std::optional<std::string> id;
  std::optional<std::string> name;
  std::optional<std::string> kind;
  const json::object* labels = nullptr;
  if (selector.is_string()) {
    const std::string s(selector.get_string());
    if (ids::is_uuid(s)) {
      id = s;
    } else {
      name = s;
    }
  } else if (selector.is_object()) {
    const auto& o = selector.get_object();
    if (const auto* v = o.if_contains("id"); v != nullptr && v->is_string()) id = std::string(v->get_string());
    if (const auto* v = o.if_contains("name"); v != nullptr && v->is_string()) name = std::string(v->get_string());
    if (const auto* v = o.if_contains("kind"); v != nullptr && v->is_string()) kind = std::string(v->get_string());
    if (const auto* v = o.if_contains("labels"); v != nullptr && v->is_object()) labels = &v->get_object();
  }
  if (id) {
    auto a = tx.agents().get(*id);
    if (!a.ok() || a->status == model::AgentStatus::kDecommissioned) {
      return Error::unavailable("no agent with id " + *id);
    }
    return a;
  }
  store::AgentFilter f;
  f.limit = 200;
  if (name) f.name_contains = *name;
  if (kind) f.type = *kind;
  DP_ASSIGN_OR_RETURN(auto page, tx.agents().list(f));
  std::optional<model::Agent> best;
  for (auto& a : page.items) {
    if (name && a.name != *name) continue;
    if (labels != nullptr) {
      bool ok = true;
      for (const auto& kv : *labels) {
        const auto* have = a.labels.if_contains(kv.key());
        if (have == nullptr || *have != kv.value()) ok = false;
      }
      if (!ok) continue;
    }
    const bool running = a.status == model::AgentStatus::kRunning;
    if (!best || (running && best->status != model::AgentStatus::kRunning)) best = std::move(a);
  }
  if (!best) {
    return Error::unavailable("no agent matches " + json::serialize(selector));
  }
  return std::move(*best);
}

// One pass of the engine over one execution, inside one store transaction.
class Pass {
 public:
  Pass(store::Tx& tx, model::Execution& e, const Definition& def,
       std::vector<model::ExecutionStep>& rows, std::int64_t now_us, const EngineOptions& opts,
       agents::TaskService& tasks, agents::PendingTasks& pending,
       const std::map<std::string, ToolCallResult>* calls_done = nullptr)
      : tx_(tx), e_(e), def_(def), rows_(rows), now_us_(now_us), now_(now_us / 1000), opts_(opts), tasks_(tasks), pending_(pending),
        calls_done_(calls_done) {
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      index_[rows_[i].step_id] = i;
      expected_.emplace_back(rows_[i].status, rows_[i].attempt);
    }
  }


  Status run();
  Status fail_attempt(std::size_t i, const std::string& kind, const std::string& error,
                      std::optional<std::int64_t> exit_code = std::nullopt);
  // The end of a tool step's call for the step's current attempt.
  Status tool_done(std::size_t i, const ToolCallResult& result);
  std::optional<std::size_t> find(const std::string& step_id) const {
    auto it = index_.find(step_id);
    return it == index_.end() ? std::nullopt : std::optional(it->second);
  }

  struct Out {
    // A tool step's call to make after the commit.
    struct Dispatch {
      std::string step_id;
      std::int64_t attempt = 0;
      json::value input;
      std::string key;
      std::string adapter;
      std::string tool_name;
    };
    struct Cancel {
      std::string agent_id;
      std::string task_id;
    };
    std::vector<Dispatch> dispatches;
    std::vector<Cancel> cancels;
    // Idempotency keys of tool calls to stop (their step was cancelled or timed out).
    std::vector<std::string> stop_calls;
    bool finished = false;
    std::int64_t next_wake_us = 0;  // the earliest timer still pending, epoch µs (0: none)
  } out;

 private:
  const Step* spec(const model::ExecutionStep& r) const {
    return def_.step(r.parent_step.empty() ? r.step_id : r.parent_step);
  }

  Out::Dispatch tool_dispatch(const model::ExecutionStep& r, const Step& s) const {
    Out::Dispatch d;
    d.step_id = r.step_id;
    d.attempt = r.attempt;
    d.input = r.inputs;
    d.key = key(r);
    d.adapter = s.adapter;
    d.tool_name = s.tool;
    return d;
  }

  // The epoch µs at which a timer of `ms` from now is due.
  std::int64_t due_in(std::int64_t ms) const { return now_us_ + ms * 1000; }

  std::string key(const model::ExecutionStep& r) const {
    return e_.id + "/" + r.step_id + "/" + std::to_string(r.attempt);
  }

  json::object context(const model::ExecutionStep* item_row) {
    if (ctx_dirty_) {
      json::object steps;
      for (const auto& r : rows_) {
        if (!r.parent_step.empty()) continue;
        steps[r.step_id] = json::object{{"status", r.status},
                                        {"outputs", r.outputs.is_null() ? json::value(json::object{}) : r.outputs},
                                        {"attempts", r.attempt},
                                        {"error", r.error}};
      }
      ctx_ = json::object{{"inputs", e_.inputs},
                          {"steps", std::move(steps)},
                          {"execution", json::object{{"id", e_.id}, {"workflowId", e_.workflow_id}}}};
      ctx_dirty_ = false;
    }
    if (item_row == nullptr) return ctx_;
    json::object c = ctx_;
    c["item"] = item_row->item;
    const auto open = item_row->step_id.rfind('[');
    c["index"] = static_cast<std::int64_t>(std::stoll(item_row->step_id.substr(open + 1)));
    return c;
  }

  Status save(std::size_t i) {
    auto& r = rows_[i];
    r.updated_at = now_;
    DP_TRY(tx_.executions().update_step(r, expected_[i].first, expected_[i].second));
    expected_[i] = {r.status, r.attempt};
    // Expressions see top-level steps only; forEach items do not change the context.
    if (r.parent_step.empty()) ctx_dirty_ = true;
    changed_ = true;
    return tx_.outbox().append(store::OutboxEvent{0, "workflow.progress.update",
                                                  progress_event(e_, &r, now_us_), e_.correlation_id, now_,
                                                  std::nullopt});
  }

  Status save_execution() {
    DP_TRY(tx_.executions().update(e_));
    return tx_.outbox().append(store::OutboxEvent{0, "workflow.progress.update",
                                                  progress_event(e_, nullptr, now_us_), e_.correlation_id,
                                                  now_, std::nullopt});
  }

  std::int64_t attempts_since_reset(const model::ExecutionStep& r) const {
    std::int64_t base = 0;
    for (const auto& h : r.history) {
      if (const auto* from = h.as_object().if_contains("retryFrom")) base = from->to_number<std::int64_t>();
    }
    return r.attempt - base;
  }

  void record(model::ExecutionStep& r, const std::string& status, const std::string& error,
              const std::string& kind = {}) {
    json::object h{{"attempt", r.attempt}, {"status", status}};
    if (!error.empty()) h["error"] = error;
    if (!kind.empty()) h["kind"] = kind;
    if (r.started_at) h["startedAt"] = clock::format_iso8601(*r.started_at);
    h["finishedAt"] = clock::format_iso8601(now_);
    if (!r.task_id.empty()) h["taskId"] = r.task_id;
    r.history.push_back(std::move(h));
  }

  Status succeed(std::size_t i, json::value outputs) {
    auto& r = rows_[i];
    record(r, "succeeded", "");
    r.status = "succeeded";
    r.outputs = std::move(outputs);
    r.error.clear();
    r.wake_at_us = 0;
    r.completed_at = now_;
    return save(i);
  }

  Status finish_failed(std::size_t i, const std::string& error) {
    auto& r = rows_[i];
    r.status = "failed";
    r.error = error;
    r.wake_at_us = 0;
    r.completed_at = now_;
    return save(i);
  }

  Status skip(std::size_t i, const std::string& reason) {
    auto& r = rows_[i];
    r.status = "skipped";
    r.error = reason;
    r.completed_at = now_;
    return save(i);
  }

  Status cancel_row(std::size_t i, const std::string& reason) {
    auto& r = rows_[i];
    if ((r.status == "running" || r.status == "dispatched") && !r.task_id.empty()) {
      const Step* s = spec(r);
      if (s != nullptr && s->type == "workflow") {
        auto child = tx_.executions().get(r.task_id);
        if (child.ok() && !child->finished() && !child->cancel_requested) {
          child->cancel_requested = true;
          DP_TRY(tx_.executions().update(*child));
        }
      } else {
        auto task = tx_.tasks().get(r.task_id);
        if (task.ok() && !task->finished()) out.cancels.push_back({task->agent_id, task->id});
      }
    }
    if (r.status == "dispatched") {
      // A tool step's call in flight: stopped once this commit is done.
      const Step* s = spec(r);
      if (s != nullptr && s->type == "tool") out.stop_calls.push_back(key(r));
    }
    if (r.status == "running" || r.status == "dispatched" || r.status == "waiting" ||
        r.status == "waiting_approval" || r.status == "retrying") {
      record(r, "cancelled", reason);
    }
    r.status = "cancelled";
    r.error = reason;
    r.wake_at_us = 0;
    r.completed_at = now_;
    return save(i);
  }

  Status start_attempt(std::size_t i);
  Status start_task(std::size_t i, const std::string& agent_id, std::int64_t deadline);
  Status fan_out(std::size_t i, const Step& s);
  Result<bool> advance(std::size_t i);
  Result<bool> check_children(std::size_t i, const Step& s);
  Status finalize();

  store::Tx& tx_;
  model::Execution& e_;
  const Definition& def_;
  std::vector<model::ExecutionStep>& rows_;
  const std::int64_t now_us_;  // the pass's clock, in µs (events carry it)
  const std::int64_t now_;     // the same in ms (stored timestamps, timers)
  const EngineOptions& opts_;
  agents::TaskService& tasks_;
  agents::PendingTasks& pending_;
  // Results of this execution's tool calls that ended on this node, by idempotency key.
  const std::map<std::string, ToolCallResult>* calls_done_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<std::pair<std::string, std::int64_t>> expected_;  // stored (status, attempt)
  json::object ctx_;
  bool ctx_dirty_ = true;
  bool changed_ = false;
};

Status Pass::fail_attempt(std::size_t i, const std::string& kind, const std::string& error,
                          std::optional<std::int64_t> exit_code) {
  auto& r = rows_[i];
  const Step* s = spec(r);
  record(r, "failed", error, kind);
  bool retry = false;
  if (s != nullptr && attempts_since_reset(r) < s->retry.max_attempts) {
    if (s->retry.retry_on.empty()) {
      retry = true;
    } else {
      for (const auto& k : s->retry.retry_on) {
        if (k == kind || (exit_code && k == "exit:" + std::to_string(*exit_code))) retry = true;
      }
    }
  }
  if (retry) {
    r.status = "retrying";
    r.error = error;
    r.wake_at_us = due_in(backoff_ms(s->retry, attempts_since_reset(r)));
    r.task_id.clear();
    return save(i);
  }
  return finish_failed(i, error);
}

// The step's task, created (and claimed by this node's executor when it may run now) in this
// pass's transaction: the step goes straight to running, and the task starts after the commit.
Status Pass::start_task(std::size_t i, const std::string& agent_id, std::int64_t deadline) {
  auto& r = rows_[i];
  agents::NewTask t;
  t.agent_id = agent_id;
  t.input = task_input(r.inputs);
  t.idempotency_key = key(r);
  t.created_by = "execution:" + e_.id;
  auto created = tasks_.create_in(tx_, std::move(t), e_.correlation_id, pending_);
  if (!created.ok()) {
    const auto code = created.error().code;
    if (code == ErrorCode::kNotFound || code == ErrorCode::kFailedPrecondition) {
      return fail_attempt(i, "unavailable", created.error().message);
    }
    return std::move(created).error();
  }
  r.status = "running";
  r.task_id = created->first.id;
  r.lease_owner = opts_.node_id;
  r.lease_until = now_ + opts_.lease.count();
  r.wake_at_us = deadline;
  return save(i);
}

Status Pass::start_attempt(std::size_t i) {
  auto& r = rows_[i];
  const Step* s = spec(r);
  r.attempt += 1;
  r.started_at = now_;
  r.completed_at.reset();
  r.error.clear();
  r.outputs = nullptr;
  r.task_id.clear();
  r.wake_at_us = 0;
  const json::object ctx = context(r.parent_step.empty() ? nullptr : &r);
  auto inputs = expr::render(s->inputs, ctx);
  if (!inputs.ok()) {
    record(r, "failed", "inputs: " + inputs.error().message, "expression");
    return finish_failed(i, "inputs: " + inputs.error().message);
  }
  r.inputs = *inputs;
  const std::int64_t deadline = s->timeout_ms > 0 ? due_in(s->timeout_ms) : 0;
  if (s->type == "agent") {
    auto selector = expr::render(s->agent, ctx);
    if (!selector.ok()) return finish_failed(i, "agent: " + selector.error().message);
    auto agent = resolve_agent(tx_, *selector);
    if (!agent.ok()) return fail_attempt(i, "unavailable", agent.error().message);
    return start_task(i, agent->id, deadline);
  }
  if (s->type == "wait") {
    r.status = "waiting";
    r.wake_at_us = due_in(s->duration_ms);
    return save(i);
  }
  if (s->type == "approval") {
    r.status = "waiting_approval";
    r.wake_at_us = deadline;
    auto message = expr::render(json::value(s->message), ctx);
    json::array approvers;
    for (const auto& a : s->approvers.empty() ? std::vector<std::string>{"admin", "operator"} : s->approvers) {
      approvers.emplace_back(a);
    }
    // The request as the approvers see it, kept on the step row (GET /api/v1/executions/:id)
    // as well as in the event: the decision is added to these outputs (WorkflowService::decide).
    json::object request{
        {"message", message.ok() && message->is_string() ? *message : json::value(s->message)},
        {"approvers", approvers},
        {"expiresAt", deadline > 0 ? json::value(clock::format_iso8601(deadline / 1000)) : json::value(nullptr)}};
    r.outputs = request;
    DP_TRY(save(i));
    json::object ev{{"executionId", e_.id},
                    {"workflowId", e_.workflow_id},
                    {"stepId", r.step_id},
                    {"message", request["message"]},
                    {"approvers", std::move(approvers)},
                    {"expiresAt", request["expiresAt"]}};
    return tx_.outbox().append(store::OutboxEvent{0, "approval.requested", json::serialize(ev),
                                                  e_.correlation_id, now_, std::nullopt});
  }
  if (s->type == "workflow") {
    std::optional<model::Workflow> w;
    if (ids::is_uuid(s->workflow)) {
      auto got = tx_.workflows().get(s->workflow);
      if (got.ok() && got->status != "archived") w = std::move(*got);
    } else {
      DP_ASSIGN_OR_RETURN(w, tx_.workflows().find_by_name(s->workflow));
    }
    if (!w) return fail_attempt(i, "unavailable", "no workflow '" + s->workflow + "'");
    if (w->id == e_.workflow_id) return finish_failed(i, "a workflow cannot run itself");
    auto child_def = parse_definition(w->definition);
    if (!child_def.ok()) return finish_failed(i, "workflow '" + s->workflow + "' is invalid");
    const json::object given = r.inputs.is_object() ? r.inputs.get_object() : json::object{};
    auto inputs_ok = check_inputs(*child_def, given);
    if (!inputs_ok.ok()) {
      return finish_failed(i, "inputs for workflow '" + s->workflow + "': " +
                                  json::serialize(inputs_ok.error().details));
    }
    model::Execution child;
    child.id = ids::uuid_v7();
    child.workflow_id = w->id;
    child.workflow_version = w->version;
    child.inputs = std::move(*inputs_ok);
    child.correlation_id = e_.correlation_id;
    child.cause = "workflow";
    child.created_by = "execution:" + e_.id;
    child.parent_execution_id = e_.id;
    child.parent_step_id = r.step_id;
    child.cause_detail = json::object{{"parentExecutionId", e_.id}, {"parentStepId", r.step_id}};
    child.created_at = now_;
    DP_TRY(insert_execution(tx_, child, *child_def, now_));
    r.status = "running";
    r.task_id = child.id;
    r.wake_at_us = deadline;
    return save(i);
  }
  // tool: the call runs after this transaction commits (Engine::call_tool); the step stays
  // `dispatched` until its result is written.
  if (!opts_.call_tool) {
    record(r, "failed", "tool steps are not available on this node", "unavailable");
    return finish_failed(i, "tool steps are not available on this node (no MCP tool service)");
  }
  if (r.inputs.is_null()) r.inputs = json::object{};
  if (!r.inputs.is_object()) {
    record(r, "failed", "arguments must be an object", "expression");
    return finish_failed(i, "arguments must be an object, not " + json::serialize(r.inputs).substr(0, 200));
  }
  r.status = "dispatched";
  r.lease_owner = opts_.node_id;
  r.lease_until = now_ + opts_.lease.count();
  r.wake_at_us = deadline;
  DP_TRY(save(i));
  out.dispatches.push_back(tool_dispatch(r, *s));
  return Ok{};
}

Status Pass::tool_done(std::size_t i, const ToolCallResult& result) {
  if (result.status == "succeeded") return succeed(i, result.output);
  if (result.status == "refused") {
    record(rows_[i], "failed", result.error, "refused");
    return finish_failed(i, result.error);
  }
  const std::string kind = result.status == "timeout" || result.status == "unavailable" ? result.status : "failed";
  return fail_attempt(i, kind, result.error);
}

Status Pass::fan_out(std::size_t i, const Step& s) {
  auto& parent = rows_[i];
  json::value items = s.for_each;
  if (items.is_string()) {
    auto rendered = expr::render(items, context(nullptr));
    if (!rendered.ok()) return finish_failed(i, "forEach: " + rendered.error().message);
    items = std::move(*rendered);
  }
  if (!items.is_array()) return finish_failed(i, "forEach did not yield a list");
  if (items.get_array().size() > kMaxForEachItems) {
    return finish_failed(i, "forEach yielded more than 1000 items");
  }
  parent.attempt = 1;
  parent.started_at = now_;
  if (items.get_array().empty()) {
    return succeed(i, json::object{{"results", json::array{}}});
  }
  parent.status = "running";
  DP_TRY(save(i));
  const std::int64_t base_seq = rows_[i].seq;
  const std::string parent_id = rows_[i].step_id;
  std::size_t k = 0;
  for (const auto& item : items.get_array()) {
    // A retried execution keeps the items of the earlier run (the failed ones are pending again).
    if (find(parent_id + "[" + std::to_string(k) + "]")) {
      ++k;
      continue;
    }
    model::ExecutionStep c;
    c.execution_id = e_.id;
    c.step_id = parent_id + "[" + std::to_string(k) + "]";
    c.parent_step = parent_id;
    c.seq = base_seq + static_cast<std::int64_t>(k) + 1;
    c.status = "pending";
    c.item = item;
    c.updated_at = now_;
    DP_TRY(tx_.executions().insert_step(c));
    index_[c.step_id] = rows_.size();
    expected_.emplace_back(c.status, c.attempt);
    rows_.push_back(std::move(c));
    ++k;
  }
  return Ok{};
}

Result<bool> Pass::check_children(std::size_t i, const Step& s) {
  const std::string parent_id = rows_[i].step_id;
  std::size_t running = 0;
  std::size_t done = 0;
  std::size_t total = 0;
  std::optional<std::size_t> failed;
  std::vector<std::size_t> kids;
  for (std::size_t k = 0; k < rows_.size(); ++k) {
    if (rows_[k].parent_step != parent_id) continue;
    kids.push_back(k);
    ++total;
    if (active(rows_[k].status)) ++running;
    if (rows_[k].terminal()) ++done;
    if (rows_[k].status == "failed" && !failed) failed = k;
  }
  if (failed && !s.continue_on_error) {
    for (auto k : kids) {
      if (!rows_[k].terminal()) DP_TRY(cancel_row(k, "another item of '" + parent_id + "' failed"));
    }
    DP_TRY(finish_failed(i, "item " + rows_[*failed].step_id + " failed: " + rows_[*failed].error));
    return true;
  }
  if (done == total) {
    json::array results;
    for (auto k : kids) results.push_back(rows_[k].outputs);
    DP_TRY(succeed(i, json::object{{"results", std::move(results)}}));
    return true;
  }
  // Start pending items up to the concurrency limit.
  bool changed = false;
  const std::size_t limit = s.concurrency > 0 ? static_cast<std::size_t>(s.concurrency) : total;
  for (auto k : kids) {
    if (running >= limit) break;
    if (rows_[k].status != "pending") continue;
    DP_TRY(start_attempt(k));
    if (active(rows_[k].status)) ++running;
    changed = true;
  }
  return changed;
}

// Moves step i on as far as it can go now; true when something changed.
Result<bool> Pass::advance(std::size_t i) {
  auto& r = rows_[i];
  const Step* s = spec(r);
  if (s == nullptr) {
    DP_TRY(finish_failed(i, "the step is not in the workflow's definition"));
    return true;
  }
  const bool item = !r.parent_step.empty();
  if (r.status == "pending") {
    if (item) return false;  // its forEach parent starts it
    for (const auto& n : s->needs) {
      auto k = find(n);
      if (!k) continue;
      const auto& dep = rows_[*k];
      if (!dep.terminal()) return false;
      const Step* ds = spec(dep);
      if (dep.status == "skipped" || dep.status == "cancelled" ||
          (dep.status == "failed" && (ds == nullptr || !ds->continue_on_error))) {
        DP_TRY(skip(i, "needs '" + n + "', which " + (dep.status == "failed" ? "failed" : "was " + dep.status)));
        return true;
      }
    }
    if (!s->if_expr.empty()) {
      std::string src = s->if_expr;
      auto parts = expr::find_templates(src);
      if (parts.ok() && parts->size() == 1 && (*parts)[0].offset == 0 && (*parts)[0].length == src.size()) {
        src = (*parts)[0].expression;
      }
      auto e = expr::Expression::parse(src);
      if (!e.ok()) {
        DP_TRY(finish_failed(i, "if: " + e.error().message));
        return true;
      }
      auto v = e->eval(context(nullptr));
      if (!v.ok()) {
        DP_TRY(finish_failed(i, "if: " + v.error().message));
        return true;
      }
      if (!expr::truthy(*v)) {
        DP_TRY(skip(i, "condition is false: " + s->if_expr));
        return true;
      }
    }
    if (!s->for_each.is_null()) {
      DP_TRY(fan_out(i, *s));
    } else {
      DP_TRY(start_attempt(i));
    }
    return true;
  }
  if (r.status == "retrying") {
    if (now_us_ < r.wake_at_us) return false;
    DP_TRY(start_attempt(i));
    return true;
  }
  const bool timed_out = r.wake_at_us > 0 && now_us_ >= r.wake_at_us;
  if (r.status == "waiting") {
    if (!timed_out) return false;
    DP_TRY(succeed(i, json::object{{"waitedMs", s->duration_ms}}));
    return true;
  }
  if (r.status == "waiting_approval") {
    if (!timed_out) return false;
    record(r, "failed", "approval timed out", "timeout");
    DP_TRY(finish_failed(i, "approval timed out"));
    return true;
  }
  if (r.status == "dispatched") {
    if (s->type == "tool" && calls_done_ != nullptr) {
      // The call of this attempt ended: its result moves the step on in this pass, and the
      // steps that need it start in the same commit.
      if (auto it = calls_done_->find(key(r)); it != calls_done_->end()) {
        DP_TRY(tool_done(i, it->second));
        return true;
      }
    }
    if (timed_out) {
      if (s->type == "tool") out.stop_calls.push_back(key(r));
      DP_TRY(fail_attempt(i, "timeout", s->type == "tool" ? "timed out after " + std::to_string(s->timeout_ms) + " ms"
                                                          : "timed out before it started"));
      return true;
    }
    if (s->type == "tool") {
      // The call is in flight on this node (Engine skips a key it is calling), or it was lost
      // with a crashed node: then it is made again (at least once).
      out.dispatches.push_back(tool_dispatch(r, *s));
      return false;
    }
    // An agent step left dispatched by an earlier version of the engine (which created the
    // task after the commit): create it now with the same key, which returns the task if the
    // first try made it.
    auto selector = expr::render(s->agent, context(item ? &r : nullptr));
    auto agent = resolve_agent(tx_, selector.ok() ? *selector : s->agent);
    if (!agent.ok()) {
      DP_TRY(fail_attempt(i, "unavailable", agent.error().message));
      return true;
    }
    DP_TRY(start_task(i, agent->id, r.wake_at_us));
    return true;
  }
  if (r.status == "running") {
    if (!s->for_each.is_null() && !item) return check_children(i, *s);
    if (s->type == "workflow") {
      auto child = tx_.executions().get(r.task_id);
      if (!child.ok()) {
        DP_TRY(fail_attempt(i, "unavailable", "child execution " + r.task_id + " is gone"));
        return true;
      }
      if (child->status == "succeeded") {
        json::object outputs{{"executionId", child->id}};
        if (child->outputs.is_object()) {
          for (const auto& kv : child->outputs.get_object()) outputs[kv.key()] = kv.value();
        }
        DP_TRY(succeed(i, std::move(outputs)));
        return true;
      }
      if (child->finished()) {
        DP_TRY(fail_attempt(i, "failed", "sub-workflow " + child->status + ": " + child->error));
        return true;
      }
      if (timed_out) {
        child->cancel_requested = true;
        DP_TRY(tx_.executions().update(*child));
        DP_TRY(fail_attempt(i, "timeout", "timed out after " + std::to_string(s->timeout_ms) + " ms"));
        return true;
      }
      return false;
    }
    // An agent task: only the task of the current attempt is read (fencing).
    auto task = tx_.tasks().get(r.task_id);
    if (!task.ok()) {
      DP_TRY(fail_attempt(i, "unavailable", "task " + r.task_id + " is gone"));
      return true;
    }
    if (task->status == "succeeded") {
      DP_TRY(succeed(i, agent_outputs(task->result)));
      return true;
    }
    if (task->status == "failed") {
      std::optional<std::int64_t> code;
      if (task->result.is_object()) {
        if (const auto* c = task->result.get_object().if_contains("exitCode"); c != nullptr && c->is_int64()) {
          code = c->get_int64();
        }
      }
      DP_TRY(fail_attempt(i, "failed", task->error.empty() ? "the task failed" : task->error, code));
      return true;
    }
    if (task->status == "cancelled") {
      DP_TRY(fail_attempt(i, "unavailable", "the task was cancelled: " + task->error));
      return true;
    }
    if (timed_out) {
      out.cancels.push_back({task->agent_id, task->id});
      DP_TRY(fail_attempt(i, "timeout", "timed out after " + std::to_string(s->timeout_ms) + " ms"));
      return true;
    }
    return false;
  }
  return false;
}

Status Pass::finalize() {
  // A failed step that does not allow continuing fails the execution.
  const model::ExecutionStep* failed = nullptr;
  bool all_done = true;
  for (const auto& r : rows_) {
    if (!r.parent_step.empty()) continue;
    if (!r.terminal()) all_done = false;
    const Step* s = spec(r);
    if (r.status == "failed" && (s == nullptr || !s->continue_on_error) && failed == nullptr) failed = &r;
  }
  if (failed != nullptr) {
    const std::string reason = "step '" + failed->step_id + "' failed: " + failed->error;
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      if (!rows_[i].terminal()) DP_TRY(cancel_row(i, "the execution failed"));
    }
    e_.status = "failed";
    e_.error = reason;
    e_.completed_at = now_;
    out.finished = true;
    return save_execution();
  }
  if (!all_done) return Ok{};
  auto outputs = expr::render(json::value(def_.outputs), context(nullptr));
  if (!outputs.ok()) {
    e_.status = "failed";
    e_.error = "outputs: " + outputs.error().message;
  } else {
    e_.status = "succeeded";
    e_.outputs = std::move(*outputs);
  }
  e_.completed_at = now_;
  out.finished = true;
  return save_execution();
}

Status Pass::run() {
  if (e_.status == "pending") {
    e_.status = "running";
    e_.started_at = now_;
    DP_TRY(save_execution());
  }
  if (e_.cancel_requested) {
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      if (!rows_[i].terminal()) DP_TRY(cancel_row(i, "the execution was cancelled"));
    }
    e_.status = "cancelled";
    e_.error = "cancelled by request";
    e_.completed_at = now_;
    out.finished = true;
    return save_execution();
  }
  // Repeat while something moves (a skip or a finished step can unblock the next one), at most
  // once per step plus a little.
  for (std::size_t round = 0; round < rows_.size() + 2; ++round) {
    bool moved = false;
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      if (rows_[i].terminal()) continue;
      DP_ASSIGN_OR_RETURN(bool m, advance(i));
      moved = moved || m;
    }
    if (!moved) break;
  }
  DP_TRY(finalize());
  if (!out.finished) {
    for (const auto& r : rows_) {
      if (r.terminal() || r.wake_at_us <= 0) continue;
      if (out.next_wake_us == 0 || r.wake_at_us < out.next_wake_us) out.next_wake_us = r.wake_at_us;
    }
  }
  return Ok{};
}

}  // namespace

Engine::Engine(store::Store& store, agents::TaskService& tasks, EngineOptions options)
    : store_(store), tasks_(tasks), options_(std::move(options)) {}

Engine::~Engine() { stop(); }

void Engine::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  if (!tool_pool_) tool_pool_ = std::make_unique<boost::asio::thread_pool>(
                       static_cast<std::size_t>(std::max(1, options_.tool_threads)));
  thread_ = std::thread([this] { loop(); });
}

void Engine::stop(std::chrono::milliseconds grace) {
  std::unique_ptr<boost::asio::thread_pool> pool;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    pool = std::move(tool_pool_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!pool) return;
  // Calls in flight may end within the grace period; their results are written if the attempt
  // is still current. The rest are cancelled (the upstream is told) and left for the next
  // start, like a call cut by a crash: waiting for their adapters' timeouts (up to minutes)
  // would hold the shutdown past what a service manager allows.
  {
    std::unique_lock lock(mu_);
    if (!calls_cv_.wait_for(lock, grace, [this] { return tool_calls_.empty(); })) {
      abandoned_ = true;
      for (auto& [key, flag] : tool_calls_) flag->store(true);
      log::global().warn(
          "workflow engine: tool calls still in flight at the end of the grace period are "
          "cancelled; their steps stay dispatched and the calls are made again at the next start",
          {{"calls", tool_calls_.size()}, {"graceMs", grace.count()}});
    }
  }
  pool->join();
}

void Engine::notify() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Engine::loop() {
  using SysClock = std::chrono::system_clock;
  auto sweep_at = SysClock::now() + options_.tick;
  for (;;) {
    std::vector<std::string> due;
    bool sweep = false;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        auto until = sweep_at;
        if (!timers_.empty()) {
          std::int64_t earliest = std::numeric_limits<std::int64_t>::max();
          for (const auto& kv : timers_) earliest = std::min(earliest, kv.second);
          until = std::min(until, SysClock::time_point(std::chrono::microseconds(earliest)));
        }
        timers_changed_ = false;
        // A drive on another thread (a new execution, a task's end, a tool call's result) that
        // sets an earlier timer ends the wait, which starts again with the new deadline.
        cv_.wait_until(lock, until, [this] { return stop_ || wake_ || timers_changed_; });
        if (stop_) return;
        if (!timers_changed_ || wake_) break;
      }
      const std::int64_t now = clock::now_us();
      sweep = wake_ || SysClock::now() >= sweep_at;
      wake_ = false;
      if (!sweep) {
        for (auto it = timers_.begin(); it != timers_.end();) {
          if (it->second <= now) {
            due.push_back(it->first);
            it = timers_.erase(it);
          } else {
            ++it;
          }
        }
      }
    }
    if (sweep) {
      // Every execution this node may drive: new ones, ones whose holder's lease lapsed, and
      // changes made elsewhere (approvals, cancels, retries) that woke the engine.
      tick();
      sweep_at = SysClock::now() + options_.tick;
      continue;
    }
    // Only the executions whose timer is due.
    for (const auto& id : due) drive(id);
  }
}

Result<std::shared_ptr<const Definition>> Engine::definition(store::Tx& tx,
                                                             const std::string& workflow_id,
                                                             std::int64_t version) {
  const std::string key = workflow_id + "/" + std::to_string(version);
  {
    std::lock_guard lock(defs_mu_);
    if (auto it = definitions_.find(key); it != definitions_.end()) return it->second;
  }
  DP_ASSIGN_OR_RETURN(model::WorkflowVersion v, tx.workflows().get_version(workflow_id, version));
  DP_ASSIGN_OR_RETURN(Definition def, parse_definition(v.definition));
  auto ptr = std::make_shared<const Definition>(std::move(def));
  std::lock_guard lock(defs_mu_);
  definitions_[key] = ptr;
  return ptr;
}

void Engine::tick() {
  const std::int64_t now = clock::now_ms();
  // Embedded mode: at start, every unfinished execution is ours (one process owns the file).
  const bool take_over = options_.take_over_on_start && !took_over_;
  std::vector<std::string> ids;
  auto st = store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(ids, tx.executions().claimable(
                                 options_.node_id, take_over ? std::numeric_limits<std::int64_t>::max() : now,
                                 options_.max_executions_per_tick));
    return Ok{};
  });
  if (!st.ok()) {
    log::global().warn("workflow engine tick failed", {{"error", st.error().message}});
    return;
  }
  took_over_ = true;
  // Executions this node still has tool calls in flight for: a pass over each renews the lease,
  // or finds it lost (another node took it over, or it finished) and stops the calls. Those the
  // query above no longer lists would otherwise never get one here.
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, flag] : tool_calls_) {
      std::string exec = key.substr(0, key.find('/'));
      if (std::find(ids.begin(), ids.end(), exec) == ids.end()) ids.push_back(std::move(exec));
    }
  }
  for (const auto& id : ids) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    drive(id);
  }
  (void)take_over;
}

void Engine::drive(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    if (!driving_.insert(id).second) {
      // Another thread is in a pass over it that may have read the state before the change
      // that brought us here: it runs one more pass when it is done.
      again_.insert(id);
      return;
    }
  }
  for (;;) {
    drive_once(id);
    std::lock_guard lock(mu_);
    if (again_.erase(id) == 0 || stop_) {
      driving_.erase(id);
      return;
    }
  }
}

void Engine::drive_once(const std::string& id) {
  std::int64_t now_us = 0;
  std::int64_t now = 0;
  const bool take_over = options_.take_over_on_start;
  std::optional<Pass::Out> out;
  std::string correlation_id;
  agents::PendingTasks pending;  // agent steps' tasks claimed by this node in the pass
  // The tool calls of this execution that ended here; dropped once a pass has seen them (a
  // result of a superseded attempt, or one for an execution now driven elsewhere, is of no use).
  std::map<std::string, ToolCallResult> calls_done;
  {
    std::lock_guard lock(mu_);
    for (auto it = tool_results_.lower_bound(id + "/"); it != tool_results_.end() && it->first.rfind(id + "/", 0) == 0; ++it) {
      calls_done.insert(*it);
    }
  }
  // The rows the previous pass over this execution left, if it was on this node and committed.
  std::optional<KeptSteps> kept;
  {
    std::lock_guard lock(kept_mu_);
    if (auto it = kept_.find(id); it != kept_.end()) {
      kept = std::move(it->second);
      kept_.erase(it);
    }
  }
  std::optional<KeptSteps> keep;  // what this pass leaves for the next one
  auto st = store_.write([&](store::Tx& tx) -> Status {
    // The unit may run again (a retried serialization failure): the first run's claims were undone.
    tasks_.settle(pending, false);
    out.reset();
    keep.reset();
    // The clock of the pass is read once it holds the transaction (on SQLite, after waiting for
    // the writer), so that a timer due by then is seen as due.
    now_us = clock::now_us();
    now = now_us / 1000;
    // Renewing the lease fences out a node whose lease lapsed: it can no longer write here.
    // In embedded mode the previous holder was this data directory's earlier process.
    DP_ASSIGN_OR_RETURN(
        bool mine,
        tx.executions().lease(id, options_.node_id,
                              take_over && !took_over_ ? std::numeric_limits<std::int64_t>::max() : now,
                              now + options_.lease.count()));
    if (!mine) {
      // In embedded mode a lease left by the previous process is taken over at once.
      if (!take_over) return Ok{};
      DP_ASSIGN_OR_RETURN(model::Execution e0, tx.executions().get(id));
      if (e0.finished() || e0.lease_owner == options_.node_id) return Ok{};
      DP_ASSIGN_OR_RETURN(mine, tx.executions().lease(id, options_.node_id,
                                                      std::numeric_limits<std::int64_t>::max(),
                                                      now + options_.lease.count()));
      if (!mine) return Ok{};
    }
    DP_ASSIGN_OR_RETURN(model::Execution e, tx.executions().get(id));
    correlation_id = e.correlation_id;
    DP_ASSIGN_OR_RETURN(auto def, definition(tx, e.workflow_id, e.workflow_version));
    std::vector<model::ExecutionStep> rows;
    // Kept rows are used once: a second run of this unit reads the store (the first changed them).
    if (kept && kept->version == e.steps_version) {
      rows = std::move(kept->rows);
      ++cache_hits_;
#ifndef NDEBUG
      DP_ASSIGN_OR_RETURN(auto stored, tx.executions().steps(id));
      const bool same = stored.size() == rows.size() &&
                        std::equal(rows.begin(), rows.end(), stored.begin(), same_step);
      if (!same) {
        log::global().error("workflow engine: kept step rows differ from the stored ones",
                            {{"executionId", id}, {"stepsVersion", e.steps_version}});
        std::abort();
      }
#endif
    } else {
      DP_ASSIGN_OR_RETURN(rows, tx.executions().steps(id));
      ++cache_misses_;
    }
    kept.reset();
    Pass pass(tx, e, *def, rows, now_us, options_, tasks_, pending, &calls_done);
    DP_TRY(pass.run());
    out = std::move(pass.out);
    if (!out->finished) {
      DP_ASSIGN_OR_RETURN(std::int64_t version, tx.executions().steps_version(id));
      // The store's order: forEach items inserted in this pass sit after their parent.
      std::stable_sort(rows.begin(), rows.end(),
                       [](const auto& a, const auto& b) { return a.seq < b.seq; });
      keep = KeptSteps{version, std::move(rows)};
    }
    return Ok{};
  });
  if (st.ok() && keep) {
    std::lock_guard lock(kept_mu_);
    // Bounded: rows of executions this node no longer drives (another node took them over)
    // would otherwise stay. Dropping them all costs each execution one read of its rows.
    if (kept_.size() >= kMaxKeptExecutions) kept_.clear();
    kept_.insert_or_assign(id, std::move(*keep));
  }
  // Only now do the tasks claimed in the pass start: their steps' transitions are on disk.
  tasks_.settle(pending, st.ok());
  if (st.ok() && !calls_done.empty()) {
    std::lock_guard lock(mu_);
    for (const auto& kv : calls_done) tool_results_.erase(kv.first);
  }
  if (!st.ok()) {
    log::Logger(correlation_id).warn("workflow execution step failed",
                                     {{"executionId", id}, {"error", st.error().message}});
    return;
  }
  if (!out) {
    // Not ours (another node holds the lease and will make the step's call again) or finished:
    // a call this node still has in flight for it is wasted, or done twice if the tool acts.
    stop_tool_calls(id);
    set_timer(id, 0);
    return;
  }
  if (!out->stop_calls.empty()) {
    std::lock_guard lock(mu_);
    for (const auto& key : out->stop_calls) {
      if (auto it = tool_calls_.find(key); it != tool_calls_.end()) it->second->store(true);
    }
  }
  for (const auto& c : out->cancels) {
    auto r = tasks_.cancel(c.agent_id, c.task_id, correlation_id);
    (void)r;  // already finished: nothing to stop
  }
  for (const auto& d : out->dispatches) {
    ToolDispatch td{id, d.step_id, d.attempt, d.input, d.key, correlation_id, d.adapter, d.tool_name};
    auto flag = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard lock(mu_);
    // A key already in flight on this node, or whose result waits for the next pass, is not
    // called twice.
    if (tool_pool_ == nullptr || stop_ || tool_results_.contains(td.key) ||
        !tool_calls_.emplace(td.key, flag).second) {
      continue;
    }
    boost::asio::post(*tool_pool_, [this, td = std::move(td), flag] { call_tool(td, *flag); });
  }
  if (out->finished) notify();  // a parent execution may be waiting on this one
  set_timer(id, out->finished ? 0 : out->next_wake_us);
}

void Engine::stop_tool_calls(const std::string& id) {
  const std::string prefix = id + "/";
  std::vector<std::string> stopped;
  {
    std::lock_guard lock(mu_);
    for (auto it = tool_calls_.lower_bound(prefix);
         it != tool_calls_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (!it->second->exchange(true)) stopped.push_back(it->first);
    }
  }
  for (const auto& key : stopped) {
    log::global().info("tool call stopped: its execution is finished or driven by another node",
                       {{"executionId", id}, {"key", key}});
  }
}

void Engine::drive_soon(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    // A timer due now: the loop drives this execution alone, without a sweep.
    const std::int64_t now = clock::now_us();
    auto [it, added] = timers_.try_emplace(id, now);
    if (!added) it->second = std::min(it->second, now);
    timers_changed_ = true;
  }
  cv_.notify_all();
}

void Engine::set_timer(const std::string& id, std::int64_t at) {
  bool earlier = false;
  {
    std::lock_guard lock(mu_);
    if (at <= 0) {
      timers_.erase(id);
      return;
    }
    auto [it, added] = timers_.try_emplace(id, at);
    earlier = added || at < it->second;
    it->second = at;
    // The loop may be waiting for a later deadline: it waits again for this one.
    if (earlier) timers_changed_ = true;
  }
  if (earlier) cv_.notify_all();
}

void Engine::call_tool(const ToolDispatch& d, const std::atomic<bool>& cancel) {
  struct Done {
    Engine* self;
    const std::string& key;
    ~Done() {
      {
        std::lock_guard lock(self->mu_);
        self->tool_calls_.erase(key);
      }
      self->calls_cv_.notify_all();
    }
  } done{this, d.key};
  ToolCall call;
  call.adapter = d.adapter;
  call.tool = d.tool_name;
  call.arguments = d.input.is_object() ? d.input.get_object() : json::object{};
  call.caller = "execution:" + d.execution_id + "/" + d.step_id;
  call.correlation_id = d.execution_id;
  call.idempotency_key = d.key;
  call.cancel = &cancel;
  // Stopped before the call began (it waited for a thread of the pool): nothing to do, the
  // pass that raised the flag has already moved the step on.
  if (cancel.load()) return;
  ToolCallResult result;
  try {
    result = options_.call_tool(call);
  } catch (const std::exception& ex) {
    result = ToolCallResult{"failed", nullptr, std::string("the tool call failed: ") + ex.what()};
  }
  // The result is written by a pass over the execution, made now on this thread (or by the
  // thread driving it, once more), which also starts the steps that need this one: one
  // commit. Only the attempt that made the call moves on (fencing): a step that timed out, was
  // cancelled or retried meanwhile keeps its state. A result lost with a crash before that
  // commit means the call is made again on recovery.
  bool stopping = false;
  bool abandoned = false;
  {
    std::lock_guard lock(mu_);
    stopping = stop_;
    abandoned = abandoned_;
    if (!stopping) tool_results_[d.key] = result;
  }
  if (abandoned) {
    // Cut by the end of stop()'s grace period: nothing is written, the step stays dispatched.
    log::Logger(d.correlation_id)
        .info("tool call left for the next start", {{"executionId", d.execution_id}, {"stepId", d.step_id}});
    return;
  }
  if (stopping) {
    // The engine is stopping (no more passes): the result alone is written, as it came.
    record_tool_result(d, result);
    return;
  }
  drive(d.execution_id);
}

void Engine::record_tool_result(const ToolDispatch& d, const ToolCallResult& result) {
  auto st = store_.write([&](store::Tx& tx) -> Status {
    const std::int64_t now_us = clock::now_us();
    const std::int64_t now = now_us / 1000;
    DP_ASSIGN_OR_RETURN(bool mine, tx.executions().lease(d.execution_id, options_.node_id, now,
                                                         now + options_.lease.count()));
    if (!mine) return Ok{};
    DP_ASSIGN_OR_RETURN(model::Execution e, tx.executions().get(d.execution_id));
    DP_ASSIGN_OR_RETURN(auto def, definition(tx, e.workflow_id, e.workflow_version));
    DP_ASSIGN_OR_RETURN(auto rows, tx.executions().steps(d.execution_id));
    agents::PendingTasks none;  // a tool step's result alone starts no task
    Pass pass(tx, e, *def, rows, now_us, options_, tasks_, none);
    auto i = pass.find(d.step_id);
    if (!i || rows[*i].status != "dispatched" || rows[*i].attempt != d.attempt) return Ok{};
    return pass.tool_done(*i, result);
  });
  if (!st.ok()) {
    log::Logger(d.correlation_id)
        .warn("recording a tool step's result failed; the call is made again",
              {{"executionId", d.execution_id}, {"stepId", d.step_id}, {"error", st.error().message}});
  }
}

}  // namespace dp::workflow
