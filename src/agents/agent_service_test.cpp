#include "agents/agent_service.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "model/agent_json.hpp"
#include "store/store.hpp"

namespace dp::agents {
namespace {

namespace fs = std::filesystem;
using model::AgentStatus;

// AgentService over a real SQLite store in a fresh directory. Failures are injected at the
// database: a trigger that raises makes one statement of the unit fail, which must roll back
// the whole unit (the agent row, its agent_states rows and its outbox rows together).
class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::configure(log::Level::kWarn, log::Format::kJson);
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("dp_agent_service_test_" + std::to_string(rd()) + std::to_string(rd()));
    Config c;
    c.data_dir = dir_.string();
    auto s = store::open_store(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
    auto m = store_->migrate();
    ASSERT_TRUE(m.ok()) << m.error().message;
    service_ = std::make_unique<AgentService>(*store_);
  }

  void TearDown() override {
    service_.reset();
    if (store_) store_->close();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    log::configure(log::Level::kInfo, log::Format::kJson);
  }

  // Runs SQL on a separate connection (for triggers and inspection).
  void exec_sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "devplane.db").string().c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << msg;
  }

  void fail_on(const std::string& trigger_body) {
    exec_sql("CREATE TRIGGER inject_failure " + trigger_body +
             " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  }
  void stop_failing() { exec_sql("DROP TRIGGER inject_failure"); }

  model::Agent create(const std::string& name, const std::string& type = "command") {
    NewAgent spec;
    spec.name = name;
    spec.type = type;
    spec.description = "d";
    spec.labels = {{"team", "core"}};
    spec.config = {{"command", "true"}};
    auto r = service_->create(std::move(spec), "corr-create");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : model::Agent{};
  }

  std::vector<store::OutboxEvent> outbox() {
    std::vector<store::OutboxEvent> out;
    Status s = store_->read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(out, tx.outbox().pending(10000));
      return Ok{};
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  }

  std::vector<model::AgentStateEntry> history(const std::string& id) {
    auto h = service_->history(id, 1000);
    EXPECT_TRUE(h.ok()) << h.error().message;
    return h.ok() ? *h : std::vector<model::AgentStateEntry>{};
  }

  // Forces a state the API cannot reach yet (no runtime reports errors so far).
  void force_status(const std::string& id, AgentStatus status) {
    Status s = store_->write([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(id));
      const auto expected = a.version;
      a.status = status;
      a.version += 1;
      return tx.agents().update(a, expected);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  // Everything observable about one agent, to prove a failed call changed nothing.
  struct Snapshot {
    std::string agent;
    std::size_t history = 0;
    std::size_t outbox = 0;
    bool operator==(const Snapshot&) const = default;
  };
  Snapshot snapshot(const std::string& id) {
    Snapshot s;
    auto a = service_->get(id);
    s.agent = a.ok() ? boost::json::serialize(model::to_json(*a)) : "absent";
    auto h = service_->history(id, 1000);
    s.history = h.ok() ? h->size() : 0;
    s.outbox = outbox().size();
    return s;
  }

  static boost::json::object payload(const store::OutboxEvent& e) {
    return boost::json::parse(e.payload).as_object();
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<AgentService> service_;
};

TEST_F(AgentServiceTest, CreateRecordsStateAndAnnouncesIt) {
  const auto a = create("builder");
  EXPECT_TRUE(ids::is_uuid(a.id));
  EXPECT_EQ(a.status, AgentStatus::kCreated);
  EXPECT_EQ(a.version, 1);
  EXPECT_GT(a.created_at, 0);

  auto got = service_->get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "builder");
  EXPECT_EQ(got->labels.at("team").as_string(), "core");
  EXPECT_EQ(got->config.at("command").as_string(), "true");

  const auto h = history(a.id);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].from_status, "");
  EXPECT_EQ(h[0].status, "created");
  EXPECT_EQ(h[0].version, 1);

  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].topic, "agent.status.update");
  EXPECT_EQ(ev[0].correlation_id, "corr-create");
  const auto p = payload(ev[0]);
  EXPECT_EQ(p.at("agentId").as_string(), a.id);
  EXPECT_TRUE(p.at("from").is_null());
  EXPECT_EQ(p.at("status").as_string(), "created");
  EXPECT_EQ(p.at("version").as_int64(), 1);
}

TEST_F(AgentServiceTest, CreateWithTakenNameIsConflictAndWritesNothing) {
  create("dup");
  const auto events = outbox().size();
  NewAgent spec;
  spec.name = "dup";
  spec.type = "llm";
  auto r = service_->create(std::move(spec), "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(outbox().size(), events);
  auto page = service_->list({});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
}

TEST_F(AgentServiceTest, GetAndHistoryOfMissingAgentAreNotFound) {
  const auto id = ids::uuid_v7();
  auto g = service_->get(id);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, ErrorCode::kNotFound);
  auto h = service_->history(id, 10);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, ErrorCode::kNotFound);
}

TEST_F(AgentServiceTest, UpdateAppliesPatchBumpsVersionAndAnnounces) {
  const auto a = create("u1");
  AgentPatch patch;
  patch.description = "new description";
  patch.labels = boost::json::object{{"tier", "gold"}};
  auto r = service_->update(a.id, std::move(patch), 1, "corr-upd");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(r->description, "new description");
  EXPECT_EQ(r->name, "u1") << "absent fields keep their value";
  EXPECT_EQ(r->config.at("command").as_string(), "true");

  auto got = service_->get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->labels, (boost::json::object{{"tier", "gold"}}));

  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].topic, "agent.updated");
  EXPECT_EQ(ev[1].correlation_id, "corr-upd");
  EXPECT_EQ(payload(ev[1]).at("version").as_int64(), 2);
  EXPECT_EQ(history(a.id).size(), 1u) << "an edit is not a state transition";
}

TEST_F(AgentServiceTest, UpdateWithStaleVersionIsVersionConflictAndChangesNothing) {
  const auto a = create("u2");
  AgentPatch first;
  first.description = "v2";
  ASSERT_TRUE(service_->update(a.id, std::move(first), 1, "c").ok());
  const auto before = snapshot(a.id);

  AgentPatch stale;
  stale.description = "lost update";
  stale.name = "renamed";
  auto r = service_->update(a.id, std::move(stale), 1, "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.error().reason, "version_conflict");
  EXPECT_EQ(r.error().details.at("currentVersion").as_int64(), 2);
  EXPECT_NE(r.error().message.find("version 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(snapshot(a.id), before);

  AgentPatch future;
  future.description = "from the future";
  r = service_->update(a.id, std::move(future), 3, "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "version_conflict");
  EXPECT_EQ(snapshot(a.id), before);
}

TEST_F(AgentServiceTest, UpdateOfMissingAgentIsNotFound) {
  AgentPatch p;
  p.description = "x";
  auto r = service_->update(ids::uuid_v7(), std::move(p), 1, "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(outbox().empty());
}

TEST_F(AgentServiceTest, RenameToTakenNameIsConflictAndChangesNothing) {
  create("taken");
  const auto b = create("other");
  const auto before = snapshot(b.id);
  AgentPatch p;
  p.name = "taken";
  auto r = service_->update(b.id, std::move(p), 1, "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(snapshot(b.id), before);
}

TEST_F(AgentServiceTest, StartPassesThroughStartingToRunning) {
  const auto a = create("s1");
  auto r = service_->lifecycle(a.id, LifecycleAction::kStart, "corr-start");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, AgentStatus::kRunning);
  EXPECT_EQ(r->version, 3);
  EXPECT_EQ(r->status_reason, "started");

  const auto h = history(a.id);  // newest first
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].from_status, "starting");
  EXPECT_EQ(h[0].status, "running");
  EXPECT_EQ(h[0].version, 3);
  EXPECT_EQ(h[1].from_status, "created");
  EXPECT_EQ(h[1].status, "starting");
  EXPECT_EQ(h[1].version, 2);
  EXPECT_EQ(h[2].status, "created");

  const auto ev = outbox();
  ASSERT_EQ(ev.size(), 3u);
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(ev[i].topic, "agent.status.update");
    EXPECT_EQ(ev[i].correlation_id, "corr-start");
  }
  EXPECT_EQ(payload(ev[1]).at("from").as_string(), "created");
  EXPECT_EQ(payload(ev[1]).at("status").as_string(), "starting");
  EXPECT_EQ(payload(ev[1]).at("version").as_int64(), 2);
  EXPECT_EQ(payload(ev[2]).at("from").as_string(), "starting");
  EXPECT_EQ(payload(ev[2]).at("status").as_string(), "running");
  EXPECT_EQ(payload(ev[2]).at("version").as_int64(), 3);
}

TEST_F(AgentServiceTest, StopPassesThroughStoppingToStopped) {
  const auto a = create("s2");
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  auto r = service_->lifecycle(a.id, LifecycleAction::kStop, "c");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, AgentStatus::kStopped);
  EXPECT_EQ(r->version, 5);
  const auto h = history(a.id);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[1].status, "stopping");
  EXPECT_EQ(h[0].status, "stopped");
  // A stopped agent starts again.
  r = service_->lifecycle(a.id, LifecycleAction::kStart, "c");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, AgentStatus::kRunning);
  EXPECT_EQ(r->version, 7);
}

TEST_F(AgentServiceTest, StopOfStartingAgentCancelsTheStart) {
  const auto a = create("s3");
  force_status(a.id, AgentStatus::kStarting);
  auto r = service_->lifecycle(a.id, LifecycleAction::kStop, "c");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, AgentStatus::kStopped);
  const auto h = history(a.id);
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h[1].from_status, "starting");
  EXPECT_EQ(h[1].status, "stopping");
}

TEST_F(AgentServiceTest, RemoteAgentStatusFollowsItsConnection) {
  const auto a = create("r1", "remote");
  const RemotePresence first{"remote-agent:" + a.id, "conn-1", 60'000};
  const RemotePresence second{"remote-agent:" + a.id, "conn-2", 60'000};
  // A start waits for the process: starting, not running.
  auto started = service_->lifecycle(a.id, LifecycleAction::kStart, "c");
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_EQ(started->status, AgentStatus::kStarting);
  auto on = service_->remote_connected(a.id, "c", first);
  ASSERT_TRUE(on.ok()) << on.error().message;
  EXPECT_EQ(on->status, AgentStatus::kRunning);
  EXPECT_EQ(on->status_reason, "remote agent connected");
  // A replacing connection changes nothing but the presence; the replaced one's end is then
  // not a loss.
  const auto before = snapshot(a.id);
  ASSERT_TRUE(service_->remote_connected(a.id, "c", second).ok());
  EXPECT_EQ(snapshot(a.id), before);
  ASSERT_TRUE(service_->remote_lost(a.id, "replaced one ended", "c", first).ok());
  EXPECT_EQ(snapshot(a.id), before);
  ASSERT_TRUE(service_->remote_lost(a.id, "remote agent disconnected: no heartbeat", "c", second).ok());
  auto lost = service_->get(a.id);
  EXPECT_EQ(lost->status, AgentStatus::kError);
  EXPECT_EQ(lost->status_reason, "remote agent disconnected: no heartbeat");
  // Lost again (a late report) changes nothing; a reconnect passes through starting.
  const auto in_error = snapshot(a.id);
  ASSERT_TRUE(service_->remote_lost(a.id, "again", "c", second).ok());
  EXPECT_EQ(snapshot(a.id), in_error);
  ASSERT_EQ(service_->remote_connected(a.id, "c", first)->status, AgentStatus::kRunning);
  auto h = history(a.id);
  EXPECT_EQ(h[1].from_status, "error");
  EXPECT_EQ(h[1].status, "starting");
  // A stopped agent may not connect, and that changes nothing.
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStop, "c").ok());
  const auto stopped = snapshot(a.id);
  auto refused = service_->remote_connected(a.id, "c", second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "agent_stopped");
  EXPECT_EQ(snapshot(a.id), stopped);
  // A connection to an agent purged meanwhile is lost quietly.
  const RemotePresence ghost{"remote-agent:ghost", "conn-9", 60'000};
  EXPECT_TRUE(service_->remote_lost("0190aaaa-bbbb-7ccc-8ddd-000000000001", "gone", "c", ghost).ok());
}

TEST_F(AgentServiceTest, RemoteAgentWhosePresenceLapsedIsOrphaned) {
  const auto a = create("r2", "remote");
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  // A connection whose presence lasts 1 ms: as if its node died right after the hello.
  const RemotePresence conn{"remote-agent:" + a.id, "conn-1", 1};
  ASSERT_TRUE(service_->remote_connected(a.id, "c", conn).ok());
  const RemotePresence sweeper{"remote-agent:" + a.id, "sweeper/node-a", 1};
  // A live presence elsewhere keeps the agent as it is.
  const RemotePresence live{"remote-agent:" + a.id, "conn-2", 60'000};
  ASSERT_TRUE(service_->remote_connected(a.id, "c", live).ok());
  const auto running = snapshot(a.id);
  auto kept = service_->remote_orphaned(a.id, "no connection", sweeper);
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_FALSE(*kept);
  EXPECT_EQ(snapshot(a.id), running);
  // Once it is given up without a loss being recorded (here: released by hand), the agent is
  // an orphan.
  ASSERT_TRUE(store_->write([&](store::Tx& tx) {
                       return Status(tx.leases().release(live.lease, live.holder));
                     })
                  .ok());
  auto gone = service_->remote_orphaned(a.id, "no connection after restart", sweeper);
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_TRUE(*gone);
  auto got = service_->get(a.id);
  EXPECT_EQ(got->status, AgentStatus::kError);
  EXPECT_EQ(got->status_reason, "no connection after restart");
  // The sweeper gave the presence back: a new connection is not refused and owns it.
  ASSERT_EQ(service_->remote_connected(a.id, "c", live)->status, AgentStatus::kRunning);
  auto again = service_->remote_orphaned(a.id, "x", sweeper);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(AgentServiceTest, AgentInErrorStopsDirectlyOrRestarts) {
  const auto a = create("e1");
  force_status(a.id, AgentStatus::kError);  // version 2
  auto r = service_->lifecycle(a.id, LifecycleAction::kStop, "c");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, AgentStatus::kStopped);
  EXPECT_EQ(r->version, 3) << "one transition: error -> stopped";
  auto h = history(a.id);
  EXPECT_EQ(h[0].from_status, "error");
  EXPECT_EQ(h[0].status, "stopped");

  const auto b = create("e2");
  force_status(b.id, AgentStatus::kError);
  r = service_->lifecycle(b.id, LifecycleAction::kStart, "c");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, AgentStatus::kRunning);
  h = history(b.id);
  EXPECT_EQ(h[1].from_status, "error");
  EXPECT_EQ(h[1].status, "starting");
}

struct BadAction {
  AgentStatus state;
  LifecycleAction action;
  const char* action_name;
};

class AgentServiceInvalidTransitionTest : public AgentServiceTest,
                                          public ::testing::WithParamInterface<BadAction> {};

TEST_P(AgentServiceInvalidTransitionTest, NamesTheCurrentStateAndChangesNothing) {
  const BadAction& p = GetParam();
  const auto a = create("inv");
  if (p.state == AgentStatus::kDecommissioned) {
    ASSERT_TRUE(service_->decommission(a.id, "c").ok());
  } else if (p.state != AgentStatus::kCreated) {
    force_status(a.id, p.state);
  }
  const auto before = snapshot(a.id);
  auto r = service_->lifecycle(a.id, p.action, "c");
  ASSERT_FALSE(r.ok());
  const std::string state(model::to_string(p.state));
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.error().reason, "invalid_transition");
  EXPECT_NE(r.error().message.find("it is " + state), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().details.at("currentStatus").as_string(), state);
  EXPECT_EQ(r.error().details.at("action").as_string(), p.action_name);
  EXPECT_EQ(snapshot(a.id), before);
}

INSTANTIATE_TEST_SUITE_P(
    ForbiddenActions, AgentServiceInvalidTransitionTest,
    ::testing::Values(BadAction{AgentStatus::kRunning, LifecycleAction::kStart, "start"},
                      BadAction{AgentStatus::kStarting, LifecycleAction::kStart, "start"},
                      BadAction{AgentStatus::kStopping, LifecycleAction::kStart, "start"},
                      BadAction{AgentStatus::kDecommissioned, LifecycleAction::kStart, "start"},
                      BadAction{AgentStatus::kCreated, LifecycleAction::kStop, "stop"},
                      BadAction{AgentStatus::kStopped, LifecycleAction::kStop, "stop"},
                      BadAction{AgentStatus::kStopping, LifecycleAction::kStop, "stop"},
                      BadAction{AgentStatus::kDecommissioned, LifecycleAction::kStop, "stop"}),
    [](const ::testing::TestParamInfo<BadAction>& param_info) {
      return std::string(param_info.param.action_name) + "_when_" +
             std::string(model::to_string(param_info.param.state));
    });

TEST_F(AgentServiceTest, LifecycleOfMissingAgentIsNotFound) {
  auto r = service_->lifecycle(ids::uuid_v7(), LifecycleAction::kStart, "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  auto d = service_->decommission(ids::uuid_v7(), "c");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(outbox().empty());
}

TEST_F(AgentServiceTest, DecommissionKeepsHistoryAndFreesTheName) {
  const auto a = create("old");
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  auto d = service_->decommission(a.id, "corr-dec");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->status, AgentStatus::kDecommissioned);
  EXPECT_EQ(d->version, 4);

  // Still readable, with its whole history.
  auto got = service_->get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, AgentStatus::kDecommissioned);
  const auto h = history(a.id);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].from_status, "running");
  EXPECT_EQ(h[0].status, "decommissioned");
  EXPECT_EQ(h[0].version, 4);
  const auto ev = outbox();
  EXPECT_EQ(payload(ev.back()).at("status").as_string(), "decommissioned");
  EXPECT_EQ(ev.back().correlation_id, "corr-dec");

  // Hidden from the default list, shown on request.
  auto page = service_->list({});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 0);
  store::AgentFilter all;
  all.include_decommissioned = true;
  page = service_->list(all);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);

  // Terminal: no second decommission, no edits.
  auto again = service_->decommission(a.id, "c");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().reason, "invalid_transition");
  AgentPatch p;
  p.description = "x";
  auto u = service_->update(a.id, std::move(p), 4, "c");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().reason, "invalid_transition");

  // The name is free for a new agent.
  const auto b = create("old");
  EXPECT_NE(b.id, a.id);
  EXPECT_EQ(b.status, AgentStatus::kCreated);
}

TEST_F(AgentServiceTest, PurgeRemovesAgentAndHistoryAndAnnounces) {
  const auto a = create("gone");
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  const auto keep = create("kept");
  Status s = service_->purge(a.id, "corr-purge");
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto g = service_->get(a.id);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, ErrorCode::kNotFound);
  auto h = service_->history(a.id, 10);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(history(keep.id).size(), 1u) << "other agents keep their history";
  const auto ev = outbox();
  EXPECT_EQ(ev.back().topic, "agent.purged");
  EXPECT_EQ(ev.back().correlation_id, "corr-purge");
  EXPECT_EQ(payload(ev.back()).at("agentId").as_string(), a.id);

  const auto events = ev.size();
  s = service_->purge(a.id, "c");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(outbox().size(), events) << "a failed purge announces nothing";
}

TEST_F(AgentServiceTest, EveryTransitionIsRecordedWithItsVersionAndEvent) {
  const auto a = create("cycle");
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStop, "c").ok());
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  auto last = service_->decommission(a.id, "c");
  ASSERT_TRUE(last.ok());

  auto h = history(a.id);
  std::reverse(h.begin(), h.end());  // oldest first
  const std::vector<std::string> want = {"created", "starting", "running",  "stopping",
                                         "stopped", "starting", "running", "decommissioned"};
  ASSERT_EQ(h.size(), want.size());
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].status, want[i]) << i;
    EXPECT_EQ(h[i].version, static_cast<std::int64_t>(i) + 1) << i;
    EXPECT_EQ(h[i].from_status, i == 0 ? "" : want[i - 1]) << i;
  }
  EXPECT_EQ(last->version, h.back().version);

  // One agent.status.update per transition, in the same order and with the same versions.
  const auto ev = outbox();
  ASSERT_EQ(ev.size(), h.size());
  for (std::size_t i = 0; i < ev.size(); ++i) {
    const auto p = payload(ev[i]);
    EXPECT_EQ(p.at("status").as_string(), want[i]) << i;
    EXPECT_EQ(p.at("version").as_int64(), h[i].version) << i;
    if (i > 0) {
      EXPECT_LT(ev[i - 1].id, ev[i].id);
    }
  }
}

TEST_F(AgentServiceTest, HistoryLimitKeepsTheNewest) {
  const auto a = create("lim");
  ASSERT_TRUE(service_->lifecycle(a.id, LifecycleAction::kStart, "c").ok());
  auto h = service_->history(a.id, 2);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].status, "running");
  EXPECT_EQ((*h)[1].status, "starting");
}

// Each injection point fails one statement of a start; the unit must leave no trace.
class AgentServiceFaultTest : public AgentServiceTest,
                              public ::testing::WithParamInterface<const char*> {};

TEST_P(AgentServiceFaultTest, FailedStartRollsBackTheWholeUnit) {
  const auto a = create("atomic");
  const auto before = snapshot(a.id);
  fail_on(GetParam());
  auto r = service_->lifecycle(a.id, LifecycleAction::kStart, "c");
  ASSERT_FALSE(r.ok()) << "the injected failure did not fire";
  EXPECT_NE(r.error().message.find("injected failure"), std::string::npos) << r.error().message;
  EXPECT_EQ(snapshot(a.id), before);
  // Once the fault is gone the same call succeeds and writes everything.
  stop_failing();
  r = service_->lifecycle(a.id, LifecycleAction::kStart, "c");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(history(a.id).size(), 3u);
  EXPECT_EQ(outbox().size(), before.outbox + 2);
}

INSTANTIATE_TEST_SUITE_P(
    InjectionPoints, AgentServiceFaultTest,
    ::testing::Values(
        // The first state row, before anything else.
        "BEFORE INSERT ON agent_states WHEN NEW.status = 'starting'",
        // The first event, after the first state row.
        "BEFORE INSERT ON outbox",
        // The second state row, after a full transition (state + event) was written.
        "BEFORE INSERT ON agent_states WHEN NEW.status = 'running'",
        // The second event.
        "BEFORE INSERT ON outbox WHEN NEW.payload LIKE '%\"status\":\"running\"%'",
        // The agent row itself, after every history and outbox row.
        "BEFORE UPDATE ON agents"));

TEST_F(AgentServiceTest, FailedCreateLeavesNoAgent) {
  fail_on("BEFORE INSERT ON outbox");
  NewAgent spec;
  spec.name = "ghost";
  spec.type = "command";
  auto r = service_->create(std::move(spec), "c");
  ASSERT_FALSE(r.ok());
  stop_failing();
  store::AgentFilter all;
  all.include_decommissioned = true;
  auto page = service_->list(all);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 0);
  EXPECT_TRUE(outbox().empty());
  // The name was never taken.
  create("ghost");
}

TEST_F(AgentServiceTest, FailedUpdateDecommissionAndPurgeChangeNothing) {
  const auto a = create("keep");
  const auto before = snapshot(a.id);
  fail_on("BEFORE INSERT ON outbox");
  AgentPatch p;
  p.description = "changed";
  EXPECT_FALSE(service_->update(a.id, std::move(p), 1, "c").ok());
  EXPECT_FALSE(service_->decommission(a.id, "c").ok());
  EXPECT_FALSE(service_->purge(a.id, "c").ok());
  stop_failing();
  EXPECT_EQ(snapshot(a.id), before);
}

TEST_F(AgentServiceTest, ConcurrentStartsSucceedExactlyOnce) {
  const auto a = create("race");
  constexpr int kThreads = 6;
  std::atomic<int> ok{0};
  std::atomic<int> invalid{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto r = service_->lifecycle(a.id, LifecycleAction::kStart, "c");
      if (r.ok()) {
        ++ok;
      } else if (r.error().reason == "invalid_transition") {
        ++invalid;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(invalid.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(history(a.id).size(), 3u);
}

}  // namespace
}  // namespace dp::agents
