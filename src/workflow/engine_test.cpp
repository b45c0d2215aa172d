// The engine against a real SQLite store, with the test playing the executor (claiming and
// finishing tasks by hand), so attempts, timeouts and late results can be ordered exactly.
#include "workflow/engine.hpp"

#include <condition_variable>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
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
  // Polls (every 10 ms, at most `limit`) until the execution has `want`.
  void wait_status(const std::string& ex, const std::string& want,
                   std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (status(ex) != want && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // The engine replaced by a running one whose periodic sweep is far later than any test, its
  // loop already waiting: what moves an execution then is a timer or a drive.
  void run_engine_without_sweep() {
    EngineOptions opts;
    opts.node_id = "node-test";
    opts.tick = std::chrono::seconds(30);
    engine_ = std::make_unique<Engine>(*store_, *tasks_, opts);
    engine_->start();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // A chain of three wait steps a -> b -> c of `ms` each.
  static std::string wait_chain(const std::string& name, int ms) {
    const std::string d = std::to_string(ms) + "ms";
    return "name: " + name + "\nsteps:\n  - {id: a, type: wait, duration: " + d +
           "}\n  - {id: b, type: wait, duration: " + d + ", needs: [a]}\n  - {id: c, type: wait, duration: " +
           d + ", needs: [b]}\n";
  }
  // What a fake tool call does while in flight: waits (at most `limit`) for its cancel flag.
  static void wait_for_cancel(const ToolCall& call, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!call.cancel->load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
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
  // A step left `dispatched` without its task id, as an earlier engine did when it died after
  // creating the task (after the commit that dispatched the step) but before recording it.
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

// The pass that starts an agent step also creates its task: one commit, and the step is
// `running` with its task (never `dispatched`) when the tick returns.
TEST_F(EngineTest, AnAgentStepsTaskIsCreatedInThePassThatStartsIt) {
  const std::string ex = start("name: one\nsteps:\n  - {id: a, type: agent, agent: worker}\n  - {id: b, type: agent, agent: worker, needs: [a]}\n");
  engine_->tick();
  auto a = step(ex, "a");
  EXPECT_EQ(a.status, "running");
  ASSERT_FALSE(a.task_id.empty());
  auto t = claim();
  EXPECT_EQ(t.id, a.task_id);
  EXPECT_EQ(t.idempotency_key, ex + "/a/1");
  EXPECT_EQ(t.created_by, "execution:" + ex);
  finish(t, "succeeded", "ok");
  engine_->tick();  // ends a and starts b in one pass
  EXPECT_EQ(step(ex, "a").status, "succeeded");
  auto b = step(ex, "b");
  EXPECT_EQ(b.status, "running");
  auto tb = claim();
  EXPECT_EQ(tb.id, b.task_id);
  EXPECT_EQ(tb.idempotency_key, ex + "/b/1");
}

// A tool call in flight is told to stop (its cancel flag) when its execution is cancelled and
// when its step times out; a result that comes back after that changes nothing.
TEST_F(EngineTest, CancelAndTimeoutRaiseTheCancelFlagOfAToolCallInFlight) {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, bool> seen;  // step id -> the call saw its cancel flag
  EngineOptions opts;
  opts.node_id = "node-tools";
  opts.call_tool = [&](const ToolCall& call) -> ToolCallResult {
    wait_for_cancel(call, std::chrono::seconds(20));
    const bool stopped = call.cancel->load();
    {
      std::lock_guard lock(mu);
      seen[call.caller.substr(call.caller.rfind('/') + 1)] = stopped;
    }
    cv.notify_all();
    // What the MCP client answers when its cancel flag is raised; or a late success.
    return stopped ? ToolCallResult{"cancelled", nullptr, "cancelled: the call was cancelled"}
                   : ToolCallResult{"succeeded", json::object{{"late", true}}, ""};
  };
  engine_ = std::make_unique<Engine>(*store_, *tasks_, opts);
  engine_->start();
  const std::string ex = start("name: slow-tools\nsteps:\n  - {id: slow, type: tool, tool: x/y}\n");
  const std::string ex2 = start("name: timed-tools\nsteps:\n  - {id: timed, type: tool, tool: x/y, timeout: 300ms}\n");
  engine_->notify();
  for (int i = 0; i < 200 && step(ex, "slow").status != "dispatched"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(step(ex, "slow").status, "dispatched");
  ASSERT_TRUE(service_->cancel(ex, Caller{}).ok());
  engine_->notify();
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen.size() == 2; }));
  EXPECT_TRUE(seen["slow"]);
  EXPECT_TRUE(seen["timed"]);
  lock.unlock();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the results are written (or not)
  EXPECT_EQ(status(ex), "cancelled");
  EXPECT_EQ(step(ex, "slow").status, "cancelled");
  auto timed = step(ex2, "timed");
  EXPECT_EQ(timed.status, "failed");
  EXPECT_EQ(timed.error, "timed out after 300 ms");
  ASSERT_EQ(timed.history.size(), 1u);
  EXPECT_EQ(timed.history.at(0).at("kind"), "timeout");
  engine_->stop();
}

// Another node took the execution over (this node's lease lapsed): this node's next pass over
// it raises the cancel flag of the call it still has in flight, and writes nothing.
TEST_F(EngineTest, LosingTheLeaseStopsTheToolCallsInFlightOnThisNode) {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  bool stopped = false;
  EngineOptions opts;
  opts.node_id = "node-a";
  opts.tick = std::chrono::seconds(30);  // no sweep: the test says when a pass happens
  opts.call_tool = [&](const ToolCall& call) -> ToolCallResult {
    {
      std::lock_guard lock(mu);
      ++calls;
    }
    cv.notify_all();
    wait_for_cancel(call, std::chrono::seconds(20));
    {
      std::lock_guard lock(mu);
      stopped = call.cancel->load();
    }
    cv.notify_all();
    return stopped ? ToolCallResult{"cancelled", nullptr, "cancelled: the call was cancelled"}
                   : ToolCallResult{"succeeded", json::object{{"late", true}}, ""};
  };
  engine_ = std::make_unique<Engine>(*store_, *tasks_, opts);
  engine_->start();
  const std::string ex = start("name: long-tool\nsteps:\n  - {id: slow, type: tool, tool: x/y}\n");
  engine_->notify();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return calls == 1; }));
  }
  ASSERT_EQ(step(ex, "slow").status, "dispatched");
  // node-b takes the lease as a node does once the holder's has lapsed.
  bool taken = false;
  ASSERT_TRUE(store_->write([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(taken, tx.executions().lease(ex, "node-b", std::numeric_limits<std::int64_t>::max(),
                                                     clock::now_ms() + 60'000));
    return Ok{};
  }).ok());
  ASSERT_TRUE(taken);
  engine_->drive_soon(ex);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return stopped; }))
        << "the call on node-a was not stopped";
    EXPECT_EQ(calls, 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the cancelled result's pass
  // node-a wrote nothing: the step waits for node-b, which holds the lease still.
  EXPECT_EQ(step(ex, "slow").status, "dispatched");
  EXPECT_EQ(status(ex), "running");
  auto e = service_->execution(ex);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->execution.lease_owner, "node-b");
  engine_->stop();
}

// stop(grace): a call that ends within the grace period has its result written; one that does
// not is cancelled and its result dropped, so the step stays dispatched for the next start.
TEST_F(EngineTest, StopGivesToolCallsTheGracePeriodThenCancelsAndDropsTheRest) {
  EngineOptions opts;
  opts.node_id = "node-stop";
  opts.call_tool = [&](const ToolCall& call) -> ToolCallResult {
    const bool quick = call.caller.ends_with("/quick");
    // "quick" ends shortly after the stop begins; "slow" only when cancelled.
    if (quick) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    } else {
      wait_for_cancel(call, std::chrono::seconds(20));
    }
    return call.cancel->load() ? ToolCallResult{"cancelled", nullptr, "cancelled: the call was cancelled"}
                               : ToolCallResult{"succeeded", json::object{{"done", true}}, ""};
  };
  engine_ = std::make_unique<Engine>(*store_, *tasks_, opts);
  engine_->start();
  const std::string ex = start(
      "name: two-calls\nsteps:\n  - {id: quick, type: tool, tool: x/y}\n  - {id: slow, type: tool, tool: x/y}\n");
  engine_->notify();
  for (int i = 0; i < 200 && (step(ex, "quick").status != "dispatched" || step(ex, "slow").status != "dispatched"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(step(ex, "slow").status, "dispatched");
  const auto t0 = std::chrono::steady_clock::now();
  engine_->stop(std::chrono::milliseconds(1500));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(step(ex, "quick").status, "succeeded");  // ended within the grace: written
  const auto slow = step(ex, "slow");
  EXPECT_EQ(slow.status, "dispatched");  // cut: nothing written, made again at the next start
  EXPECT_EQ(slow.attempt, 1);
  EXPECT_EQ(status(ex), "running");
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

// The engine keeps an execution's step rows between its passes; a write by anyone else (here
// an approval through the service) moves the execution's steps_version and the next pass reads
// the rows again. (Debug builds also compare every kept row with the stored one on each use.)
TEST_F(EngineTest, KeepsStepRowsBetweenPassesAndRereadsThemAfterAnotherWriter) {
  const std::string ex = start(R"(name: kept
steps:
  - {id: fan, type: wait, duration: 1ms, forEach: [1, 2, 3]}
  - {id: gate, type: approval, needs: [fan]}
  - {id: after, type: wait, duration: 1ms, needs: [gate]}
)");
  auto settle = [&](const std::string& until_step, const std::string& until_status) {
    for (int i = 0; i < 200 && step(ex, until_step).status != until_status; ++i) {
      engine_->tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(step(ex, until_step).status, until_status);
  };
  ASSERT_NO_FATAL_FAILURE(settle("gate", "waiting_approval"));
  const auto before = engine_->step_cache_stats();
  EXPECT_EQ(before.misses, 1u) << "only the first pass reads the rows";
  EXPECT_GE(before.hits, 1u) << "later passes use the rows the previous pass left";
  engine_->tick();  // nothing moved: the kept rows again
  EXPECT_EQ(engine_->step_cache_stats().misses, 1u);

  ASSERT_TRUE(service_->decide(ex, "gate", true, "ok", Caller{"user:1", "admin", "corr"}).ok());
  ASSERT_NO_FATAL_FAILURE(settle("after", "succeeded"));
  EXPECT_EQ(engine_->step_cache_stats().misses, 2u) << "the approval's write made one pass read again";
  EXPECT_EQ(status(ex), "succeeded");
  auto gate = step(ex, "gate");
  EXPECT_EQ(gate.status, "succeeded");
  EXPECT_EQ(gate.decided_by, "user:1");
  EXPECT_EQ(step(ex, "fan").outputs.at("results").as_array().size(), 3u);
}

// A timer set by a pass on another thread (POST .../execute drives a new execution on the
// request's thread) is honoured by the engine's loop at once, not after its periodic sweep.
TEST_F(EngineTest, TimersSetOnAnotherThreadWakeTheLoopWithoutWaitingForTheSweep) {
  run_engine_without_sweep();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string ex = start(wait_chain("timers", 20));
  engine_->drive_now(ex);
  wait_status(ex, "succeeded");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(status(ex), "succeeded");
  EXPECT_LT(took, std::chrono::seconds(5)) << "the timers waited for the sweep";
  EXPECT_GE(took, std::chrono::milliseconds(60)) << "three 20 ms waits in a chain";
  engine_->stop();
}

// Each progress event carries the pass's clock in µs (atUs, in the event's own millisecond),
// and a wait lasts at least its duration: its timer (in µs) is due at the pass's clock plus the
// duration, never earlier.
TEST_F(EngineTest, WaitsLastTheirFullLengthAndEventsCarryTheirMicroseconds) {
  const std::string ex = start(wait_chain("micro", 3));
  for (int i = 0; i < 500 && status(ex) != "succeeded"; ++i) {
    engine_->tick();
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  ASSERT_EQ(status(ex), "succeeded");
  std::vector<store::OutboxEvent> events;
  ASSERT_TRUE(store_->read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(events, tx.outbox().pending(1000));
    return Ok{};
  }).ok());
  std::map<std::string, std::int64_t> started;
  std::map<std::string, std::int64_t> succeeded;
  for (const auto& ev : events) {
    if (ev.topic != "workflow.progress.update") continue;
    const auto data = json::parse(ev.payload).as_object();
    if (data.at("executionId").as_string() != ex) continue;
    ASSERT_TRUE(data.contains("atUs")) << ev.payload;
    const std::int64_t at_us = data.at("atUs").as_int64();
    EXPECT_EQ(at_us / 1000, ev.created_at) << "atUs lies in the event's own millisecond";
    if (!data.contains("stepId")) continue;
    const std::string step_id(data.at("stepId").as_string());
    if (data.at("stepStatus") == "waiting") started[step_id] = at_us;
    if (data.at("stepStatus") == "succeeded") succeeded[step_id] = at_us;
  }
  ASSERT_EQ(started.size(), 3u);
  ASSERT_EQ(succeeded.size(), 3u);
  for (const auto& [id, at] : started) {
    EXPECT_GE(succeeded[id] - at, 3000) << "step " << id << " ended before its 3 ms wait";
  }
}

// drive_soon: the engine's thread makes the pass, at once, without waiting for its sweep.
TEST_F(EngineTest, DriveSoonMakesAPassOnTheEnginesThreadWithoutTheSweep) {
  run_engine_without_sweep();
  const std::string ex = start(wait_chain("soon", 1));
  const auto t0 = std::chrono::steady_clock::now();
  engine_->drive_soon(ex);
  wait_status(ex, "succeeded");
  EXPECT_EQ(status(ex), "succeeded");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "the pass waited for the sweep";
  engine_->stop();
  engine_->drive_soon(ex);  // stopped: nothing, and no hang
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
