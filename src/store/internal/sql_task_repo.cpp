// The agent task repository, written once for both dialects (see sql_repos.hpp).
#include <algorithm>
#include <array>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

constexpr std::string_view kColumns =
    "id, agent_id, idempotency_key, input, status, result, error, attempts, cancel_requested, "
    "node_id, lease_until, created_by, correlation_id, created_at, started_at, finished_at, options";

boost::json::value parse_value(const std::optional<std::string>& text) {
  if (!text || text->empty()) return nullptr;
  boost::system::error_code ec;
  auto v = boost::json::parse(*text, ec);
  return ec ? boost::json::value(nullptr) : v;
}

model::Task task_from_row(const Rows& rows, std::size_t r) {
  model::Task t;
  t.id = rows.text(r, 0);
  t.agent_id = rows.text(r, 1);
  t.idempotency_key = rows.text(r, 2);
  t.input = parse_value(rows.at(r, 3));
  t.status = rows.text(r, 4);
  t.result = parse_value(rows.at(r, 5));
  t.error = rows.text(r, 6);
  t.attempts = rows.integer(r, 7);
  t.cancel_requested = rows.integer(r, 8) != 0;
  t.node_id = rows.text(r, 9);
  t.lease_until = rows.integer(r, 10);
  t.created_by = rows.text(r, 11);
  t.correlation_id = rows.text(r, 12);
  t.created_at = parse_db_time(rows.at(r, 13));
  if (rows.at(r, 14)) t.started_at = parse_db_time(rows.at(r, 14));
  if (rows.at(r, 15)) t.finished_at = parse_db_time(rows.at(r, 15));
  if (auto o = parse_value(rows.at(r, 16)); o.is_object()) t.options = std::move(o.as_object());
  return t;
}

std::string select_sql(std::string_view where) {
  return "SELECT " + std::string(kColumns) + " FROM agent_tasks " + std::string(where);
}

}  // namespace

Status SqlTaskRepository::insert(const model::Task& t) {
  const std::string input = boost::json::serialize(t.input);
  const std::string options = boost::json::serialize(t.options);
  const std::string at = clock::format_iso8601(t.created_at);
  const std::array<SqlValue, 9> params = {t.id,         t.agent_id,         t.idempotency_key,
                                          std::string_view(input), t.status, t.created_by,
                                          t.correlation_id, std::string_view(at),
                                          std::string_view(options)};
  DP_TRY(conn_.exec("INSERT INTO agent_tasks (id, agent_id, idempotency_key, input, status, "
                    "created_by, correlation_id, created_at, options) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    params));
  return Ok{};
}

Result<model::Task> SqlTaskRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(select_sql("WHERE id = $1"), params));
  if (rows.empty()) return Error::not_found("task " + std::string(id) + " not found");
  return task_from_row(rows, 0);
}

Result<std::optional<model::Task>> SqlTaskRepository::find_by_key(std::string_view agent_id,
                                                                  std::string_view key) {
  const std::array<SqlValue, 2> params = {agent_id, key};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query(select_sql("WHERE agent_id = $1 AND idempotency_key = $2"), params));
  if (rows.empty()) return std::optional<model::Task>{};
  return std::optional<model::Task>(task_from_row(rows, 0));
}

Result<Page<model::Task>> SqlTaskRepository::list(const TaskFilter& f) {
  std::vector<SqlValue> params{std::string_view(f.agent_id)};
  std::string where = "WHERE agent_id = $1";
  if (f.status) {
    params.emplace_back(std::string_view(*f.status));
    where += " AND status = $" + std::to_string(params.size());
  }
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM agent_tasks " + where, params));
  Page<model::Task> page;
  page.total = count.integer(0, 0);
  if (f.after) {
    params.emplace_back(std::string_view(*f.after));
    where += " AND id < $" + std::to_string(params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(f.limit) + 1);
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(select_sql(where + " ORDER BY id DESC LIMIT $" +
                                                        std::to_string(params.size())),
                                             params));
  for (std::size_t r = 0; r < rows.size() && r < static_cast<std::size_t>(f.limit); ++r) {
    page.items.push_back(task_from_row(rows, r));
  }
  if (rows.size() > static_cast<std::size_t>(f.limit) && !page.items.empty()) {
    page.next_cursor = page.items.back().id;
  }
  return page;
}

Result<std::vector<model::Task>> SqlTaskRepository::list_running(
    const std::vector<std::string>& agent_ids) {
  std::vector<model::Task> out;
  if (agent_ids.empty()) return out;
  std::vector<SqlValue> params;
  std::string in;
  for (const auto& id : agent_ids) {
    params.emplace_back(std::string_view(id));
    in += (in.empty() ? "" : ", ") + bind_marker(params.size());
  }
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(select_sql("WHERE status = 'running' AND agent_id IN (" +
                                                        in + ") ORDER BY id"),
                                             params));
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(task_from_row(rows, r));
  return out;
}

Result<std::optional<model::Task>> SqlTaskRepository::claim(std::string_view agent_id,
                                                            std::string_view node_id,
                                                            std::int64_t now_ms,
                                                            std::int64_t lease_until) {
  const std::string at = clock::format_iso8601(now_ms);
  const std::array<SqlValue, 4> params = {node_id, std::string_view(at), lease_until, agent_id};
  // The status re-check in the outer WHERE makes a second node's racing claim a no-op on
  // PostgreSQL (it re-reads the row after the first commits); SQLite has one writer anyway.
  DP_ASSIGN_OR_RETURN(
      Rows rows,
      conn_.query("UPDATE agent_tasks SET status = 'running', node_id = $1, started_at = $2, "
                  "lease_until = $3, attempts = attempts + 1 WHERE id = (SELECT id FROM "
                  "agent_tasks WHERE agent_id = $4 AND status = 'queued' ORDER BY id LIMIT 1) "
                  "AND status = 'queued' RETURNING " + std::string(kColumns),
                  params));
  if (rows.empty()) return std::optional<model::Task>{};
  return std::optional<model::Task>(task_from_row(rows, 0));
}

Result<std::int64_t> SqlTaskRepository::count_running(std::string_view agent_id) {
  const std::array<SqlValue, 1> params = {agent_id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT count(*) FROM agent_tasks WHERE agent_id = "
                                             "$1 AND status = 'running'",
                                             params));
  return rows.integer(0, 0);
}

Status SqlTaskRepository::renew(std::string_view node_id, std::int64_t lease_until) {
  const std::array<SqlValue, 2> params = {lease_until, node_id};
  DP_TRY(conn_.exec("UPDATE agent_tasks SET lease_until = $1 WHERE node_id = $2 AND status = "
                    "'running'",
                    params));
  return Ok{};
}

Status SqlTaskRepository::finish(std::string_view id, std::string_view node_id,
                                 std::string_view status, std::string_view result_json,
                                 std::string_view error, std::int64_t now_ms) {
  const std::string at = clock::format_iso8601(now_ms);
  const std::array<SqlValue, 6> params = {status, result_json, error, std::string_view(at), id,
                                          node_id};
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("UPDATE agent_tasks SET status = $1, result = $2, error = $3, "
                                 "finished_at = $4 WHERE id = $5 AND node_id = $6 AND status = "
                                 "'running'",
                                 params));
  if (n == 0) {
    return Error::failed_precondition("task_not_running",
                                      "task " + std::string(id) + " is no longer running on this node");
  }
  return Ok{};
}

Result<model::Task> SqlTaskRepository::request_cancel(std::string_view id, std::int64_t now_ms) {
  DP_ASSIGN_OR_RETURN(model::Task t, get(id));
  if (t.finished()) {
    Error e = Error::failed_precondition("invalid_transition",
                                         "task " + t.id + " has already " +
                                             (t.status == "cancelled" ? "been cancelled" : t.status));
    e.details = boost::json::object{{"currentStatus", t.status}};
    return e;
  }
  const std::string at = clock::format_iso8601(now_ms);
  if (t.status == "queued") {
    const std::array<SqlValue, 2> params = {std::string_view(at), id};
    DP_TRY(conn_.exec("UPDATE agent_tasks SET status = 'cancelled', cancel_requested = 1, "
                      "finished_at = $1, error = 'cancelled before it started' WHERE id = $2 AND "
                      "status = 'queued'",
                      params));
  } else {
    const std::array<SqlValue, 1> params = {id};
    DP_TRY(conn_.exec("UPDATE agent_tasks SET cancel_requested = 1 WHERE id = $1", params));
  }
  return get(id);
}

Result<bool> SqlTaskRepository::cancel_requested(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT cancel_requested FROM agent_tasks WHERE id = $1", params));
  return !rows.empty() && rows.integer(0, 0) != 0;
}

Result<std::int64_t> SqlTaskRepository::requeue_expired(std::int64_t now_ms) {
  const std::array<SqlValue, 1> params = {now_ms};
  return conn_.exec("UPDATE agent_tasks SET status = 'queued', node_id = '', lease_until = 0 "
                    "WHERE status = 'running' AND lease_until < $1",
                    params);
}

Result<std::vector<model::Task>> SqlTaskRepository::take_over(std::string_view agent_id,
                                                              std::string_view node_id,
                                                              std::int64_t lease_until) {
  const std::array<SqlValue, 3> params = {node_id, lease_until, agent_id};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("UPDATE agent_tasks SET node_id = $1, lease_until = $2 WHERE "
                                  "agent_id = $3 AND status = 'running' RETURNING " +
                                      std::string(kColumns),
                                  params));
  std::vector<model::Task> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(task_from_row(rows, r));
  std::sort(out.begin(), out.end(),
            [](const model::Task& a, const model::Task& b) { return a.id < b.id; });
  return out;
}

}  // namespace dp::store::internal
