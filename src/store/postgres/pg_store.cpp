#include "store/postgres/pg_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <exception>
#include <condition_variable>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "store/internal/migration.hpp"
#include "store/internal/sql_conn.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::postgres {
namespace {

using internal::Dialect;
using internal::Rows;
using internal::SqlValue;

constexpr auto kAcquireTimeout = std::chrono::seconds(5);
constexpr int kMaxSerializationRetries = 3;

Error error_from_result(PGconn* conn, const PGresult* res, std::string_view what) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = std::string(what) + ": ";
  const char* primary = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  msg += primary != nullptr ? primary : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const std::string_view s = state != nullptr ? state : "";
  if (PQstatus(conn) != CONNECTION_OK) return Error::unavailable(std::move(msg));
  if (s == "23505") return Error{ErrorCode::kAlreadyExists, "conflict", std::move(msg), nullptr};
  if (s == "23503") return Error::failed_precondition("foreign_key", std::move(msg));
  if (s == "40001" || s == "40P01") return Error::aborted(std::move(msg));
  if (s == "57014") return Error{ErrorCode::kDeadlineExceeded, "timeout", std::move(msg), nullptr};
  if (s.starts_with("08") || s.starts_with("57P") || s == "53300") {
    return Error::unavailable(std::move(msg));
  }
  return Error::internal(std::move(msg));
}

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

class PgConn final : public internal::SqlConn {
 public:
  explicit PgConn(PGconn* c) : c_(c) {}
  ~PgConn() override { PQfinish(c_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  bool healthy() const noexcept { return PQstatus(c_) == CONNECTION_OK; }
  std::string server_version() const { return std::to_string(PQserverVersion(c_)); }

  Status exec_script(std::string_view sql) {
    const std::string s(sql);
    PgResult res(PQexec(c_, s.c_str()));
    const auto st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return error_from_result(c_, res.get(), "postgres");
    }
    return Ok{};
  }

  // internal::SqlConn
  Result<Rows> query(std::string_view sql, std::span<const SqlValue> params) override {
    DP_ASSIGN_OR_RETURN(PgResult res, run(sql, params));
    Rows rows;
    const int n = PQntuples(res.get());
    const int cols = PQnfields(res.get());
    rows.data.reserve(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
      auto& row = rows.data.emplace_back();
      row.reserve(static_cast<std::size_t>(cols));
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res.get(), r, c) != 0) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                       static_cast<std::size_t>(PQgetlength(res.get(), r, c))));
        }
      }
    }
    return rows;
  }

  Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) override {
    DP_ASSIGN_OR_RETURN(PgResult res, run(sql, params));
    const char* n = PQcmdTuples(res.get());
    std::int64_t out = 0;
    if (n != nullptr) std::from_chars(n, n + std::strlen(n), out);
    return out;
  }

  Dialect dialect() const noexcept override { return Dialect::kPostgres; }

 private:
  Result<PgResult> run(std::string_view sql, std::span<const SqlValue> params) {
    std::string key(sql);
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      std::string name = "dp" + std::to_string(prepared_.size());
      PgResult prep(PQprepare(c_, name.c_str(), key.c_str(), static_cast<int>(params.size()),
                              nullptr));
      if (PQresultStatus(prep.get()) != PGRES_COMMAND_OK) {
        return error_from_result(c_, prep.get(), "postgres prepare");
      }
      it = prepared_.emplace(std::move(key), std::move(name)).first;
    }
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size());
    std::vector<int> lengths(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) {
        values[i] = nullptr;
        continue;
      }
      if (const auto* n = std::get_if<std::int64_t>(&v)) {
        storage[i] = std::to_string(*n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        char buf[64];
        auto [p, ec] = std::to_chars(buf, buf + sizeof buf, *d);
        storage[i].assign(buf, p);
      } else {
        storage[i] = std::string(std::get<std::string_view>(v));
      }
      values[i] = storage[i].c_str();
      lengths[i] = static_cast<int>(storage[i].size());
    }
    PgResult res(PQexecPrepared(c_, it->second.c_str(), static_cast<int>(params.size()),
                                values.data(), lengths.data(), nullptr, 0));
    const auto st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return error_from_result(c_, res.get(), "postgres");
    }
    return res;
  }

  PGconn* c_;
  std::unordered_map<std::string, std::string> prepared_;
};

Result<std::unique_ptr<PgConn>> connect(const std::string& url) {
  const char* keys[] = {"dbname", "connect_timeout", "application_name", "options", nullptr};
  const char* values[] = {url.c_str(), "5", "devplane",
                          "-c TimeZone=UTC -c DateStyle=ISO -c statement_timeout=30000", nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Error::unavailable("postgres: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(c);
    return Error::unavailable("cannot connect to PostgreSQL at " + mask_url_password(url) + ": " +
                              msg);
  }
  return std::make_unique<PgConn>(c);
}

class PgStore final : public Store {
 public:
  PgStore(std::string url, std::size_t max_size, std::unique_ptr<PgConn> first)
      : url_(std::move(url)), max_size_(max_size) {
    server_version_ = first->server_version();
    idle_.push_back(std::move(first));
    open_ = 1;
  }
  ~PgStore() override { close(); }

  // store::Store
  Status write(const std::function<Status(Tx&)>& fn) override { return write_unit(fn, false); }

  // A later synchronous commit flushes the WAL up to its own record, which covers this one.
  Status write_relaxed(const std::function<Status(Tx&)>& fn) override { return write_unit(fn, true); }

  Status write_unit(const std::function<Status(Tx&)>& fn, bool relaxed) {
    for (int attempt = 0;; ++attempt) {
      Status s = with_conn([&](PgConn& conn) -> Status {
        DP_TRY(conn.exec_script(relaxed ? "BEGIN; SET LOCAL synchronous_commit TO OFF" : "BEGIN"));
        internal::SqlTx tx(conn);
        Status r = fn(tx);
        if (r.ok()) r = conn.exec_script("COMMIT");
        if (!r.ok()) conn.exec_script("ROLLBACK").ignore_error();
        return r;
      });
      if (s.ok() || s.error().code != ErrorCode::kAborted || attempt >= kMaxSerializationRetries) {
        return s;
      }
    }
  }

  Status read(const std::function<Status(Tx&)>& fn) override {
    return with_conn([&](PgConn& conn) -> Status {
      DP_TRY(conn.exec_script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
      internal::SqlTx tx(conn);
      Status r = fn(tx);
      conn.exec_script("COMMIT").ignore_error();
      return r;
    });
  }

  Status ping() override {
    return with_conn([](PgConn& conn) -> Status { return conn.exec_script("SELECT 1"); });
  }

  Result<std::int64_t> migrate() override {
    std::int64_t result = 0;
    Status s = with_conn([&](PgConn& conn) -> Status {
      // Nodes starting together serialize here instead of racing on DDL.
      DP_TRY(conn.exec_script("SELECT pg_advisory_lock(726373)"));
      auto r = migrate_locked(conn);
      conn.exec_script("SELECT pg_advisory_unlock(726373)").ignore_error();
      if (!r.ok()) return std::move(r).error();
      result = *r;
      return Ok{};
    });
    if (!s.ok()) return std::move(s).error();
    schema_version_ = result;
    return result;
  }

  StoreInfo info() override {
    return StoreInfo{"postgres", mask_url_password(url_), schema_version_.load(), server_version_};
  }

  // PostgreSQL keeps its own pages consistent; what can be wrong is the schema.
  Status check_integrity() override {
    std::int64_t version = 0;
    DP_TRY(with_conn([&](PgConn& conn) -> Status {
      auto rows = conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations", {});
      if (rows.ok()) version = rows->integer(0, 0);
      // A missing table is an answer here (no schema), not a failure of the check.
      return Ok{};
    }));
    if (version == 0) {
      return Error::failed_precondition("no_schema",
                                        "database has no devplane schema; run `devplane migrate`");
    }
    if (version > latest_schema_version()) {
      return Error::failed_precondition(
          "schema_too_new", "database is at schema version " + std::to_string(version) +
                                " but this binary knows only up to " +
                                std::to_string(latest_schema_version()));
    }
    return Ok{};
  }

  void close() override {
    std::lock_guard lock(mu_);
    closed_ = true;
    idle_.clear();
    cv_.notify_all();
  }

 private:
  Result<std::int64_t> migrate_locked(PgConn& conn) {
    DP_TRY(conn.exec_script(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT "
        "NULL, applied_at TIMESTAMPTZ NOT NULL)"));
    DP_ASSIGN_OR_RETURN(Rows rows,
                        conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations", {}));
    std::int64_t current = rows.integer(0, 0);
    const auto& all = internal::postgres_migrations();
    const std::int64_t latest = all.empty() ? 0 : all.back().version;
    if (current > latest) {
      return Error::failed_precondition(
          "schema_too_new", "database is at schema version " + std::to_string(current) +
                                ", newer than this binary (" + std::to_string(latest) +
                                "); upgrade devplane");
    }
    // Every known version not yet applied, in order: a migration merged after a higher-numbered
    // one (parallel work) is still applied.
    DP_ASSIGN_OR_RETURN(Rows done, conn.query("SELECT version FROM schema_migrations", {}));
    std::set<std::int64_t> applied;
    for (std::size_t r = 0; r < done.size(); ++r) applied.insert(done.integer(r, 0));
    for (const auto& m : all) {
      if (applied.contains(m.version)) continue;
      DP_TRY(conn.exec_script("BEGIN"));
      Status s = conn.exec_script(m.sql);
      if (s.ok()) {
        const std::string at = clock::format_iso8601(clock::now_ms());
        const std::array<SqlValue, 3> p = {m.version, m.name, at};
        s = conn.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                      p);
      }
      if (s.ok()) s = conn.exec_script("COMMIT");
      if (!s.ok()) {
        conn.exec_script("ROLLBACK").ignore_error();
        Error e = std::move(s).error();
        e.with_context("migration " + std::string(m.name));
        return e;
      }
      log::global().info("applied migration", {{"version", m.version}, {"name", m.name}});
      current = std::max(current, m.version);
    }
    return current;
  }

  Status with_conn(const std::function<Status(PgConn&)>& fn) {
    DP_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, acquire());
    Status s = Ok{};
    std::exception_ptr thrown;
    try {
      s = fn(*conn);
    } catch (...) {
      // The unit threw inside its transaction: end it, so the connection goes back to
      // the pool clean (and the pool keeps its count), then let the caller see the throw.
      thrown = std::current_exception();
      conn->exec_script("ROLLBACK").ignore_error();
    }
    release(std::move(conn));
    if (thrown) std::rethrow_exception(thrown);
    return s;
  }

  Result<std::unique_ptr<PgConn>> acquire() {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + kAcquireTimeout;
    for (;;) {
      if (closed_) return Error::unavailable("store is closed");
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      if (open_ < max_size_) {
        ++open_;
        lock.unlock();
        auto c = connect(url_);
        if (!c.ok()) {
          lock.lock();
          --open_;
          cv_.notify_one();
        }
        return c;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        return Error::unavailable("no PostgreSQL connection free within 5 s (pool size " +
                                  std::to_string(max_size_) + ")");
      }
    }
  }

  void release(std::unique_ptr<PgConn> conn) {
    std::lock_guard lock(mu_);
    // A broken connection is dropped; the next acquire opens a fresh one.
    if (!closed_ && conn->healthy()) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    cv_.notify_one();
  }

  const std::string url_;
  const std::size_t max_size_;
  std::string server_version_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConn>> idle_;  // guarded by mu_
  std::size_t open_ = 0;                       // guarded by mu_
  bool closed_ = false;                        // guarded by mu_
  std::atomic<std::int64_t> schema_version_{0};
};

}  // namespace

Result<std::unique_ptr<Store>> open(const Config& config) {
  DP_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> first, connect(config.database_url));
  return std::unique_ptr<Store>(std::make_unique<PgStore>(
      config.database_url, static_cast<std::size_t>(config.db_pool_size), std::move(first)));
}

}  // namespace dp::store::postgres
