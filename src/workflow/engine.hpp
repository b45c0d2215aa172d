// Engine: drives workflow executions to completion, durably (docs/workflows.md, "Engine").
//
// Every tick (and at once when woken) the engine takes the executions it may drive: its own
// and those whose node's lease lapsed (in embedded mode, at start, every unfinished one: a
// single process owns the SQLite file). For each it runs one store transaction that renews
// the lease (fencing out a node whose lease lapsed), reads the steps, and moves each step as
// far as it can: dependencies met -> `if` -> forEach fan-out -> a new attempt; timers
// (retry backoff, wait steps, approval and step timeouts); results of dispatched tasks and
// child executions. Every transition is written, with its `workflow.progress.update` (and
// `approval.requested`) event, before the engine acts on it. Agent tasks are created after
// the pass's own transaction through TaskService::create_in with the idempotency key
// `<execution>/<step>/<attempt>`, claimed there by this node's executor when it may run now: the
// step goes from pending to running in one commit that also holds its task, and the task starts
// once that commit is done. Only the task of the step's current attempt is ever read: a result
// of a superseded attempt changes nothing. Tool calls run after the commit that dispatched them,
// each with a cancel flag that a later pass raises when it cancels the step or times it out
// (the call ends, its record says cancelled and the MCP server is sent notifications/cancelled).
//
// Between passes the engine keeps the step rows of each execution it drives, as its last
// committed pass left them, with the execution's steps_version then: a pass whose execution still
// has that version (no one else wrote a step row since) uses them instead of reading and
// decoding every row again. Debug builds read the rows anyway and abort when they differ.
//
// Thread safety: every method from any thread; one execution is driven by one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "agents/task_service.hpp"
#include "store/store.hpp"
#include "workflow/definition.hpp"

namespace dp::workflow {

// A workflow `tool` step's call (an MCP tool), and how it ended.
struct ToolCall {
  std::string adapter;  // the adapter's name (or id)
  std::string tool;
  boost::json::object arguments;
  std::string caller;          // "execution:<id>/<step>"
  std::string correlation_id;  // the execution id
  std::string idempotency_key;  // <execution>/<step>/<attempt>
  // Raised when the step is cancelled or times out while the call is in flight: the call ends
  // (mcp::ExecuteRequest::cancel) and its result is not used.
  const std::atomic<bool>* cancel = nullptr;
};
struct ToolCallResult {
  // succeeded | failed (the tool answered isError, or the call broke) | timeout | unavailable
  // (the adapter is down) | cancelled (ToolCall::cancel was raised) | refused (no such adapter or tool, a held tool, arguments that fail
  // the schema: never retried)
  std::string status;
  boost::json::value output;  // the step's outputs when succeeded
  std::string error;
};
using ToolCaller = std::function<ToolCallResult(const ToolCall&)>;

struct EngineOptions {
  std::string node_id;
  std::chrono::milliseconds tick{200};
  std::chrono::milliseconds lease{15'000};
  // Embedded mode: take over every unfinished execution at start instead of waiting for the
  // previous process's leases to lapse.
  bool take_over_on_start = false;
  int max_executions_per_tick = 256;
  // Runs `tool` steps (workflow/tool_steps.hpp wires mcp::ToolService); empty: a tool step
  // fails at once. Calls run on `tool_threads` threads of their own.
  ToolCaller call_tool;
  int tool_threads = 4;
};

class Engine {
 public:
  Engine(store::Store& store, agents::TaskService& tasks, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  // Stops the loop. Tool calls in flight get `grace` to end, and their results are written;
  // the ones still running then are cancelled and their results dropped: their steps stay
  // `dispatched`, and the calls are made again at the next start, as after a crash.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(30));
  void notify();

  // One pass over the claimable executions (the loop calls it; tests may too).
  void tick();
  // Drives one execution now, on the calling thread (a fresh execution gets its first steps
  // going before POST .../execute answers; a step's task that ended moves its execution on
  // from the task's thread). When another thread is driving it, that thread makes one more
  // pass instead. Nothing once stopped.
  void drive_now(const std::string& execution_id) { drive(execution_id); }
  // The same, made soon by the engine's own thread (for callers that must not block on a pass,
  // such as a remote agent's result, handled on a connection's thread). Nothing once stopped.
  void drive_soon(const std::string& execution_id);

  // How often a pass found its execution's step rows kept from the previous pass (hits) or
  // read them from the store (misses).
  struct StepCacheStats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
  };
  StepCacheStats step_cache_stats() const { return {cache_hits_.load(), cache_misses_.load()}; }

 private:
  // A tool step's call, made after the commit that dispatched it.
  struct ToolDispatch {
    std::string execution_id;
    std::string step_id;
    std::int64_t attempt = 0;
    boost::json::value input;
    std::string key;
    std::string correlation_id;
    std::string adapter;
    std::string tool_name;
  };

  void loop();
  void drive(const std::string& execution_id);
  // One pass (one store transaction) over the execution, then what it asks for after the commit.
  void drive_once(const std::string& execution_id);
  // Raises the cancel flag of every tool call this node has in flight for the execution.
  void stop_tool_calls(const std::string& execution_id);
  // Records when the execution next needs a pass (epoch µs; 0: no timer), waking the loop if
  // that is sooner.
  void set_timer(const std::string& id, std::int64_t at);
  // A tool step's call, on the tool pool; its result is written if the attempt is still current.
  void call_tool(const ToolDispatch& d, const std::atomic<bool>& cancel);
  // While stopping: writes a call's result alone (no pass that would start further steps).
  void record_tool_result(const ToolDispatch& d, const ToolCallResult& result);
  Result<std::shared_ptr<const Definition>> definition(store::Tx& tx, const std::string& workflow_id,
                                                       std::int64_t version);

  store::Store& store_;
  agents::TaskService& tasks_;
  const EngineOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  // stop()'s grace period ran out: results of calls still in flight are dropped; guarded by mu_.
  bool abandoned_ = false;
  std::condition_variable calls_cv_;  // a tool call ended (left tool_calls_)
  bool wake_ = false;  // guarded by mu_
  // The earliest pending timer (epoch µs) of each execution this node drives, as its last
  // pass left it: the loop drives an execution when its timer is due, and every execution it
  // may drive every `tick` (or when notified). Guarded by mu_.
  std::map<std::string, std::int64_t, std::less<>> timers_;
  bool timers_changed_ = false;  // an earlier timer was set while the loop waited; guarded by mu_
  std::set<std::string> driving_;  // executions being driven now; guarded by mu_
  std::set<std::string> again_;    // of those, the ones to pass over once more; guarded by mu_
  std::atomic<bool> took_over_{false};
  // Parsed definitions by "<workflow>/<version>" (versions never change); guarded by defs_mu_.
  std::mutex defs_mu_;
  std::map<std::string, std::shared_ptr<const Definition>> definitions_;
  // The step rows an execution's last committed pass left, in the store's order (seq), and the
  // execution's steps_version after that commit.
  struct KeptSteps {
    std::int64_t version = 0;
    std::vector<model::ExecutionStep> rows;
  };
  // Taken out (moved) by the pass that uses them, put back after its commit; guarded by kept_mu_.
  std::mutex kept_mu_;
  std::map<std::string, KeptSteps, std::less<>> kept_;
  std::atomic<std::uint64_t> cache_hits_{0};
  std::atomic<std::uint64_t> cache_misses_{0};
  std::thread thread_;
  std::unique_ptr<boost::asio::thread_pool> tool_pool_;  // guarded by mu_ (start/stop)
  // Tool calls in flight by idempotency key, with their cancel flags; guarded by mu_.
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> tool_calls_;
  // Results of tool calls that ended, by idempotency key, until a pass over their execution
  // has seen them; guarded by mu_.
  std::map<std::string, ToolCallResult> tool_results_;
};

// The delay before attempt `attempt + 1` after `attempt` failed: backoff * factor^(attempt-1),
// capped, with up to 20% random jitter either way.
std::int64_t backoff_ms(const RetryPolicy& policy, std::int64_t attempt);

}  // namespace dp::workflow
