// The repository suite: every test runs unchanged against SQLite and PostgreSQL.
//
// SQLite gets a fresh temporary directory per test. PostgreSQL gets a fresh database per
// test (`CREATE DATABASE dp_test_<random>` on the server named by DEVPLANE_TEST_PG_URL,
// dropped in TearDown), so tests are isolated and may run in parallel under `ctest -j`.
// scripts/test always sets DEVPLANE_TEST_PG_URL; without it the PostgreSQL cases fail.
#include "store/store.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "store/audit_chain.hpp"
#include "store/internal/migration.hpp"

namespace dp::store {
namespace {

namespace fs = std::filesystem;
using model::Agent;
using model::AgentStateEntry;
using model::AgentStatus;

enum class Backend { kSqlite, kPostgres };

std::string backend_name(Backend b) { return b == Backend::kSqlite ? "sqlite" : "postgres"; }
void PrintTo(Backend b, std::ostream* os) { *os << backend_name(b); }

std::string random_suffix() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) s.push_back(kHex[rng() % 16]);
  return s;
}

// "postgres://u@h:1/postgres?x=y" with dbname "d" -> "postgres://u@h:1/d?x=y"
std::string with_dbname(const std::string& url, const std::string& dbname) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto query = std::min(url.find('?', start), url.size());
  const auto slash = std::min(url.find('/', start), query);
  return url.substr(0, slash) + "/" + dbname + url.substr(query);
}

// One libpq command on its own connection; returns the first cell or an error text.
struct PgResultText {
  bool ok = false;
  std::string value;  // first cell, or the error message
};
PgResultText pg_run(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  PgResultText out;
  if (PQstatus(c) != CONNECTION_OK) {
    out.value = PQerrorMessage(c);
    PQfinish(c);
    return out;
  }
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  out.ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!out.ok) {
    out.value = PQerrorMessage(c);
  } else if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) {
    out.value = PQgetvalue(r, 0, 0);
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    log::configure(log::Level::kWarn, log::Format::kJson);
    Config c;
    if (GetParam() == Backend::kSqlite) {
      dir_ = fs::temp_directory_path() / ("dp_store_test_" + random_suffix());
      c.data_dir = dir_.string();
    } else {
      const char* admin = std::getenv("DEVPLANE_TEST_PG_URL");
      ASSERT_NE(admin, nullptr)
          << "DEVPLANE_TEST_PG_URL is not set: the PostgreSQL store tests need a server "
             "(scripts/test starts one and sets it, e.g. postgres://postgres@127.0.0.1:5432/postgres)";
      admin_url_ = admin;
      dbname_ = "dp_test_" + random_suffix();
      const auto r = pg_run(admin_url_, "CREATE DATABASE " + dbname_);
      ASSERT_TRUE(r.ok) << "cannot create test database on " << mask_url_password(admin_url_)
                        << " (DEVPLANE_TEST_PG_URL): " << r.value;
      db_url_ = with_dbname(admin_url_, dbname_);
      c.database_url = db_url_;
      c.db_pool_size = 8;
    }
    auto s = open_store(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
    auto m = store_->migrate();
    ASSERT_TRUE(m.ok()) << m.error().message;
  }

  void TearDown() override {
    if (store_) store_->close();
    store_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    if (!dbname_.empty()) {
      const auto r = pg_run(admin_url_, "DROP DATABASE IF EXISTS " + dbname_ + " WITH (FORCE)");
      EXPECT_TRUE(r.ok) << "cannot drop " << dbname_ << ": " << r.value;
    }
    log::configure(log::Level::kInfo, log::Format::kJson);
  }

  // Raw SQL on a separate connection, for set-up and inspection the Store API does not offer.
  // The SQL is written once for both dialects. Returns the first cell of the result.
  std::string raw(const std::string& sql) {
    if (GetParam() == Backend::kPostgres) {
      const auto r = pg_run(db_url_, sql);
      EXPECT_TRUE(r.ok) << sql << ": " << r.value;
      return r.value;
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_ / "devplane.db").string().c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    std::string first;
    bool have = false;
    char* err = nullptr;
    struct Ctx {
      std::string* first;
      bool* have;
    } ctx{&first, &have};
    const int rc = sqlite3_exec(
        db, sql.c_str(),
        [](void* p, int n, char** values, char**) -> int {
          auto* c = static_cast<Ctx*>(p);
          if (!*c->have && n > 0 && values[0] != nullptr) *c->first = values[0];
          *c->have = true;
          return 0;
        },
        &ctx, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    return first;
  }
  std::int64_t raw_int(const std::string& sql) { return std::stoll(raw(sql)); }

  static Agent make_agent(const std::string& name, const std::string& type = "command",
                          AgentStatus status = AgentStatus::kCreated) {
    Agent a;
    a.id = ids::uuid_v7();
    a.name = name;
    a.type = type;
    a.status = status;
    a.status_reason = "made";
    a.description = "agent " + name;
    a.labels = {{"team", "core"}};
    a.config = {{"command", "true"}};
    a.version = 1;
    a.created_at = a.updated_at = clock::now_ms();
    return a;
  }

  // A queued task of `agent` (not stored).
  static model::Task make_task(const std::string& agent, const std::string& key) {
    model::Task t;
    t.id = ids::uuid_v7();
    t.agent_id = agent;
    t.idempotency_key = key;
    t.input = "work";
    t.created_at = clock::now_ms();
    return t;
  }

  Status insert(const Agent& a) {
    return store_->write([&](Tx& tx) { return tx.agents().insert(a); });
  }
  Agent insert_ok(const std::string& name, const std::string& type = "command",
                  AgentStatus status = AgentStatus::kCreated) {
    Agent a = make_agent(name, type, status);
    Status s = insert(a);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error().message;
    return a;
  }
  Result<Agent> get(const std::string& id) {
    std::optional<Agent> out;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(Agent a, tx.agents().get(id));
      out = std::move(a);
      return Ok{};
    });
    if (!s.ok()) return std::move(s).error();
    return std::move(*out);
  }
  Page<Agent> list(const AgentFilter& f) {
    Page<Agent> out;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.agents().list(f));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  }
  static std::vector<std::string> names(const Page<Agent>& p) {
    std::vector<std::string> out;
    for (const auto& a : p.items) out.push_back(a.name);
    return out;
  }
  Status update(const Agent& a, std::int64_t expected) {
    return store_->write([&](Tx& tx) { return tx.agents().update(a, expected); });
  }
  std::vector<AgentStateEntry> history(const std::string& id, int limit = 100) {
    std::vector<AgentStateEntry> out;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.agents().history(id, limit));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  }
  Status append_state(const std::string& agent_id, const std::string& from,
                      const std::string& to, std::int64_t version) {
    AgentStateEntry e;
    e.agent_id = agent_id;
    e.from_status = from;
    e.status = to;
    e.reason = "because " + to;
    e.version = version;
    e.created_at = clock::now_ms();
    return store_->write([&](Tx& tx) { return tx.agents().append_state(e); });
  }
  static OutboxEvent event(const std::string& topic, const std::string& payload) {
    OutboxEvent e;
    e.topic = topic;
    e.payload = payload;
    e.correlation_id = "corr-" + topic;
    e.created_at = clock::now_ms();
    return e;
  }
  std::vector<OutboxEvent> pending(int limit = 1000) {
    std::vector<OutboxEvent> out;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.outbox().pending(limit));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  }
  const std::vector<internal::Migration>& migrations() const {
    return GetParam() == Backend::kSqlite ? internal::sqlite_migrations()
                                          : internal::postgres_migrations();
  }

  fs::path dir_;
  std::string admin_url_;
  std::string dbname_;
  std::string db_url_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, InsertThenGetRoundTripsEveryField) {
  Agent a = make_agent("o'brien; DROP TABLE agents;--", "llm", AgentStatus::kRunning);
  a.description = "émoji 🚀 and \"quotes\" and \\ backslash";
  a.labels = {{"team", "core"}, {"tier", "gold"}};
  a.config = {{"model", "x"}, {"temperature", 0.5}, {"nested", {{"a", boost::json::array{1, 2}}}}};
  a.version = 7;
  a.created_at = 1'700'000'000'123;
  a.updated_at = 1'700'000'999'456;
  ASSERT_TRUE(insert(a).ok());
  auto got = get(a.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->id, a.id);
  EXPECT_EQ(got->name, a.name);
  EXPECT_EQ(got->type, "llm");
  EXPECT_EQ(got->status, AgentStatus::kRunning);
  EXPECT_EQ(got->status_reason, "made");
  EXPECT_EQ(got->description, a.description);
  EXPECT_EQ(got->labels, a.labels);
  EXPECT_EQ(got->config, a.config);
  EXPECT_EQ(got->version, 7);
  EXPECT_EQ(got->created_at, a.created_at);
  EXPECT_EQ(got->updated_at, a.updated_at);
  EXPECT_EQ(raw_int("SELECT count(*) FROM agents"), 1) << "the name was data, not SQL";
}

TEST_P(StoreTest, GetMissingIsNotFound) {
  auto got = get(ids::uuid_v7());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, DuplicateIdIsAlreadyExists) {
  Agent a = insert_ok("first");
  Agent b = make_agent("second");
  b.id = a.id;
  Status s = insert(b);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
}

TEST_P(StoreTest, LiveNameIsUniqueUntilDecommissioned) {
  Agent a = insert_ok("unique");
  Status s = insert(make_agent("unique", "llm"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(s.error().reason, "conflict");
  EXPECT_NE(s.error().message.find("unique"), std::string::npos) << s.error().message;

  // Decommissioned agents keep their name but do not block it.
  a.status = AgentStatus::kDecommissioned;
  a.version = 2;
  ASSERT_TRUE(update(a, 1).ok());
  Agent b = insert_ok("unique");
  // A second decommissioned holder of the name is fine too.
  b.status = AgentStatus::kDecommissioned;
  b.version = 2;
  ASSERT_TRUE(update(b, 1).ok());
  insert_ok("unique");
}

TEST_P(StoreTest, RenameToTakenLiveNameIsAlreadyExistsAndChangesNothing) {
  insert_ok("alpha");
  Agent b = insert_ok("beta");
  Agent renamed = b;
  renamed.name = "alpha";
  renamed.version = 2;
  Status s = update(renamed, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
  auto got = get(b.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "beta");
  EXPECT_EQ(got->version, 1);
}

TEST_P(StoreTest, UpdateWritesEveryFieldWhenVersionMatches) {
  Agent a = insert_ok("upd");
  Agent changed = a;
  changed.name = "upd2";
  changed.type = "remote";
  changed.status = AgentStatus::kStopped;
  changed.status_reason = "stopped by test";
  changed.description = "new";
  changed.labels = {{"k", "v"}};
  changed.config = {{"heartbeatSeconds", 5}};
  changed.version = 2;
  changed.updated_at = a.updated_at + 5000;
  ASSERT_TRUE(update(changed, 1).ok());
  auto got = get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "upd2");
  EXPECT_EQ(got->type, "remote");
  EXPECT_EQ(got->status, AgentStatus::kStopped);
  EXPECT_EQ(got->status_reason, "stopped by test");
  EXPECT_EQ(got->description, "new");
  EXPECT_EQ(got->labels, changed.labels);
  EXPECT_EQ(got->config, changed.config);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->updated_at, changed.updated_at);
  EXPECT_EQ(got->created_at, a.created_at) << "created_at never changes";
}

TEST_P(StoreTest, UpdateWithStaleVersionIsFailedPreconditionAndChangesNothing) {
  Agent a = insert_ok("stale");
  Agent v2 = a;
  v2.description = "v2";
  v2.version = 2;
  ASSERT_TRUE(update(v2, 1).ok());

  Agent lost = a;
  lost.description = "lost update";
  lost.version = 2;
  Status s = update(lost, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(s.error().reason, "version_conflict");
  EXPECT_EQ(s.error().details.at("currentVersion").as_int64(), 2);
  auto got = get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->description, "v2");
  EXPECT_EQ(got->version, 2);
}

TEST_P(StoreTest, UpdateOfMissingAgentIsNotFound) {
  Agent ghost = make_agent("ghost");
  Status s = update(ghost, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, ListFiltersByStatusTypeAndName) {
  insert_ok("builder-1", "command", AgentStatus::kRunning);
  insert_ok("Builder-2", "llm", AgentStatus::kRunning);
  insert_ok("reviewer", "llm", AgentStatus::kStopped);
  insert_ok("tester", "command", AgentStatus::kCreated);
  insert_ok("retired", "command", AgentStatus::kDecommissioned);

  AgentFilter f;
  auto p = list(f);
  EXPECT_EQ(p.total, 4) << "decommissioned hidden by default";
  EXPECT_EQ(p.items.size(), 4u);

  f = {};
  f.include_decommissioned = true;
  p = list(f);
  EXPECT_EQ(p.total, 5);

  f = {};
  f.status = "running";
  p = list(f);
  EXPECT_EQ(p.total, 2);
  EXPECT_EQ(names(p), (std::vector<std::string>{"builder-1", "Builder-2"}));

  f = {};
  f.status = "decommissioned";  // naming the status shows them without the flag
  p = list(f);
  EXPECT_EQ(names(p), (std::vector<std::string>{"retired"}));

  f = {};
  f.type = "command";
  p = list(f);
  EXPECT_EQ(names(p), (std::vector<std::string>{"builder-1", "tester"}));
  f.include_decommissioned = true;
  p = list(f);
  EXPECT_EQ(names(p), (std::vector<std::string>{"builder-1", "tester", "retired"}));

  f = {};
  f.name_contains = "BUILD";  // case-insensitive
  p = list(f);
  EXPECT_EQ(p.total, 2);
  EXPECT_EQ(names(p), (std::vector<std::string>{"builder-1", "Builder-2"}));

  f = {};
  f.name_contains = "er";
  f.type = "llm";
  f.status = "stopped";
  p = list(f);
  EXPECT_EQ(names(p), (std::vector<std::string>{"reviewer"}));
  EXPECT_EQ(p.total, 1);

  f = {};
  f.status = "error";
  p = list(f);
  EXPECT_EQ(p.total, 0);
  EXPECT_TRUE(p.items.empty());
  EXPECT_FALSE(p.next_cursor.has_value());
}

TEST_P(StoreTest, CountByStatusGroupsUnderTypeAndNameIgnoringStatusAndPaging) {
  insert_ok("builder-1", "command", AgentStatus::kRunning);
  insert_ok("Builder-2", "llm", AgentStatus::kRunning);
  insert_ok("reviewer", "llm", AgentStatus::kStopped);
  insert_ok("tester", "command", AgentStatus::kCreated);
  insert_ok("retired", "command", AgentStatus::kDecommissioned);
  auto counts = [&](const AgentFilter& f) {
    std::map<std::string, std::int64_t> out;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.agents().count_by_status(f));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  };
  using Counts = std::map<std::string, std::int64_t>;
  AgentFilter f;
  f.status = "running";  // ignored, as are paging and include_decommissioned
  f.limit = 1;
  f.offset = 3;
  EXPECT_EQ(counts(f),
            (Counts{{"created", 1}, {"decommissioned", 1}, {"running", 2}, {"stopped", 1}}));
  f = {};
  f.type = "llm";
  EXPECT_EQ(counts(f), (Counts{{"running", 1}, {"stopped", 1}}));
  f = {};
  f.name_contains = "BUILD";
  EXPECT_EQ(counts(f), (Counts{{"running", 2}}));
  f.name_contains = "%";
  EXPECT_TRUE(counts(f).empty());
}

TEST_P(StoreTest, NameContainsTreatsWildcardsLiterally) {
  insert_ok("50%_off");
  insert_ok("500-off");
  insert_ok("a_b");
  insert_ok("axb");
  insert_ok("back\\slash");
  AgentFilter f;
  f.name_contains = "%";
  EXPECT_EQ(names(list(f)), (std::vector<std::string>{"50%_off"}));
  f.name_contains = "_";
  EXPECT_EQ(names(list(f)), (std::vector<std::string>{"50%_off", "a_b"}));
  f.name_contains = "\\";
  EXPECT_EQ(names(list(f)), (std::vector<std::string>{"back\\slash"}));
  f.name_contains = "zzz";
  EXPECT_EQ(list(f).total, 0);
}

TEST_P(StoreTest, LimitOffsetPagingWithTotals) {
  std::vector<std::string> all;
  for (int i = 0; i < 7; ++i) all.push_back(insert_ok("p" + std::to_string(i)).name);
  AgentFilter f;
  f.limit = 3;
  std::vector<std::string> seen;
  for (std::int64_t offset : {0, 3, 6}) {
    f.offset = offset;
    auto p = list(f);
    EXPECT_EQ(p.total, 7) << "total ignores paging";
    EXPECT_EQ(p.items.size(), offset == 6 ? 1u : 3u);
    EXPECT_EQ(p.next_cursor.has_value(), offset != 6);
    for (const auto& a : p.items) seen.push_back(a.name);
  }
  EXPECT_EQ(seen, all) << "creation order, no gaps, no repeats";
  f.offset = 7;
  auto p = list(f);
  EXPECT_TRUE(p.items.empty());
  EXPECT_EQ(p.total, 7);
}

TEST_P(StoreTest, KeysetCursorWalksEveryPageOnce) {
  std::vector<std::string> want;
  for (int i = 0; i < 8; ++i) {
    const bool llm = i % 3 == 0;
    Agent a = insert_ok("k" + std::to_string(i), llm ? "llm" : "command");
    if (!llm) want.push_back(a.id);
  }
  AgentFilter f;
  f.type = "command";
  f.limit = 2;
  std::vector<std::string> seen;
  int pages = 0;
  for (;;) {
    auto p = list(f);
    ++pages;
    EXPECT_EQ(p.total, 5) << "total counts the filter, not the cursor";
    for (const auto& a : p.items) {
      EXPECT_EQ(a.type, "command");
      seen.push_back(a.id);
    }
    if (!p.next_cursor) break;
    EXPECT_EQ(*p.next_cursor, p.items.back().id);
    f.after = p.next_cursor;
    f.offset = 1000;  // ignored when a cursor is given
    ASSERT_LT(pages, 10) << "cursor does not advance";
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, want);
}

TEST_P(StoreTest, CursorIsStableWhenEarlierRowsAreAdded) {
  for (int i = 0; i < 4; ++i) insert_ok("c" + std::to_string(i));
  AgentFilter f;
  f.limit = 2;
  auto first = list(f);
  ASSERT_TRUE(first.next_cursor.has_value());
  // A row with an id sorting before the cursor must not shift the next page.
  Agent early = make_agent("early");
  early.id = "00000000-0000-7000-8000-000000000000";
  ASSERT_TRUE(insert(early).ok());
  f.after = first.next_cursor;
  auto second = list(f);
  EXPECT_EQ(names(second), (std::vector<std::string>{"c2", "c3"}));
  EXPECT_EQ(second.total, 5);
}

TEST_P(StoreTest, PurgeRemovesAgentAndItsHistoryOnly) {
  Agent a = insert_ok("purged");
  Agent b = insert_ok("kept");
  ASSERT_TRUE(append_state(a.id, "", "created", 1).ok());
  ASSERT_TRUE(append_state(a.id, "created", "starting", 2).ok());
  ASSERT_TRUE(append_state(b.id, "", "created", 1).ok());
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.agents().purge(a.id); }).ok());
  auto got = get(a.id);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(history(a.id).empty());
  EXPECT_EQ(history(b.id).size(), 1u);
  EXPECT_TRUE(get(b.id).ok());

  Status s = store_->write([&](Tx& tx) { return tx.agents().purge(a.id); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, HistoryIsNewestFirstWithLimit) {
  Agent a = insert_ok("hist");
  const std::vector<std::string> states = {"created", "starting", "running", "stopping",
                                           "stopped"};
  for (std::size_t i = 0; i < states.size(); ++i) {
    ASSERT_TRUE(
        append_state(a.id, i == 0 ? "" : states[i - 1], states[i], static_cast<int>(i) + 1).ok());
  }
  auto h = history(a.id);
  ASSERT_EQ(h.size(), 5u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    const std::size_t k = states.size() - 1 - i;
    EXPECT_EQ(h[i].status, states[k]);
    EXPECT_EQ(h[i].version, static_cast<std::int64_t>(k) + 1);
    EXPECT_EQ(h[i].agent_id, a.id);
    EXPECT_EQ(h[i].reason, "because " + states[k]);
    EXPECT_GT(h[i].created_at, 0);
    if (i > 0) {
      EXPECT_GT(h[i - 1].id, h[i].id);
    }
  }
  EXPECT_EQ(h.back().from_status, "") << "NULL from_status reads back empty";
  EXPECT_EQ(h.front().from_status, "stopping");
  auto two = history(a.id, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].status, "stopped");
  EXPECT_EQ(two[1].status, "stopping");
  EXPECT_TRUE(history(ids::uuid_v7()).empty());
}

TEST_P(StoreTest, StateOfUnknownAgentIsRejected) {
  Status s = append_state(ids::uuid_v7(), "", "created", 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(s.error().reason, "foreign_key");
}

TEST_P(StoreTest, OutboxAppendPendingAndMarkPublished) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    std::int64_t id = 0;
    ASSERT_TRUE(store_
                    ->write([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(id, tx.outbox().append(event(
                                                  "t" + std::to_string(i),
                                                  "{\"n\":" + std::to_string(i) + "}")));
                      return Ok{};
                    })
                    .ok());
    if (!ids.empty()) {
      EXPECT_GT(id, ids.back()) << "ids increase";
    }
    ids.push_back(id);
  }
  auto p = pending();
  ASSERT_EQ(p.size(), 5u);
  for (std::size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(p[i].id, ids[i]);
    EXPECT_EQ(p[i].topic, "t" + std::to_string(i));
    EXPECT_EQ(boost::json::parse(p[i].payload).at("n").as_int64(), static_cast<std::int64_t>(i));
    EXPECT_EQ(p[i].correlation_id, "corr-t" + std::to_string(i));
    EXPECT_GT(p[i].created_at, 0);
  }
  auto limited = pending(2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[0].id, ids[0]);
  EXPECT_EQ(limited[1].id, ids[1]);

  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) {
                    return tx.outbox().mark_published({ids[0], ids[2]}, clock::now_ms());
                  })
                  .ok());
  p = pending();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].id, ids[1]);
  EXPECT_EQ(p[1].id, ids[3]);
  EXPECT_EQ(p[2].id, ids[4]);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"), 2);

  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) {
                    return tx.outbox().mark_published({ids[1], ids[3], ids[4]}, clock::now_ms());
                  })
                  .ok());
  EXPECT_TRUE(pending().empty());
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox"), 5) << "published rows are kept";
}

TEST_P(StoreTest, WriteRollsBackEverythingWhenFnFails) {
  Agent a = make_agent("rolled-back");
  Status s = store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.agents().insert(a));
    AgentStateEntry e;
    e.agent_id = a.id;
    e.status = "created";
    e.version = 1;
    e.created_at = clock::now_ms();
    DP_TRY(tx.agents().append_state(e));
    DP_TRY(tx.outbox().append(event("agent.status.update", "{}")));
    // Visible inside the unit...
    DP_TRY(tx.agents().get(a.id));
    return Error::failed_precondition("test_abort", "caller changed its mind");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "test_abort") << "write returns fn's own error";
  // ...and gone after it.
  EXPECT_EQ(get(a.id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(raw_int("SELECT count(*) FROM agents"), 0);
  EXPECT_EQ(raw_int("SELECT count(*) FROM agent_states"), 0);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox"), 0);
  // The store stays usable.
  insert_ok("rolled-back");
}

TEST_P(StoreTest, WriteRollsBackEarlierStatementsWhenALaterOneFails) {
  insert_ok("taken");
  Agent fresh = make_agent("fresh");
  Status s = store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.agents().insert(fresh));
    DP_TRY(tx.outbox().append(event("x", "{}")));
    return tx.agents().insert(make_agent("taken"));  // unique violation
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(get(fresh.id).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(pending().empty());
  EXPECT_EQ(raw_int("SELECT count(*) FROM agents"), 1);
}

// Concurrent writers (SQLite commits them in groups, one disk sync per group): every unit
// gets its own outcome. A unit that fails or throws leaves nothing behind and does not
// take its neighbours down; one that succeeds is readable as soon as its write returns.
TEST_P(StoreTest, ConcurrentWritesEachGetTheirOwnOutcome) {
  insert_ok("taken");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  struct Outcome {
    std::string id;
    bool ok = false;
    bool threw = false;
    bool visible = false;
  };
  std::vector<std::vector<Outcome>> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        Agent a = make_agent("w-" + std::to_string(n));
        Outcome o;
        o.id = a.id;
        try {
          Status s = store_->write([&](Tx& tx) -> Status {
            DP_TRY(tx.agents().insert(a));
            DP_TRY(tx.outbox().append(event("agent.status.update", "{}")));
            // Some units hold the transaction a moment, so others queue up behind them.
            if (n % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
            if (n % 7 == 3) return Error::failed_precondition("test_abort", "changed its mind");
            if (n % 11 == 5) return tx.agents().insert(make_agent("taken"));  // unique violation
            if (n % 13 == 6) throw std::runtime_error("unit threw");
            return Ok{};
          });
          o.ok = s.ok();
          if (o.ok) o.visible = get(a.id).ok();  // read your own write at once
        } catch (const std::runtime_error&) {
          o.threw = true;
        }
        outcomes[static_cast<std::size_t>(t)].push_back(o);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::int64_t succeeded = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const int n = t * kPerThread + i;
      const Outcome& o = outcomes[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)];
      const bool should_fail = n % 7 == 3 || n % 11 == 5 || n % 13 == 6;
      EXPECT_EQ(o.ok, !should_fail) << "unit " << n;
      EXPECT_EQ(o.threw, n % 7 != 3 && n % 11 != 5 && n % 13 == 6) << "unit " << n;
      if (o.ok) {
        ++succeeded;
        EXPECT_TRUE(o.visible) << "unit " << n << " not readable after its write returned";
      } else {
        EXPECT_EQ(get(o.id).error().code, ErrorCode::kNotFound) << "unit " << n << " left a row";
      }
    }
  }
  EXPECT_EQ(raw_int("SELECT count(*) FROM agents"), succeeded + 1);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox"), succeeded) << "a failed unit's event went too";
  insert_ok("still-usable");
}

// Relaxed writes (bookkeeping that does not wait for the disk) mixed with ordinary ones, from
// several threads: each gets its own outcome, a failed one leaves nothing, and what succeeded
// is readable at once, whichever kind the batch holding it was.
TEST_P(StoreTest, RelaxedWritesCommitInOrderWithOrdinaryOnes) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 30;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        Agent a = make_agent("r-" + std::to_string(n));
        auto fn = [&](Tx& tx) -> Status {
          DP_TRY(tx.agents().insert(a));
          DP_TRY(tx.outbox().append(event("agent.status.update", "{}")));
          if (n % 9 == 4) return Error::failed_precondition("test_abort", "changed its mind");
          return Ok{};
        };
        Status s = (n % 2 == 0) ? store_->write_relaxed(fn) : store_->write(fn);
        const bool should_fail = n % 9 == 4;
        if (s.ok() == should_fail) ++failures;
        if (s.ok() && !get(a.id).ok()) ++failures;
        if (!s.ok() && get(a.id).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::int64_t expected = 0;
  for (int n = 0; n < kThreads * kPerThread; ++n) expected += n % 9 == 4 ? 0 : 1;
  EXPECT_EQ(raw_int("SELECT count(*) FROM agents"), expected);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox"), expected);
  // A relaxed unit that marks rows published, then an ordinary one: both stay.
  auto p = pending();
  ASSERT_FALSE(p.empty());
  ASSERT_TRUE(store_->write_relaxed([&](Tx& tx) { return tx.outbox().mark_published({p[0].id}, clock::now_ms()); }).ok());
  insert_ok("after-relaxed");
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"), 1);
}

// The relay's read-only round: the same rows a claim returns, or nullopt while a row still
// waits for its seq (PostgreSQL, between commit and claim; never on SQLite).
TEST_P(StoreTest, ReadyToPublishIsTheReadOnlyClaim) {
  auto ready = [&]() {
    std::optional<std::vector<OutboxEvent>> out;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.outbox().ready_to_publish(10));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  };
  auto none = ready();
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  for (const char* t : {"a", "b"}) {
    ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
      DP_TRY(tx.outbox().append(event(t, "{}")));
      return Ok{};
    }).ok());
  }
  auto before = ready();
  if (GetParam() == Backend::kSqlite) {
    ASSERT_TRUE(before.has_value()) << "SQLite sequences at append";
    ASSERT_EQ(before->size(), 2u);
    EXPECT_EQ((*before)[0].seq, 1);
  } else {
    EXPECT_FALSE(before.has_value()) << "PostgreSQL rows wait for a claim";
  }
  std::vector<OutboxEvent> claimed;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(claimed, tx.outbox().claim_for_publishing(10));
    return Ok{};
  }).ok());
  auto after = ready();
  ASSERT_TRUE(after.has_value());
  ASSERT_EQ(after->size(), claimed.size());
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    EXPECT_EQ((*after)[i].id, claimed[i].id);
    EXPECT_EQ((*after)[i].seq, claimed[i].seq);
    EXPECT_EQ((*after)[i].topic, claimed[i].topic);
  }
  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return tx.outbox().mark_published({claimed[0].id}, clock::now_ms());
  }).ok());
  EXPECT_EQ(ready()->size(), claimed.size() - 1);
}

TEST_P(StoreTest, ReadIsReadOnly) {
  Agent a = make_agent("sneaky");
  Status s = store_->read([&](Tx& tx) { return tx.agents().insert(a); });
  EXPECT_FALSE(s.ok()) << "a read unit must not write";
  EXPECT_EQ(raw_int("SELECT count(*) FROM agents"), 0);
}

TEST_P(StoreTest, ReadReturnsFnError) {
  Status s = store_->read([](Tx&) -> Status { return Error::not_found("nope"); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "nope");
  EXPECT_TRUE(store_->ping().ok()) << "the connection went back to the pool in good order";
}

TEST_P(StoreTest, MigrateIsIdempotentAndRecorded) {
  const auto& all = migrations();
  ASSERT_FALSE(all.empty());
  const std::int64_t latest = all.back().version;
  EXPECT_EQ(store_->info().schema_version, latest);
  for (int i = 0; i < 2; ++i) {
    auto m = store_->migrate();
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(*m, latest);
  }
  EXPECT_EQ(raw_int("SELECT count(*) FROM schema_migrations"),
            static_cast<std::int64_t>(all.size()));
  EXPECT_EQ(raw_int("SELECT max(version) FROM schema_migrations"), latest);
  EXPECT_EQ(raw("SELECT name FROM schema_migrations WHERE version = 1"), std::string(all[0].name));
  EXPECT_FALSE(raw("SELECT applied_at FROM schema_migrations WHERE version = 1").empty());
  // Data survives a second migrate.
  Agent a = insert_ok("survivor");
  ASSERT_TRUE(store_->migrate().ok());
  EXPECT_TRUE(get(a.id).ok());
}

TEST_P(StoreTest, DatabaseNewerThanBinaryIsRefused) {
  const std::int64_t future = migrations().back().version + 1;
  raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
      std::to_string(future) + ", '9999_from_the_future', '2030-01-01T00:00:00Z')");
  auto m = store_->migrate();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(m.error().reason, "schema_too_new");
  EXPECT_NE(m.error().message.find(std::to_string(future)), std::string::npos)
      << m.error().message;
  EXPECT_EQ(raw_int("SELECT count(*) FROM schema_migrations"),
            static_cast<std::int64_t>(migrations().size()) + 1)
      << "nothing was applied or removed";
}

TEST_P(StoreTest, PingIntegrityAndInfo) {
  EXPECT_TRUE(store_->ping().ok());
  EXPECT_TRUE(store_->check_integrity().ok());
  const StoreInfo info = store_->info();
  EXPECT_EQ(info.backend, backend_name(GetParam()));
  EXPECT_FALSE(info.location.empty());
  EXPECT_FALSE(info.server_version.empty());
  if (GetParam() == Backend::kPostgres) {
    EXPECT_NE(info.location.find(dbname_), std::string::npos) << info.location;
  } else {
    EXPECT_NE(info.location.find(dir_.string()), std::string::npos) << info.location;
  }
}

TEST_P(StoreTest, CallsAfterCloseAreUnavailable) {
  insert_ok("before-close");
  store_->close();
  auto expect_unavailable = [](const Status& s, const char* what) {
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << what << ": " << s.error().message;
  };
  bool ran = false;
  expect_unavailable(store_->write([&](Tx&) -> Status {
    ran = true;
    return Ok{};
  }),
                     "write");
  expect_unavailable(store_->read([&](Tx&) -> Status {
    ran = true;
    return Ok{};
  }),
                     "read");
  EXPECT_FALSE(ran) << "fn must not run on a closed store";
  expect_unavailable(store_->ping(), "ping");
  expect_unavailable(store_->check_integrity(), "check_integrity");
  expect_unavailable(store_->migrate(), "migrate");
  store_->close();  // idempotent
  expect_unavailable(store_->ping(), "ping after second close");
}

TEST_P(StoreTest, ConcurrentWritersLoseNoUpdate) {
  Agent a = make_agent("counter");
  a.config = {{"n", 0}};
  ASSERT_TRUE(insert(a).ok());
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;
  std::atomic<int> unexpected{0};
  std::atomic<int> retries{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        for (int attempt = 0;; ++attempt) {
          Status s = store_->write([&](Tx& tx) -> Status {
            DP_ASSIGN_OR_RETURN(Agent cur, tx.agents().get(a.id));
            const std::int64_t expected = cur.version;
            cur.config["n"] = cur.config.at("n").as_int64() + 1;
            cur.version += 1;
            return tx.agents().update(cur, expected);
          });
          if (s.ok()) break;
          // Optimistic concurrency: a stale read is refused, never silently applied.
          const auto code = s.error().code;
          if ((code == ErrorCode::kFailedPrecondition || code == ErrorCode::kAborted ||
               code == ErrorCode::kUnavailable) &&
              attempt < 1000) {
            ++retries;
            continue;
          }
          ++unexpected;
          break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  auto got = get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->config.at("n").as_int64(), kThreads * kIncrements);
  EXPECT_EQ(got->version, 1 + kThreads * kIncrements);
}

TEST_P(StoreTest, ConcurrentInsertsOfOneNameLetExactlyOneWin) {
  constexpr int kThreads = 6;
  std::atomic<int> won{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread also inserts an agent of its own, which must all survive.
      EXPECT_TRUE(insert(make_agent("own-" + std::to_string(t))).ok());
      Status s = insert(make_agent("contested"));
      if (s.ok()) {
        ++won;
      } else if (s.error().code == ErrorCode::kAlreadyExists) {
        ++conflicts;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
  EXPECT_EQ(list({}).total, kThreads + 1);
}

TEST_P(StoreTest, ConcurrentOutboxAppendsGetDistinctIds) {
  constexpr int kThreads = 4;
  constexpr int kEach = 20;
  std::vector<std::vector<std::int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::int64_t id = 0;
        Status s = store_->write([&](Tx& tx) -> Status {
          DP_ASSIGN_OR_RETURN(id, tx.outbox().append(event("c", "{}")));
          return Ok{};
        });
        EXPECT_TRUE(s.ok()) << s.error().message;
        got[static_cast<std::size_t>(t)].push_back(id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::int64_t> all;
  for (const auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(pending().size(), static_cast<std::size_t>(kThreads * kEach));
}

// --- Outbox sequencing (the relay's side) ---

TEST_P(StoreTest, ClaimGivesSeqInIdOrderAndKeepsItUntilPublished) {
  std::vector<std::int64_t> ids;
  auto append = [&](const std::string& topic) {
    std::int64_t id = 0;
    ASSERT_TRUE(store_
                    ->write([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(id, tx.outbox().append(event(topic, "{}")));
                      return Ok{};
                    })
                    .ok());
    ids.push_back(id);
  };
  auto claim = [&](int limit) {
    std::vector<OutboxEvent> out;
    Status s = store_->write([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.outbox().claim_for_publishing(limit));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  };
  for (const char* t : {"a", "b", "c"}) append(t);

  auto c = claim(2);  // sequences only two
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, ids[0]);
  EXPECT_EQ(c[0].seq, 1);
  EXPECT_EQ(c[0].topic, "a");
  EXPECT_EQ(c[1].seq, 2);

  c = claim(10);  // a crashed relay's rows come back with the seq they had
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].seq, 1);
  EXPECT_EQ(c[1].seq, 2);
  EXPECT_EQ(c[2].id, ids[2]);
  EXPECT_EQ(c[2].seq, 3);

  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) {
                    return tx.outbox().mark_published({ids[0], ids[1]}, clock::now_ms());
                  })
                  .ok());
  append("d");
  append("e");
  c = claim(10);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].seq, 3);
  EXPECT_EQ(c[1].seq, 4);
  EXPECT_EQ(c[1].topic, "d");
  EXPECT_EQ(c[2].seq, 5);

  std::vector<OutboxEvent> after;
  std::pair<std::int64_t, std::int64_t> range;
  ASSERT_TRUE(store_
                  ->read([&](Tx& tx) -> Status {
                    DP_ASSIGN_OR_RETURN(after, tx.outbox().since(3, 10));
                    DP_ASSIGN_OR_RETURN(range, tx.outbox().seq_range());
                    return Ok{};
                  })
                  .ok());
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].seq, 4);
  EXPECT_EQ(after[1].seq, 5);
  EXPECT_EQ(range, (std::pair<std::int64_t, std::int64_t>{1, 5}));
}

TEST_P(StoreTest, SeqRangeOfEmptyOutboxIsZero) {
  std::pair<std::int64_t, std::int64_t> range{-1, -1};
  ASSERT_TRUE(store_
                  ->read([&](Tx& tx) -> Status {
                    DP_ASSIGN_OR_RETURN(range, tx.outbox().seq_range());
                    return Ok{};
                  })
                  .ok());
  EXPECT_EQ(range, (std::pair<std::int64_t, std::int64_t>{0, 0}));
}

TEST_P(StoreTest, PruneDeletesOldPublishedEventsButKeepsTheNewestSeq) {
  const std::int64_t now = clock::now_ms();
  const std::int64_t hour = 3'600'000;
  std::vector<std::int64_t> ids;
  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) -> Status {
                    for (int i = 0; i < 4; ++i) {
                      OutboxEvent e = event("old", "{}");
                      e.created_at = now - 2 * hour;
                      DP_ASSIGN_OR_RETURN(std::int64_t id, tx.outbox().append(e));
                      ids.push_back(id);
                    }
                    OutboxEvent fresh = event("fresh", "{}");
                    DP_ASSIGN_OR_RETURN(std::int64_t id, tx.outbox().append(fresh));
                    ids.push_back(id);
                    return Ok{};
                  })
                  .ok());
  // Sequence the first three old ones and the fresh one is left unsequenced; publish ids 0..2.
  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) -> Status {
                    DP_TRY(tx.outbox().claim_for_publishing(3));
                    return tx.outbox().mark_published({ids[0], ids[1], ids[2]}, now);
                  })
                  .ok());
  std::int64_t pruned = -1;
  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) -> Status {
                    DP_ASSIGN_OR_RETURN(pruned, tx.outbox().prune(now - hour));
                    return Ok{};
                  })
                  .ok());
  // ids[3] is old but unpublished and ids[4] is fresh: both stay. The newest seq stays too:
  // on PostgreSQL that is ids[2] (seqs are given by claim_for_publishing, three were claimed);
  // SQLite gives the seq at append, so ids[4] holds it and all three published rows can go.
  const bool seq_at_append = GetParam() == Backend::kSqlite;
  EXPECT_EQ(pruned, seq_at_append ? 3 : 2);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox"), seq_at_append ? 2 : 3);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox WHERE id = " + std::to_string(ids[2])),
            seq_at_append ? 0 : 1);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox WHERE id = " + std::to_string(ids[4])), 1);
  EXPECT_EQ(pending().size(), 2u);
}

// --- Leases ---

TEST_P(StoreTest, LeaseIsExclusiveUntilItLapses) {
  auto acquire = [&](const std::string& holder, std::int64_t now, std::int64_t ttl) {
    bool held = false;
    Status s = store_->write([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(held, tx.leases().acquire("relay", holder, now, ttl));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return held;
  };
  auto release = [&](const std::string& holder) {
    bool was_held = false;
    EXPECT_TRUE(store_->write([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(was_held, tx.leases().release("relay", holder));
      return Ok{};
    }).ok());
    return was_held;
  };
  auto take = [&](const std::string& holder, std::int64_t now, std::int64_t ttl) {
    EXPECT_TRUE(store_->write([&](Tx& tx) { return tx.leases().take("relay", holder, now, ttl); }).ok());
  };
  const std::int64_t t0 = 1'000'000;
  EXPECT_TRUE(acquire("node-a", t0, 1000));
  EXPECT_FALSE(acquire("node-b", t0 + 500, 1000)) << "a live lease is exclusive";
  EXPECT_TRUE(acquire("node-a", t0 + 900, 1000)) << "the holder renews";
  EXPECT_FALSE(acquire("node-b", t0 + 1500, 1000)) << "renewed until t0 + 1900";
  EXPECT_TRUE(acquire("node-b", t0 + 2000, 1000)) << "a lapsed lease is taken over";
  EXPECT_FALSE(acquire("node-a", t0 + 2100, 1000));
  EXPECT_FALSE(release("node-a")) << "not the holder: no effect";
  EXPECT_FALSE(acquire("node-a", t0 + 2200, 1000));
  EXPECT_TRUE(release("node-b"));
  EXPECT_TRUE(acquire("node-a", t0 + 2300, 1000)) << "a released lease is free at once";
  // take: the newest claim wins over a live lease; the one it displaced learns it on renewal.
  take("node-c", t0 + 2400, 1000);
  EXPECT_FALSE(acquire("node-a", t0 + 2500, 1000)) << "node-a's lease was taken";
  EXPECT_TRUE(acquire("node-c", t0 + 2600, 1000));
  EXPECT_FALSE(release("node-a"));
  EXPECT_TRUE(release("node-c"));
  EXPECT_FALSE(release("node-c")) << "already released";
  take("node-d", t0 + 2700, 1000);  // also when nobody held it
  EXPECT_FALSE(acquire("node-a", t0 + 2800, 1000));
}

// --- Messages ---

TEST_P(StoreTest, MessagesListInOrderAndPurgeFollowsForeignKeys) {
  Agent alice = insert_ok("alice");
  Agent bob = insert_ok("bob");
  auto send = [&](const Agent& from, const Agent& to, const std::string& type) {
    model::Message m;
    m.id = ids::uuid_v7();
    m.from_agent_id = from.id;
    m.to_agent_id = to.id;
    m.message_type = type;
    m.payload = {{"text", type}};
    m.created_at = clock::now_ms();
    EXPECT_TRUE(store_->write([&](Tx& tx) { return tx.messages().insert(m); }).ok());
    return m.id;
  };
  const auto m1 = send(alice, bob, "one");
  const auto m2 = send(alice, bob, "two");
  const auto m3 = send(alice, bob, "three");
  send(bob, alice, "reply");
  auto inbox = [&](const std::string& agent, std::optional<std::string> after, int limit,
                   bool undelivered) {
    Page<model::Message> p;
    Status s = store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(p, tx.messages().list(agent, after, limit, undelivered));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return p;
  };
  auto p = inbox(bob.id, std::nullopt, 2, false);
  EXPECT_EQ(p.total, 3);
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].id, m1);
  EXPECT_EQ(p.items[0].payload.at("text").as_string(), "one");
  EXPECT_EQ(p.items[0].from_agent_id, alice.id);
  EXPECT_FALSE(p.items[0].delivered_at.has_value());
  ASSERT_TRUE(p.next_cursor.has_value());
  p = inbox(bob.id, p.next_cursor, 2, false);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].id, m3);
  EXPECT_FALSE(p.next_cursor.has_value());

  std::int64_t marked = 0;
  ASSERT_TRUE(store_
                  ->write([&](Tx& tx) -> Status {
                    // m2 twice, and a message of someone else's: only m2 counts, once.
                    DP_ASSIGN_OR_RETURN(marked, tx.messages().mark_delivered(
                                                    bob.id, {m2, m2, "not-a-message"}, 5000));
                    return Ok{};
                  })
                  .ok());
  EXPECT_EQ(marked, 1);
  p = inbox(bob.id, std::nullopt, 10, true);
  EXPECT_EQ(p.total, 2);
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].id, m1);
  EXPECT_EQ(p.items[1].id, m3);

  // Purging alice keeps bob's inbox (sender set to none) and drops alice's own inbox.
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.agents().purge(alice.id); }).ok());
  p = inbox(bob.id, std::nullopt, 10, false);
  ASSERT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.items[0].from_agent_id, "");
  EXPECT_EQ(inbox(alice.id, std::nullopt, 10, false).total, 0);
  EXPECT_EQ(raw_int("SELECT count(*) FROM messages"), 3);
}

// Identity: users, API keys, refresh tokens.

model::User make_user(const std::string& username, const std::string& role = "viewer") {
  model::User u;
  u.id = ids::uuid_v7();
  u.username = username;
  u.display_name = "User " + username;
  u.role = role;
  u.status = "active";
  u.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  u.created_at = u.updated_at = 1'700'000'000'000;
  return u;
}

TEST_P(StoreTest, UserRoundTripsEveryFieldAndFindsByNameAndExternalIdentity) {
  model::User u = make_user("o'brien; --", "operator");
  u.failed_logins = 3;
  u.locked_until = 1'700'000'123'456;
  u.last_login_at = 1'700'000'000'500;
  u.external_issuer = "https://idp.example";
  u.external_subject = "sub-1";
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.users().insert(u); }).ok());
  std::optional<model::User> by_id, by_name, by_ext;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(by_id, tx.users().get(u.id));
                DP_ASSIGN_OR_RETURN(by_name, tx.users().find_by_username(u.username));
                DP_ASSIGN_OR_RETURN(by_ext,
                                    tx.users().find_by_external("https://idp.example", "sub-1"));
                return Ok{};
              }).ok());
  for (const auto* got : {&*by_id, &*by_name, &*by_ext}) {
    EXPECT_EQ(got->id, u.id);
    EXPECT_EQ(got->username, u.username);
    EXPECT_EQ(got->display_name, u.display_name);
    EXPECT_EQ(got->role, "operator");
    EXPECT_EQ(got->status, "active");
    EXPECT_EQ(got->password_hash, u.password_hash);
    EXPECT_EQ(got->failed_logins, 3);
    EXPECT_EQ(got->locked_until, u.locked_until);
    EXPECT_EQ(got->last_login_at, u.last_login_at);
    EXPECT_EQ(got->external_issuer, u.external_issuer);
    EXPECT_EQ(got->external_subject, u.external_subject);
    EXPECT_EQ(got->created_at, u.created_at);
  }
  Status missing = store_->read([&](Tx& tx) { return Status(tx.users().find_by_username("nobody")); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, UsernameAndExternalIdentityAreUnique) {
  model::User a = make_user("alice");
  a.external_issuer = "https://idp";
  a.external_subject = "42";
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.users().insert(a); }).ok());
  Status dup = store_->write([&](Tx& tx) { return tx.users().insert(make_user("alice")); });
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  model::User b = make_user("bob");
  b.external_issuer = "https://idp";
  b.external_subject = "42";
  Status dup_ext = store_->write([&](Tx& tx) { return tx.users().insert(b); });
  ASSERT_FALSE(dup_ext.ok());
  EXPECT_EQ(dup_ext.error().code, ErrorCode::kAlreadyExists);
  // Local users have no external identity: many may coexist.
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.users().insert(make_user("carol")); }).ok());
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.users().insert(make_user("dave")); }).ok());
  EXPECT_EQ(raw_int("SELECT count(*) FROM users"), 3);
}

TEST_P(StoreTest, UserUpdateListAndCountActive) {
  model::User a = make_user("bea", "admin");
  model::User b = make_user("abe", "admin");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_TRY(tx.users().insert(a));
                return tx.users().insert(b);
              }).ok());
  a.status = "disabled";
  a.role = "viewer";
  a.display_name = "Bea";
  a.password_hash = "other";
  a.failed_logins = 0;
  a.locked_until.reset();
  a.last_login_at = 1'700'000'999'000;
  a.updated_at = 1'700'000'999'000;
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.users().update(a); }).ok());
  std::vector<model::User> all;
  std::int64_t admins = -1;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(all, tx.users().list());
                DP_ASSIGN_OR_RETURN(admins, tx.users().count_active("admin"));
                return Ok{};
              }).ok());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].username, "abe");  // by username
  EXPECT_EQ(all[1].status, "disabled");
  EXPECT_EQ(all[1].role, "viewer");
  EXPECT_EQ(all[1].display_name, "Bea");
  EXPECT_EQ(all[1].password_hash, "other");
  EXPECT_FALSE(all[1].locked_until.has_value());
  EXPECT_EQ(all[1].last_login_at, a.last_login_at);
  EXPECT_EQ(admins, 1);
  model::User ghost = make_user("ghost");
  Status s = store_->write([&](Tx& tx) { return tx.users().update(ghost); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  // A role outside the set is refused by the schema, not stored.
  Status bad = store_->write([&](Tx& tx) { return tx.users().insert(make_user("eve", "root")); });
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(raw_int("SELECT count(*) FROM users WHERE username = 'eve'"), 0);
}

TEST_P(StoreTest, ApiKeysInsertFindRevokeTouchAndList) {
  model::ApiKey k;
  k.id = ids::uuid_v7();
  k.name = "ci";
  k.prefix = "abc123def456";
  k.key_hash = std::string(64, 'a');
  k.role = "agent";
  k.agent_id = "0190aaaa-0000-7000-8000-000000000001";
  k.created_by = "someone";
  k.expires_at = 1'800'000'000'000;
  k.created_at = 1'700'000'000'000;
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.api_keys().insert(k); }).ok());
  model::ApiKey k2 = k;
  k2.id = ids::uuid_v7();
  k2.name = "other";
  Status dup = store_->write([&](Tx& tx) { return tx.api_keys().insert(k2); });
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  k2.prefix = "zzz999zzz999";
  k2.agent_id.clear();
  k2.expires_at.reset();
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.api_keys().insert(k2); }).ok());

  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_TRY(tx.api_keys().touch(k.id, 1'700'000'000'100));
                DP_TRY(tx.api_keys().revoke(k.id, 1'700'000'000'200));
                // Revoking again keeps the first time.
                return tx.api_keys().revoke(k.id, 1'700'000'000'300);
              }).ok());
  std::optional<model::ApiKey> got;
  std::vector<model::ApiKey> all;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(got, tx.api_keys().find_by_prefix("abc123def456"));
                DP_ASSIGN_OR_RETURN(all, tx.api_keys().list());
                return Ok{};
              }).ok());
  EXPECT_EQ(got->id, k.id);
  EXPECT_EQ(got->key_hash, k.key_hash);
  EXPECT_EQ(got->role, "agent");
  EXPECT_EQ(got->agent_id, k.agent_id);
  EXPECT_EQ(got->created_by, "someone");
  EXPECT_EQ(got->expires_at, k.expires_at);
  EXPECT_EQ(got->last_used_at, std::optional<std::int64_t>(1'700'000'000'100));
  EXPECT_EQ(got->revoked_at, std::optional<std::int64_t>(1'700'000'000'200));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, k2.id);  // newest first
  EXPECT_EQ(all[0].agent_id, "");
  EXPECT_FALSE(all[0].expires_at.has_value());
  Status s = store_->write([&](Tx& tx) { return tx.api_keys().revoke(ids::uuid_v7(), 1); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, RefreshTokensRotateOnceAndRevokeByFamilyAndUser) {
  model::User u = make_user("rt");
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.users().insert(u); }).ok());
  auto token = [&](const std::string& family, const std::string& hash) {
    model::RefreshToken t;
    t.id = ids::uuid_v7();
    t.user_id = u.id;
    t.family_id = family;
    t.token_hash = hash;
    t.expires_at = 1'800'000'000'000;
    t.created_at = 1'700'000'000'000;
    return t;
  };
  auto t1 = token("fam-a", "h1");
  auto t2 = token("fam-a", "h2");
  auto t3 = token("fam-b", "h3");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_TRY(tx.refresh_tokens().insert(t1));
                DP_TRY(tx.refresh_tokens().insert(t2));
                return tx.refresh_tokens().insert(t3);
              }).ok());
  Status dup = store_->write([&](Tx& tx) { return tx.refresh_tokens().insert(token("x", "h1")); });
  EXPECT_FALSE(dup.ok());

  bool first = false, second = true;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(first, tx.refresh_tokens().mark_rotated(t1.id, 1000));
                DP_ASSIGN_OR_RETURN(second, tx.refresh_tokens().mark_rotated(t1.id, 2000));
                return Ok{};
              }).ok());
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);  // the compare-and-set lets one refresh win

  std::int64_t revoked = 0;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(revoked, tx.refresh_tokens().revoke_family("fam-a", 3000));
                return Ok{};
              }).ok());
  EXPECT_EQ(revoked, 2);
  std::optional<model::RefreshToken> g1, g3;
  bool rotate_revoked = true;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(g1, tx.refresh_tokens().find_by_hash("h1"));
                DP_ASSIGN_OR_RETURN(g3, tx.refresh_tokens().find_by_hash("h3"));
                DP_ASSIGN_OR_RETURN(rotate_revoked, tx.refresh_tokens().mark_rotated(t2.id, 4000));
                return Ok{};
              }).ok());
  EXPECT_EQ(g1->rotated_at, std::optional<std::int64_t>(1000));
  EXPECT_EQ(g1->revoked_at, std::optional<std::int64_t>(3000));
  EXPECT_EQ(g1->family_id, "fam-a");
  EXPECT_EQ(g1->user_id, u.id);
  EXPECT_EQ(g1->expires_at, 1'800'000'000'000);
  EXPECT_FALSE(g3->revoked_at.has_value());
  EXPECT_FALSE(rotate_revoked);  // a revoked token cannot be rotated
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                DP_ASSIGN_OR_RETURN(revoked, tx.refresh_tokens().revoke_user(u.id, 5000));
                return Ok{};
              }).ok());
  EXPECT_EQ(revoked, 1);
  Status missing = store_->read([&](Tx& tx) { return Status(tx.refresh_tokens().find_by_hash("nope")); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, MigrationBelowTheHighestAppliedOneIsStillApplied) {
  // As if 0002 had been merged after the database reached a higher version: undo it and
  // forget it, keeping the later ones recorded.
  raw("DROP TABLE leases");
  raw("DROP INDEX outbox_seq");
  raw("DROP INDEX outbox_unsequenced");
  raw("DROP INDEX outbox_pending_seq");  // 0005 indexes the column 0002 adds
  raw("ALTER TABLE outbox DROP COLUMN seq");
  raw("DELETE FROM schema_migrations WHERE version = 2");
  const std::int64_t latest = migrations().back().version;
  ASSERT_GT(latest, 2);
  auto m = store_->migrate();
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, latest);
  EXPECT_EQ(raw_int("SELECT count(*) FROM schema_migrations WHERE version = 2"), 1);
  EXPECT_EQ(raw_int("SELECT count(*) FROM leases"), 0);
  EXPECT_EQ(raw_int("SELECT count(*) FROM outbox WHERE seq IS NULL"), 0);
}

// --- Audit log ---

model::AuditRecord audit_entry(const std::string& action, const std::string& actor = "alice",
                               const std::string& outcome = "success") {
  model::AuditRecord r;
  r.id = ids::uuid_v7();
  r.at = clock::now_ms();
  r.actor_id = "id-" + actor;
  r.actor_name = actor;
  r.actor_kind = "user";
  r.action = action;
  r.target = "agent:" + action;
  r.outcome = outcome;
  r.status = outcome == "success" ? 200 : 403;
  r.correlation_id = "corr-" + action;
  r.source_address = "127.0.0.1";
  r.details = R"({"queryKeys":["limit"],"role":"admin"})";
  return r;
}

model::AuditRecord append_audit(Store& s, const model::AuditRecord& r) {
  model::AuditRecord out;
  Status st = s.write([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.audit().append(r));
    return Ok{};
  });
  EXPECT_TRUE(st.ok()) << st.error().message;
  return out;
}

ChainReport verify_audit(Store& s, std::int64_t from = 1, std::int64_t to = 0) {
  ChainReport out;
  Status st = s.read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.audit().verify(from, to));
    return Ok{};
  });
  EXPECT_TRUE(st.ok()) << st.error().message;
  return out;
}

Page<model::AuditRecord> list_audit(Store& s, const AuditFilter& f) {
  Page<model::AuditRecord> out;
  Status st = s.read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(out, tx.audit().list(f));
    return Ok{};
  });
  EXPECT_TRUE(st.ok()) << st.error().message;
  return out;
}

std::vector<std::int64_t> seqs(const Page<model::AuditRecord>& p) {
  std::vector<std::int64_t> out;
  for (const auto& r : p.items) out.push_back(r.seq);
  return out;
}

TEST_P(StoreTest, AuditAppendsChainFromGenesisAndRoundTripEveryField) {
  EXPECT_TRUE(verify_audit(*store_).verified);
  EXPECT_EQ(verify_audit(*store_).checked, 0);
  std::vector<model::AuditRecord> stored;
  for (const char* a : {"POST /api/v1/agents", "auth.login", "DELETE /api/v1/agents/:id"}) {
    stored.push_back(append_audit(*store_, audit_entry(a)));
  }
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].seq, 1);
  EXPECT_EQ(stored[0].prev_hash, audit_chain::kGenesisHash);
  for (std::size_t i = 1; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].seq, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(stored[i].prev_hash, stored[i - 1].hash);
  }
  for (const auto& r : stored) EXPECT_EQ(r.hash, audit_chain::compute_hash(r));

  AuditFilter f;
  const auto page = list_audit(*store_, f);
  ASSERT_EQ(page.items.size(), 3u);
  EXPECT_EQ(page.total, 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& got = page.items[i];       // newest first
    const auto& want = stored[2 - i];
    EXPECT_EQ(got.seq, want.seq);
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.at, want.at);
    EXPECT_EQ(got.actor_id, want.actor_id);
    EXPECT_EQ(got.actor_name, want.actor_name);
    EXPECT_EQ(got.actor_kind, want.actor_kind);
    EXPECT_EQ(got.action, want.action);
    EXPECT_EQ(got.target, want.target);
    EXPECT_EQ(got.outcome, want.outcome);
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.correlation_id, want.correlation_id);
    EXPECT_EQ(got.source_address, want.source_address);
    EXPECT_EQ(got.details, want.details);
    EXPECT_EQ(got.prev_hash, want.prev_hash);
    EXPECT_EQ(got.hash, want.hash);
  }
  const auto report = verify_audit(*store_);
  EXPECT_TRUE(report.verified) << report.reason;
  EXPECT_EQ(report.checked, 3);
  EXPECT_EQ(report.first_seq, 1);
  EXPECT_EQ(report.last_seq, 3);
  EXPECT_EQ(report.head_hash, stored[2].hash);
}

TEST_P(StoreTest, AuditListFiltersAndPagesNewestFirst) {
  const std::int64_t t0 = clock::now_ms() - 10'000;
  auto at = [&](model::AuditRecord r, std::int64_t offset) {
    r.at = t0 + offset;
    return append_audit(*store_, r);
  };
  at(audit_entry("POST /api/v1/agents", "alice"), 0);                        // 1
  at(audit_entry("POST /api/v1/agents/:id/start", "bob"), 1000);             // 2
  at(audit_entry("auth.login", "mallory", "denied"), 2000);                  // 3
  at(audit_entry("POST /api/v1/agents_%", "alice"), 3000);                   // 4
  at(audit_entry("DELETE /api/v1/agents/:id", "bob", "failure"), 4000);      // 5

  AuditFilter f;
  f.actor = "bob";
  EXPECT_EQ(seqs(list_audit(*store_, f)), (std::vector<std::int64_t>{5, 2}));
  f.actor = "id-alice";  // the actor's id matches too
  EXPECT_EQ(seqs(list_audit(*store_, f)), (std::vector<std::int64_t>{4, 1}));

  f = {};
  f.action_prefix = "POST /api/v1/agents";
  EXPECT_EQ(seqs(list_audit(*store_, f)), (std::vector<std::int64_t>{4, 2, 1}));
  f.action_prefix = "POST /api/v1/agents_%";  // wildcards are literal
  EXPECT_EQ(seqs(list_audit(*store_, f)), (std::vector<std::int64_t>{4}));

  f = {};
  f.outcome = "denied";
  EXPECT_EQ(seqs(list_audit(*store_, f)), (std::vector<std::int64_t>{3}));
  f = {};
  f.target = "agent:auth.login";
  EXPECT_EQ(seqs(list_audit(*store_, f)), (std::vector<std::int64_t>{3}));

  f = {};
  f.from_ms = t0 + 1000;
  f.to_ms = t0 + 4000;  // exclusive
  const auto window = list_audit(*store_, f);
  EXPECT_EQ(seqs(window), (std::vector<std::int64_t>{4, 3, 2}));
  EXPECT_EQ(window.total, 3);

  // Keyset paging walks every entry once, newest first, with the total of the filter.
  f = {};
  f.limit = 2;
  std::vector<std::int64_t> all;
  for (int guard = 0; guard < 10; ++guard) {
    const auto p = list_audit(*store_, f);
    EXPECT_EQ(p.total, 5);
    for (auto s : seqs(p)) all.push_back(s);
    if (!p.next_cursor) break;
    f.before_seq = std::stoll(*p.next_cursor);
  }
  EXPECT_EQ(all, (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
}

TEST_P(StoreTest, AuditVerifyFindsAnAlteredField) {
  for (int i = 0; i < 4; ++i) append_audit(*store_, audit_entry("a" + std::to_string(i)));
  ASSERT_TRUE(verify_audit(*store_).verified);
  raw("UPDATE audit_log SET outcome = 'success', actor_name = 'mallory' WHERE seq = 3");
  const auto report = verify_audit(*store_);
  EXPECT_FALSE(report.verified);
  ASSERT_TRUE(report.broken_at.has_value());
  EXPECT_EQ(*report.broken_at, 3);
  EXPECT_EQ(report.checked, 2);
  EXPECT_NE(report.reason.find("altered"), std::string::npos) << report.reason;
}

TEST_P(StoreTest, AuditVerifyFindsAnAlteredDetailsText) {
  for (int i = 0; i < 3; ++i) append_audit(*store_, audit_entry("a" + std::to_string(i)));
  // The same JSON object with other whitespace is still an edit of the stored bytes.
  raw(R"(UPDATE audit_log SET details = '{"queryKeys": ["limit"], "role": "admin"}' WHERE seq = 1)");
  const auto report = verify_audit(*store_);
  ASSERT_TRUE(report.broken_at.has_value());
  EXPECT_EQ(*report.broken_at, 1);
}

TEST_P(StoreTest, AuditVerifyFindsADeletedRow) {
  for (int i = 0; i < 5; ++i) append_audit(*store_, audit_entry("a" + std::to_string(i)));
  raw("DELETE FROM audit_log WHERE seq = 3");
  const auto report = verify_audit(*store_);
  EXPECT_FALSE(report.verified);
  ASSERT_TRUE(report.broken_at.has_value());
  EXPECT_EQ(*report.broken_at, 3);
  EXPECT_NE(report.reason.find("missing"), std::string::npos) << report.reason;

  // So is the first one.
  raw("DELETE FROM audit_log WHERE seq = 1");
  const auto again = verify_audit(*store_);
  ASSERT_TRUE(again.broken_at.has_value());
  EXPECT_EQ(*again.broken_at, 1);
}

TEST_P(StoreTest, AuditVerifyFindsAReorderedPair) {
  for (int i = 0; i < 4; ++i) append_audit(*store_, audit_entry("a" + std::to_string(i)));
  raw("UPDATE audit_log SET seq = 100 WHERE seq = 2");
  raw("UPDATE audit_log SET seq = 2 WHERE seq = 3");
  raw("UPDATE audit_log SET seq = 3 WHERE seq = 100");
  const auto report = verify_audit(*store_);
  EXPECT_FALSE(report.verified);
  ASSERT_TRUE(report.broken_at.has_value());
  EXPECT_EQ(*report.broken_at, 2);
}

TEST_P(StoreTest, AuditVerifyOfARangeAnchorsOnTheEntryBeforeIt) {
  for (int i = 0; i < 5; ++i) append_audit(*store_, audit_entry("a" + std::to_string(i)));
  auto part = verify_audit(*store_, 3, 4);
  EXPECT_TRUE(part.verified) << part.reason;
  EXPECT_EQ(part.checked, 2);
  EXPECT_EQ(part.first_seq, 3);
  EXPECT_EQ(part.last_seq, 4);
  raw("UPDATE audit_log SET target = 'agent:other' WHERE seq = 1");
  EXPECT_TRUE(verify_audit(*store_, 3, 0).verified);  // the window does not reach seq 1
  const auto full = verify_audit(*store_);
  ASSERT_TRUE(full.broken_at.has_value());
  EXPECT_EQ(*full.broken_at, 1);
}

TEST_P(StoreTest, ConcurrentAuditAppendsKeepOneChain) {
  constexpr int kThreads = 4;
  constexpr int kEach = 15;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        append_audit(*store_, audit_entry("t" + std::to_string(t) + "-" + std::to_string(i)));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto report = verify_audit(*store_);
  EXPECT_TRUE(report.verified) << report.reason;
  EXPECT_EQ(report.checked, kThreads * kEach);
  EXPECT_EQ(raw_int("SELECT count(*) FROM audit_log"), kThreads * kEach);
  EXPECT_EQ(raw_int("SELECT count(DISTINCT prev_hash) FROM audit_log"), kThreads * kEach);
}

// A remote agent that reconnects takes its running tasks over with their attempt; the old
// holder can then no longer finish them, and queued or other agents' tasks are untouched.
TEST_P(StoreTest, TakeOverMovesRunningTasksKeepingTheirAttempt) {
  const Agent a = insert_ok("remote-a", "remote");
  const Agent b = insert_ok("remote-b", "remote");
  const auto t1 = make_task(a.id, "k1");
  const auto t2 = make_task(a.id, "k2");
  const auto t3 = make_task(b.id, "k3");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_TRY(tx.tasks().insert(t1));
                      DP_TRY(tx.tasks().insert(t2));
                      return tx.tasks().insert(t3);
                    }).ok());
  const std::int64_t now = clock::now_ms();
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_TRY(tx.tasks().claim(a.id, "remote/old", now, now + 1000));  // t1
                      DP_TRY(tx.tasks().claim(b.id, "remote/other", now, now + 1000));
                      return Ok{};
                    }).ok());
  std::vector<model::Task> moved;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(moved, tx.tasks().take_over(a.id, "remote/new", now + 5000));
                      return Ok{};
                    }).ok());
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].id, t1.id);
  EXPECT_EQ(moved[0].attempts, 1) << "same attempt";
  EXPECT_EQ(moved[0].node_id, "remote/new");
  EXPECT_EQ(moved[0].lease_until, now + 5000);
  EXPECT_EQ(moved[0].idempotency_key, "k1");
  Status late = store_->write([&](Tx& tx) {
    return tx.tasks().finish(t1.id, "remote/old", "succeeded", "null", "", clock::now_ms());
  });
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(store_->write([&](Tx& tx) {
                      return tx.tasks().finish(t1.id, "remote/new", "succeeded", "null", "", clock::now_ms());
                    }).ok());
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(auto q, tx.tasks().get(t2.id));
                      EXPECT_EQ(q.status, "queued");
                      DP_ASSIGN_OR_RETURN(auto o, tx.tasks().get(t3.id));
                      EXPECT_EQ(o.node_id, "remote/other");
                      return Ok{};
                    }).ok());
}

TEST_P(StoreTest, TheNewestSamplePerAgentAndTypeAndPruningOldOnes) {
  const Agent a = make_agent("sampled-a", "command");
  const Agent b = make_agent("sampled-b", "command");
  const Agent c = make_agent("never-sampled", "command");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_TRY(tx.agents().insert(a));
                      DP_TRY(tx.agents().insert(b));
                      return tx.agents().insert(c);
                    }).ok());
  const std::int64_t t0 = clock::now_ms() - 60'000;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      for (int i = 0; i < 5; ++i) {
                        const std::int64_t t = t0 + i * 1000;
                        DP_TRY(tx.metrics().append(model::Metric{0, a.id, "", "agent.memory_bytes", 100.0 + i, {{"tasks", 1}}, t}));
                        DP_TRY(tx.metrics().append(model::Metric{0, a.id, "", "agent.cpu_percent", 10.0 + i, {}, t}));
                        DP_TRY(tx.metrics().append(model::Metric{0, b.id, "", "agent.memory_bytes", 200.0 + i, {}, t}));
                      }
                      // Another type is neither returned nor pruned.
                      return tx.metrics().append(model::Metric{0, a.id, "", "task.wall_ms", 5, {}, t0});
                    }).ok());
  std::vector<model::Metric> got;
  const std::vector<std::string> types = {"agent.cpu_percent", "agent.memory_bytes"};
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(got, tx.metrics().latest({a.id, b.id, c.id}, types));
                      return Ok{};
                    }).ok());
  ASSERT_EQ(got.size(), 3u);  // a: both types, b: memory only, c: nothing
  std::map<std::string, double> by;
  for (const auto& m : got) by[m.agent_id + "/" + m.metric_type] = m.value;
  EXPECT_EQ(by[a.id + "/agent.memory_bytes"], 104);
  EXPECT_EQ(by[a.id + "/agent.cpu_percent"], 14);
  EXPECT_EQ(by[b.id + "/agent.memory_bytes"], 204);
  for (const auto& m : got) {
    if (m.agent_id == a.id && m.metric_type == "agent.memory_bytes") {
      EXPECT_EQ(m.labels.at("tasks"), 1);
    }
  }
  // Nothing asked, nothing answered.
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(got, tx.metrics().latest({}, types));
                      return Ok{};
                    }).ok());
  EXPECT_TRUE(got.empty());
  // Pruning a's rows older than the third sample leaves three of each type, and b's alone.
  std::int64_t pruned = -1;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(pruned, tx.metrics().prune(a.id, types, t0 + 2000));
                      return Ok{};
                    }).ok());
  EXPECT_EQ(pruned, 4);
  auto count = [&](const std::string& agent, const std::string& type) {
    std::vector<model::Metric> rows;
    EXPECT_TRUE(store_->read([&](Tx& tx) -> Status {
                        MetricFilter f;
                        f.agent_id = agent;
                        f.metric_type = type;
                        DP_ASSIGN_OR_RETURN(rows, tx.metrics().list(f));
                        return Ok{};
                      }).ok());
    return rows.size();
  };
  EXPECT_EQ(count(a.id, "agent.memory_bytes"), 3u);
  EXPECT_EQ(count(a.id, "agent.cpu_percent"), 3u);
  EXPECT_EQ(count(a.id, "task.wall_ms"), 1u);
  EXPECT_EQ(count(b.id, "agent.memory_bytes"), 5u);
}

TEST_P(StoreTest, RunningTasksOfSeveralAgentsInOneQuery) {
  const Agent a = make_agent("busy-a", "command");
  const Agent b = make_agent("busy-b", "command");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_TRY(tx.agents().insert(a));
                      return tx.agents().insert(b);
                    }).ok());
  const auto t1 = make_task(a.id, "k1"), t2 = make_task(a.id, "k2"), t3 = make_task(b.id, "k3");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_TRY(tx.tasks().insert(t1));
                      DP_TRY(tx.tasks().insert(t2));
                      return tx.tasks().insert(t3);
                    }).ok());
  const std::int64_t now = clock::now_ms();
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      DP_TRY(tx.tasks().claim(a.id, "node", now, now + 10'000));  // t1; t2 stays queued
                      DP_TRY(tx.tasks().claim(b.id, "node", now, now + 10'000));
                      return Ok{};
                    }).ok());
  std::vector<model::Task> running;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(running, tx.tasks().list_running({a.id, b.id}));
                      return Ok{};
                    }).ok());
  ASSERT_EQ(running.size(), 2u);
  EXPECT_EQ(running[0].id, t1.id);
  EXPECT_EQ(running[0].status, "running");
  EXPECT_TRUE(running[0].started_at.has_value());
  EXPECT_EQ(running[1].id, t3.id);
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(running, tx.tasks().list_running({b.id}));
                      return Ok{};
                    }).ok());
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].id, t3.id);
}

TEST_P(StoreTest, MetricsAreKeptPerAgentAndTask) {
  const Agent a = make_agent("metered", "llm");
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.agents().insert(a); }).ok());
  const std::int64_t t0 = clock::now_ms();
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
                      model::Metric m{0, a.id, "task-1", "llm.input_tokens", 120, {{"call", 1}}, t0};
                      DP_TRY(tx.metrics().append(m));
                      m.metric_type = "llm.latency_ms";
                      m.value = 12.5;
                      DP_TRY(tx.metrics().append(m));
                      m.task_id = "task-2";
                      m.metric_type = "llm.input_tokens";
                      m.value = 7;
                      return tx.metrics().append(m);
                    })
                  .ok());
  std::vector<model::Metric> got;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      MetricFilter f;
                      f.agent_id = a.id;
                      f.task_id = "task-1";
                      DP_ASSIGN_OR_RETURN(got, tx.metrics().list(f));
                      return Ok{};
                    })
                  .ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].metric_type, "llm.input_tokens");
  EXPECT_EQ(got[0].value, 120);
  EXPECT_EQ(got[0].labels.at("call"), 1);
  EXPECT_EQ(got[1].value, 12.5);
  EXPECT_LT(got[0].id, got[1].id);
  EXPECT_NEAR(static_cast<double>(got[0].timestamp), static_cast<double>(t0), 1000);
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      MetricFilter f;
                      f.agent_id = a.id;
                      f.metric_type = "llm.input_tokens";
                      DP_ASSIGN_OR_RETURN(got, tx.metrics().list(f));
                      return Ok{};
                    })
                  .ok());
  EXPECT_EQ(got.size(), 2u);
  // A metric for an agent that does not exist is refused.
  Status bad = store_->write([&](Tx& tx) {
    return tx.metrics().append(model::Metric{0, "nobody", "", "x", 1, {}, t0});
  });
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kFailedPrecondition);
}

TEST_P(StoreTest, SecretsArePutReplacedListedAndRemoved) {
  const std::int64_t t0 = clock::now_ms();
  ASSERT_TRUE(store_->write([&](Tx& tx) {
                      return tx.secrets().put(SecretRecord{"openai", "dpsec:v1:AAA", "admin", t0, t0});
                    })
                  .ok());
  ASSERT_TRUE(store_->write([&](Tx& tx) {
                      return tx.secrets().put(
                          SecretRecord{"openai", "dpsec:v1:BBB", "ops", t0 + 5000, t0 + 5000});
                    })
                  .ok());
  SecretRecord got;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(got, tx.secrets().get("openai"));
                      return Ok{};
                    })
                  .ok());
  EXPECT_EQ(got.value, "dpsec:v1:BBB");
  EXPECT_EQ(got.updated_by, "ops");
  EXPECT_LT(got.created_at, got.updated_at);
  std::vector<SecretRecord> all;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
                      DP_ASSIGN_OR_RETURN(all, tx.secrets().list());
                      return Ok{};
                    })
                  .ok());
  EXPECT_EQ(all.size(), 1u);
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.secrets().remove("openai"); }).ok());
  Status again = store_->write([&](Tx& tx) { return tx.secrets().remove("openai"); });
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  Status missing = store_->read([&](Tx& tx) { return Status(tx.secrets().get("openai")); });
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// --- workflows and executions (src/workflow) ---------------------------------------------

model::Workflow make_workflow(const std::string& name) {
  model::Workflow w;
  w.id = ids::uuid_v7();
  w.name = name;
  w.description = "d";
  w.definition = "name: " + name + "\nsteps: []\n";
  w.created_at = w.updated_at = clock::now_ms();
  return w;
}

// Trigger rows (cron and webhook) and webhook deliveries: upsert, due times of active
// workflows only, the earliest next time, replay detection and pruning; causes on executions.
TEST_P(StoreTest, TriggerRowsDueTimesAndDeliveries) {
  auto w = make_workflow("triggered");
  auto gone = make_workflow("archived-one");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.workflows().insert(w));
    DP_TRY(tx.workflows().insert(gone));
    model::Workflow archived = gone;
    archived.status = "archived";
    archived.version = 2;
    return tx.workflows().update(archived, 1);
  }).ok());
  auto put = [&](const std::string& wf, const std::string& id, const std::string& kind,
                 std::int64_t next) {
    TriggerState t{wf, id, kind, "spec-" + id, next, 0, ""};
    return store_->write([&](Tx& tx) { return tx.triggers().put(t); });
  };
  ASSERT_TRUE(put(w.id, "a", "schedule", 3000).ok());
  ASSERT_TRUE(put(w.id, "b", "schedule", 1000).ok());
  ASSERT_TRUE(put(w.id, "hook", "webhook", 0).ok());
  ASSERT_TRUE(put(gone.id, "c", "schedule", 500).ok());
  std::vector<TriggerState> due;
  std::int64_t next = -1;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(due, tx.triggers().due(2000, 10));
    DP_ASSIGN_OR_RETURN(next, tx.triggers().next_due());
    return Ok{};
  }).ok());
  ASSERT_EQ(due.size(), 1u);  // not the archived workflow's, not the webhook, not a (3000)
  EXPECT_EQ(due[0].trigger_id, "b");
  EXPECT_EQ(next, 1000);
  // Replacing a row keeps one row with the new fields.
  TriggerState moved{w.id, "b", "schedule", "spec-b2", 5000, 1000, "exec-1"};
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.triggers().put(moved); }).ok());
  std::vector<TriggerState> rows;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(rows, tx.triggers().list(w.id));
    DP_ASSIGN_OR_RETURN(next, tx.triggers().next_due());
    return Ok{};
  }).ok());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].trigger_id, "b");
  EXPECT_EQ(rows[1].spec, "spec-b2");
  EXPECT_EQ(rows[1].next_fire_at, 5000);
  EXPECT_EQ(rows[1].last_fire_at, 1000);
  EXPECT_EQ(rows[1].last_execution_id, "exec-1");
  EXPECT_EQ(next, 3000);
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.triggers().remove(w.id, "a"); }).ok());
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(rows, tx.triggers().list(w.id));
    return Ok{};
  }).ok());
  EXPECT_EQ(rows.size(), 2u);

  // Deliveries: once per hook; a repeat is kAlreadyExists and leaves the first.
  WebhookDelivery d{w.id, "hook", "d-1", "exec-9", 1000};
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.triggers().insert_delivery(d); }).ok());
  WebhookDelivery again{w.id, "hook", "d-1", "exec-10", 2000};
  auto st = store_->write([&](Tx& tx) { return tx.triggers().insert_delivery(again); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists);
  WebhookDelivery other_hook{w.id, "hook2", "d-1", "exec-11", 3000};
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.triggers().insert_delivery(other_hook); }).ok());
  std::optional<WebhookDelivery> found;
  std::optional<WebhookDelivery> missing;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(found, tx.triggers().find_delivery(w.id, "hook", "d-1"));
    DP_ASSIGN_OR_RETURN(missing, tx.triggers().find_delivery(w.id, "hook", "d-2"));
    return Ok{};
  }).ok());
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->execution_id, "exec-9");
  EXPECT_EQ(found->received_at, 1000);
  EXPECT_FALSE(missing.has_value());
  std::int64_t pruned = 0;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(pruned, tx.triggers().prune_deliveries(2500));
    return Ok{};
  }).ok());
  EXPECT_EQ(pruned, 1);
}

TEST_P(StoreTest, WorkflowsAreVersionedAndNamesUniqueWhileLive) {
  auto w = make_workflow("ci");
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.workflows().insert(w); }).ok());
  auto dup = make_workflow("ci");
  auto st = store_->write([&](Tx& tx) { return tx.workflows().insert(dup); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists);

  model::Workflow v2 = w;
  v2.definition = "name: ci\nsteps: [2]\n";
  v2.version = 2;
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.workflows().update(v2, 1); }).ok());
  // A stale writer changes nothing.
  model::Workflow stale = w;
  stale.definition = "lost";
  stale.version = 2;
  st = store_->write([&](Tx& tx) { return tx.workflows().update(stale, 1); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().reason, "version_conflict");

  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Workflow got, tx.workflows().get(w.id));
    EXPECT_EQ(got.version, 2);
    EXPECT_EQ(got.definition, v2.definition);
    DP_ASSIGN_OR_RETURN(model::WorkflowVersion one, tx.workflows().get_version(w.id, 1));
    EXPECT_EQ(one.definition, w.definition);
    DP_ASSIGN_OR_RETURN(model::WorkflowVersion two, tx.workflows().get_version(w.id, 2));
    EXPECT_EQ(two.definition, v2.definition);
    EXPECT_EQ(tx.workflows().get_version(w.id, 3).error().code, ErrorCode::kNotFound);
    DP_ASSIGN_OR_RETURN(auto found, tx.workflows().find_by_name("ci"));
    EXPECT_TRUE(found.has_value());
    return Ok{};
  }).ok());

  // Archived: the name is free again and the list hides it unless asked.
  model::Workflow archived = v2;
  archived.status = "archived";
  archived.version = 3;
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.workflows().update(archived, 2); }).ok());
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.workflows().insert(dup); }).ok());
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    WorkflowFilter f;
    DP_ASSIGN_OR_RETURN(auto live, tx.workflows().list(f));
    EXPECT_EQ(live.total, 1);
    f.include_archived = true;
    DP_ASSIGN_OR_RETURN(auto all, tx.workflows().list(f));
    EXPECT_EQ(all.total, 2);
    return Ok{};
  }).ok());
}

TEST_P(StoreTest, ExecutionLeasesAreExclusiveUntilTheyLapse) {
  auto w = make_workflow("leased");
  model::Execution e;
  e.id = ids::uuid_v7();
  e.workflow_id = w.id;
  e.workflow_version = 1;
  e.inputs = boost::json::object{{"n", 1}};
  e.created_at = clock::now_ms();
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.workflows().insert(w));
    return tx.executions().insert(e);
  }).ok());
  auto lease = [&](const char* node, std::int64_t now, std::int64_t until) {
    bool out = false;
    EXPECT_TRUE(store_->write([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.executions().lease(e.id, node, now, until));
      return Ok{};
    }).ok());
    return out;
  };
  EXPECT_TRUE(lease("a", 1000, 2000));
  EXPECT_FALSE(lease("b", 1500, 2500));  // a holds it
  EXPECT_TRUE(lease("a", 1500, 2500));   // renewal
  std::vector<std::string> claimable;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(claimable, tx.executions().claimable("b", 2000, 10));
    return Ok{};
  }).ok());
  EXPECT_TRUE(claimable.empty());
  EXPECT_TRUE(lease("b", 3000, 4000));  // lapsed: b takes over
  EXPECT_FALSE(lease("a", 3100, 4100));
  // Finished executions are nobody's.
  e.status = "succeeded";
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.executions().update(e); }).ok());
  EXPECT_FALSE(lease("b", 3200, 5000));
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::Execution got, tx.executions().get(e.id));
    EXPECT_EQ(got.status, "succeeded");
    EXPECT_EQ(got.inputs.at("n").as_int64(), 1);
    DP_ASSIGN_OR_RETURN(auto page, tx.executions().list(ExecutionFilter{w.id, "succeeded", std::nullopt, std::nullopt, 10, std::nullopt}));
    EXPECT_EQ(page.total, 1);
    return Ok{};
  }).ok());
}

TEST_P(StoreTest, StepWritesAreFencedByStatusAndAttempt) {
  auto w = make_workflow("fenced");
  model::Execution e;
  e.id = ids::uuid_v7();
  e.workflow_id = w.id;
  e.workflow_version = 1;
  e.created_at = clock::now_ms();
  model::ExecutionStep s;
  s.execution_id = e.id;
  s.step_id = "build";
  s.seq = 10;
  s.updated_at = e.created_at;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.workflows().insert(w));
    DP_TRY(tx.executions().insert(e));
    return tx.executions().insert_step(s);
  }).ok());
  auto dup = store_->write([&](Tx& tx) { return tx.executions().insert_step(s); });
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);

  model::ExecutionStep a1 = s;
  a1.status = "running";
  a1.attempt = 1;
  a1.task_id = "t1";
  a1.inputs = boost::json::object{{"x", 1}};
  a1.history.push_back(boost::json::object{{"attempt", 0}});
  a1.wake_at_us = 99;
  a1.started_at = 5000;
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.executions().update_step(a1, "pending", 0); }).ok());
  model::ExecutionStep a2 = a1;
  a2.attempt = 2;
  a2.task_id = "t2";
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.executions().update_step(a2, "running", 1); }).ok());
  // A late writer for attempt 1 is rejected and changes nothing.
  model::ExecutionStep late = a1;
  late.status = "succeeded";
  auto st = store_->write([&](Tx& tx) { return tx.executions().update_step(late, "running", 1); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().reason, "stale_step");
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(model::ExecutionStep got, tx.executions().step(e.id, "build"));
    EXPECT_EQ(got.status, "running");
    EXPECT_EQ(got.attempt, 2);
    EXPECT_EQ(got.task_id, "t2");
    EXPECT_EQ(got.wake_at_us, 99);
    EXPECT_EQ(got.history.size(), 1u);
    EXPECT_EQ(got.inputs.at("x").as_int64(), 1);
    EXPECT_EQ(*got.started_at, 5000);
    DP_ASSIGN_OR_RETURN(auto all, tx.executions().steps(e.id));
    EXPECT_EQ(all.size(), 1u);
    return Ok{};
  }).ok());
}

TEST_P(StoreTest, StepsVersionCountsEveryWriteOfTheExecutionsStepRows) {
  auto w = make_workflow("versioned");
  std::vector<model::Execution> ex(2);
  for (auto& e : ex) {
    e.id = ids::uuid_v7();
    e.workflow_id = w.id;
    e.workflow_version = 1;
    e.created_at = clock::now_ms();
  }
  auto row = [&](const model::Execution& e, std::string id, std::int64_t seq) {
    model::ExecutionStep s;
    s.execution_id = e.id;
    s.step_id = std::move(id);
    s.seq = seq;
    s.updated_at = e.created_at;
    return s;
  };
  auto version = [&](const model::Execution& e) {
    std::int64_t v = -1;
    EXPECT_TRUE(store_->read([&](Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(v, tx.executions().steps_version(e.id));
      DP_ASSIGN_OR_RETURN(model::Execution got, tx.executions().get(e.id));
      EXPECT_EQ(got.steps_version, v);
      return Ok{};
    }).ok());
    return v;
  };
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.workflows().insert(w));
    DP_TRY(tx.executions().insert(ex[0]));
    return tx.executions().insert(ex[1]);
  }).ok());
  EXPECT_EQ(version(ex[0]), 0);
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.executions().insert_step(row(ex[0], "a", 10)));
    return tx.executions().insert_step(row(ex[0], "b", 20));
  }).ok());
  EXPECT_EQ(version(ex[0]), 2);
  EXPECT_EQ(version(ex[1]), 0);  // another execution's rows are not its own

  auto a = row(ex[0], "a", 10);
  a.status = "running";
  a.attempt = 1;
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.executions().update_step(a, "pending", 0); }).ok());
  EXPECT_EQ(version(ex[0]), 3);
  // A stale write changes nothing, the counter included.
  EXPECT_FALSE(store_->write([&](Tx& tx) { return tx.executions().update_step(a, "pending", 0); }).ok());
  EXPECT_EQ(version(ex[0]), 3);
  // Writes of the execution row itself (its status, its lease) are not step writes.
  ex[0].status = "running";
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.executions().update(ex[0]));
    return Status(tx.executions().lease(ex[0].id, "node-a", clock::now_ms(), clock::now_ms() + 1000));
  }).ok());
  EXPECT_EQ(version(ex[0]), 3);
  // A write rolled back leaves the counter where it was.
  auto rolled_back = store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.executions().insert_step(row(ex[0], "c", 30)));
    return Error::internal("roll back");
  });
  EXPECT_FALSE(rolled_back.ok());
  EXPECT_EQ(version(ex[0]), 3);
  auto missing = store_->read([&](Tx& tx) { return Status(tx.executions().steps_version("no-such-execution")); });
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// --- MCP adapters and tool executions ------------------------------------------------------

model::Adapter adapter(std::string name) {
  model::Adapter a;
  a.id = ids::uuid_v7();
  a.name = std::move(name);
  a.config = boost::json::object{{"transport", "stdio"}, {"command", "node"},
                                 {"env", boost::json::object{{"TOKEN", "dpsec:v1:abc"}}}};
  a.created_at = a.updated_at = 1'700'000'000'000;
  a.pinned_tools = boost::json::object{{"echo", "h1"}};
  return a;
}

TEST_P(StoreTest, AdapterRoundTripsAndNamesAreUnique) {
  auto a = adapter("everything");
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.adapters().insert(a); }).ok());
  auto dup = adapter("everything");
  auto s = store_->write([&](Tx& tx) { return tx.adapters().insert(dup); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
  model::Adapter got;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(got, tx.adapters().get(a.id));
    return Ok{};
  }).ok());
  EXPECT_EQ(got.name, "everything");
  EXPECT_EQ(got.config, a.config);
  EXPECT_EQ(got.status, "unknown");
  EXPECT_EQ(got.pinned_tools, a.pinned_tools);
  EXPECT_TRUE(got.flagged_tools.empty());
  EXPECT_FALSE(got.last_health_check);
  EXPECT_EQ(got.created_at, a.created_at);
  auto missing = store_->read([&](Tx& tx) { return Status(tx.adapters().get("nope")); });
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, AdapterUpdateIsVersionedAndHealthIsNot) {
  auto a = adapter("fs");
  auto b = adapter("other");
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.adapters().insert(a));
    return tx.adapters().insert(b);
  }).ok());
  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return tx.adapters().record_health(a.id, "healthy", "", 1'700'000'001'000, 1234);
  }).ok());
  auto changed = a;
  changed.version = 2;
  changed.flagged_tools = boost::json::object{{"echo", boost::json::object{{"currentHash", "h2"}}}};
  changed.approved_at = 1'700'000'002'000;
  changed.approved_by = "admin";
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.adapters().update(changed, 1); }).ok());
  auto stale = store_->write([&](Tx& tx) { return tx.adapters().update(changed, 1); });
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().reason, "version_conflict");
  auto rename = changed;
  rename.name = "other";
  rename.version = 3;
  EXPECT_EQ(store_->write([&](Tx& tx) { return tx.adapters().update(rename, 2); }).error().code,
            ErrorCode::kAlreadyExists);
  std::vector<model::Adapter> all;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(all, tx.adapters().list());
    return Ok{};
  }).ok());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "fs");
  EXPECT_EQ(all[0].status, "healthy");  // the versioned update kept the health fields
  EXPECT_EQ(all[0].last_health_check, 1'700'000'001'000);
  EXPECT_EQ(all[0].latency_us, 1234);
  EXPECT_EQ(all[0].version, 2);
  EXPECT_EQ(all[0].flagged_tools, changed.flagged_tools);
  EXPECT_EQ(all[0].approved_at, 1'700'000'002'000);
  EXPECT_EQ(all[0].approved_by, "admin");
  EXPECT_EQ(store_->write([&](Tx& tx) {
              return tx.adapters().record_health("nope", "healthy", "", 1, std::nullopt);
            }).error().code,
            ErrorCode::kNotFound);
}

TEST_P(StoreTest, ToolExecutionsListNewestFirstAndOutliveTheirAdapter) {
  auto a = adapter("exec");
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.adapters().insert(a); }).ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    model::ToolExecution e;
    e.id = ids::uuid_v7();
    e.adapter_id = a.id;
    e.tool_name = i % 2 == 0 ? "echo" : "get-sum";
    e.parameters = boost::json::object{{"i", i}};
    if (i == 4) {
      e.error = "timeout";
      e.status = "failed";
    } else {
      e.result = boost::json::object{{"content", boost::json::array{}}};
      e.status = "succeeded";
    }
    e.duration_ms = i;
    e.caller = "user:admin";
    e.correlation_id = "req-" + std::to_string(i);
    e.executed_at = 1'700'000'000'000 + i;
    ids.push_back(e.id);
    ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.tool_executions().insert(e); }).ok());
  }
  store::Page<model::ToolExecution> page;
  ToolExecutionFilter f;
  f.adapter_id = a.id;
  f.limit = 3;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(page, tx.tool_executions().list(f));
    return Ok{};
  }).ok());
  EXPECT_EQ(page.total, 5);
  ASSERT_EQ(page.items.size(), 3u);
  EXPECT_EQ(page.items[0].id, ids[4]);
  EXPECT_EQ(page.items[0].status, "failed");
  EXPECT_EQ(page.items[0].error, "timeout");
  EXPECT_TRUE(page.items[0].result.is_null());
  EXPECT_EQ(page.items[1].parameters, (boost::json::object{{"i", 3}}));
  ASSERT_TRUE(page.next_cursor);
  f.after = page.next_cursor;
  f.tool_name = "echo";
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(page, tx.tool_executions().list(f));
    return Ok{};
  }).ok());
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].id, ids[0]);
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.adapters().remove(a.id); }).ok());
  EXPECT_EQ(store_->write([&](Tx& tx) { return tx.adapters().remove(a.id); }).error().code,
            ErrorCode::kNotFound);
  model::ToolExecution kept;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(kept, tx.tool_executions().get(ids[2]));
    return Ok{};
  }).ok());
  EXPECT_FALSE(kept.adapter_id);
  EXPECT_EQ(kept.correlation_id, "req-2");
}

// Memories: insert, read back the embedding bit for bit, a task remembered once, scan in id
// order, replace the embedding, remove.
TEST_P(StoreTest, MemoriesKeepTheirEmbeddingAndATaskOnce) {
  auto memory = [](std::string id, std::string task_id) {
    model::Memory m;
    m.id = std::move(id);
    m.kind = task_id.empty() ? "note" : "task_outcome";
    m.text = "deploy the api \u00e9t\u00e9 'quoted'";
    m.metadata = boost::json::object{{"status", "succeeded"}, {"labels", boost::json::array{"a"}}};
    m.task_id = std::move(task_id);
    m.agent_id = "agent-1";
    m.embedder = "hashing-v1-4";
    m.embedding = {0.5F, -0.5F, 0.25F, -1e-7F};
    m.created_at = 1'700'000'000'123;
    m.created_by = "user:u1";
    return m;
  };
  const std::string a = ids::uuid_v7(), b = ids::uuid_v7(), c = ids::uuid_v7();
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    DP_TRY(tx.memories().insert(memory(a, "")));
    DP_TRY(tx.memories().insert(memory(b, "task-1")));
    return tx.memories().insert(memory(c, ""));
  }).ok());
  // The same task again: refused, and the unit changes nothing.
  Status dup = store_->write([&](Tx& tx) { return tx.memories().insert(memory(ids::uuid_v7(), "task-1")); });
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  model::Memory got;
  std::vector<model::Memory> page, many;
  std::int64_t n = 0;
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(got, tx.memories().get(b));
    DP_ASSIGN_OR_RETURN(page, tx.memories().scan(a, 10));
    DP_ASSIGN_OR_RETURN(many, tx.memories().get_many({a, c, "missing"}));
    DP_ASSIGN_OR_RETURN(n, tx.memories().count());
    return Ok{};
  }).ok());
  EXPECT_EQ(n, 3);
  EXPECT_EQ(got.kind, "task_outcome");
  EXPECT_EQ(got.text, memory(b, "").text);
  EXPECT_EQ(got.task_id, "task-1");
  EXPECT_EQ(got.agent_id, "agent-1");
  EXPECT_EQ(got.embedding, memory(b, "").embedding);
  EXPECT_EQ(got.metadata, memory(b, "").metadata);
  EXPECT_EQ(got.created_at, 1'700'000'000'123);
  EXPECT_EQ(got.created_by, "user:u1");
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, b);
  EXPECT_EQ(page[1].id, c);
  EXPECT_EQ(many.size(), 2u);
  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return tx.memories().set_embedding(a, "other-2", std::vector<float>{1.0F, 0.0F});
  }).ok());
  ASSERT_TRUE(store_->write([&](Tx& tx) { return tx.memories().remove(c); }).ok());
  EXPECT_EQ(store_->write([&](Tx& tx) { return tx.memories().remove(c); }).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->write([&](Tx& tx) {
    return tx.memories().set_embedding(c, "x", std::vector<float>{1.0F});
  }).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(store_->read([&](Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(got, tx.memories().get(a));
    return Ok{};
  }).ok());
  EXPECT_EQ(got.embedder, "other-2");
  EXPECT_EQ(got.embedding, (std::vector<float>{1.0F, 0.0F}));
  EXPECT_EQ(store_->read([&](Tx& tx) -> Status { return tx.memories().get(c); }).error().code,
            ErrorCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& param_info) {
                           return backend_name(param_info.param);
                         });

}  // namespace
}  // namespace dp::store
