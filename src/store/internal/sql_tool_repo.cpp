// The MCP adapter and tool execution repositories, written once for both dialects (see
// sql_repos.hpp).
#include <array>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

namespace json = boost::json;

constexpr std::string_view kAdapterColumns =
    "id, name, config, status, status_reason, last_health_check, latency_us, version, "
    "created_at, updated_at, pinned_tools, flagged_tools, approved_at, approved_by";

constexpr std::string_view kExecutionColumns =
    "id, adapter_id, tool_name, parameters, result, error, status, duration_ms, caller, "
    "correlation_id, executed_at";

json::value parse_value(const std::optional<std::string>& text) {
  if (!text || text->empty()) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(*text, ec);
  return ec ? json::value(nullptr) : v;
}

json::object parse_obj(const std::optional<std::string>& text) {
  auto v = parse_value(text);
  return v.is_object() ? std::move(v.as_object()) : json::object{};
}

std::optional<std::string> iso_or_null(const std::optional<std::int64_t>& ms) {
  if (!ms) return std::nullopt;
  return clock::format_iso8601(*ms);
}

SqlValue nullable(const std::optional<std::string>& s) {
  return s ? SqlValue(std::string_view(*s)) : SqlValue(nullptr);
}

model::Adapter adapter_from_row(const Rows& rows, std::size_t r) {
  model::Adapter a;
  a.id = rows.text(r, 0);
  a.name = rows.text(r, 1);
  a.config = parse_obj(rows.at(r, 2));
  a.status = rows.text(r, 3);
  a.status_reason = rows.text(r, 4);
  if (rows.at(r, 5)) a.last_health_check = parse_db_time(rows.at(r, 5));
  if (rows.at(r, 6)) a.latency_us = rows.integer(r, 6);
  a.version = rows.integer(r, 7);
  a.created_at = parse_db_time(rows.at(r, 8));
  a.updated_at = parse_db_time(rows.at(r, 9));
  a.pinned_tools = parse_obj(rows.at(r, 10));
  a.flagged_tools = parse_obj(rows.at(r, 11));
  if (rows.at(r, 12)) a.approved_at = parse_db_time(rows.at(r, 12));
  a.approved_by = rows.text(r, 13);
  return a;
}

model::ToolExecution execution_from_row(const Rows& rows, std::size_t r) {
  model::ToolExecution e;
  e.id = rows.text(r, 0);
  if (rows.at(r, 1)) e.adapter_id = rows.text(r, 1);
  e.tool_name = rows.text(r, 2);
  e.parameters = parse_value(rows.at(r, 3));
  e.result = parse_value(rows.at(r, 4));
  e.error = rows.text(r, 5);
  e.status = rows.text(r, 6);
  e.duration_ms = rows.at(r, 7) ? rows.integer(r, 7) : 0;
  e.caller = rows.text(r, 8);
  e.correlation_id = rows.text(r, 9);
  e.executed_at = parse_db_time(rows.at(r, 10));
  return e;
}

Error name_taken(const std::string& name) {
  return Error::conflict("an MCP adapter named '" + name + "' already exists");
}

}  // namespace

Status SqlAdapterRepository::insert(const model::Adapter& a) {
  const std::string config = json::serialize(a.config);
  const std::string pinned = json::serialize(a.pinned_tools);
  const std::string flagged = json::serialize(a.flagged_tools);
  const std::string created = clock::format_iso8601(a.created_at);
  const std::string updated = clock::format_iso8601(a.updated_at);
  const auto approved = iso_or_null(a.approved_at);
  const std::array<SqlValue, 11> params = {a.id,    a.name,    std::string_view(config), a.status,
                                           a.status_reason,    a.version, std::string_view(created),
                                           std::string_view(updated), std::string_view(pinned),
                                           std::string_view(flagged), nullable(approved)};
  std::vector<SqlValue> all(params.begin(), params.end());
  all.emplace_back(std::string_view(a.approved_by));
  auto r = conn_.exec(
      "INSERT INTO mcp_adapters (id, name, config, status, status_reason, version, created_at, "
      "updated_at, pinned_tools, flagged_tools, approved_at, approved_by) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
      all);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) {
      // The id is a fresh UUIDv7, so a unique violation is the name.
      return name_taken(a.name);
    }
    return std::move(r).error();
  }
  return Ok{};
}

Result<model::Adapter> SqlAdapterRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kAdapterColumns) +
                                                 " FROM mcp_adapters WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("MCP adapter " + std::string(id) + " not found");
  return adapter_from_row(rows, 0);
}

Result<std::vector<model::Adapter>> SqlAdapterRepository::list() {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kAdapterColumns) +
                                                 " FROM mcp_adapters ORDER BY name",
                                             {}));
  std::vector<model::Adapter> out;
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(adapter_from_row(rows, r));
  return out;
}

Status SqlAdapterRepository::update(const model::Adapter& a, std::int64_t expected_version) {
  const std::string config = json::serialize(a.config);
  const std::string pinned = json::serialize(a.pinned_tools);
  const std::string flagged = json::serialize(a.flagged_tools);
  const std::string updated = clock::format_iso8601(a.updated_at);
  const auto approved = iso_or_null(a.approved_at);
  const std::array<SqlValue, 10> params = {
      a.name, std::string_view(config), a.version, std::string_view(updated),
      std::string_view(pinned), std::string_view(flagged), nullable(approved),
      std::string_view(a.approved_by), a.id, expected_version};
  auto r = conn_.exec(
      "UPDATE mcp_adapters SET name = $1, config = $2, version = $3, updated_at = $4, "
      "pinned_tools = $5, flagged_tools = $6, approved_at = $7, approved_by = $8 "
      "WHERE id = $9 AND version = $10",
      params);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) return name_taken(a.name);
    return std::move(r).error();
  }
  if (*r == 0) {
    DP_ASSIGN_OR_RETURN(model::Adapter current, get(a.id));
    Error e = Error::failed_precondition(
        "version_conflict", "MCP adapter " + a.id + " is at version " +
                                std::to_string(current.version) + ", not " +
                                std::to_string(expected_version));
    e.details = json::object{{"currentVersion", current.version}};
    return e;
  }
  return Ok{};
}

Status SqlAdapterRepository::remove(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(std::int64_t n, conn_.exec("DELETE FROM mcp_adapters WHERE id = $1", params));
  if (n == 0) return Error::not_found("MCP adapter " + std::string(id) + " not found");
  return Ok{};
}

Status SqlAdapterRepository::record_health(std::string_view id, std::string_view status,
                                           std::string_view reason, std::int64_t at_ms,
                                           std::optional<std::int64_t> latency_us) {
  const std::string at = clock::format_iso8601(at_ms);
  const std::array<SqlValue, 5> params = {
      status, reason, std::string_view(at),
      latency_us ? SqlValue(*latency_us) : SqlValue(nullptr), id};
  DP_ASSIGN_OR_RETURN(
      std::int64_t n,
      conn_.exec("UPDATE mcp_adapters SET status = $1, status_reason = $2, last_health_check = $3, "
                 "latency_us = COALESCE($4, latency_us) WHERE id = $5",
                 params));
  if (n == 0) return Error::not_found("MCP adapter " + std::string(id) + " not found");
  return Ok{};
}

Status SqlToolExecutionRepository::insert(const model::ToolExecution& e) {
  const std::string parameters = json::serialize(e.parameters.is_null() ? json::value(json::object{}) : e.parameters);
  const std::optional<std::string> result =
      e.result.is_null() ? std::nullopt : std::optional<std::string>(json::serialize(e.result));
  const std::optional<std::string> error =
      e.error.empty() ? std::nullopt : std::optional<std::string>(e.error);
  const std::string at = clock::format_iso8601(e.executed_at);
  const std::array<SqlValue, 11> params = {
      e.id, nullable(e.adapter_id), e.tool_name, std::string_view(parameters), nullable(result),
      nullable(error), e.status, e.duration_ms, e.caller, e.correlation_id, std::string_view(at)};
  DP_TRY(conn_.exec("INSERT INTO tool_executions (" + std::string(kExecutionColumns) +
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    params));
  return Ok{};
}

Result<model::ToolExecution> SqlToolExecutionRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kExecutionColumns) +
                                                 " FROM tool_executions WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("tool execution " + std::string(id) + " not found");
  return execution_from_row(rows, 0);
}

Result<Page<model::ToolExecution>> SqlToolExecutionRepository::list(const ToolExecutionFilter& f) {
  std::vector<SqlValue> params;
  std::string where = "WHERE 1 = 1";
  if (f.adapter_id) {
    params.emplace_back(std::string_view(*f.adapter_id));
    where += " AND adapter_id = $" + std::to_string(params.size());
  }
  if (f.tool_name) {
    params.emplace_back(std::string_view(*f.tool_name));
    where += " AND tool_name = $" + std::to_string(params.size());
  }
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM tool_executions " + where, params));
  Page<model::ToolExecution> page;
  page.total = count.integer(0, 0);
  if (f.after) {
    params.emplace_back(std::string_view(*f.after));
    where += " AND id < $" + std::to_string(params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(f.limit) + 1);
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kExecutionColumns) +
                                                 " FROM tool_executions " + where +
                                                 " ORDER BY id DESC LIMIT $" +
                                                 std::to_string(params.size()),
                                             params));
  for (std::size_t r = 0; r < rows.size() && r < static_cast<std::size_t>(f.limit); ++r) {
    page.items.push_back(execution_from_row(rows, r));
  }
  if (rows.size() > static_cast<std::size_t>(f.limit) && !page.items.empty()) {
    page.next_cursor = page.items.back().id;
  }
  return page;
}

}  // namespace dp::store::internal
