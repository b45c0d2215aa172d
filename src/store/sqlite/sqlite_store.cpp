#include "store/sqlite/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/check.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "store/internal/migration.hpp"
#include "store/internal/sql_conn.hpp"
#include "store/internal/sql_repos.hpp"

namespace dp::store::sqlite {
namespace {

using internal::Dialect;
using internal::Rows;
using internal::SqlValue;

Error map_error(sqlite3* db, int rc, std::string_view what) {
  const int ext = sqlite3_extended_errcode(db);
  std::string msg = std::string(what) + ": " + sqlite3_errmsg(db);
  switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return Error{ErrorCode::kAlreadyExists, "conflict", std::move(msg), nullptr};
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Error::failed_precondition("foreign_key", std::move(msg));
    default:
      break;
  }
  if ((rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED) {
    return Error::unavailable(std::move(msg));
  }
  if ((rc & 0xFF) == SQLITE_FULL || (rc & 0xFF) == SQLITE_IOERR || (rc & 0xFF) == SQLITE_CANTOPEN) {
    return Error::unavailable(std::move(msg));
  }
  return Error::internal(std::move(msg));
}

// "$12" -> "?12": SQLite binds ?NNN to exactly index NNN.
std::string to_sqlite_placeholders(std::string_view sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  }
  return out;
}

class SqliteConn final : public internal::SqlConn {
 public:
  explicit SqliteConn(sqlite3* db) : db_(db) {}
  ~SqliteConn() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  SqliteConn(const SqliteConn&) = delete;
  SqliteConn& operator=(const SqliteConn&) = delete;

  sqlite3* raw() const noexcept { return db_; }

  Status exec_script(std::string_view sql) {
    char* err = nullptr;
    const std::string s(sql);
    const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      Error e = map_error(db_, rc, "sqlite");
      e.message = "sqlite: " + msg;
      return e;
    }
    return Ok{};
  }

  // One statement without parameters (BEGIN, COMMIT, SAVEPOINT ...), prepared once and kept:
  // these run on every transaction, and sqlite3_exec would parse them each time.
  Status control(std::string_view sql) {
    auto r = exec(sql, {});
    if (!r.ok()) return std::move(r).error();
    return Ok{};
  }

  // internal::SqlConn
  Result<Rows> query(std::string_view sql, std::span<const SqlValue> params) override {
    DP_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, prepare(sql, params));
    Rows rows;
    const int cols = sqlite3_column_count(stmt);
    int rc = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      auto& row = rows.data.emplace_back();
      row.reserve(static_cast<std::size_t>(cols));
      for (int c = 0; c < cols; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          const int n = sqlite3_column_bytes(stmt, c);
          row.emplace_back(std::string(text, static_cast<std::size_t>(n)));
        }
      }
    }
    if (rc != SQLITE_DONE) {
      Error e = map_error(db_, rc, "sqlite step");
      sqlite3_reset(stmt);
      return e;
    }
    sqlite3_reset(stmt);
    return rows;
  }

  Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) override {
    DP_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, prepare(sql, params));
    int rc = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
      Error e = map_error(db_, rc, "sqlite step");
      sqlite3_reset(stmt);
      return e;
    }
    sqlite3_reset(stmt);
    return static_cast<std::int64_t>(sqlite3_changes64(db_));
  }

  Dialect dialect() const noexcept override { return Dialect::kSqlite; }

 private:
  Result<sqlite3_stmt*> prepare(std::string_view sql, std::span<const SqlValue> params) {
    sqlite3_stmt* stmt = nullptr;
    auto it = cache_.find(std::string(sql));
    if (it != cache_.end()) {
      stmt = it->second;
    } else {
      const std::string text = to_sqlite_placeholders(sql);
      const int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()),
                                        SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return map_error(db_, rc, "sqlite prepare");
      cache_.emplace(std::string(sql), stmt);
    }
    sqlite3_clear_bindings(stmt);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int idx = static_cast<int>(i + 1);
      int rc = SQLITE_OK;
      const SqlValue& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) {
        rc = sqlite3_bind_null(stmt, idx);
      } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, idx, *n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(stmt, idx, *d);
      } else {
        const auto& s = std::get<std::string_view>(v);
        rc = sqlite3_bind_text64(stmt, idx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) return map_error(db_, rc, "sqlite bind");
    }
    return stmt;
  }

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, std::string synchronous, std::unique_ptr<SqliteConn> writer)
      : path_(std::move(path)), synchronous_(std::move(synchronous)), writer_(std::move(writer)) {}

  ~SqliteStore() override { close(); }

  static Result<std::unique_ptr<SqliteConn>> connect(const std::string& path,
                                                     const std::string& synchronous,
                                                     bool read_only) {
    sqlite3* db = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return Error::unavailable("cannot open SQLite database " + path + ": " + msg);
    }
    auto conn = std::make_unique<SqliteConn>(db);
    sqlite3_busy_timeout(db, 5000);
    // temp_store=MEMORY: statement journals (and the savepoint journals of a group commit's
    // units) stay in memory. On files, one past 64 KiB spilled into a temporary file created,
    // written and unlinked in /var/tmp within the transaction: once per task's creation. Our
    // queries are bounded (LIMIT), so their temporary sorts stay small in memory too.
    std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                          "PRAGMA synchronous=" + synchronous + ";";
    if (read_only) pragmas += " PRAGMA query_only=1;";
    DP_TRY(conn->exec_script(pragmas));
    return conn;
  }

  // store::Store
  //
  // Group commit: with synchronous=FULL every COMMIT waits for the disk, so writers that
  // arrive while a commit is in progress queue up, and the next of them to find no commit
  // running takes the whole queue into one transaction (each unit under its own SAVEPOINT,
  // so a unit that fails is rolled back alone) and one disk sync. Nobody's write returns
  // before the transaction holding it has committed; units commit in arrival order.
  Status write(const std::function<Status(Tx&)>& fn) override { return enqueue(fn, false); }

  // In WAL mode a commit under synchronous=NORMAL appends its frames without syncing them; the
  // next FULL commit syncs the WAL file, earlier frames included, so order is kept. A batch
  // runs relaxed only when every unit in it is.
  Status write_relaxed(const std::function<Status(Tx&)>& fn) override { return enqueue(fn, true); }

  Status enqueue(const std::function<Status(Tx&)>& fn, bool relaxed) {
    PendingWrite me;
    me.fn = &fn;
    me.relaxed = relaxed;
    std::unique_lock lock(queue_mu_);
    queue_.push_back(&me);
    while (!me.done) {
      if (committing_) {
        queue_cv_.wait(lock);
        continue;
      }
      committing_ = true;
      std::vector<PendingWrite*> batch;
      batch.swap(queue_);
      lock.unlock();
      run_batch(batch);
      lock.lock();
      committing_ = false;
      queue_cv_.notify_all();
    }
    lock.unlock();
    if (me.thrown) std::rethrow_exception(me.thrown);
    return std::move(me.result);
  }

  Status read(const std::function<Status(Tx&)>& fn) override {
    DP_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConn> conn, acquire_reader());
    // A deferred transaction gives one consistent snapshot across the queries in `fn`.
    Status b = conn->control("BEGIN");
    if (!b.ok()) return b;
    internal::SqlTx tx(*conn);
    Status s = fn(tx);
    conn->control("COMMIT").ignore_error();
    release_reader(std::move(conn));
    return s;
  }

  Status ping() override {
    return read([](Tx&) -> Status { return Ok{}; });
  }

  Result<std::int64_t> migrate() override {
    std::lock_guard lock(write_mu_);
    if (!writer_) return Error::unavailable("store is closed");
    DP_TRY(writer_->exec_script(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
        "NULL, applied_at TEXT NOT NULL)"));
    DP_ASSIGN_OR_RETURN(std::int64_t current, current_version(*writer_));
    const auto& all = internal::sqlite_migrations();
    const std::int64_t latest = all.empty() ? 0 : all.back().version;
    if (current > latest) {
      return Error::failed_precondition(
          "schema_too_new", "database " + path_ + " is at schema version " +
                                std::to_string(current) + ", newer than this binary (" +
                                std::to_string(latest) + "); upgrade devplane");
    }
    // Every known version not yet applied, in order: a migration merged after a higher-numbered
    // one (parallel work) is still applied.
    DP_ASSIGN_OR_RETURN(Rows done, writer_->query("SELECT version FROM schema_migrations", {}));
    std::set<std::int64_t> applied;
    for (std::size_t r = 0; r < done.size(); ++r) applied.insert(done.integer(r, 0));
    for (const auto& m : all) {
      if (applied.contains(m.version)) continue;
      DP_TRY(writer_->exec_script("BEGIN IMMEDIATE"));
      Status s = writer_->exec_script(m.sql);
      if (s.ok()) {
        const std::string at = clock::format_iso8601(clock::now_ms());
        const std::array<SqlValue, 3> p = {m.version, m.name, at};
        s = writer_->exec(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", p);
      }
      if (s.ok()) s = writer_->exec_script("COMMIT");
      if (!s.ok()) {
        writer_->exec_script("ROLLBACK").ignore_error();
        Error e = std::move(s).error();
        e.with_context("migration " + std::string(m.name));
        return e;
      }
      log::global().info("applied migration", {{"version", m.version}, {"name", m.name}});
      current = std::max(current, m.version);
    }
    schema_version_ = current;
    return current;
  }

  StoreInfo info() override {
    return StoreInfo{"sqlite", path_, schema_version_, sqlite3_libversion()};
  }

  Status check_integrity() override {
    std::lock_guard lock(write_mu_);
    if (!writer_) return Error::unavailable("store is closed");
    DP_ASSIGN_OR_RETURN(Rows rows, writer_->query("PRAGMA integrity_check", {}));
    std::string problems;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (rows.text(r, 0) != "ok") problems += rows.text(r, 0) + "; ";
    }
    if (!problems.empty()) return Error::internal("integrity check failed: " + problems);
    auto version = current_version(*writer_);
    if (!version.ok() || *version == 0) {
      return Error::failed_precondition("no_schema", "database " + path_ +
                                                         " has no devplane schema; run `devplane migrate`");
    }
    if (*version > latest_schema_version()) {
      return Error::failed_precondition(
          "schema_too_new", "database is at schema version " + std::to_string(*version) +
                                " but this binary knows only up to " +
                                std::to_string(latest_schema_version()));
    }
    return Ok{};
  }

  void close() override {
    {
      std::lock_guard lock(readers_mu_);
      idle_readers_.clear();
      closed_ = true;
    }
    std::lock_guard lock(write_mu_);
    if (writer_) {
      // Fold the WAL back into the main file so a closed database is one file.
      writer_->exec_script("PRAGMA wal_checkpoint(TRUNCATE)").ignore_error();
      writer_.reset();
    }
  }

 private:
  static Result<std::int64_t> current_version(SqliteConn& conn) {
    DP_ASSIGN_OR_RETURN(Rows rows,
                        conn.query("SELECT coalesce(max(version), 0) FROM schema_migrations", {}));
    return rows.integer(0, 0);
  }

  Result<std::unique_ptr<SqliteConn>> acquire_reader() {
    {
      std::lock_guard lock(readers_mu_);
      if (closed_) return Error::unavailable("store is closed");
      if (!idle_readers_.empty()) {
        auto c = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return c;
      }
    }
    return connect(path_, synchronous_, /*read_only=*/true);
  }

  void release_reader(std::unique_ptr<SqliteConn> conn) {
    std::lock_guard lock(readers_mu_);
    if (!closed_ && idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
  }

  static constexpr std::size_t kMaxIdleReaders = 16;

  struct PendingWrite {
    const std::function<Status(Tx&)>* fn = nullptr;
    Status result = Ok{};
    std::exception_ptr thrown;
    bool relaxed = false;
    bool done = false;  // guarded by queue_mu_
  };

  // Runs one unit of a batch; an exception thrown by it is kept for its caller.
  static Status run_unit(PendingWrite& w, internal::SqlTx& tx) {
    try {
      return (*w.fn)(tx);
    } catch (...) {
      w.thrown = std::current_exception();
      return Error::internal("write threw");
    }
  }

  // Commits `batch` (in order) and marks every unit done. Called by one thread at a time.
  void run_batch(std::vector<PendingWrite*>& batch) {
    {
      std::lock_guard lock(write_mu_);
      if (!writer_) {
        for (PendingWrite* w : batch) w->result = Error::unavailable("store is closed");
      } else {
        const bool relaxed =
            synchronous_ == "FULL" &&
            std::all_of(batch.begin(), batch.end(), [](const PendingWrite* w) { return w->relaxed; });
        // Outside a transaction, where SQLite lets the setting change; if it cannot be
        // lowered the unit simply commits durably.
        // exec_script, not control(): SQLite applies this pragma when it is prepared, so a cached
        // statement would not apply it again.
        const bool lowered = relaxed && writer_->exec_script("PRAGMA synchronous=NORMAL").ok();
        if (batch.size() == 1) {
          commit_one(*batch.front());
        } else {
          commit_group(batch);
        }
        if (lowered) {
          // The pragma only sets a flag of the connection (no I/O), outside any transaction,
          // so it cannot fail; a writer left relaxed would break every durable commit after.
          const bool restored = writer_->exec_script("PRAGMA synchronous=FULL").ok();
          DP_CHECK(restored);
        }
      }
    }
    std::lock_guard lock(queue_mu_);
    for (PendingWrite* w : batch) w->done = true;
  }

  // REQUIRES: write_mu_ held.
  void commit_one(PendingWrite& w) {
    Status b = writer_->control("BEGIN IMMEDIATE");
    if (!b.ok()) {
      w.result = std::move(b);
      return;
    }
    internal::SqlTx tx(*writer_);
    Status s = run_unit(w, tx);
    if (!s.ok()) {
      writer_->control("ROLLBACK").ignore_error();
      w.result = std::move(s);
      return;
    }
    Status c = writer_->control("COMMIT");
    if (!c.ok()) writer_->control("ROLLBACK").ignore_error();
    w.result = std::move(c);
  }

  // REQUIRES: write_mu_ held; batch.size() > 1.
  void commit_group(std::vector<PendingWrite*>& batch) {
    std::size_t first = 0;  // the first unit of the transaction being built
    while (first < batch.size()) {
      Status b = writer_->control("BEGIN IMMEDIATE");
      if (!b.ok()) {
        for (std::size_t i = first; i < batch.size(); ++i) batch[i]->result = b;
        return;
      }
      internal::SqlTx tx(*writer_);
      std::size_t next = first;
      bool aborted = false;
      for (; next < batch.size(); ++next) {
        PendingWrite& w = *batch[next];
        Status sp = writer_->control("SAVEPOINT unit");
        if (!sp.ok()) {
          w.result = std::move(sp);
          continue;
        }
        Status s = run_unit(w, tx);
        if (s.ok()) {
          w.result = writer_->control("RELEASE unit");
          if (w.result.ok()) continue;
        } else {
          w.result = std::move(s);
        }
        if (sqlite3_get_autocommit(writer_->raw()) != 0) {
          // SQLite gave up the whole transaction (I/O error, disk full, ...): the units
          // before this one are lost with it. Fail them, and start over after this one.
          for (std::size_t i = first; i < next; ++i) {
            if (batch[i]->result.ok()) {
              batch[i]->result =
                  Error::aborted("transaction rolled back: " + w.result.error().message);
            }
          }
          aborted = true;
          ++next;
          break;
        }
        writer_->control("ROLLBACK TO unit").ignore_error();
        writer_->control("RELEASE unit").ignore_error();
      }
      if (!aborted) {
        Status c = writer_->control("COMMIT");
        if (!c.ok()) {
          writer_->control("ROLLBACK").ignore_error();
          for (std::size_t i = first; i < next; ++i) {
            if (batch[i]->result.ok()) batch[i]->result = c;
          }
        }
      }
      first = next;
    }
  }

  const std::string path_;
  const std::string synchronous_;
  std::mutex write_mu_;
  std::unique_ptr<SqliteConn> writer_;  // guarded by write_mu_
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<PendingWrite*> queue_;  // guarded by queue_mu_
  bool committing_ = false;           // guarded by queue_mu_
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<SqliteConn>> idle_readers_;  // guarded by readers_mu_
  bool closed_ = false;                                    // guarded by readers_mu_
  std::atomic<std::int64_t> schema_version_{0};
};

}  // namespace

Result<std::unique_ptr<Store>> open(const Config& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return Error::unavailable("cannot create data directory " + config.data_dir + ": " +
                              ec.message());
  }
  const std::string path = (std::filesystem::path(config.data_dir) / "devplane.db").string();
  const std::string sync = config.sqlite_synchronous == "normal" ? "NORMAL" : "FULL";
  DP_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConn> writer,
                      SqliteStore::connect(path, sync, /*read_only=*/false));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(path, sync, std::move(writer)));
}

}  // namespace dp::store::sqlite
