// The audit log repository, written once for both dialects (see sql_repos.hpp).
#include <array>
#include <vector>

#include "core/clock.hpp"
#include "store/audit_chain.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::internal {
namespace {

constexpr std::string_view kColumns =
    "seq, id, at, actor_id, actor_name, actor_kind, action, target, outcome, status, "
    "correlation_id, source_address, details, prev_hash, hash";

// Any constant shared by every node; it names the lock that serializes appends on PostgreSQL.
constexpr std::int64_t kAppendLockKey = 726374;
// Rows fetched per round trip while walking the chain.
constexpr std::int64_t kVerifyBatch = 1000;

model::AuditRecord record_from_row(const Rows& rows, std::size_t r) {
  model::AuditRecord a;
  a.seq = rows.integer(r, 0);
  a.id = rows.text(r, 1);
  a.at = parse_db_time(rows.at(r, 2));
  a.actor_id = rows.text(r, 3);
  a.actor_name = rows.text(r, 4);
  a.actor_kind = rows.text(r, 5);
  a.action = rows.text(r, 6);
  a.target = rows.text(r, 7);
  a.outcome = rows.text(r, 8);
  a.status = static_cast<int>(rows.integer(r, 9));
  a.correlation_id = rows.text(r, 10);
  a.source_address = rows.text(r, 11);
  a.details = rows.text(r, 12);
  a.prev_hash = rows.text(r, 13);
  a.hash = rows.text(r, 14);
  return a;
}

std::string prefix_pattern(std::string_view prefix) {
  std::string out;
  for (char c : prefix) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('%');
  return out;
}

}  // namespace

Result<model::AuditRecord> SqlAuditRepository::append(const model::AuditRecord& record) {
  if (conn_.dialect() == Dialect::kPostgres) {
    // Held until this transaction ends: the next appender reads our row as the chain's end.
    // (SQLite needs nothing: its single writer connection already serializes appends.)
    const std::array<SqlValue, 1> key = {kAppendLockKey};
    DP_TRY(conn_.query("SELECT pg_advisory_xact_lock($1)", key));
  }
  DP_ASSIGN_OR_RETURN(Rows last,
                      conn_.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", {}));
  model::AuditRecord r = record;
  r.seq = last.empty() ? 1 : last.integer(0, 0) + 1;
  r.prev_hash = last.empty() ? std::string(audit_chain::kGenesisHash) : last.text(0, 1);
  if (r.details.empty()) r.details = "{}";
  r.hash = audit_chain::compute_hash(r);
  const std::string at = clock::format_iso8601(r.at);
  const std::array<SqlValue, 15> params = {
      r.seq,     r.id,          at,
      r.actor_id, r.actor_name, r.actor_kind,
      r.action,  r.target,      r.outcome,
      static_cast<std::int64_t>(r.status), r.correlation_id, r.source_address,
      r.details, r.prev_hash,   r.hash};
  DP_TRY(conn_.exec("INSERT INTO audit_log (" + std::string(kColumns) +
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                        "$15)",
                    params));
  return r;
}

Result<Page<model::AuditRecord>> SqlAuditRepository::list(const AuditFilter& f) {
  std::string where;
  std::vector<SqlValue> params;
  // Owned copies of bound text: SqlValue holds views.
  std::vector<std::string> texts;
  texts.reserve(4);
  auto add = [&](const std::string& clause) {
    where += where.empty() ? " WHERE " : " AND ";
    where += clause;
  };
  auto next = [&]() { return "$" + std::to_string(params.size()); };
  if (f.actor) {
    params.emplace_back(std::string_view(*f.actor));
    add("(actor_id = " + next() + " OR actor_name = " + next() + ")");
  }
  if (f.action_prefix) {
    texts.push_back(prefix_pattern(*f.action_prefix));
    params.emplace_back(std::string_view(texts.back()));
    add("action LIKE " + next() + " ESCAPE '\\'");
  }
  if (f.outcome) {
    params.emplace_back(std::string_view(*f.outcome));
    add("outcome = " + next());
  }
  if (f.target) {
    params.emplace_back(std::string_view(*f.target));
    add("target = " + next());
  }
  if (f.from_ms) {
    texts.push_back(clock::format_iso8601(*f.from_ms));
    params.emplace_back(std::string_view(texts.back()));
    add("at >= " + next());
  }
  if (f.to_ms) {
    texts.push_back(clock::format_iso8601(*f.to_ms));
    params.emplace_back(std::string_view(texts.back()));
    add("at < " + next());
  }
  DP_ASSIGN_OR_RETURN(Rows count, conn_.query("SELECT count(*) FROM audit_log" + where, params));
  Page<model::AuditRecord> page;
  page.total = count.integer(0, 0);
  if (f.before_seq) {
    params.emplace_back(*f.before_seq);
    add("seq < " + next());
  }
  params.emplace_back(static_cast<std::int64_t>(f.limit) + 1);
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT " + std::string(kColumns) +
                                                 " FROM audit_log" + where +
                                                 " ORDER BY seq DESC LIMIT " + next(),
                                             params));
  const auto limit = static_cast<std::size_t>(f.limit);
  for (std::size_t r = 0; r < rows.size() && r < limit; ++r) {
    page.items.push_back(record_from_row(rows, r));
  }
  if (rows.size() > limit && !page.items.empty()) {
    page.next_cursor = std::to_string(page.items.back().seq);
  }
  return page;
}

Result<ChainReport> SqlAuditRepository::verify(std::int64_t from_seq, std::int64_t to_seq) {
  ChainReport report;
  DP_ASSIGN_OR_RETURN(std::int64_t last, last_seq());
  if (from_seq < 1) from_seq = 1;
  if (to_seq <= 0 || to_seq > last) to_seq = last;
  if (last == 0 || from_seq > to_seq) return report;
  report.first_seq = from_seq;

  auto broken = [&](std::int64_t seq, std::string why) {
    report.verified = false;
    report.broken_at = seq;
    report.reason = std::move(why);
    return report;
  };

  std::string expected_prev(audit_chain::kGenesisHash);
  if (from_seq > 1) {
    // Anchor on the stored hash of the entry before the range (not itself checked here).
    const std::array<SqlValue, 1> p = {from_seq - 1};
    DP_ASSIGN_OR_RETURN(Rows anchor, conn_.query("SELECT hash FROM audit_log WHERE seq = $1", p));
    if (anchor.empty()) {
      return broken(from_seq, "entry " + std::to_string(from_seq - 1) +
                                  ", which this range chains from, is missing");
    }
    expected_prev = anchor.text(0, 0);
  }
  std::int64_t expected_seq = from_seq;
  std::int64_t cursor = from_seq;
  while (cursor <= to_seq) {
    const std::array<SqlValue, 3> p = {cursor, to_seq, kVerifyBatch};
    DP_ASSIGN_OR_RETURN(Rows rows,
                        conn_.query("SELECT " + std::string(kColumns) +
                                        " FROM audit_log WHERE seq >= $1 AND seq <= $2 "
                                        "ORDER BY seq LIMIT $3",
                                    p));
    if (rows.empty()) break;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const model::AuditRecord r = record_from_row(rows, i);
      if (r.seq != expected_seq) {
        return broken(expected_seq, "entry " + std::to_string(expected_seq) +
                                        " is missing (the next entry is " +
                                        std::to_string(r.seq) + "): rows were deleted");
      }
      if (r.prev_hash != expected_prev) {
        return broken(r.seq, "entry " + std::to_string(r.seq) +
                                 " does not link to the hash of the entry before it "
                                 "(an entry was removed, reordered or rewritten)");
      }
      if (audit_chain::compute_hash(r) != r.hash) {
        return broken(r.seq, "entry " + std::to_string(r.seq) +
                                 " does not match its hash: a field was altered");
      }
      expected_prev = r.hash;
      ++expected_seq;
      ++report.checked;
      report.last_seq = r.seq;
      report.head_hash = r.hash;
    }
    cursor = expected_seq;
  }
  if (expected_seq <= to_seq) {
    return broken(expected_seq, "entry " + std::to_string(expected_seq) +
                                    " is missing: rows were deleted");
  }
  return report;
}

Result<std::int64_t> SqlAuditRepository::last_seq() {
  DP_ASSIGN_OR_RETURN(Rows rows, conn_.query("SELECT coalesce(max(seq), 0) FROM audit_log", {}));
  return rows.integer(0, 0);
}

}  // namespace dp::store::internal
