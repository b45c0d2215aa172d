// Agent metrics and named secrets, written once for both dialects (see sql_repos.hpp).
#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

boost::json::object parse_object(const std::optional<std::string>& text) {
  if (!text || text->empty()) return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(*text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

// Columns: id, agent_id, task_id, metric_type, value, labels, timestamp.
model::Metric metric_from_row(const Rows& rows, std::size_t r) {
  model::Metric m;
  m.id = rows.integer(r, 0);
  m.agent_id = rows.text(r, 1);
  m.task_id = rows.text(r, 2);
  m.metric_type = rows.text(r, 3);
  m.value = std::strtod(rows.text(r, 4).c_str(), nullptr);
  m.labels = parse_object(rows.at(r, 5));
  m.timestamp = parse_db_time(rows.at(r, 6));
  return m;
}

SecretRecord secret_from_row(const Rows& rows, std::size_t r) {
  SecretRecord s;
  s.name = rows.text(r, 0);
  s.value = rows.text(r, 1);
  s.updated_by = rows.text(r, 2);
  s.created_at = parse_db_time(rows.at(r, 3));
  s.updated_at = parse_db_time(rows.at(r, 4));
  return s;
}

}  // namespace

Status SqlMetricRepository::append(const model::Metric& m) {
  const std::string labels = boost::json::serialize(m.labels);
  const std::string at = clock::format_iso8601(m.timestamp);
  const std::array<SqlValue, 6> params = {
      std::string_view(m.agent_id),
      m.task_id.empty() ? SqlValue(nullptr) : SqlValue(std::string_view(m.task_id)),
      std::string_view(m.metric_type), m.value, std::string_view(labels), std::string_view(at)};
  DP_TRY(conn_.exec("INSERT INTO agent_metrics (agent_id, task_id, metric_type, value, labels, "
                    "timestamp) VALUES ($1, $2, $3, $4, $5, $6)",
                    params));
  return Ok{};
}

Result<std::vector<model::Metric>> SqlMetricRepository::list(const MetricFilter& f) {
  std::string sql =
      "SELECT id, agent_id, task_id, metric_type, value, labels, timestamp FROM agent_metrics "
      "WHERE agent_id = $1";
  std::vector<SqlValue> params{std::string_view(f.agent_id)};
  if (f.task_id) {
    params.emplace_back(std::string_view(*f.task_id));
    sql += " AND task_id = $" + std::to_string(params.size());
  }
  if (f.metric_type) {
    params.emplace_back(std::string_view(*f.metric_type));
    sql += " AND metric_type = $" + std::to_string(params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(std::clamp(f.limit, 1, 10'000)));
  sql += " ORDER BY id LIMIT $" + std::to_string(params.size());
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(sql, params));
  std::vector<model::Metric> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(metric_from_row(rows, r));
  return out;
}

Result<std::vector<model::Metric>> SqlMetricRepository::latest(
    const std::vector<std::string>& agent_ids, const std::vector<std::string>& types) {
  std::vector<model::Metric> out;
  if (agent_ids.empty() || types.empty()) return out;
  // One "newest row" sub-select per (agent, type), each a backwards walk of the
  // (agent_id, metric_type, timestamp) index, glued into one statement.
  std::vector<SqlValue> params;
  std::string sql;
  std::vector<std::string> type_markers;
  for (const auto& t : types) {
    params.emplace_back(std::string_view(t));
    type_markers.push_back(bind_marker(params.size()));
  }
  for (const auto& id : agent_ids) {
    params.emplace_back(std::string_view(id));
    const std::string agent_marker = bind_marker(params.size());
    for (const auto& tm : type_markers) {
      if (!sql.empty()) sql += " UNION ALL ";
      sql += "SELECT * FROM (SELECT id, agent_id, task_id, metric_type, value, labels, timestamp "
             "FROM agent_metrics WHERE agent_id = " + agent_marker + " AND metric_type = " + tm +
             " ORDER BY timestamp DESC LIMIT 1) AS m" + std::to_string(params.size()) +
             "_" + tm.substr(1);
    }
  }
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(sql, params));
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(metric_from_row(rows, r));
  return out;
}

Result<std::int64_t> SqlMetricRepository::prune(std::string_view agent_id,
                                                const std::vector<std::string>& types,
                                                std::int64_t before_ms) {
  if (types.empty()) return std::int64_t{0};
  const std::string before = clock::format_iso8601(before_ms);
  std::vector<SqlValue> params{agent_id, std::string_view(before)};
  std::string in;
  for (const auto& t : types) {
    params.emplace_back(std::string_view(t));
    in += (in.empty() ? "" : ", ") + bind_marker(params.size());
  }
  return conn_.exec("DELETE FROM agent_metrics WHERE agent_id = $1 AND metric_type IN (" + in +
                        ") AND timestamp < $2",
                    params);
}

Status SqlSecretRepository::put(const SecretRecord& s) {
  const std::string at = clock::format_iso8601(s.updated_at);
  const std::array<SqlValue, 4> params = {std::string_view(s.name), std::string_view(s.value),
                                          std::string_view(s.updated_by), std::string_view(at)};
  DP_TRY(conn_.exec("INSERT INTO secrets (name, value, updated_by, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET value = "
                    "excluded.value, updated_by = excluded.updated_by, updated_at = "
                    "excluded.updated_at",
                    params));
  return Ok{};
}

Result<SecretRecord> SqlSecretRepository::get(std::string_view name) {
  const std::array<SqlValue, 1> params = {name};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT name, value, updated_by, created_at, "
                                             "updated_at FROM secrets WHERE name = $1",
                                             params));
  if (rows.empty()) return Error::not_found("secret " + std::string(name) + " not found");
  return secret_from_row(rows, 0);
}

Result<std::vector<SecretRecord>> SqlSecretRepository::list() {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT name, value, updated_by, created_at, "
                                             "updated_at FROM secrets ORDER BY name",
                                             {}));
  std::vector<SecretRecord> out;
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(secret_from_row(rows, r));
  return out;
}

Status SqlSecretRepository::remove(std::string_view name) {
  const std::array<SqlValue, 1> params = {name};
  DP_ASSIGN_OR_RETURN(std::int64_t n, conn_.exec("DELETE FROM secrets WHERE name = $1", params));
  if (n == 0) return Error::not_found("secret " + std::string(name) + " not found");
  return Ok{};
}

}  // namespace dp::store::internal
