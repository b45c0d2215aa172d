// Workflow trigger rows and webhook deliveries, written once for both dialects (see
// sql_repos.hpp).
#include <array>

#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

constexpr std::string_view kTriggerColumns =
    "t.workflow_id, t.trigger_id, t.kind, t.spec, t.next_fire_at, t.last_fire_at, "
    "t.last_execution_id";

TriggerState trigger_from_row(const Rows& rows, std::size_t r) {
  TriggerState t;
  t.workflow_id = rows.text(r, 0);
  t.trigger_id = rows.text(r, 1);
  t.kind = rows.text(r, 2);
  t.spec = rows.text(r, 3);
  t.next_fire_at = rows.integer(r, 4);
  t.last_fire_at = rows.integer(r, 5);
  t.last_execution_id = rows.text(r, 6);
  return t;
}

}  // namespace

Result<std::vector<TriggerState>> SqlTriggerRepository::list(std::string_view workflow_id) {
  const std::array<SqlValue, 1> params = {workflow_id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kTriggerColumns) +
                                                 " FROM workflow_triggers t WHERE t.workflow_id = "
                                                 "$1 ORDER BY t.trigger_id",
                                             params));
  std::vector<TriggerState> out;
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(trigger_from_row(rows, r));
  return out;
}

Status SqlTriggerRepository::put(const TriggerState& t) {
  const std::array<SqlValue, 7> params = {
      t.workflow_id,  t.trigger_id,   t.kind, t.spec, t.next_fire_at, t.last_fire_at,
      t.last_execution_id.empty() ? SqlValue(nullptr) : SqlValue(std::string_view(t.last_execution_id))};
  DP_TRY(conn_.exec("INSERT INTO workflow_triggers (workflow_id, trigger_id, kind, spec, "
                    "next_fire_at, last_fire_at, last_execution_id) VALUES ($1, $2, $3, $4, $5, "
                    "$6, $7) ON CONFLICT (workflow_id, trigger_id) DO UPDATE SET kind = "
                    "excluded.kind, spec = excluded.spec, next_fire_at = excluded.next_fire_at, "
                    "last_fire_at = excluded.last_fire_at, last_execution_id = "
                    "excluded.last_execution_id",
                    params));
  return Ok{};
}

Status SqlTriggerRepository::remove(std::string_view workflow_id, std::string_view trigger_id) {
  const std::array<SqlValue, 2> params = {workflow_id, trigger_id};
  DP_TRY(conn_.exec("DELETE FROM workflow_triggers WHERE workflow_id = $1 AND trigger_id = $2",
                    params));
  return Ok{};
}

Result<std::vector<TriggerState>> SqlTriggerRepository::due(std::int64_t now_ms, int limit) {
  const std::array<SqlValue, 2> params = {now_ms, static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(
      Rows rows,
      conn_.query("SELECT " + std::string(kTriggerColumns) +
                      " FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id "
                      "WHERE t.kind = 'schedule' AND t.next_fire_at > 0 AND t.next_fire_at <= $1 "
                      "AND w.status = 'active' ORDER BY t.next_fire_at LIMIT $2",
                  params));
  std::vector<TriggerState> out;
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(trigger_from_row(rows, r));
  return out;
}

Result<std::int64_t> SqlTriggerRepository::next_due() {
  DP_ASSIGN_OR_RETURN(
      Rows rows,
      conn_.query("SELECT min(t.next_fire_at) FROM workflow_triggers t JOIN workflows w ON "
                  "w.id = t.workflow_id WHERE t.kind = 'schedule' AND t.next_fire_at > 0 AND "
                  "w.status = 'active'",
                  {}));
  if (rows.empty() || !rows.at(0, 0)) return std::int64_t{0};
  return rows.integer(0, 0);
}

Status SqlTriggerRepository::insert_delivery(const WebhookDelivery& d) {
  const std::array<SqlValue, 5> params = {d.workflow_id, d.hook_id, d.delivery_id, d.execution_id,
                                          d.received_at};
  DP_TRY(conn_.exec("INSERT INTO webhook_deliveries (workflow_id, hook_id, delivery_id, "
                    "execution_id, received_at) VALUES ($1, $2, $3, $4, $5)",
                    params));
  return Ok{};
}

Result<std::optional<WebhookDelivery>> SqlTriggerRepository::find_delivery(
    std::string_view workflow_id, std::string_view hook_id, std::string_view delivery_id) {
  const std::array<SqlValue, 3> params = {workflow_id, hook_id, delivery_id};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT execution_id, received_at FROM webhook_deliveries "
                                  "WHERE workflow_id = $1 AND hook_id = $2 AND delivery_id = $3",
                                  params));
  if (rows.empty()) return std::optional<WebhookDelivery>();
  WebhookDelivery d;
  d.workflow_id = std::string(workflow_id);
  d.hook_id = std::string(hook_id);
  d.delivery_id = std::string(delivery_id);
  d.execution_id = rows.text(0, 0);
  d.received_at = rows.integer(0, 1);
  return std::optional<WebhookDelivery>(std::move(d));
}

Result<std::int64_t> SqlTriggerRepository::prune_deliveries(std::int64_t before_ms) {
  const std::array<SqlValue, 1> params = {before_ms};
  return conn_.exec("DELETE FROM webhook_deliveries WHERE received_at < $1", params);
}

}  // namespace dp::store::internal
