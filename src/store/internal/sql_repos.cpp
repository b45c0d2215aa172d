#include "store/internal/sql_repos.hpp"

#include <array>
#include <charconv>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"

namespace dp::store::internal {
namespace {

constexpr std::string_view kAgentColumns =
    "id, name, type, status, status_reason, description, labels, config, version, created_at, "
    "updated_at";

boost::json::object parse_object(const std::optional<std::string>& text) {
  if (!text || text->empty()) return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(*text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

model::Agent agent_from_row(const Rows& rows, std::size_t r) {
  model::Agent a;
  a.id = rows.text(r, 0);
  a.name = rows.text(r, 1);
  a.type = rows.text(r, 2);
  a.status = model::parse_agent_status(rows.text(r, 3)).value_or(model::AgentStatus::kError);
  a.status_reason = rows.text(r, 4);
  a.description = rows.text(r, 5);
  a.labels = parse_object(rows.at(r, 6));
  a.config = parse_object(rows.at(r, 7));
  a.version = rows.integer(r, 8);
  a.created_at = parse_db_time(rows.at(r, 9));
  a.updated_at = parse_db_time(rows.at(r, 10));
  return a;
}

// Escapes LIKE wildcards so a user's '%' matches a literal percent sign.
std::string like_pattern(std::string_view needle) {
  std::string out = "%";
  for (char c : needle) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('%');
  return out;
}

}  // namespace

std::int64_t Rows::integer(std::size_t row, std::size_t col) const {
  const auto& v = data[row][col];
  if (!v) return 0;
  std::int64_t out = 0;
  std::from_chars(v->data(), v->data() + v->size(), out);
  return out;
}

std::int64_t parse_db_time(const std::optional<std::string>& text) {
  if (!text) return 0;
  return clock::parse_timestamp(*text).value_or(0);
}

Status SqlAgentRepository::insert(const model::Agent& a) {
  const std::string labels = boost::json::serialize(a.labels);
  const std::string config = boost::json::serialize(a.config);
  const std::string created = clock::format_iso8601(a.created_at);
  const std::string updated = clock::format_iso8601(a.updated_at);
  const std::array<SqlValue, 11> params = {
      a.id, a.name, a.type, model::to_string(a.status), a.status_reason, a.description,
      labels, config, a.version, created, updated};
  auto r = conn_.exec(
      "INSERT INTO agents (id, name, type, status, status_reason, description, labels, config, "
      "version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      params);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) {
      return Error::conflict("an agent named '" + a.name + "' already exists");
    }
    return std::move(r).error();
  }
  return Ok{};
}

Result<model::Agent> SqlAgentRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query(std::string("SELECT ") + std::string(kAgentColumns) +
                                      " FROM agents WHERE id = $1",
                                  params));
  if (rows.empty()) return Error::not_found("agent " + std::string(id) + " not found");
  return agent_from_row(rows, 0);
}


// The WHERE clause of the agent filters. `params` may hold views of `f` and of `like`, which
// must outlive the query. `by_status`: honour f.status / include_decommissioned.
std::string SqlAgentRepository::where_clause(const AgentFilter& f, bool by_status,
                                             std::vector<SqlValue>& params, std::string& like) {
  std::string where;
  auto add = [&](std::string_view clause) {
    where += where.empty() ? " WHERE " : " AND ";
    where += clause;
  };
  if (by_status && f.status) {
    params.emplace_back(std::string_view(*f.status));
    add("status = " + bind_marker(params.size()));
  } else if (by_status && !f.include_decommissioned) {
    add("status <> 'decommissioned'");
  }
  if (f.type) {
    params.emplace_back(std::string_view(*f.type));
    add("type = " + bind_marker(params.size()));
  }
  if (f.name_contains) {
    like = like_pattern(*f.name_contains);
    params.emplace_back(std::string_view(like));
    add(std::string(conn_.dialect() == Dialect::kPostgres ? "name ILIKE " : "name LIKE ") +
        bind_marker(params.size()) + " ESCAPE '\\'");
  }
  return where;
}

Result<std::map<std::string, std::int64_t>> SqlAgentRepository::count_by_status(
    const AgentFilter& f) {
  std::vector<SqlValue> params;
  std::string like;
  const std::string where = where_clause(f, false, params, like);
  DP_ASSIGN_OR_RETURN(
      Rows rows, conn_.query("SELECT status, count(*) FROM agents" + where + " GROUP BY status",
                             params));
  std::map<std::string, std::int64_t> out;
  for (std::size_t r = 0; r < rows.size(); ++r) out[rows.text(r, 0)] = rows.integer(r, 1);
  return out;
}

Result<Page<model::Agent>> SqlAgentRepository::list(const AgentFilter& f) {
  std::vector<SqlValue> params;
  std::string like;
  const std::string where = where_clause(f, true, params, like);
  // Total is counted under the same filters, without the cursor.
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM agents" + where, params));
  Page<model::Agent> page;
  page.total = count.integer(0, 0);

  std::string sql = std::string("SELECT ") + std::string(kAgentColumns) + " FROM agents" + where;
  if (f.after) {
    params.emplace_back(std::string_view(*f.after));
    sql += (where.empty() ? " WHERE " : " AND ");
    sql += "id > " + bind_marker(params.size());
  }
  // UUIDv7 ids sort by creation time, so id order is creation order with a total tie-break.
  sql += " ORDER BY id";
  params.emplace_back(static_cast<std::int64_t>(f.limit) + 1);
  sql += " LIMIT " + bind_marker(params.size());
  if (!f.after && f.offset > 0) {
    params.emplace_back(f.offset);
    sql += " OFFSET " + bind_marker(params.size());
  }
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(sql, params));
  const std::size_t limit = static_cast<std::size_t>(f.limit);
  for (std::size_t r = 0; r < rows.size() && r < limit; ++r) {
    page.items.push_back(agent_from_row(rows, r));
  }
  if (rows.size() > limit && !page.items.empty()) page.next_cursor = page.items.back().id;
  return page;
}

Status SqlAgentRepository::update(const model::Agent& a, std::int64_t expected_version) {
  const std::string labels = boost::json::serialize(a.labels);
  const std::string config = boost::json::serialize(a.config);
  const std::string updated = clock::format_iso8601(a.updated_at);
  const std::array<SqlValue, 10> params = {
      a.name,  a.type,    model::to_string(a.status), a.status_reason,    a.description,
      labels, config, a.version,  updated, a.id};
  std::vector<SqlValue> all(params.begin(), params.end());
  all.emplace_back(expected_version);
  auto r = conn_.exec(
      "UPDATE agents SET name = $1, type = $2, status = $3, status_reason = $4, description = $5, "
      "labels = $6, config = $7, version = $8, updated_at = $9 WHERE id = $10 AND version = $11",
      all);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) {
      return Error::conflict("an agent named '" + a.name + "' already exists");
    }
    return std::move(r).error();
  }
  if (*r == 0) {
    // Tell a missing agent from a stale version.
    DP_ASSIGN_OR_RETURN(model::Agent current, get(a.id));
    Error e = Error::failed_precondition(
        "version_conflict", "agent " + a.id + " is at version " +
                                std::to_string(current.version) + ", not " +
                                std::to_string(expected_version));
    e.details = boost::json::object{{"currentVersion", current.version}};
    return e;
  }
  return Ok{};
}

Status SqlAgentRepository::purge(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_TRY(conn_.exec("DELETE FROM agent_states WHERE agent_id = $1", params));
  DP_ASSIGN_OR_RETURN(std::int64_t n, conn_.exec("DELETE FROM agents WHERE id = $1", params));
  if (n == 0) return Error::not_found("agent " + std::string(id) + " not found");
  return Ok{};
}

Status SqlAgentRepository::append_state(const model::AgentStateEntry& e) {
  const std::string at = clock::format_iso8601(e.created_at);
  const std::array<SqlValue, 6> params = {
      e.agent_id, e.from_status.empty() ? SqlValue(nullptr) : SqlValue(e.from_status),
      e.status,   e.reason,
      e.version,  at};
  DP_TRY(conn_.exec(
      "INSERT INTO agent_states (agent_id, from_status, status, reason, version, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      params));
  return Ok{};
}

Result<std::vector<model::AgentStateEntry>> SqlAgentRepository::history(
    std::string_view agent_id, int limit) {
  const std::array<SqlValue, 2> params = {agent_id, static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(
      Rows rows, conn_.query("SELECT id, agent_id, from_status, status, reason, version, "
                             "created_at FROM agent_states WHERE agent_id = $1 "
                             "ORDER BY id DESC LIMIT $2",
                             params));
  std::vector<model::AgentStateEntry> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    model::AgentStateEntry e;
    e.id = rows.integer(r, 0);
    e.agent_id = rows.text(r, 1);
    e.from_status = rows.text(r, 2);
    e.status = rows.text(r, 3);
    e.reason = rows.text(r, 4);
    e.version = rows.integer(r, 5);
    e.created_at = parse_db_time(rows.at(r, 6));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::int64_t> SqlOutboxRepository::append(const OutboxEvent& e) {
  const std::string at = clock::format_iso8601(e.created_at);
  const std::array<SqlValue, 4> params = {e.topic, e.payload, e.correlation_id, at};
  // SQLite has one writer, so commit order is insert order: the event can take its place in
  // the global order right away, and the relay's round before publishing writes nothing.
  // PostgreSQL commits concurrently; there the relay gives the seq (claim_for_publishing).
  const char* sql = conn_.dialect() == Dialect::kSqlite
                        ? "INSERT INTO outbox (topic, payload, correlation_id, created_at, seq) "
                          "VALUES ($1, $2, $3, $4, "
                          "(SELECT coalesce(max(seq), 0) + 1 FROM outbox WHERE seq IS NOT NULL)) "
                          "RETURNING id"
                        : "INSERT INTO outbox (topic, payload, correlation_id, created_at) VALUES "
                          "($1, $2, $3, $4) RETURNING id";
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(sql, params));
  return rows.integer(0, 0);
}

Result<std::vector<OutboxEvent>> SqlOutboxRepository::pending(int limit) {
  const std::array<SqlValue, 1> params = {static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT id, topic, payload, correlation_id, created_at FROM "
                                  "outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
                                  params));
  std::vector<OutboxEvent> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    OutboxEvent e;
    e.id = rows.integer(r, 0);
    e.topic = rows.text(r, 1);
    e.payload = rows.text(r, 2);
    e.correlation_id = rows.text(r, 3);
    e.created_at = parse_db_time(rows.at(r, 4));
    out.push_back(std::move(e));
  }
  return out;
}

Status SqlOutboxRepository::mark_published(const std::vector<std::int64_t>& ids,
                                           std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  for (std::int64_t id : ids) {
    const std::array<SqlValue, 2> params = {at, id};
    DP_TRY(conn_.exec("UPDATE outbox SET published_at = $1 WHERE id = $2", params));
  }
  return Ok{};
}

}  // namespace dp::store::internal

namespace dp::store::internal {
namespace {

std::vector<OutboxEvent> read_events(const Rows& rows) {
  // Columns: id, seq, topic, payload, correlation_id, created_at
  std::vector<OutboxEvent> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    OutboxEvent e;
    e.id = rows.integer(r, 0);
    e.seq = rows.at(r, 1) ? rows.integer(r, 1) : 0;
    e.topic = rows.text(r, 2);
    e.payload = rows.text(r, 3);
    e.correlation_id = rows.text(r, 4);
    e.created_at = parse_db_time(rows.at(r, 5));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Result<std::vector<OutboxEvent>> SqlOutboxRepository::claim_for_publishing(int limit) {
  DP_ASSIGN_OR_RETURN(
      Rows top, conn_.query("SELECT coalesce(max(seq), 0) FROM outbox WHERE seq IS NOT NULL", {}));
  std::int64_t next = top.integer(0, 0) + 1;
  const std::array<SqlValue, 1> lim = {static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(Rows fresh,
                      conn_.query("SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $1", lim));
  for (std::size_t r = 0; r < fresh.size(); ++r) {
    const std::array<SqlValue, 2> params = {next++, fresh.integer(r, 0)};
    DP_TRY(conn_.exec("UPDATE outbox SET seq = $1 WHERE id = $2", params));
  }
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT id, seq, topic, payload, correlation_id, created_at FROM "
                                  "outbox WHERE seq IS NOT NULL AND published_at IS NULL "
                                  "ORDER BY seq LIMIT $1",
                                  lim));
  return read_events(rows);
}

Result<std::optional<std::vector<OutboxEvent>>> SqlOutboxRepository::ready_to_publish(int limit) {
  DP_ASSIGN_OR_RETURN(Rows waiting,
                      conn_.query("SELECT id FROM outbox WHERE seq IS NULL LIMIT 1", {}));
  if (!waiting.empty()) return std::optional<std::vector<OutboxEvent>>();
  const std::array<SqlValue, 1> lim = {static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT id, seq, topic, payload, correlation_id, created_at FROM "
                                  "outbox WHERE seq IS NOT NULL AND published_at IS NULL "
                                  "ORDER BY seq LIMIT $1",
                                  lim));
  return std::optional<std::vector<OutboxEvent>>(read_events(rows));
}

Result<std::vector<OutboxEvent>> SqlOutboxRepository::since(std::int64_t after_seq, int limit) {
  const std::array<SqlValue, 2> params = {after_seq, static_cast<std::int64_t>(limit)};
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT id, seq, topic, payload, correlation_id, created_at FROM "
                                  "outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                                  params));
  return read_events(rows);
}

Result<std::pair<std::int64_t, std::int64_t>> SqlOutboxRepository::seq_range() {
  DP_ASSIGN_OR_RETURN(Rows rows,
                      conn_.query("SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM outbox "
                                  "WHERE seq IS NOT NULL",
                                  {}));
  return std::pair<std::int64_t, std::int64_t>{rows.integer(0, 0), rows.integer(0, 1)};
}

Result<std::int64_t> SqlOutboxRepository::prune(std::int64_t before_ms) {
  const std::string at = clock::format_iso8601(before_ms);
  const std::array<SqlValue, 1> params = {std::string_view(at)};
  // The newest sequenced row always stays: the next seq continues from it, and a seq that
  // went back to 1 would be taken for a duplicate by the bus and by resuming clients.
  return conn_.exec("DELETE FROM outbox WHERE published_at IS NOT NULL AND created_at < $1 "
                    "AND coalesce(seq, 0) < "
                    "(SELECT coalesce(max(seq), 0) FROM outbox WHERE seq IS NOT NULL)",
                    params);
}

Result<bool> SqlLeaseRepository::acquire(std::string_view name, std::string_view holder,
                                         std::int64_t now_ms, std::int64_t ttl_ms) {
  // One statement for take-or-renew: the update branch only fires when the lease is ours
  // or has lapsed, so the affected-row count says whether we hold it.
  const std::array<SqlValue, 4> params = {name, holder, now_ms + ttl_ms, now_ms};
  DP_ASSIGN_OR_RETURN(
      std::int64_t n,
      conn_.exec("INSERT INTO leases (name, holder, expires_at, acquired_at) "
                 "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET "
                 "holder = excluded.holder, expires_at = excluded.expires_at, "
                 "acquired_at = CASE WHEN leases.holder = excluded.holder "
                 "THEN leases.acquired_at ELSE excluded.acquired_at END "
                 "WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
                 params));
  return n > 0;
}

Status SqlLeaseRepository::take(std::string_view name, std::string_view holder,
                                std::int64_t now_ms, std::int64_t ttl_ms) {
  const std::array<SqlValue, 4> params = {name, holder, now_ms + ttl_ms, now_ms};
  DP_TRY(conn_.exec("INSERT INTO leases (name, holder, expires_at, acquired_at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET "
                    "holder = excluded.holder, expires_at = excluded.expires_at, "
                    "acquired_at = excluded.acquired_at",
                    params));
  return Ok{};
}

Result<bool> SqlLeaseRepository::release(std::string_view name, std::string_view holder) {
  const std::array<SqlValue, 2> params = {name, holder};
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("DELETE FROM leases WHERE name = $1 AND holder = $2", params));
  return n > 0;
}

}  // namespace dp::store::internal

namespace dp::store::internal {

Status SqlMessageRepository::insert(const model::Message& m) {
  const std::string payload = boost::json::serialize(m.payload);
  const std::string at = clock::format_iso8601(m.created_at);
  const std::array<SqlValue, 6> params = {
      m.id, m.from_agent_id.empty() ? SqlValue(nullptr) : SqlValue(std::string_view(m.from_agent_id)),
      m.to_agent_id, m.message_type, std::string_view(payload), std::string_view(at)};
  DP_TRY(conn_.exec("INSERT INTO messages (id, from_agent_id, to_agent_id, message_type, payload, "
                    "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    params));
  return Ok{};
}

Result<Page<model::Message>> SqlMessageRepository::list(std::string_view agent_id,
                                                        std::optional<std::string> after,
                                                        int limit, bool undelivered_only) {
  std::vector<SqlValue> params{agent_id};
  std::string where = " WHERE to_agent_id = $1";
  if (undelivered_only) where += " AND delivered_at IS NULL";
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM messages" + where, params));
  Page<model::Message> page;
  page.total = count.integer(0, 0);
  if (after) {
    params.emplace_back(std::string_view(*after));
    where += " AND id > $" + std::to_string(params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(limit) + 1);
  DP_ASSIGN_OR_RETURN(
      Rows rows,
      conn_.query("SELECT id, from_agent_id, to_agent_id, message_type, payload, created_at, "
                  "delivered_at FROM messages" + where + " ORDER BY id LIMIT $" +
                      std::to_string(params.size()),
                  params));
  for (std::size_t r = 0; r < rows.size() && r < static_cast<std::size_t>(limit); ++r) {
    model::Message m;
    m.id = rows.text(r, 0);
    m.from_agent_id = rows.text(r, 1);
    m.to_agent_id = rows.text(r, 2);
    m.message_type = rows.text(r, 3);
    m.payload = parse_object(rows.at(r, 4));
    m.created_at = parse_db_time(rows.at(r, 5));
    if (rows.at(r, 6)) m.delivered_at = parse_db_time(rows.at(r, 6));
    page.items.push_back(std::move(m));
  }
  if (rows.size() > static_cast<std::size_t>(limit) && !page.items.empty()) {
    page.next_cursor = page.items.back().id;
  }
  return page;
}

Result<std::int64_t> SqlMessageRepository::mark_delivered(std::string_view agent_id,
                                                          const std::vector<std::string>& ids,
                                                          std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  std::int64_t n = 0;
  for (const auto& id : ids) {
    const std::array<SqlValue, 3> params = {std::string_view(at), std::string_view(id), agent_id};
    DP_ASSIGN_OR_RETURN(std::int64_t k,
                        conn_.exec("UPDATE messages SET delivered_at = $1 WHERE id = $2 AND "
                                   "to_agent_id = $3 AND delivered_at IS NULL",
                                   params));
    n += k;
  }
  return n;
}

}  // namespace dp::store::internal

// Identity: users, API keys, refresh tokens.
namespace dp::store::internal {
namespace {

constexpr std::string_view kUserColumns =
    "id, username, display_name, role, status, password_hash, failed_logins, locked_until, "
    "external_issuer, external_subject, created_at, updated_at, last_login_at";

std::optional<std::int64_t> opt_time(const Rows& rows, std::size_t r, std::size_t c) {
  if (!rows.at(r, c)) return std::nullopt;
  return parse_db_time(rows.at(r, c));
}

// Holds the text of optional times so SqlValue views stay valid while a statement runs.
struct TimeText {
  std::optional<std::string> text;
  explicit TimeText(const std::optional<std::int64_t>& ms) {
    if (ms) text = clock::format_iso8601(*ms);
  }
  SqlValue value() const { return text ? SqlValue(std::string_view(*text)) : SqlValue(nullptr); }
};

SqlValue null_if_empty(const std::string& s) {
  return s.empty() ? SqlValue(nullptr) : SqlValue(std::string_view(s));
}

model::User user_from_row(const Rows& rows, std::size_t r) {
  model::User u;
  u.id = rows.text(r, 0);
  u.username = rows.text(r, 1);
  u.display_name = rows.text(r, 2);
  u.role = rows.text(r, 3);
  u.status = rows.text(r, 4);
  u.password_hash = rows.text(r, 5);
  u.failed_logins = rows.integer(r, 6);
  u.locked_until = opt_time(rows, r, 7);
  u.external_issuer = rows.text(r, 8);
  u.external_subject = rows.text(r, 9);
  u.created_at = parse_db_time(rows.at(r, 10));
  u.updated_at = parse_db_time(rows.at(r, 11));
  u.last_login_at = opt_time(rows, r, 12);
  return u;
}

constexpr std::string_view kKeyColumns =
    "id, name, prefix, key_hash, role, agent_id, created_by, expires_at, last_used_at, "
    "revoked_at, created_at";

model::ApiKey key_from_row(const Rows& rows, std::size_t r) {
  model::ApiKey k;
  k.id = rows.text(r, 0);
  k.name = rows.text(r, 1);
  k.prefix = rows.text(r, 2);
  k.key_hash = rows.text(r, 3);
  k.role = rows.text(r, 4);
  k.agent_id = rows.text(r, 5);
  k.created_by = rows.text(r, 6);
  k.expires_at = opt_time(rows, r, 7);
  k.last_used_at = opt_time(rows, r, 8);
  k.revoked_at = opt_time(rows, r, 9);
  k.created_at = parse_db_time(rows.at(r, 10));
  return k;
}

}  // namespace

Status SqlUserRepository::insert(const model::User& u) {
  const std::string created = clock::format_iso8601(u.created_at);
  const std::string updated = clock::format_iso8601(u.updated_at);
  const TimeText locked(u.locked_until);
  const TimeText last(u.last_login_at);
  const std::array<SqlValue, 13> params = {
      u.id, u.username, u.display_name, u.role, u.status, u.password_hash, u.failed_logins,
      locked.value(), null_if_empty(u.external_issuer), null_if_empty(u.external_subject),
      std::string_view(created), std::string_view(updated), last.value()};
  auto r = conn_.exec(
      "INSERT INTO users (id, username, display_name, role, status, password_hash, failed_logins, "
      "locked_until, external_issuer, external_subject, created_at, updated_at, last_login_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
      params);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) {
      return Error::conflict("a user named '" + u.username + "' already exists");
    }
    return std::move(r).error();
  }
  return Ok{};
}

Result<model::User> SqlUserRepository::one(std::string_view where,
                                           std::span<const SqlValue> params,
                                           std::string_view what) {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(std::string("SELECT ") + std::string(kUserColumns) +
                                                 " FROM users WHERE " + std::string(where),
                                             params));
  if (rows.empty()) return Error::not_found("user " + std::string(what) + " not found");
  return user_from_row(rows, 0);
}

Result<model::User> SqlUserRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  return one("id = $1", params, id);
}

Result<model::User> SqlUserRepository::find_by_username(std::string_view username) {
  const std::array<SqlValue, 1> params = {username};
  return one("username = $1", params, "'" + std::string(username.substr(0, 64)) + "'");
}

Result<model::User> SqlUserRepository::find_by_external(std::string_view issuer,
                                                        std::string_view subject) {
  const std::array<SqlValue, 2> params = {issuer, subject};
  return one("external_issuer = $1 AND external_subject = $2", params, "for this sign-in");
}

Result<std::vector<model::User>> SqlUserRepository::list() {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(std::string("SELECT ") + std::string(kUserColumns) +
                                                 " FROM users ORDER BY username",
                                             {}));
  std::vector<model::User> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(user_from_row(rows, r));
  return out;
}

Status SqlUserRepository::update(const model::User& u) {
  const std::string updated = clock::format_iso8601(u.updated_at);
  const TimeText locked(u.locked_until);
  const TimeText last(u.last_login_at);
  const std::array<SqlValue, 9> params = {u.display_name,  u.role,           u.status,
                                          u.password_hash, u.failed_logins,  locked.value(),
                                          std::string_view(updated), last.value(), u.id};
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("UPDATE users SET display_name = $1, role = $2, status = $3, "
                                 "password_hash = $4, failed_logins = $5, locked_until = $6, "
                                 "updated_at = $7, last_login_at = $8 WHERE id = $9",
                                 params));
  if (n == 0) return Error::not_found("user " + u.id + " not found");
  return Ok{};
}

Result<std::int64_t> SqlUserRepository::count_active(std::string_view role) {
  const std::array<SqlValue, 1> params = {role};
  DP_ASSIGN_OR_RETURN(
      Rows rows,
      conn_.query("SELECT count(*) FROM users WHERE role = $1 AND status = 'active'", params));
  return rows.integer(0, 0);
}

Status SqlApiKeyRepository::insert(const model::ApiKey& k) {
  const std::string created = clock::format_iso8601(k.created_at);
  const TimeText expires(k.expires_at);
  const TimeText used(k.last_used_at);
  const TimeText revoked(k.revoked_at);
  const std::array<SqlValue, 11> params = {
      k.id, k.name, k.prefix, k.key_hash, k.role, null_if_empty(k.agent_id), k.created_by,
      expires.value(), used.value(), revoked.value(), std::string_view(created)};
  auto r = conn_.exec(
      "INSERT INTO api_keys (id, name, prefix, key_hash, role, agent_id, created_by, expires_at, "
      "last_used_at, revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      params);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kAlreadyExists) {
      return Error::conflict("an API key with prefix '" + k.prefix + "' already exists");
    }
    return std::move(r).error();
  }
  return Ok{};
}

Result<model::ApiKey> SqlApiKeyRepository::get(std::string_view id) {
  const std::array<SqlValue, 1> params = {id};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(std::string("SELECT ") + std::string(kKeyColumns) +
                                                 " FROM api_keys WHERE id = $1",
                                             params));
  if (rows.empty()) return Error::not_found("API key " + std::string(id) + " not found");
  return key_from_row(rows, 0);
}

Result<model::ApiKey> SqlApiKeyRepository::find_by_prefix(std::string_view prefix) {
  const std::array<SqlValue, 1> params = {prefix};
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(std::string("SELECT ") + std::string(kKeyColumns) +
                                                 " FROM api_keys WHERE prefix = $1",
                                             params));
  if (rows.empty()) return Error::not_found("no API key has this prefix");
  return key_from_row(rows, 0);
}

Result<std::vector<model::ApiKey>> SqlApiKeyRepository::list() {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query(std::string("SELECT ") + std::string(kKeyColumns) +
                                                 " FROM api_keys ORDER BY id DESC",
                                             {}));
  std::vector<model::ApiKey> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) out.push_back(key_from_row(rows, r));
  return out;
}

Status SqlApiKeyRepository::revoke(std::string_view id, std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  const std::array<SqlValue, 2> params = {std::string_view(at), id};
  DP_TRY(conn_.exec("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    params));
  DP_TRY(get(id));  // kNotFound when there is no such key
  return Ok{};
}

Status SqlApiKeyRepository::touch(std::string_view id, std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  const std::array<SqlValue, 2> params = {std::string_view(at), id};
  DP_TRY(conn_.exec("UPDATE api_keys SET last_used_at = $1 WHERE id = $2", params));
  return Ok{};
}

Status SqlRefreshTokenRepository::insert(const model::RefreshToken& t) {
  const std::string expires = clock::format_iso8601(t.expires_at);
  const std::string created = clock::format_iso8601(t.created_at);
  const TimeText rotated(t.rotated_at);
  const TimeText revoked(t.revoked_at);
  const std::array<SqlValue, 8> params = {t.id,          t.user_id,       t.family_id,
                                          t.token_hash,  std::string_view(expires),
                                          rotated.value(), revoked.value(),
                                          std::string_view(created)};
  DP_TRY(conn_.exec("INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, "
                    "rotated_at, revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    params));
  return Ok{};
}

Result<model::RefreshToken> SqlRefreshTokenRepository::find_by_hash(std::string_view token_hash) {
  const std::array<SqlValue, 1> params = {token_hash};
  DP_ASSIGN_OR_RETURN(
      Rows rows, conn_.query("SELECT id, user_id, family_id, token_hash, expires_at, rotated_at, "
                             "revoked_at, created_at FROM refresh_tokens WHERE token_hash = $1",
                             params));
  if (rows.empty()) return Error::not_found("unknown refresh token");
  model::RefreshToken t;
  t.id = rows.text(0, 0);
  t.user_id = rows.text(0, 1);
  t.family_id = rows.text(0, 2);
  t.token_hash = rows.text(0, 3);
  t.expires_at = parse_db_time(rows.at(0, 4));
  t.rotated_at = opt_time(rows, 0, 5);
  t.revoked_at = opt_time(rows, 0, 6);
  t.created_at = parse_db_time(rows.at(0, 7));
  return t;
}

Result<bool> SqlRefreshTokenRepository::mark_rotated(std::string_view id, std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  const std::array<SqlValue, 2> params = {std::string_view(at), id};
  // Compare-and-set: of two concurrent refreshes with one token, only one sees a row change.
  DP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn_.exec("UPDATE refresh_tokens SET rotated_at = $1 WHERE id = $2 AND "
                                 "rotated_at IS NULL AND revoked_at IS NULL",
                                 params));
  return n > 0;
}

Result<std::int64_t> SqlRefreshTokenRepository::revoke_family(std::string_view family_id,
                                                              std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  const std::array<SqlValue, 2> params = {std::string_view(at), family_id};
  return conn_.exec(
      "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
      params);
}

Result<std::int64_t> SqlRefreshTokenRepository::revoke_user(std::string_view user_id,
                                                            std::int64_t at_ms) {
  const std::string at = clock::format_iso8601(at_ms);
  const std::array<SqlValue, 2> params = {std::string_view(at), user_id};
  return conn_.exec(
      "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
      params);
}

}  // namespace dp::store::internal
