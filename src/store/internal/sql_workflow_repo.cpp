// Workflows, versions, executions and execution steps, written once for both dialects
// (see sql_repos.hpp).
#include <array>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

namespace json = boost::json;

json::value parse_value(const std::optional<std::string>& text) {
  if (!text || text->empty()) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(*text, ec);
  return ec ? json::value(nullptr) : v;
}

std::optional<std::int64_t> opt_time(const Rows& rows, std::size_t r, std::size_t c) {
  if (!rows.at(r, c)) return std::nullopt;
  return parse_db_time(rows.at(r, c));
}

SqlValue opt_iso(const std::optional<std::int64_t>& t, std::string& buf) {
  if (!t) return nullptr;
  buf = clock::format_iso8601(*t);
  return std::string_view(buf);
}

SqlValue text_or_null(const std::string& s) {
  return s.empty() ? SqlValue(nullptr) : SqlValue(std::string_view(s));
}

constexpr std::string_view kWorkflowColumns =
    "id, name, description, definition, status, version, created_at, updated_at";

model::Workflow workflow_from_row(const Rows& rows, std::size_t r) {
  model::Workflow w;
  w.id = rows.text(r, 0);
  w.name = rows.text(r, 1);
  w.description = rows.text(r, 2);
  w.definition = rows.text(r, 3);
  w.status = rows.text(r, 4);
  w.version = rows.integer(r, 5);
  w.created_at = parse_db_time(rows.at(r, 6));
  w.updated_at = parse_db_time(rows.at(r, 7));
  return w;
}

Status name_taken(const Result<std::int64_t>& r, const std::string& name) {
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) {
      return Error::conflict("a workflow named '" + name + "' already exists");
    }
    return r.error();
  }
  return Ok{};
}

constexpr std::string_view kExecutionColumns =
    "id, workflow_id, workflow_version, status, inputs, outputs, error, correlation_id, cause, "
    "created_by, parent_execution_id, parent_step_id, lease_owner, lease_until, "
    "cancel_requested, created_at, started_at, completed_at, cause_detail, steps_version";

model::Execution execution_from_row(const Rows& rows, std::size_t r) {
  model::Execution e;
  e.id = rows.text(r, 0);
  e.workflow_id = rows.text(r, 1);
  e.workflow_version = rows.integer(r, 2);
  e.status = rows.text(r, 3);
  auto in = parse_value(rows.at(r, 4));
  if (in.is_object()) e.inputs = std::move(in.as_object());
  e.outputs = parse_value(rows.at(r, 5));
  e.error = rows.text(r, 6);
  e.correlation_id = rows.text(r, 7);
  e.cause = rows.text(r, 8);
  e.created_by = rows.text(r, 9);
  e.parent_execution_id = rows.text(r, 10);
  e.parent_step_id = rows.text(r, 11);
  e.lease_owner = rows.text(r, 12);
  e.lease_until = rows.integer(r, 13);
  e.cancel_requested = rows.integer(r, 14) != 0;
  e.created_at = parse_db_time(rows.at(r, 15));
  e.started_at = opt_time(rows, r, 16);
  e.completed_at = opt_time(rows, r, 17);
  auto detail = parse_value(rows.at(r, 18));
  if (detail.is_object()) e.cause_detail = std::move(detail.as_object());
  e.steps_version = rows.integer(r, 19);
  return e;
}

constexpr std::string_view kStepColumns =
    "execution_id, step_id, parent_step, seq, status, attempt, inputs, outputs, error, item, "
    "task_id, lease_owner, lease_expires_at, wake_at_us, history, decided_by, started_at, "
    "completed_at, updated_at";

model::ExecutionStep step_from_row(const Rows& rows, std::size_t r) {
  model::ExecutionStep s;
  s.execution_id = rows.text(r, 0);
  s.step_id = rows.text(r, 1);
  s.parent_step = rows.text(r, 2);
  s.seq = rows.integer(r, 3);
  s.status = rows.text(r, 4);
  s.attempt = rows.integer(r, 5);
  s.inputs = parse_value(rows.at(r, 6));
  s.outputs = parse_value(rows.at(r, 7));
  s.error = rows.text(r, 8);
  s.item = parse_value(rows.at(r, 9));
  s.task_id = rows.text(r, 10);
  s.lease_owner = rows.text(r, 11);
  s.lease_until = parse_db_time(rows.at(r, 12));
  s.wake_at_us = rows.integer(r, 13);
  auto h = parse_value(rows.at(r, 14));
  if (h.is_array()) s.history = std::move(h.as_array());
  s.decided_by = rows.text(r, 15);
  s.started_at = opt_time(rows, r, 16);
  s.completed_at = opt_time(rows, r, 17);
  s.updated_at = parse_db_time(rows.at(r, 18));
  return s;
}

}  // namespace

// --- workflows ---------------------------------------------------------------------------

Status SqlWorkflowRepository::insert(const model::Workflow& w) {
  const std::string created = clock::format_iso8601(w.created_at);
  const std::string updated = clock::format_iso8601(w.updated_at);
  const std::array<SqlValue, 8> params = {w.id,      w.name,    w.description,
                                          w.definition, w.status, w.version,
                                          std::string_view(created), std::string_view(updated)};
  DP_TRY(name_taken(conn_.exec("INSERT INTO workflows (" + std::string(kWorkflowColumns) +
                                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                               params),
                    w.name));
  const std::array<SqlValue, 4> vparams = {w.id, w.version, w.definition, std::string_view(updated)};
  DP_TRY(conn_.exec("INSERT INTO workflow_versions (workflow_id, version, definition, created_at) "
                    "VALUES ($1, $2, $3, $4)",
                    vparams));
  return Ok{};
}

Result<model::Workflow> SqlWorkflowRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kWorkflowColumns) +
                                                 " FROM workflows WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("workflow " + std::string(id) + " not found");
  return workflow_from_row(rows, 0);
}

Result<std::optional<model::Workflow>> SqlWorkflowRepository::find_by_name(std::string_view name) {
  const std::array<SqlValue, 1> params = {name};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kWorkflowColumns) +
                                                 " FROM workflows WHERE name = $1 AND status <> "
                                                 "'archived'",
                                             params));
  if (rows.empty()) return std::optional<model::Workflow>{};
  return std::optional<model::Workflow>(workflow_from_row(rows, 0));
}

Result<Page<model::Workflow>> SqlWorkflowRepository::list(const WorkflowFilter& f) {
  std::vector<SqlValue> params;
  std::string where = f.include_archived ? " WHERE 1 = 1" : " WHERE status <> 'archived'";
  std::string like;
  if (f.name_contains) {
    like = "%";
    for (char c : *f.name_contains) {
      if (c == '%' || c == '_' || c == '\\') like.push_back('\\');
      like.push_back(c);
    }
    like.push_back('%');
    params.emplace_back(std::string_view(like));
    where += std::string(conn_.dialect() == Dialect::kPostgres ? " AND name ILIKE $" : " AND name LIKE $") +
             std::to_string(params.size()) + " ESCAPE '\\'";
  }
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM workflows" + where, params));
  Page<model::Workflow> page;
  page.total = count.integer(0, 0);
  if (f.after) {
    params.emplace_back(std::string_view(*f.after));
    where += " AND id > $" + std::to_string(params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(f.limit) + 1);
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kWorkflowColumns) +
                                                 " FROM workflows" + where + " ORDER BY id LIMIT $" +
                                                 std::to_string(params.size()),
                                             params));
  const auto limit = static_cast<std::size_t>(f.limit);
  for (std::size_t r = 0; r < rows.size() && r < limit; ++r) page.items.push_back(workflow_from_row(rows, r));
  if (rows.size() > limit && !page.items.empty()) page.next_cursor = page.items.back().id;
  return page;
}

Status SqlWorkflowRepository::update(const model::Workflow& w, std::int64_t expected_version) {
  const std::string updated = clock::format_iso8601(w.updated_at);
  const std::array<SqlValue, 8> params = {w.name,   w.description, w.definition,
                                          w.status, w.version,     std::string_view(updated),
                                          w.id,     expected_version};
  auto r = conn_.exec("UPDATE workflows SET name = $1, description = $2, definition = $3, "
                      "status = $4, version = $5, updated_at = $6 WHERE id = $7 AND version = $8",
                      params);
  DP_TRY(name_taken(r, w.name));
  if (*r == 0) {
    DP_ASSIGN_OR_RETURN(model::Workflow current, get(w.id));
    Error e = Error::failed_precondition(
        "version_conflict", "workflow " + w.id + " is at version " +
                                std::to_string(current.version) + ", not " +
                                std::to_string(expected_version));
    e.details = json::object{{"currentVersion", current.version}};
    return e;
  }
  const std::array<SqlValue, 4> vparams = {w.id, w.version, w.definition, std::string_view(updated)};
  DP_TRY(conn_.exec("INSERT INTO workflow_versions (workflow_id, version, definition, created_at) "
                    "VALUES ($1, $2, $3, $4)",
                    vparams));
  return Ok{};
}

Result<model::WorkflowVersion> SqlWorkflowRepository::get_version(std::string_view id,
                                                                  std::int64_t version) {
  const std::array<SqlValue, 2> params = {id, version};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT workflow_id, version, definition, created_at "
                                             "FROM workflow_versions WHERE workflow_id = $1 AND "
                                             "version = $2",
                                             params));
  if (rows.empty()) {
    return Error::not_found("workflow " + std::string(id) + " has no version " +
                            std::to_string(version));
  }
  model::WorkflowVersion v;
  v.workflow_id = rows.text(0, 0);
  v.version = rows.integer(0, 1);
  v.definition = rows.text(0, 2);
  v.created_at = parse_db_time(rows.at(0, 3));
  return v;
}

// --- executions --------------------------------------------------------------------------

Status SqlExecutionRepository::insert(const model::Execution& e) {
  const std::string inputs = json::serialize(e.inputs);
  const std::string created = clock::format_iso8601(e.created_at);
  const std::string detail = json::serialize(e.cause_detail);
  std::string started_buf;
  const std::array<SqlValue, 14> params = {
      e.id,         e.workflow_id,  e.workflow_version,        e.status,
      std::string_view(inputs), e.correlation_id, e.cause, e.created_by,
      text_or_null(e.parent_execution_id), text_or_null(e.parent_step_id),
      std::string_view(created), opt_iso(e.started_at, started_buf),
      e.cancel_requested ? std::int64_t{1} : std::int64_t{0}, std::string_view(detail)};
  DP_TRY(conn_.exec("INSERT INTO workflow_executions (id, workflow_id, workflow_version, status, "
                    "inputs, correlation_id, cause, created_by, parent_execution_id, "
                    "parent_step_id, created_at, started_at, cancel_requested, cause_detail) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    params));
  return Ok{};
}

Result<model::Execution> SqlExecutionRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kExecutionColumns) +
                                                 " FROM workflow_executions WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("execution " + std::string(id) + " not found");
  return execution_from_row(rows, 0);
}

Result<Page<model::Execution>> SqlExecutionRepository::list(const ExecutionFilter& f) {
  std::vector<SqlValue> params;
  std::string where = " WHERE 1 = 1";
  if (f.workflow_id) {
    params.emplace_back(std::string_view(*f.workflow_id));
    where += " AND workflow_id = $" + std::to_string(params.size());
  }
  if (f.status) {
    params.emplace_back(std::string_view(*f.status));
    where += " AND status = $" + std::to_string(params.size());
  }
  if (f.parent_execution_id) {
    params.emplace_back(std::string_view(*f.parent_execution_id));
    where += " AND parent_execution_id = $" + std::to_string(params.size());
  }
  if (f.cause) {
    params.emplace_back(std::string_view(*f.cause));
    where += " AND cause = $" + std::to_string(params.size());
  }
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM workflow_executions" + where, params));
  Page<model::Execution> page;
  page.total = count.integer(0, 0);
  if (f.after) {
    params.emplace_back(std::string_view(*f.after));
    where += " AND id < $" + std::to_string(params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(f.limit) + 1);
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kExecutionColumns) +
                                                 " FROM workflow_executions" + where +
                                                 " ORDER BY id DESC LIMIT $" +
                                                 std::to_string(params.size()),
                                             params));
  const auto limit = static_cast<std::size_t>(f.limit);
  for (std::size_t r = 0; r < rows.size() && r < limit; ++r) page.items.push_back(execution_from_row(rows, r));
  if (rows.size() > limit && !page.items.empty()) page.next_cursor = page.items.back().id;
  return page;
}

Status SqlExecutionRepository::update(const model::Execution& e) {
  const std::string outputs = e.outputs.is_null() ? std::string() : json::serialize(e.outputs);
  std::string started_buf;
  std::string completed_buf;
  const std::array<SqlValue, 7> params = {
      e.status,
      e.outputs.is_null() ? SqlValue(nullptr) : SqlValue(std::string_view(outputs)),
      text_or_null(e.error),
      e.cancel_requested ? std::int64_t{1} : std::int64_t{0},
      opt_iso(e.started_at, started_buf),
      opt_iso(e.completed_at, completed_buf),
      e.id};
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("UPDATE workflow_executions SET status = $1, outputs = $2, "
                                 "error = $3, cancel_requested = $4, started_at = $5, "
                                 "completed_at = $6 WHERE id = $7",
                                 params));
  if (n == 0) return Error::not_found("execution " + e.id + " not found");
  return Ok{};
}

Result<bool> SqlExecutionRepository::lease(std::string_view id, std::string_view node_id,
                                           std::int64_t now_ms, std::int64_t lease_until) {
  const std::array<SqlValue, 4> params = {node_id, lease_until, id, now_ms};
  // The condition is re-checked under the row lock on PostgreSQL, so two nodes racing for a
  // lapsed lease cannot both win; SQLite has one writer.
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("UPDATE workflow_executions SET lease_owner = $1, lease_until = $2 "
                                 "WHERE id = $3 AND status IN ('pending', 'running') AND "
                                 "(lease_owner = $1 OR lease_until < $4)",
                                 params));
  return n > 0;
}

Result<std::vector<std::string>> SqlExecutionRepository::claimable(std::string_view node_id,
                                                                   std::int64_t now_ms, int limit) {
  const std::array<SqlValue, 3> params = {node_id, now_ms, static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT id FROM workflow_executions WHERE status IN ('pending', "
                                  "'running') AND (lease_owner = $1 OR lease_until < $2) ORDER BY "
                                  "id LIMIT $3",
                                  params));
  std::vector<std::string> out;
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(rows.text(r, 0));
  return out;
}

Result<std::int64_t> SqlExecutionRepository::steps_version(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT steps_version FROM workflow_executions WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("execution " + std::string(id) + " not found");
  return rows.integer(0, 0);
}

Status SqlExecutionRepository::insert_step(const model::ExecutionStep& s) {
  const std::string updated = clock::format_iso8601(s.updated_at);
  const std::string item = s.item.is_null() ? std::string() : json::serialize(s.item);
  const std::array<SqlValue, 8> params = {
      s.execution_id, s.step_id, text_or_null(s.parent_step), s.seq, s.status, s.attempt,
      s.item.is_null() ? SqlValue(nullptr) : SqlValue(std::string_view(item)),
      std::string_view(updated)};
  DP_TRY(conn_.exec("INSERT INTO execution_steps (execution_id, step_id, parent_step, seq, status, "
                    "attempt, item, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    params));
  return Ok{};
}

Result<std::vector<model::ExecutionStep>> SqlExecutionRepository::steps(std::string_view execution_id) {
  const std::array<SqlValue, 1> params = {execution_id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kStepColumns) +
                                                 " FROM execution_steps WHERE execution_id = $1 "
                                                 "ORDER BY seq",
                                             params));
  std::vector<model::ExecutionStep> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(step_from_row(rows, r));
  return out;
}

Result<model::ExecutionStep> SqlExecutionRepository::step(std::string_view execution_id,
                                                          std::string_view step_id) {
  const std::array<SqlValue, 2> params = {execution_id, step_id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kStepColumns) +
                                                 " FROM execution_steps WHERE execution_id = $1 "
                                                 "AND step_id = $2",
                                             params));
  if (rows.empty()) {
    return Error::not_found("execution " + std::string(execution_id) + " has no step '" +
                            std::string(step_id) + "'");
  }
  return step_from_row(rows, 0);
}

Status SqlExecutionRepository::update_step(const model::ExecutionStep& s,
                                           std::string_view expected_status,
                                           std::int64_t expected_attempt) {
  const std::string inputs = s.inputs.is_null() ? std::string() : json::serialize(s.inputs);
  const std::string outputs = s.outputs.is_null() ? std::string() : json::serialize(s.outputs);
  const std::string history = json::serialize(s.history);
  const std::string updated = clock::format_iso8601(s.updated_at);
  std::string lease_buf;
  std::string started_buf;
  std::string completed_buf;
  const std::array<SqlValue, 17> params = {
      s.status,
      s.attempt,
      s.inputs.is_null() ? SqlValue(nullptr) : SqlValue(std::string_view(inputs)),
      s.outputs.is_null() ? SqlValue(nullptr) : SqlValue(std::string_view(outputs)),
      text_or_null(s.error),
      text_or_null(s.task_id),
      text_or_null(s.lease_owner),
      s.lease_until > 0 ? opt_iso(s.lease_until, lease_buf) : SqlValue(nullptr),
      s.wake_at_us,
      std::string_view(history),
      text_or_null(s.decided_by),
      opt_iso(s.started_at, started_buf),
      opt_iso(s.completed_at, completed_buf),
      std::string_view(updated),
      s.execution_id,
      s.step_id,
      expected_status};
  std::vector<SqlValue> all(params.begin(), params.end());
  all.emplace_back(expected_attempt);
  DP_ASSIGN_OR_RETURN(
      std::int64_t n,
      conn_.exec("UPDATE execution_steps SET status = $1, attempt = $2, inputs = $3, outputs = $4, "
                 "error = $5, task_id = $6, lease_owner = $7, lease_expires_at = $8, wake_at_us = $9, "
                 "history = $10, decided_by = $11, started_at = $12, completed_at = $13, "
                 "updated_at = $14 WHERE execution_id = $15 AND step_id = $16 AND status = $17 AND "
                 "attempt = $18",
                 all));
  if (n == 0) {
    return Error::failed_precondition("stale_step", "step '" + s.step_id + "' of execution " +
                                                        s.execution_id +
                                                        " changed since it was read");
  }
  return Ok{};
}

}  // namespace dp::store::internal
