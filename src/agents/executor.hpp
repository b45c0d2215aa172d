// Executor: runs the tasks of running `command` and `llm` agents on this node.
//
// Every tick it puts back in the queue the tasks whose node died (lease lapsed) and renews
// the leases of the tasks it runs (once a third of the lease has passed); on every tick and
// at once when notified it stops the tasks whose cancel was requested or whose agent is no
// longer running, and claims queued tasks of running command agents up to each agent's
// `concurrency` (default 1) and the node's `max_parallel`. As the TaskService's TaskStarter
// it also claims a new task inside the transaction that creates it, and starts it right
// after that commit.
// A claimed task runs on its own thread through the sandbox runner with the agent's config:
// the task input on stdin (or as the last argument, or in `task.json` in the workspace), a
// workspace per task under `<data_dir>/workspaces/<agent>/<task>`, limits, timeout, network.
// Its output streams as `agent.log` events; its end writes the result (exit code, outcome,
// capped stdout/stderr, the files left in `outputs/` (symlinks are listed, never followed),
// resource use) and an `agent.task.update` event in one transaction.
// A task of an `llm` agent runs the agent loop (agents/llm_loop.hpp) on that thread instead:
// the provider key is opened from the named secret, every model call writes agent_metrics
// rows (tokens in/out, latency), tool calls and answers stream as `agent.log` events, and the
// end writes the result (answer, stop reason, usage, turns), the per-task metrics and the
// event in one transaction; a stop by a guard is also recorded in the audit log.
//
// A task that names `repo` runs in its own git worktree (agents/git_workspace.hpp) at
// `<workspace>/repo`, on the branch `devplane/<agent name>/<task id>`; the result carries
// `git` {branch, commit, diffStat, ...}. Budgets: per task (the task's `limits`, else the
// agent's config) and per agent (config.budget: totals over its tasks' metrics); a stop by
// a budget names its reason in the result (`stopReason`), the task event and the audit log.
// Old workspaces are swept once a minute (workspace_retention).
//
// Thread safety: start/stop/notify from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "agents/agent_logs.hpp"
#include "agents/git_workspace.hpp"
#include "agents/sandbox/runner.hpp"
#include "agents/task_service.hpp"
#include "agents/tools.hpp"
#include "audit/recorder.hpp"
#include "auth/secrets.hpp"
#include "model/agent.hpp"
#include "model/task.hpp"
#include "store/store.hpp"

namespace dp::agents {

struct ExecutorOptions {
  std::string node_id;
  std::string data_dir;
  std::chrono::milliseconds tick{250};
  std::chrono::milliseconds lease{30'000};
  int max_parallel = 16;
  std::size_t max_log_bytes_per_task = 1024 * 1024;  // beyond: counted, not announced
  const auth::Secrets* secrets = nullptr;  // opens llm provider keys; null: keys unavailable
  audit::Recorder* recorder = nullptr;     // guard stops of llm tasks; may be null
  const ToolSet* tools = nullptr;          // tools llm agents may be given; null: the built-ins
  // More tools (MCP adapters), resolved per task from the agent's config; may be null.
  const ToolSource* tool_source = nullptr;
  // Model calls of llm agents: first retry wait (doubling) and the longest wait.
  std::chrono::milliseconds llm_backoff_base{500};
  std::chrono::milliseconds llm_max_backoff{30'000};
  // Task workspaces (and the git worktrees in them) older than this are removed; 0 keeps them.
  std::chrono::seconds workspace_retention{7 * 24 * 3600};
  // Price table for the cost budget: model -> {input, output} USD per million tokens.
  std::map<std::string, std::pair<double, double>> prices;
  // The Docker Engine API socket, for agents with isolation: docker.
  std::string docker_socket = "/var/run/docker.sock";
  AgentLogs* logs = nullptr;  // keeps each agent's output (GET .../logs); may be null
  // How often the cgroups of the running command tasks are sampled (agent.resources events and
  // agent.cpu_percent / agent.memory_bytes metrics); 0: never. Samples older than
  // `resource_retention` are deleted as the agent is sampled again.
  std::chrono::milliseconds resource_interval{5'000};
  std::chrono::milliseconds resource_retention{3'600'000};
  // Called after a task's end was committed (the workflow engine moves the step on at once
  // instead of at its next tick); may be empty. Runs on the task's thread.
  std::function<void(const model::Task&)> on_finished;
};

class Executor final : public TaskStarter {
 public:
  Executor(store::Store& store, ExecutorOptions options);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void start();
  // Stops every running task (SIGTERM, grace, kill) and waits for them.
  void stop();
  void notify();
  std::size_t running() const;

  // agents::TaskStarter: a task created for a running command or llm agent with room is
  // claimed in its creating transaction and started right after the commit.
  Result<std::optional<model::Task>> claim_new(store::Tx& tx, const model::Agent& agent) override;
  void settle(model::Task&& task, const model::Agent& agent, bool committed) override;

 private:
  struct Running {
    std::string agent_id;
    sandbox::RunControl control;
    std::thread thread;
    std::atomic<bool> done{false};
    const std::chrono::steady_clock::time_point launched = std::chrono::steady_clock::now();
    // Prestarted: launched inside the transaction that claims the task, so that its workspace,
    // cgroup and arguments are prepared while that transaction commits; its program starts only
    // once `settle` says the claim committed. Set before the thread starts.
    bool prestarted = false;
    bool unsettled = false;  // prestarted and not settled yet; guarded by the executor's mu_
    std::mutex gate_mu;
    std::condition_variable gate_cv;
    int verdict = 0;  // prestarted: 0 waiting, 1 committed, -1 called off; guarded by gate_mu
  };
  // A task's CPU time at its last sample (loop thread only).
  struct CpuMark {
    std::int64_t cpu_us = 0;
    std::chrono::steady_clock::time_point at;
  };

  void loop();
  // `maintenance` (on the timer, not on every wake-up): put back lapsed tasks, renew leases.
  void tick(bool maintenance);
  // Samples the cgroups of the running tasks and writes, per agent, the sums (CPU %, memory,
  // memory limit) as metrics with an `agent.resources` event in one transaction; an agent whose
  // last task ended since the previous sample gets one sample of zeros. Loop thread only.
  void sample_resources();
  // Starts a claimed task on its own thread (`prestart`: inside its claiming transaction; see
  // Running). Returns the slot, or nullptr when a slot of that task id is still there.
  // REQUIRES: mu_ held.
  Running* launch(model::Task&& task, const model::Agent& agent, bool prestart = false);
  // A prestarted task's thread: waits (bounded by the lease) until its claim is settled; true
  // when it committed and the task may start.
  bool pass_gate(Running& slot);
  static void release(Running& slot, int verdict);
  // Whether a task may be prestarted: a command agent's sandboxed or unisolated run with no
  // budget to check and no git worktree to make (those write or touch a repository, which must
  // wait for the commit).
  static bool prestartable(const model::Agent& agent, const model::Task& task);
  void run_task(Running& slot, model::Task task, model::Agent agent);
  void run_llm_task(Running& slot, model::Task task, const model::Agent& agent);
  // The agent's use so far (sums of its tasks' metrics): tokens, cost, tool calls, wall
  // time, output bytes.
  struct Usage {
    double tokens = 0, cost_usd = 0, tool_calls = 0, wall_ms = 0, output_bytes = 0;
  };
  Result<Usage> agent_usage(const std::string& agent_id);
  // False (and the task finished as failed) when the agent's budget is spent.
  bool check_budget(model::Task& task, const model::Agent& agent);
  // The task's git worktree when it names a repository.
  Result<std::optional<GitWorkspace>> open_worktree(const model::Task& task, const model::Agent& agent,
                                                    const std::filesystem::path& workspace);
  // Records a budget stop in the audit log.
  void audit_stop(const model::Task& task, const std::string& reason, const std::string& error);
  // Writes the end of a task (result, status, error) with its event and `extra` rows.
  void finish_task(model::Task& task, const std::string& status, const std::string& error,
                   const boost::json::object& result,
                   const std::vector<model::Metric>& metrics);

  store::Store& store_;
  const ExecutorOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  bool wake_ = false;  // guarded by mu_
  std::map<std::string, std::unique_ptr<Running>> running_;  // task id -> slot; guarded by mu_
  int reserved_ = 0;  // slots held by claims not yet settled; guarded by mu_
  // Prestarted slots whose claim was not committed, until their thread has ended; guarded by mu_.
  std::vector<std::unique_ptr<Running>> called_off_;
  std::thread thread_;
  std::chrono::steady_clock::time_point next_renew_{};  // loop thread only
  std::chrono::steady_clock::time_point last_sweep_{};
  std::chrono::steady_clock::time_point next_sample_{};  // loop thread only
  std::map<std::string, CpuMark> cpu_marks_;             // task id -> mark; loop thread only
  std::set<std::string> sampled_agents_;                 // with tasks at the last sample
  // Agents with rows to prune, and when each was last pruned (loop thread only).
  std::map<std::string, std::chrono::steady_clock::time_point> pruned_at_;
};

// The sandbox spec for running `task` on `agent` (a command agent) in `workspace`.
// kInvalidArgument when the agent's config cannot be run.
Result<sandbox::RunSpec> command_spec(const model::Agent& agent, const model::Task& task,
                                      const std::string& workspace);

}  // namespace dp::agents
