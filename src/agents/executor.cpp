#include "agents/executor.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <boost/json/serialize.hpp>

#include "agents/docker/docker.hpp"
#include "agents/git_workspace.hpp"
#include "agents/llm_loop.hpp"
#include "agents/task_service.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace dp::agents {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::int64_t int_or(const json::object& o, std::string_view key, std::int64_t fallback) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_int64()) return v->as_int64();
  return fallback;
}

// Program output as text a JSON column of either database accepts: NUL bytes and bytes that
// are not UTF-8 become U+FFFD (PostgreSQL refuses both, SQLite would keep them).
std::string clean_text(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t n = 0;
    if (c == 0) {
      n = 0;
    } else if (c < 0x80) {
      n = 1;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      n = 2;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      n = 4;
    }
    bool ok = n > 0 && i + n <= in.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    }
    if (ok && n == 3) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
    } else if (ok && n == 4) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(in.substr(i, n));
      i += n;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  return out;
}

std::optional<double> num(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_number()) return v->to_number<double>();
  return std::nullopt;
}

// A per-task limit: the task's own `limits.<key>`, else the agent config's `config_key`.
std::optional<double> task_limit(const model::Task& t, const model::Agent& a, std::string_view key,
                                 std::string_view config_key) {
  if (auto* l = t.options.if_contains("limits"); l != nullptr && l->is_object()) {
    if (auto v = num(l->as_object(), key)) return v;
  }
  return num(a.config, config_key);
}

struct BudgetStop {
  std::string reason;
  std::string error;
};

std::string figure(double v) {
  std::string s = std::to_string(v);
  while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) {
    const bool dot = s.back() == '.';
    s.pop_back();
    if (dot) break;
  }
  return s;
}

// The first of the agent's budget totals (config.budget) its use has reached.
template <typename Usage>
std::optional<BudgetStop> budget_exhausted(const json::object& config, const Usage& u) {
  const auto* b = config.if_contains("budget");
  if (b == nullptr || !b->is_object()) return std::nullopt;
  const auto& o = b->as_object();
  const std::pair<const char*, double> checks[] = {{"maxTokens", u.tokens},
                                                   {"maxCostUsd", u.cost_usd},
                                                   {"maxToolCalls", u.tool_calls},
                                                   {"maxWallSeconds", u.wall_ms / 1000.0},
                                                   {"maxOutputBytes", u.output_bytes}};
  for (const auto& [key, used] : checks) {
    if (auto lim = num(o, key); lim && used >= *lim) {
      return BudgetStop{"agent_budget",
                        std::string("the agent's budget is spent: config.budget.") + key + " (" +
                            figure(*lim) + ") reached with " + figure(used)};
    }
  }
  return std::nullopt;
}

std::string input_text(const json::value& input) {
  if (input.is_string()) return std::string(input.as_string());
  return json::serialize(input);
}

// Files the task left in outputs/, without following links: a planted symlink must not make
// devplane read (or report) a host file.
json::array list_outputs(const fs::path& dir) {
  json::array out;
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) return out;
  auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (out.size() >= 1000) break;
    const auto st = it->symlink_status(ec);
    // lexically: fs::relative would resolve the link it is asked about.
    const std::string rel = it->path().lexically_relative(dir).string();
    if (fs::is_symlink(st)) {
      out.push_back(json::object{{"path", rel}, {"type", "symlink"}});
    } else if (fs::is_regular_file(st)) {
      struct stat sb{};
      const auto size = ::lstat(it->path().c_str(), &sb) == 0 ? static_cast<std::int64_t>(sb.st_size) : 0;
      out.push_back(json::object{{"path", rel}, {"type", "file"}, {"size", size}});
    }
  }
  return out;
}

}  // namespace

Result<sandbox::RunSpec> command_spec(const model::Agent& agent, const model::Task& task,
                                      const std::string& workspace) {
  const auto& c = agent.config;
  sandbox::RunSpec s;
  s.workspace = workspace;
  if (auto* cmd = c.if_contains("command")) {
    if (cmd->is_string()) {
      s.argv = {"sh", "-c", std::string(cmd->as_string())};
    } else if (cmd->is_array()) {
      for (const auto& x : cmd->as_array()) {
        if (x.is_string()) s.argv.emplace_back(x.as_string());
      }
    }
  }
  if (auto* args = c.if_contains("args"); args != nullptr && args->is_array()) {
    for (const auto& x : args->as_array()) {
      if (x.is_string()) s.argv.emplace_back(x.as_string());
    }
  }
  if (s.argv.empty()) return Error::invalid_argument("invalid_config", "agent has no command to run");
  std::string input_mode = "stdin";
  if (auto* m = c.if_contains("input"); m != nullptr && m->is_string()) input_mode = std::string(m->as_string());
  const std::string input = input_text(task.input);
  if (input_mode == "arg") {
    s.argv.push_back(input);
  } else if (input_mode == "file") {
    std::ofstream(fs::path(workspace) / "task.json") << input;
    s.env.emplace_back("DEVPLANE_TASK_FILE", "/workspace/task.json");
  } else {
    s.stdin_data = input;
  }
  if (auto* env = c.if_contains("env"); env != nullptr && env->is_object()) {
    for (const auto& kv : env->as_object()) {
      if (kv.value().is_string()) s.env.emplace_back(std::string(kv.key()), std::string(kv.value().as_string()));
    }
  }
  s.env.emplace_back("DEVPLANE_TASK_ID", task.id);
  s.env.emplace_back("DEVPLANE_AGENT_ID", agent.id);
  s.env.emplace_back("DEVPLANE_IDEMPOTENCY_KEY", agent.id + "/" + task.idempotency_key + "/" +
                                                     std::to_string(task.attempts));
  if (auto* iso = c.if_contains("isolation"); iso != nullptr && iso->is_string()) {
    if (iso->as_string() == "none") {
      s.isolation = sandbox::Isolation::kNone;
    } else if (iso->as_string() == "docker") {
      auto* image = c.if_contains("image");
      if (image == nullptr || !image->is_string() || image->as_string().empty()) {
        return Error::invalid_argument("invalid_config", "isolation: docker needs config.image");
      }
    }
  }
  if (auto* n = c.if_contains("network"); n != nullptr && n->is_bool()) s.network = n->as_bool();
  s.limits = sandbox::limits_from_config(c, s.limits);
  s.timeout = std::chrono::seconds(int_or(c, "timeoutSeconds", 3600));
  s.output_limit = static_cast<std::size_t>(int_or(c, "outputLimitBytes", 1024 * 1024));
  return s;
}

Executor::Executor(store::Store& store, ExecutorOptions options)
    : store_(store), options_(std::move(options)) {}

Executor::~Executor() { stop(); }

void Executor::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Executor::stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
    for (auto& [id, slot] : running_) {
      slot->control.stop();
      if (slot->prestarted) release(*slot, -1);  // not settled yet: it does not start
    }
  }
  cv_.notify_all();
  thread_.join();
  std::map<std::string, std::unique_ptr<Running>> left;
  std::vector<std::unique_ptr<Running>> called_off;
  {
    std::lock_guard lock(mu_);
    left.swap(running_);
    called_off.swap(called_off_);
  }
  for (auto& [id, slot] : left) {
    slot->control.stop();
    if (slot->prestarted) release(*slot, -1);
    if (slot->thread.joinable()) slot->thread.join();
  }
  for (auto& slot : called_off) {
    if (slot->thread.joinable()) slot->thread.join();
  }
}

void Executor::notify() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

std::size_t Executor::running() const {
  std::lock_guard lock(mu_);
  return running_.size();
}

void Executor::loop() {
  auto next_maintenance = std::chrono::steady_clock::now();
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    const bool maintenance = now >= next_maintenance;
    if (maintenance) next_maintenance = now + options_.tick;
    tick(maintenance);
    if (options_.resource_interval.count() > 0 && now >= next_sample_) {
      next_sample_ = now + options_.resource_interval;
      sample_resources();
    }
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, next_maintenance, [&] { return stop_ || wake_; });
    wake_ = false;
    if (stop_) return;
  }
}

Result<std::optional<model::Task>> Executor::claim_new(store::Tx& tx, const model::Agent& agent) {
  // Command agents run in sandboxes, llm agents run the agent loop; other kinds (remote) take
  // their tasks elsewhere.
  if (agent.status != model::AgentStatus::kRunning || (agent.type != "command" && agent.type != "llm")) {
    return std::optional<model::Task>{};
  }
  {
    std::lock_guard lock(mu_);
    // Slots whose task has ended count as free even before the loop reaps them.
    const auto busy = std::count_if(running_.begin(), running_.end(),
                                    [](const auto& r) { return !r.second->done.load(); });
    if (!thread_.joinable() || stop_ || static_cast<int>(busy) + reserved_ >= options_.max_parallel) {
      return std::optional<model::Task>{};
    }
    ++reserved_;
  }
  std::optional<model::Task> claimed;
  auto claim = [&]() -> Status {
    const std::int64_t concurrency = std::max<std::int64_t>(1, int_or(agent.config, "concurrency", 1));
    DP_ASSIGN_OR_RETURN(std::int64_t n, tx.tasks().count_running(agent.id));
    if (n >= concurrency) return Ok{};
    const std::int64_t t = clock::now_ms();
    DP_ASSIGN_OR_RETURN(claimed, tx.tasks().claim(agent.id, options_.node_id, t, t + options_.lease.count()));
    if (!claimed) return Ok{};
    return tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(*claimed),
                                                 claimed->correlation_id, t, std::nullopt});
  };
  Status s = claim();
  if (!s.ok() || !claimed) {
    std::lock_guard lock(mu_);
    --reserved_;
    if (!s.ok()) return std::move(s).error();
    return claimed;
  }
  if (prestartable(agent, *claimed)) {
    // Its preparation overlaps the commit of this transaction (see Running::prestarted).
    std::lock_guard lock(mu_);
    if (!stop_ && launch(model::Task(*claimed), agent, /*prestart=*/true) != nullptr) --reserved_;
  }
  return claimed;
}

void Executor::settle(model::Task&& task, const model::Agent& agent, bool committed) {
  std::lock_guard lock(mu_);
  if (auto it = running_.find(task.id); it != running_.end() && it->second->unsettled) {
    Running& slot = *it->second;
    slot.unsettled = false;
    if (committed && !stop_) {
      release(slot, 1);
      return;
    }
    // Not committed (the task stays queued), or stopping (its lease lapses): the thread ends
    // without starting the program; its slot waits in called_off_ to be joined.
    release(slot, -1);
    called_off_.push_back(std::move(it->second));
    running_.erase(it);
    return;
  }
  --reserved_;
  // Not committed: the task stays queued for a later claim. Stopping: it is left running
  // without a thread, and its lease lapses like that of any task a stopped node held.
  if (!committed || stop_) return;
  launch(std::move(task), agent);
}

bool Executor::prestartable(const model::Agent& agent, const model::Task& task) {
  if (agent.type != "command" || agent.config.contains("budget") || task.options.contains("repo")) {
    return false;
  }
  const auto* iso = agent.config.if_contains("isolation");
  return iso == nullptr || !iso->is_string() || iso->as_string() != "docker";
}

void Executor::release(Running& slot, int verdict) {
  {
    std::lock_guard lock(slot.gate_mu);
    if (slot.verdict == 0) slot.verdict = verdict;
  }
  slot.gate_cv.notify_all();
}

bool Executor::pass_gate(Running& slot) {
  std::unique_lock lock(slot.gate_mu);
  // Bounded: a claim never settled (its transaction's caller died) is not waited for beyond
  // its lease, which lapses and puts the task back in the queue.
  slot.gate_cv.wait_for(lock, options_.lease, [&] { return slot.verdict != 0; });
  if (slot.verdict == 0) slot.verdict = -1;
  return slot.verdict == 1;
}

Executor::Running* Executor::launch(model::Task&& task, const model::Agent& agent, bool prestart) {
  if (running_.contains(task.id)) {
    // An earlier attempt's slot on this node has not been reaped yet. Not prestarted: the
    // claim stands without a thread, and its lease lapses and puts the task back in the queue.
    log::Logger(task.correlation_id, agent.id)
        .warn("task not started: an earlier attempt's slot is still there", {{"taskId", task.id}});
    return nullptr;
  }
  auto slot = std::make_unique<Running>();
  slot->agent_id = agent.id;
  slot->prestarted = prestart;
  slot->unsettled = prestart;
  Running* raw = slot.get();
  const std::string id = task.id;
  running_.emplace(id, std::move(slot));
  raw->thread = std::thread([this, raw, task = std::move(task), agent]() mutable {
    run_task(*raw, std::move(task), std::move(agent));
    raw->done.store(true);
    notify();
  });
  return raw;
}

void Executor::sample_resources() {
  struct Sum {
    double cpu_percent = 0;
    bool cpu_known = true;
    std::int64_t memory_bytes = 0;
    std::int64_t memory_limit_bytes = 0;
    int tasks = 0;
  };
  // Only this thread removes slots (tick, or stop after joining it), so the pointers taken
  // under the lock stay valid while the cgroups are read outside it.
  std::vector<std::pair<std::string, Running*>> slots;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, slot] : running_) {
      if (!slot->done.load()) slots.emplace_back(id, slot.get());
    }
  }
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, Sum> sums;  // agent id -> use of its tasks with a cgroup
  std::map<std::string, CpuMark> marks;
  for (const auto& [task_id, slot] : slots) {
    // llm tasks and tasks in Docker have no cgroup of ours: their agents get no sample, and
    // the API says "n/a" for them.
    const auto u = slot->control.usage();
    if (!u) continue;
    Sum& sum = sums[slot->agent_id];
    ++sum.tasks;
    sum.memory_bytes += u->memory_bytes;
    sum.memory_limit_bytes += u->memory_limit_bytes;
    if (u->cpu_usage_us < 0) {
      sum.cpu_known = false;
      continue;
    }
    // The first sample of a task measures from its launch.
    auto it = cpu_marks_.find(task_id);
    const CpuMark prev = it != cpu_marks_.end() ? it->second : CpuMark{0, slot->launched};
    const double wall_us =
        static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(now - prev.at).count());
    if (wall_us > 0) {
      sum.cpu_percent += 100.0 * static_cast<double>(std::max<std::int64_t>(0, u->cpu_usage_us - prev.cpu_us)) / wall_us;
    }
    marks[task_id] = CpuMark{u->cpu_usage_us, now};
  }
  cpu_marks_ = std::move(marks);
  for (const auto& id : sampled_agents_) {
    if (!sums.contains(id)) sums[id] = Sum{};  // its last task ended: one sample of zeros
  }
  sampled_agents_.clear();
  const std::int64_t t = clock::now_ms();
  const std::string at = clock::format_iso8601(t);
  static const std::vector<std::string> kTypes = {"agent.cpu_percent", "agent.memory_bytes"};
  for (const auto& [agent_id, sum] : sums) {
    if (sum.tasks > 0) sampled_agents_.insert(agent_id);
    const double cpu = std::round(sum.cpu_percent * 10) / 10;
    json::object payload{{"agentId", agent_id},
                         {"nodeId", options_.node_id},
                         {"cpuPercent", sum.cpu_known ? json::value(cpu) : json::value(nullptr)},
                         {"memoryBytes", sum.memory_bytes},
                         {"memoryLimitBytes", sum.memory_limit_bytes},
                         {"tasks", sum.tasks},
                         {"timestamp", at}};
    const json::object labels{{"node", options_.node_id},
                              {"tasks", sum.tasks},
                              {"limitBytes", sum.memory_limit_bytes}};
    // Old samples go at most once a minute per agent, in the same transaction.
    auto& pruned = pruned_at_[agent_id];
    const bool prune = now - pruned >= std::chrono::minutes(1);
    if (prune) pruned = now;
    const std::string text = json::serialize(payload);
    auto s = store_.write_relaxed([&](store::Tx& tx) -> Status {
      if (sum.cpu_known) {
        DP_TRY(tx.metrics().append(model::Metric{0, agent_id, "", "agent.cpu_percent", cpu, labels, t}));
      }
      DP_TRY(tx.metrics().append(model::Metric{0, agent_id, "", "agent.memory_bytes",
                                               static_cast<double>(sum.memory_bytes), labels, t}));
      if (prune) {
        auto n = tx.metrics().prune(agent_id, kTypes, t - options_.resource_retention.count());
        if (!n.ok()) return std::move(n).error();
      }
      return tx.outbox().append(store::OutboxEvent{0, "agent.resources", text, "", t, std::nullopt});
    });
    if (!s.ok()) {
      // A sample is best effort: an agent purged meanwhile, or a busy database, skips one.
      log::global().debug("agent resource sample not recorded",
                          {{"agentId", agent_id}, {"error", s.error().message}});
    }
  }
  // Forget the prune marks of agents no longer sampled.
  std::erase_if(pruned_at_, [&](const auto& p) { return !sums.contains(p.first); });
}

void Executor::tick(bool maintenance) {
  // Reap finished slots first so their room counts again.
  std::vector<std::unique_ptr<Running>> reaped;
  std::vector<std::pair<std::string, std::string>> live;  // task id, agent id
  std::set<std::string> keep;  // task ids whose workspaces are in use
  {
    std::lock_guard lock(mu_);
    for (auto it = called_off_.begin(); it != called_off_.end();) {
      if ((*it)->done.load()) {
        reaped.push_back(std::move(*it));
        it = called_off_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = running_.begin(); it != running_.end();) {
      if (it->second->done.load()) {
        reaped.push_back(std::move(it->second));
        it = running_.erase(it);
      } else {
        keep.insert(it->first);
        // A prestarted task whose claim is not committed yet is not looked up: its row may
        // not even exist for other transactions.
        if (!it->second->unsettled) live.emplace_back(it->first, it->second->agent_id);
        ++it;
      }
    }
  }
  for (auto& r : reaped) {
    if (r->thread.joinable()) r->thread.join();
  }
  if (std::chrono::steady_clock::now() - last_sweep_ > std::chrono::minutes(1)) {
    last_sweep_ = std::chrono::steady_clock::now();
    const int removed = sweep_workspaces(options_.data_dir, options_.workspace_retention, keep);
    if (removed > 0) log::global().info("old task workspaces removed", {{"count", removed}});
  }
  const std::int64_t now = clock::now_ms();
  std::vector<model::Agent> agents;
  std::vector<std::string> to_stop;
  // Leases are renewed when a third of their time has passed, not on every tick: a renewal
  // is a commit that waits for the disk, and other writers queue behind it.
  const bool renew = maintenance && std::chrono::steady_clock::now() >= next_renew_;
  if (renew) next_renew_ = std::chrono::steady_clock::now() + options_.lease / 3;
  auto look = [&](store::Tx& tx) -> Status {
    if (maintenance) DP_TRY(tx.tasks().requeue_expired(now));
    if (renew) DP_TRY(tx.tasks().renew(options_.node_id, now + options_.lease.count()));
    for (const auto& [task_id, agent_id] : live) {
      DP_ASSIGN_OR_RETURN(bool cancel, tx.tasks().cancel_requested(task_id));
      auto a = tx.agents().get(agent_id);
      if (cancel || !a.ok() || a->status != model::AgentStatus::kRunning) to_stop.push_back(task_id);
    }
    // Command agents run in sandboxes, llm agents run the agent loop; other kinds (remote)
    // take their tasks elsewhere.
    for (const char* type : {"command", "llm"}) {
      store::AgentFilter f;
      f.status = "running";
      f.type = type;
      f.limit = 500;
      DP_ASSIGN_OR_RETURN(auto page, tx.agents().list(f));
      for (auto& a : page.items) agents.push_back(std::move(a));
    }
    return Ok{};
  };
  // Between maintenance ticks nothing is written here: a read does not queue behind commits.
  Status s = maintenance ? store_.write(look) : store_.read(look);
  if (!s.ok()) {
    log::global().warn("executor tick failed", {{"error", s.error().message}});
    return;
  }
  if (!to_stop.empty()) {
    std::lock_guard lock(mu_);
    for (const auto& id : to_stop) {
      if (auto it = running_.find(id); it != running_.end()) it->second->control.stop();
    }
  }
  for (const auto& agent : agents) {
    const std::int64_t concurrency = std::max<std::int64_t>(1, int_or(agent.config, "concurrency", 1));
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stop_ || static_cast<int>(running_.size()) + reserved_ >= options_.max_parallel) return;
      }
      std::optional<model::Task> claimed;
      Status c = store_.write([&](store::Tx& tx) -> Status {
        DP_ASSIGN_OR_RETURN(std::int64_t n, tx.tasks().count_running(agent.id));
        if (n >= concurrency) return Ok{};
        const std::int64_t t = clock::now_ms();
        DP_ASSIGN_OR_RETURN(claimed, tx.tasks().claim(agent.id, options_.node_id, t,
                                                      t + options_.lease.count()));
        if (claimed) {
          DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(*claimed),
                                                       claimed->correlation_id, t, std::nullopt}));
        }
        return Ok{};
      });
      if (!c.ok() || !claimed) break;
      std::lock_guard lock(mu_);
      launch(std::move(*claimed), agent);
    }
  }
}

void Executor::run_task(Running& slot, model::Task task, model::Agent agent) {
  if (agent.type == "llm") {
    run_llm_task(slot, std::move(task), agent);
    return;
  }
  // When this node began the task (a prestarted one: when its claim was known committed) and
  // saw its program end, in µs (in the result): the gap between one task's end and the next
  // one's start is what a chain of workflow steps pays per step (bench/workflows).
  std::int64_t started_us = clock::now_us();
  const log::Logger logger(task.correlation_id, agent.id);
  const fs::path workspace = fs::path(options_.data_dir) / "workspaces" / agent.id / task.id;
  std::error_code ec;
  fs::create_directories(workspace / "outputs", ec);
  // A prestarted task prepares (workspace, arguments, cgroup) while its claim commits, and
  // starts nothing, writes nothing, until the commit is known (pass_gate). Not committed: it
  // leaves no trace.
  bool committed = !slot.prestarted;
  auto wait_commit = [&]() -> bool {
    if (committed) return true;
    if (!pass_gate(slot)) return false;
    committed = true;
    started_us = clock::now_us();
    return true;
  };
  auto called_off = [&] {
    std::error_code ignored;
    fs::remove_all(workspace, ignored);
    logger.info("prestarted task called off: its claim was not committed", {{"taskId", task.id}});
  };
  std::string status = "failed";
  std::string error;
  json::object result;
  std::string stop_reason;
  if (!check_budget(task, agent)) return;
  std::optional<GitWorkspace> gws;
  if (!ec) {
    auto g = open_worktree(task, agent, workspace);
    if (!g.ok()) {
      finish_task(task, "failed", g.error().message, json::object{{"stopReason", "workspace_error"}}, {});
      return;
    }
    gws = std::move(*g);
  }
  auto spec = command_spec(agent, task, workspace.string());
  if (spec.ok() && gws) {
    spec->workdir = "repo";
    spec->env.emplace_back("DEVPLANE_REPO_DIR", "/workspace/repo");
  }
  if (spec.ok()) {
    if (auto t = task_limit(task, agent, "timeoutSeconds", "timeoutSeconds")) {
      spec->timeout = std::chrono::seconds(static_cast<std::int64_t>(*t));
    }
  }
  const auto max_output = task_limit(task, agent, "maxOutputBytes", "maxOutputBytes");
  std::int64_t produced = 0;
  bool output_tripped = false;
  if ((ec || !spec.ok()) && !wait_commit()) {
    called_off();
    return;
  }
  if (ec) {
    error = "cannot create the workspace: " + ec.message();
  } else if (!spec.ok()) {
    error = spec.error().message;
  } else {
    // Output goes out as agent.log events in small batches, capped per task.
    std::string pending;
    std::string pending_stream;
    std::size_t announced = 0;
    auto last_flush = std::chrono::steady_clock::now();
    auto flush = [&] {
      if (pending.empty()) return;
      const std::string cleaned = clean_text(pending);
      const std::string at = clock::format_iso8601(clock::now_ms());
      if (options_.logs != nullptr) options_.logs->append(agent.id, task.id, pending_stream, cleaned, at);
      json::object payload{{"agentId", agent.id}, {"taskId", task.id}, {"stream", pending_stream},
                           {"text", cleaned}, {"timestamp", at}};
      const std::string text = json::serialize(payload);
      store_.write([&](store::Tx& tx) {
             return tx.outbox().append(store::OutboxEvent{0, "agent.log", text, task.correlation_id,
                                                          clock::now_ms(), std::nullopt});
           })
          .ignore_error();  // logs are best effort; the result keeps the captured output
      pending.clear();
      last_flush = std::chrono::steady_clock::now();
    };
    spec->on_output = [&](std::string_view stream, std::string_view chunk) {
      produced += static_cast<std::int64_t>(chunk.size());
      if (max_output && static_cast<double>(produced) > *max_output && !output_tripped) {
        output_tripped = true;
        slot.control.stop();
      }
      if (announced >= options_.max_log_bytes_per_task) return;
      if (!pending.empty() && pending_stream != stream) flush();
      pending_stream = std::string(stream);
      const std::size_t take = std::min(chunk.size(), options_.max_log_bytes_per_task - announced);
      pending.append(chunk.substr(0, take));
      announced += take;
      if (pending.size() >= 16 * 1024 ||
          std::chrono::steady_clock::now() - last_flush > std::chrono::milliseconds(200)) {
        flush();
      }
    };
    if (spec->isolation == sandbox::Isolation::kNone) {
      logger.warn("running a task without isolation (isolation: none)", {{"taskId", task.id}});
    }
    const auto* iso = agent.config.if_contains("isolation");
    const bool in_docker = iso != nullptr && iso->is_string() && iso->as_string() == "docker";
    Result<sandbox::RunResult> run = Error::internal("not run");
    if (in_docker) {
      // The Engine API gives the logs at the end: no live agent.log events for these tasks.
      docker::ContainerSpec cs;
      cs.name = "devplane-" + task.id;
      cs.image = std::string(agent.config.at("image").as_string());
      cs.argv = spec->argv;
      cs.env = spec->env;
      cs.workspace = fs::absolute(workspace).string();
      cs.workdir = spec->workdir;
      cs.memory_bytes = spec->limits.memory_bytes;
      cs.cpus = spec->limits.cpus;
      cs.pids = spec->limits.pids;
      cs.network = spec->network;
      cs.labels = {{"devplane.agent", agent.id}, {"devplane.task", task.id}};
      if (!spec->stdin_data.empty()) {
        // No attach: stdin input goes in the workspace instead.
        std::ofstream(workspace / "task.json") << spec->stdin_data;
        cs.env.emplace_back("DEVPLANE_TASK_FILE", "/workspace/task.json");
      }
      run = docker::run(docker::DockerClient(options_.docker_socket), cs, spec->timeout,
                        spec->output_limit, &slot.control);
      if (run.ok() && spec->on_output) {
        spec->on_output("stdout", run->stdout_text);
        spec->on_output("stderr", run->stderr_text);
      }
    } else {
      if (!committed) spec->before_start = wait_commit;
      run = sandbox::run(*spec, &slot.control);
      // Not committed after the run: either called off at the gate, or the run failed before
      // it (no sandbox here, say), which is recorded like any failure once the claim is known.
      if (!committed && !wait_commit()) {
        called_off();
        return;
      }
    }
    const std::int64_t ended_us = clock::now_us();
    flush();
    if (!run.ok()) {
      error = run.error().message;
    } else {
      const auto& r = *run;
      result = json::object{{"outcome", r.outcome},
                            {"exitCode", r.exit_code},
                            {"signal", r.signal},
                            {"stdout", clean_text(r.stdout_text)},
                            {"stderr", clean_text(r.stderr_text)},
                            {"stdoutBytes", r.stdout_bytes},
                            {"stderrBytes", r.stderr_bytes},
                            {"wallMs", r.wall_ms},
                            {"wallUs", r.wall_us},
                            {"startedAtUs", started_us},
                            {"endedAtUs", ended_us},
                            {"isolated", r.isolated},
                            {"memoryPeakBytes", r.stats.memory_peak_bytes},
                            {"cpuThrottled", r.stats.cpu_throttled},
                            {"outputs", list_outputs(workspace / "outputs")}};
      if (output_tripped) {
        stop_reason = "max_output_bytes";
        error = "stopped: maxOutputBytes (" + figure(*max_output) + ") exceeded";
      } else if (r.outcome == "timeout") {
        stop_reason = "timeout";
      }
      if (output_tripped) {
        // status stays failed
      } else if (r.outcome == "exited" && r.exit_code == 0) {
        status = "succeeded";
      } else if (r.outcome == "stopped") {
        status = "cancelled";
        error = "stopped: cancel requested, the agent stopped or the node shut down";
      } else if (r.outcome == "timeout") {
        error = "timed out after " + std::to_string(spec->timeout.count()) + " ms";
      } else if (r.outcome == "memory_limit") {
        error = "killed at its memory limit of " + std::to_string(spec->limits.memory_bytes) + " bytes";
      } else if (r.outcome == "signaled") {
        error = "killed by signal " + std::to_string(r.signal);
      } else {
        error = "exited with code " + std::to_string(r.exit_code);
      }
    }
  }
  if (gws) {
    const bool commit = !(agent.config.contains("gitCommit") && agent.config.at("gitCommit").is_bool() &&
                          !agent.config.at("gitCommit").as_bool());
    auto g = finish_worktree(*gws, commit, "devplane: task " + task.id + " by agent " + agent.name);
    if (g.ok()) {
      result["git"] = g->to_json(*gws);
    } else {
      result["git"] = json::object{{"branch", gws->branch}, {"error", g.error().message}};
      if (status == "succeeded") {
        status = "failed";
        error = g.error().message;
      }
    }
  }
  if (!stop_reason.empty()) {
    result["stopReason"] = stop_reason;
    if (stop_reason != "timeout") audit_stop(task, stop_reason, error);
  }
  std::vector<model::Metric> metrics;
  if (result.contains("wallMs")) {
    const std::int64_t now = clock::now_ms();
    const json::object labels{{"kind", "command"}};
    metrics.push_back(model::Metric{0, agent.id, task.id, "task.wall_ms",
                                    result.at("wallMs").to_number<double>(), labels, now});
    metrics.push_back(model::Metric{0, agent.id, task.id, "task.output_bytes",
                                    static_cast<double>(produced), labels, now});
  }
  finish_task(task, status, error, result, metrics);
}

bool Executor::check_budget(model::Task& task, const model::Agent& agent) {
  if (!agent.config.contains("budget")) return true;
  auto used = agent_usage(agent.id);
  if (!used.ok()) {
    finish_task(task, "failed", "cannot read the agent's use for its budget: " + used.error().message,
                {}, {});
    return false;
  }
  if (auto stop = budget_exhausted(agent.config, *used)) {
    audit_stop(task, stop->reason, stop->error);
    finish_task(task, "failed", stop->error, json::object{{"stopReason", stop->reason}}, {});
    return false;
  }
  return true;
}

Result<std::optional<GitWorkspace>> Executor::open_worktree(const model::Task& task,
                                                            const model::Agent& agent,
                                                            const std::filesystem::path& workspace) {
  const auto* repo = task.options.if_contains("repo");
  if (repo == nullptr || !repo->is_string()) return std::optional<GitWorkspace>{};
  GitWorkspaceSpec g;
  g.repo = std::string(repo->as_string());
  if (auto* b = task.options.if_contains("baseRef"); b != nullptr && b->is_string()) {
    g.base_ref = std::string(b->as_string());
  }
  std::string who = branch_segment(agent.name);
  if (who.empty()) who = agent.id;
  g.branch = "devplane/" + who + "/" + task.id;
  // git runs from another folder: every path it is given is absolute.
  g.dir = fs::absolute(workspace / "repo").string();
  g.data_dir = fs::absolute(options_.data_dir).string();
  std::error_code ec;
  if (fs::exists(g.dir, ec)) {
    // A second attempt of the task (its node died): start from a clean worktree again.
    fs::remove_all(g.dir, ec);
  }
  DP_ASSIGN_OR_RETURN(auto ws, prepare_worktree(g));
  remember_worktree(workspace.string(), ws.git_dir);
  return std::optional<GitWorkspace>(std::move(ws));
}

Result<Executor::Usage> Executor::agent_usage(const std::string& agent_id) {
  Usage u;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    for (const char* type : {"task.input_tokens", "task.output_tokens", "task.cost_usd",
                             "task.tool_calls", "task.wall_ms", "task.output_bytes"}) {
      store::MetricFilter f;
      f.agent_id = agent_id;
      f.metric_type = type;
      f.limit = 100'000;
      DP_ASSIGN_OR_RETURN(auto rows, tx.metrics().list(f));
      double sum = 0;
      for (const auto& m : rows) sum += m.value;
      const std::string_view t = type;
      if (t == "task.input_tokens" || t == "task.output_tokens") u.tokens += sum;
      if (t == "task.cost_usd") u.cost_usd = sum;
      if (t == "task.tool_calls") u.tool_calls = sum;
      if (t == "task.wall_ms") u.wall_ms = sum;
      if (t == "task.output_bytes") u.output_bytes = sum;
    }
    return Ok{};
  }));
  return u;
}

void Executor::audit_stop(const model::Task& task, const std::string& reason, const std::string& error) {
  if (options_.recorder == nullptr) return;
  audit::Entry e;
  e.actor_kind = "system";
  e.actor_name = "executor";
  e.action = "agent.task.stopped";
  e.target = "task:" + task.id;
  e.outcome = "failure";
  e.correlation_id = task.correlation_id;
  e.details = json::object{{"agentId", task.agent_id}, {"taskId", task.id},
                           {"stopReason", reason}, {"error", error}};
  options_.recorder->record(std::move(e));
}

void Executor::finish_task(model::Task& task, const std::string& status, const std::string& error,
                           const json::object& result, const std::vector<model::Metric>& metrics) {
  const log::Logger logger(task.correlation_id, task.agent_id);
  task.status = status;
  task.error = error;
  task.result = result.empty() ? json::value(nullptr) : json::value(result);
  const std::string result_text = result.empty() ? std::string("null") : json::serialize(result);
  Status s = store_.write([&](store::Tx& tx) -> Status {
    const std::int64_t now = clock::now_ms();
    DP_TRY(tx.tasks().finish(task.id, options_.node_id, status, result_text, error, now));
    for (const auto& m : metrics) DP_TRY(tx.metrics().append(m));
    return tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(task),
                                                 task.correlation_id, now, std::nullopt});
  });
  if (!s.ok() && s.error().code != ErrorCode::kFailedPrecondition) {
    // A task must not stay running because its result could not be written: record the end
    // without the result.
    logger.warn("task result not recorded", {{"taskId", task.id}, {"error", s.error().message}});
    task.result = nullptr;
    task.error = error.empty() ? "the task's result could not be recorded: " + s.error().message : error;
    s = store_.write([&](store::Tx& tx) -> Status {
      const std::int64_t now = clock::now_ms();
      DP_TRY(tx.tasks().finish(task.id, options_.node_id, status, "null", task.error, now));
      return tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(task),
                                                   task.correlation_id, now, std::nullopt});
    });
  }
  if (!s.ok()) {
    logger.warn("task end not recorded", {{"taskId", task.id}, {"error", s.error().message}});
  } else {
    logger.info("task finished", {{"taskId", task.id}, {"status", status}});
    if (options_.on_finished) options_.on_finished(task);
  }
}

void Executor::run_llm_task(Running& slot, model::Task task, const model::Agent& agent) {
  const log::Logger logger(task.correlation_id, agent.id);
  const fs::path workspace = fs::path(options_.data_dir) / "workspaces" / agent.id / task.id;
  std::error_code ec;
  fs::create_directories(workspace, ec);
  if (ec) {
    finish_task(task, "failed", "cannot create the workspace: " + ec.message(), {}, {});
    return;
  }
  ToolSet tools = options_.tools != nullptr ? *options_.tools : builtin_tools();
  if (const auto external = external_tool_names(agent.config); !external.empty()) {
    // MCP tools, read from their adapters' live catalogs for this task.
    if (options_.tool_source == nullptr) {
      finish_task(task, "failed", "config.tools names MCP tools, but no tool source is configured on this node", {}, {});
      return;
    }
    auto resolved = options_.tool_source->resolve(external, task.correlation_id);
    if (!resolved.ok()) {
      finish_task(task, "failed", resolved.error().message, {}, {});
      return;
    }
    for (auto& t : *resolved) tools.add(std::move(t));
  }
  auto cfg = parse_llm_config(agent.config, tools);
  if (!cfg.ok()) {
    finish_task(task, "failed", cfg.error().message, {}, {});
    return;
  }
  // Budgets: the task's limits (else the agent's), capped by what is left of the agent's budget.
  if (!check_budget(task, agent)) return;
  if (auto t = task_limit(task, agent, "timeoutSeconds", "timeoutSeconds")) {
    cfg->timeout = std::chrono::seconds(static_cast<std::int64_t>(*t));
  }
  if (auto t = task_limit(task, agent, "maxTokens", "maxTokens")) cfg->max_tokens = static_cast<std::int64_t>(*t);
  if (auto t = task_limit(task, agent, "maxToolCalls", "maxToolCalls")) cfg->max_tool_calls = static_cast<int>(*t);
  if (auto t = task_limit(task, agent, "maxCostUsd", "maxCostUsd")) cfg->max_cost_usd = *t;
  std::set<std::string> from_agent_budget;  // stop reasons that mean the agent's budget
  const json::object* budget = agent.config.contains("budget") && agent.config.at("budget").is_object()
                                   ? &agent.config.at("budget").as_object()
                                   : nullptr;
  if (budget != nullptr) {
    auto used = agent_usage(agent.id);
    if (used.ok()) {
      if (auto m = num(*budget, "maxTokens")) {
        const auto left = static_cast<std::int64_t>(*m - used->tokens);
        if (cfg->max_tokens == 0 || left < cfg->max_tokens) {
          cfg->max_tokens = std::max<std::int64_t>(1, left);
          from_agent_budget.insert("max_tokens");
        }
      }
      if (auto m = num(*budget, "maxCostUsd")) {
        const double left = *m - used->cost_usd;
        if (cfg->max_cost_usd == 0 || left < cfg->max_cost_usd) {
          cfg->max_cost_usd = std::max(1e-9, left);
          from_agent_budget.insert("max_cost");
        }
      }
      if (auto m = num(*budget, "maxToolCalls")) {
        const int left = static_cast<int>(*m - used->tool_calls);
        if (left < cfg->max_tool_calls) {
          cfg->max_tool_calls = std::max(0, left);
          from_agent_budget.insert("max_tool_calls");
        }
      }
      if (auto m = num(*budget, "maxWallSeconds")) {
        const auto left = static_cast<std::int64_t>(*m - used->wall_ms / 1000.0);
        if (left < cfg->timeout.count()) {
          cfg->timeout = std::chrono::seconds(std::max<std::int64_t>(1, left));
          from_agent_budget.insert("timeout");
        }
      }
    }
  }
  if (auto it = options_.prices.find(cfg->model); it != options_.prices.end()) {
    cfg->input_price_per_mtok = it->second.first;
    cfg->output_price_per_mtok = it->second.second;
  } else if (cfg->max_cost_usd > 0) {
    finish_task(task, "failed",
                "a cost limit is set but the model '" + cfg->model +
                    "' has no price in the price table (llm_prices)",
                json::object{{"stopReason", "max_cost"}}, {});
    return;
  }
  std::optional<GitWorkspace> gws;
  {
    auto g = open_worktree(task, agent, workspace);
    if (!g.ok()) {
      finish_task(task, "failed", g.error().message, json::object{{"stopReason", "workspace_error"}}, {});
      return;
    }
    gws = std::move(*g);
  }
  llm::ProviderOptions popts;
  popts.kind = cfg->provider;
  popts.base_url = cfg->base_url;
  popts.max_retries = cfg->max_retries;
  popts.backoff_base = options_.llm_backoff_base;
  popts.max_backoff = options_.llm_max_backoff;
  if (!cfg->api_key_secret.empty()) {
    // The key is opened here, used for this task's calls and never written anywhere.
    std::string sealed;
    Status got = store_.read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(auto rec, tx.secrets().get(cfg->api_key_secret));
      sealed = std::move(rec.value);
      return Ok{};
    });
    if (!got.ok()) {
      finish_task(task, "failed",
                  got.error().code == ErrorCode::kNotFound
                      ? "the secret '" + cfg->api_key_secret + "' named by config.apiKeySecret does not exist"
                      : "cannot read the secret '" + cfg->api_key_secret + "': " + got.error().message,
                  {}, {});
      return;
    }
    if (options_.secrets == nullptr) {
      finish_task(task, "failed", "secrets cannot be opened on this node (no master key)", {}, {});
      return;
    }
    auto key = options_.secrets->open(sealed);
    if (!key.ok()) {
      finish_task(task, "failed",
                  "the secret '" + cfg->api_key_secret +
                      "' cannot be opened (altered, or sealed under another master key)",
                  {}, {});
      return;
    }
    popts.api_key = std::move(*key);
  }
  auto provider = llm::make_provider(std::move(popts));
  if (!provider.ok()) {
    finish_task(task, "failed", provider.error().message, {}, {});
    return;
  }

  const std::string task_text = input_text(task.input);
  ToolContext ctx{gws ? gws->dir : workspace.string(), agent.id, task.id, task.correlation_id,
                  &slot.control.flag()};
  // Progress lines and streamed text go out as agent.log events (best effort), batched like a
  // command's output (16 KiB or 200 ms) and capped per task.
  std::size_t announced = 0;
  std::string pending;
  auto last_flush = std::chrono::steady_clock::now();
  auto flush = [&] {
    if (pending.empty()) return;
    const std::string at = clock::format_iso8601(clock::now_ms());
    if (options_.logs != nullptr) options_.logs->append(agent.id, task.id, "llm", pending, at);
    json::object payload{{"agentId", agent.id}, {"taskId", task.id}, {"stream", "llm"},
                         {"text", pending}, {"timestamp", at}};
    const std::string text = json::serialize(payload);
    store_.write([&](store::Tx& tx) {
           return tx.outbox().append(store::OutboxEvent{0, "agent.log", text,
                                                        task.correlation_id, clock::now_ms(),
                                                        std::nullopt});
         })
        .ignore_error();
    pending.clear();
    last_flush = std::chrono::steady_clock::now();
  };
  auto add = [&](std::string_view text) {
    if (announced >= options_.max_log_bytes_per_task) return;
    const std::size_t take = std::min(text.size(), options_.max_log_bytes_per_task - announced);
    pending.append(text.substr(0, take));
    announced += take;
  };
  LoopHooks hooks;
  bool mid_text = false;  // streamed text without its line end yet
  hooks.on_text = [&](std::string_view piece) {
    add(piece);
    mid_text = true;
    if (pending.size() >= 16 * 1024 ||
        std::chrono::steady_clock::now() - last_flush > std::chrono::milliseconds(200)) {
      flush();
    }
  };
  hooks.on_log = [&](std::string_view line) {
    if (mid_text) add("\n");
    mid_text = false;
    add(line);
    add("\n");
    flush();
  };
  const json::object base_labels{{"provider", cfg->provider_name}, {"model", cfg->model}};
  hooks.on_call = [&](const CallRecord& call) {
    // One row per figure and call, written as the call ends, so a long task shows its use.
    json::object labels = base_labels;
    labels["turn"] = call.turn;
    labels["attempts"] = call.attempts;
    const std::int64_t now = clock::now_ms();
    Status s = store_.write([&](store::Tx& tx) -> Status {
      for (const auto& [type, value] :
           {std::pair<const char*, double>{"llm.input_tokens", static_cast<double>(call.usage.input_tokens)},
            {"llm.output_tokens", static_cast<double>(call.usage.output_tokens)},
            {"llm.latency_ms", static_cast<double>(call.latency_ms)}}) {
        DP_TRY(tx.metrics().append(model::Metric{0, agent.id, task.id, type, value, labels, now}));
      }
      return Ok{};
    });
    if (!s.ok()) logger.warn("llm call metrics not recorded", {{"error", s.error().message}});
  };

  logger.info("llm task started", {{"taskId", task.id}, {"provider", cfg->provider_name},
                                   {"model", cfg->model}});
  LoopResult r = run_llm_loop(**provider, *cfg, tools, task_text, ctx, hooks);
  if (mid_text) add("\n");
  flush();
  if (r.status == "failed" && from_agent_budget.count(r.stop_reason) != 0) {
    r.error = "the agent's budget (config.budget) is spent: " + r.error;
    r.stop_reason = "agent_budget";
  }

  const std::int64_t now = clock::now_ms();
  std::vector<model::Metric> totals;
  for (const auto& [type, value] :
       {std::pair<const char*, double>{"task.turns", static_cast<double>(r.turns)},
        {"task.tool_calls", static_cast<double>(r.tool_calls)},
        {"task.input_tokens", static_cast<double>(r.input_tokens)},
        {"task.output_tokens", static_cast<double>(r.output_tokens)},
        {"task.wall_ms", static_cast<double>(r.wall_ms)},
        {"task.cost_usd", r.cost_usd}}) {
    totals.push_back(model::Metric{0, agent.id, task.id, type, value,
                                   json::object{{"provider", cfg->provider_name},
                                                {"model", cfg->model},
                                                {"stopReason", r.stop_reason}},
                                   now});
  }
  // A guard that stopped the agent is a fact for the audit log (a cancel is already audited
  // as the request that asked for it). Recorded before the task is finished, so whoever sees
  // the stopped task also finds the entry.
  if (r.status == "failed" && r.stop_reason != "provider_error" && options_.recorder != nullptr) {
    audit::Entry e;
    e.actor_kind = "system";
    e.actor_name = "executor";
    e.action = "agent.task.stopped";
    e.target = "task:" + task.id;
    e.outcome = "failure";
    e.correlation_id = task.correlation_id;
    e.details = json::object{{"agentId", agent.id}, {"taskId", task.id},
                             {"stopReason", r.stop_reason}, {"error", r.error},
                             {"turns", r.turns}, {"toolCalls", r.tool_calls},
                             {"totalTokens", r.input_tokens + r.output_tokens}};
    options_.recorder->record(std::move(e));
  }
  json::object result = r.to_json(*cfg);
  if (gws) {
    const bool commit = !(agent.config.contains("gitCommit") && agent.config.at("gitCommit").is_bool() &&
                          !agent.config.at("gitCommit").as_bool());
    auto g = finish_worktree(*gws, commit, "devplane: task " + task.id + " by agent " + agent.name);
    result["git"] = g.ok() ? json::value(g->to_json(*gws))
                           : json::value(json::object{{"branch", gws->branch}, {"error", g.error().message}});
  }
  finish_task(task, r.status, r.error, result, totals);
}

}  // namespace dp::agents
