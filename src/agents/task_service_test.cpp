// TaskService with the Executor as its TaskStarter, over a real SQLite store: a task created
// for a running agent with room is claimed in the transaction that creates it and runs at once;
// a claim that cannot be written takes the creation down with it and leaves nothing, and the
// slot it had reserved is given back. Programs run unsandboxed (isolation: none), `true`.
#include "agents/task_service.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "agents/executor.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "store/store.hpp"

namespace dp::agents {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class TaskStarterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::configure(log::Level::kError, log::Format::kJson);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("dp_task_starter_test_" + std::to_string(rd()) + std::to_string(rd()));
    Config c;
    c.data_dir = dir_.string();
    auto s = store::open_store(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->migrate().ok());
    ExecutorOptions opts;
    opts.node_id = "node-a";
    opts.data_dir = dir_.string();
    opts.max_parallel = 1;  // a slot that leaked would keep every later task queued
    opts.tick = std::chrono::milliseconds(60'000);  // only the starter or a notify claims
    executor_ = std::make_unique<Executor>(*store_, opts);
    tasks_ = std::make_unique<TaskService>(*store_, [this] { ++woken_; });
    tasks_->set_starter(executor_.get());
    executor_->start();
  }

  void TearDown() override {
    executor_->stop();
    tasks_.reset();
    executor_.reset();
    if (store_) store_->close();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    log::configure(log::Level::kInfo, log::Format::kJson);
  }

  std::string agent(const std::string& type, model::AgentStatus status,
                    json::array command = json::array{"true"}) {
    model::Agent a;
    a.id = ids::uuid_v7();
    a.name = "a-" + a.id;
    a.type = type;
    a.status = status;
    a.config = json::object{{"command", std::move(command)}, {"isolation", "none"}};
    a.created_at = a.updated_at = clock::now_ms();
    EXPECT_TRUE(store_->write([&](store::Tx& tx) { return tx.agents().insert(a); }).ok());
    return a.id;
  }

  Result<std::pair<model::Task, bool>> create(const std::string& agent_id, const std::string& key = {}) {
    NewTask t;
    t.agent_id = agent_id;
    t.input = "";
    t.idempotency_key = key;
    return tasks_->create(std::move(t), "corr");
  }

  model::Task wait_finished(const std::string& agent_id, const std::string& id) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      auto t = tasks_->get(agent_id, id);
      EXPECT_TRUE(t.ok());
      if (!t.ok() || t->finished() || std::chrono::steady_clock::now() > until) return t.ok() ? *t : model::Task{};
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Events about task `id`, in order: their statuses.
  std::vector<std::string> task_events(const std::string& id) {
    std::vector<store::OutboxEvent> rows;
    EXPECT_TRUE(store_->read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(rows, tx.outbox().pending(10000));
      return Ok{};
    }).ok());
    std::vector<std::string> out;
    for (const auto& r : rows) {
      if (r.topic != "agent.task.update") continue;
      auto v = json::parse(r.payload);
      if (v.at("taskId").as_string() == id) out.emplace_back(v.at("status").as_string());
    }
    return out;
  }

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

  std::int64_t count_tasks() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_ / "devplane.db").string().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::int64_t n = -1;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM agent_tasks", -1, &st, nullptr), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<TaskService> tasks_;
  std::atomic<int> woken_{0};
};

TEST_F(TaskStarterTest, ATaskForARunningAgentIsClaimedInTheCommitThatCreatesIt) {
  const std::string a = agent("command", model::AgentStatus::kRunning);
  for (int i = 0; i < 3; ++i) {
    auto r = create(a);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->second);
    // Committed as running: the answer says so, and nobody had to be woken to claim it.
    EXPECT_EQ(r->first.status, "running");
    EXPECT_EQ(r->first.attempts, 1);
    EXPECT_EQ(r->first.node_id, "node-a");
    const auto done = wait_finished(a, r->first.id);
    EXPECT_EQ(done.status, "succeeded") << done.error;
    EXPECT_EQ(done.attempts, 1);
    EXPECT_EQ(task_events(r->first.id), (std::vector<std::string>{"queued", "running", "succeeded"}));
  }
  EXPECT_EQ(woken_.load(), 0);
  // The same key again: the first task, no second claim.
  auto first = create(a, "k-1");
  ASSERT_TRUE(first.ok());
  wait_finished(a, first->first.id);
  auto again = create(a, "k-1");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->second);
  EXPECT_EQ(again->first.id, first->first.id);
  EXPECT_EQ(again->first.attempts, 1);
}

TEST_F(TaskStarterTest, TasksOfAgentsThisNodeDoesNotRunNowStayQueued) {
  for (const auto& [type, status] : {std::pair{std::string("command"), model::AgentStatus::kStopped},
                                     std::pair{std::string("remote"), model::AgentStatus::kRunning}}) {
    const std::string a = agent(type, status);
    const int before = woken_.load();
    auto r = create(a);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->first.status, "queued") << type;
    EXPECT_EQ(r->first.attempts, 0);
    EXPECT_EQ(woken_.load(), before + 1) << "the executor (or the remote hub) is woken instead";
    EXPECT_EQ(tasks_->get(a, r->first.id)->status, "queued");
  }
}

TEST_F(TaskStarterTest, AClaimThatCannotBeWrittenUndoesTheCreationAndGivesItsSlotBack) {
  const std::string a = agent("command", model::AgentStatus::kRunning);
  // The claim's event is the last statement of the unit: make it fail.
  exec_sql(
      "CREATE TRIGGER inject_failure BEFORE INSERT ON outbox WHEN NEW.payload LIKE "
      "'%\"status\":\"running\"%' BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  auto r = create(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(count_tasks(), 0) << "the task must not exist without its claim";
  exec_sql("DROP TRIGGER inject_failure");
  // With max_parallel 1, a slot the failed claim kept would leave this one queued.
  auto ok = create(a);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->first.status, "running");
  EXPECT_EQ(wait_finished(a, ok->first.id).status, "succeeded");
}

TEST_F(TaskStarterTest, AClaimWhoseTransactionFailsLaterStartsNothingAndLeavesNoTrace) {
  // The task's thread is started inside the claiming transaction to prepare while it commits
  // (Executor: prestart). Here a later statement of that transaction fails: the program must
  // never run, the prepared workspace must go, and the slot must be free again.
  const fs::path marker = dir_ / "ran";
  const std::string a = agent("command", model::AgentStatus::kRunning,
                              json::array{"sh", "-c", "echo x >> " + marker.string()});
  PendingTasks pending;
  std::string task_id;
  Status s = store_->write([&](store::Tx& tx) -> Status {
    NewTask t;
    t.agent_id = a;
    t.input = "";
    DP_ASSIGN_OR_RETURN(auto created, tasks_->create_in(tx, std::move(t), "corr", pending));
    task_id = created.first.id;
    EXPECT_EQ(created.first.status, "running");
    // Time for the prestarted thread to prepare and reach its gate: its workspace is there
    // before the commit.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(fs::exists(dir_ / "workspaces" / a / task_id / "outputs"));
    return Error::internal("a later step of the transaction failed");
  });
  tasks_->settle(pending, s.ok());
  ASSERT_FALSE(s.ok());
  ASSERT_FALSE(task_id.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(fs::exists(marker)) << "the program ran for a claim that was rolled back";
  EXPECT_FALSE(fs::exists(dir_ / "workspaces" / a / task_id)) << "its workspace was left behind";
  EXPECT_EQ(count_tasks(), 0);
  EXPECT_TRUE(task_events(task_id).empty());
  // With max_parallel 1, a slot the called-off thread kept would leave this one queued.
  auto ok = create(a);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->first.status, "running");
  EXPECT_EQ(wait_finished(a, ok->first.id).status, "succeeded");
  EXPECT_TRUE(fs::exists(marker));
}

}  // namespace
}  // namespace dp::agents
