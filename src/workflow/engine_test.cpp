// The engine against a real SQLite store, with the test playing the executor (claiming and
// finishing tasks by hand), so attempts, timeouts and late results can be ordered exactly.
#include "workflow/engine.hpp"

#include <filesystem>
#include <random>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "workflow/service.hpp"

namespace dp::workflow {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dp-engine-" + ids::uuid_v7());
    fs::create_directories(dir_);
    Config cfg;
    cfg.data_dir = dir_.string();
    auto s = store::open_store(cfg);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->migrate().ok());
    model::Agent a;
    a.id = ids::uuid_v7();
    a.name = "worker";
    a.type = "command";
    a.status = model::AgentStatus::kRunning;
    a.created_at = a.updated_at = clock::now_ms();
    agent_id_ = a.id;
    ASSERT_TRUE(store_->write([&](store::Tx& tx) { return tx.agents().insert(a); }).ok());
    tasks_ = std::make_unique<agents::TaskService>(*store_, nullptr);
    EngineOptions opts;
    opts.node_id = "node-test";
    engine_ = std::make_unique<Engine>(*store_, *tasks_, opts);
    service_ = std::make_unique<WorkflowService>(*store_, nullptr);
  }
  void TearDown() override {
    engine_.reset();
    if (store_) store_->close();
    fs::remove_all(dir_);
  }

  std::string start(const std::string& yaml) {
    auto w = service_->create(yaml, Caller{});
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : json::serialize(w.error().details));
    auto e = service_->execute(w->id, {}, Caller{"test", "admin", "corr"});
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    return e->id;
  }
  model::ExecutionStep step(const std::string& ex, const std::string& id) {
    auto v = service_->execution(ex);
    EXPECT_TRUE(v.ok());
    for (auto& s : v->steps) {
      if (s.step_id == id) return s;
    }
    ADD_FAILURE() << "no step " << id;
    return {};
  }
  std::string status(const std::string& ex) { return service_->execution(ex)->execution.status; }
  // Plays the executor: claims the oldest queued task of the agent.
  model::Task claim() {
    std::optional<model::Task> t;
    EXPECT_TRUE(store_->write([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(t, tx.tasks().claim(agent_id_, "exec-node", clock::now_ms(), clock::now_ms() + 60'000));
      return Ok{};
    }).ok());
    EXPECT_TRUE(t.has_value()) << "no queued task";
    return t.value_or(model::Task{});
  }
  void finish(const model::Task& t, const std::string& st, const std::string& stdout_text, int code = 0) {
    const std::string result = json::serialize(json::object{
        {"outcome", "exited"}, {"exitCode", code}, {"stdout", stdout_text}, {"stderr", ""}});
    ASSERT_TRUE(store_->write([&](store::Tx& tx) {
      return tx.tasks().finish(t.id, "exec-node", st, result, st == "failed" ? "exited with code " + std::to_string(code) : "",
                               clock::now_ms());
    }).ok());
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<agents::TaskService> tasks_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<WorkflowService> service_;
  std::string agent_id_;
};

TEST_F(EngineTest, RetriesAFailedStepUntilItsLimitWithTheAttemptInTheKey) {
  const std::string ex = start(R"(name: retry
steps:
  - {id: a, type: agent, agent: worker, retry: {maxAttempts: 3, backoff: 50ms, retryOn: ["exit:2"]}}
)");
  engine_->tick();
  auto t1 = claim();
  EXPECT_EQ(t1.idempotency_key, ex + "/a/1");
  finish(t1, "failed", "", 2);
  engine_->tick();
  EXPECT_EQ(step(ex, "a").status, "retrying");
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  engine_->tick();
  auto t2 = claim();
  EXPECT_EQ(t2.idempotency_key, ex + "/a/2");
  finish(t2, "failed", "", 3);  // not retryable (exit:3)
  engine_->tick();
  auto s = step(ex, "a");
  EXPECT_EQ(s.status, "failed");
  EXPECT_EQ(s.attempt, 2);
  EXPECT_EQ(s.history.size(), 2u);
  EXPECT_EQ(status(ex), "failed");
}

TEST_F(EngineTest, AResultOfASupersededAttemptIsFencedOut) {
  const std::string ex = start(R"(name: fence
steps:
  - {id: a, type: agent, agent: worker, timeout: 1s, retry: {maxAttempts: 2, backoff: 50ms}}
)");
  engine_->tick();
  auto t1 = claim();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  engine_->tick();  // attempt 1 timed out
  EXPECT_EQ(step(ex, "a").status, "retrying");
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  engine_->tick();  // attempt 2 dispatched
  auto s = step(ex, "a");
  EXPECT_EQ(s.attempt, 2);
  // The late result of attempt 1 arrives: nothing changes.
  finish(t1, "succeeded", "stale");
  engine_->tick();
  s = step(ex, "a");
  EXPECT_EQ(s.status, "running");
  EXPECT_EQ(s.attempt, 2);
  auto t2 = claim();
  EXPECT_EQ(t2.idempotency_key, ex + "/a/2");
  finish(t2, "succeeded", "fresh");
  engine_->tick();
  s = step(ex, "a");
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.outputs.at("stdout"), "fresh");
  EXPECT_EQ(status(ex), "succeeded");
}

TEST_F(EngineTest, ACrashBetweenDispatchAndRecordingReusesTheKey) {
  const std::string ex = start("name: again\nsteps:\n  - {id: a, type: agent, agent: worker}\n");
  engine_->tick();
  auto s = step(ex, "a");
  ASSERT_EQ(s.status, "running");
  // Simulate the crash: the step goes back to `dispatched` without its task id, as if the
  // process had died after creating the task but before recording it.
  auto back = s;
  back.status = "dispatched";
  back.task_id.clear();
  ASSERT_TRUE(store_->write([&](store::Tx& tx) { return tx.executions().update_step(back, "running", 1); }).ok());
  Engine restarted(*store_, *tasks_, EngineOptions{"node-2", std::chrono::milliseconds(200), std::chrono::milliseconds(15'000), true, 256, {}, 4});
  restarted.tick();
  auto again = step(ex, "a");
  EXPECT_EQ(again.status, "running");
  EXPECT_EQ(again.task_id, s.task_id);  // the same task: TaskService matched the key
  auto page = tasks_->list(store::TaskFilter{agent_id_, std::nullopt, std::nullopt, 50});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
}

TEST_F(EngineTest, RetryOfAFailedFanOutRerunsOnlyTheFailedItems) {
  const std::string ex = start("name: fe\nsteps:\n  - {id: each, type: agent, agent: worker, forEach: [x, y]}\n");
  engine_->tick();
  auto t0 = claim();
  auto t1 = claim();
  EXPECT_EQ(t0.idempotency_key, ex + "/each[0]/1");
  EXPECT_EQ(t1.idempotency_key, ex + "/each[1]/1");
  finish(t0, "succeeded", "x done");
  finish(t1, "failed", "", 1);
  engine_->tick();
  EXPECT_EQ(status(ex), "failed");
  EXPECT_EQ(step(ex, "each").status, "failed");
  ASSERT_TRUE(service_->retry(ex, Caller{}).ok());
  engine_->tick();
  auto t1b = claim();
  EXPECT_EQ(t1b.idempotency_key, ex + "/each[1]/2");
  finish(t1b, "succeeded", "y done");
  engine_->tick();
  EXPECT_EQ(status(ex), "succeeded");
  auto each = step(ex, "each");
  ASSERT_EQ(each.outputs.at("results").as_array().size(), 2u);
  EXPECT_EQ(each.outputs.at("results").at(0).at("stdout"), "x done");
  EXPECT_EQ(each.outputs.at("results").at(1).at("stdout"), "y done");
}

TEST(BackoffTest, GrowsByTheFactorWithBoundedJitterAndCap) {
  RetryPolicy p;
  p.backoff_ms = 1000;
  p.factor = 2;
  p.max_backoff_ms = 5000;
  for (int i = 0; i < 200; ++i) {
    const auto b1 = backoff_ms(p, 1);
    EXPECT_GE(b1, 800);
    EXPECT_LE(b1, 1200);
    const auto b3 = backoff_ms(p, 3);
    EXPECT_GE(b3, 3200);
    EXPECT_LE(b3, 4800);
    const auto b9 = backoff_ms(p, 9);
    EXPECT_LE(b9, 6000);
    EXPECT_GE(b9, 4000);
  }
}

}  // namespace
}  // namespace dp::workflow
