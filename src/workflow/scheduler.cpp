#include "workflow/scheduler.hpp"

#include <algorithm>

#include <boost/json/object.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "workflow/cron.hpp"
#include "workflow/definition.hpp"
#include "workflow/service.hpp"

namespace dp::workflow {
namespace {

namespace json = boost::json;

// Counting the missed times of a very frequent schedule after a long downtime stops here; the
// run still happens, and missedRuns says "at least".
constexpr int kMaxCountedTimes = 10'000;

}  // namespace

Scheduler::Scheduler(store::Store& store, SchedulerOptions options,
                     std::function<void(const std::string&)> started)
    : store_(store), options_(std::move(options)), started_(std::move(started)) {}

Scheduler::~Scheduler() { stop(); }

std::int64_t Scheduler::now() const {
  return options_.now_ms ? options_.now_ms() : clock::now_ms();
}

void Scheduler::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.tick, [this] { return stop_; })) return;
    }
    auto r = tick();
    if (!r.ok()) {
      log::global().warn("workflow scheduler pass failed", {{"error", r.error().message}});
    }
  }
}

Result<std::vector<std::string>> Scheduler::tick() {
  const std::int64_t now_ms = now();
  std::int64_t next_due = 0;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(next_due, tx.triggers().next_due());
    return Ok{};
  }));
  // Delivery ids are pruned once a minute, or every half retention when that is shorter.
  const std::int64_t prune_every =
      std::max<std::int64_t>(1, std::min<std::int64_t>(60'000, options_.delivery_retention.count() / 2));
  const bool prune = now_ms - last_prune_ >= prune_every;
  if ((next_due == 0 || next_due > now_ms) && !prune) return std::vector<std::string>{};
  std::vector<std::string> started;
  DP_TRY(store_.write([&](store::Tx& tx) -> Status {
    started.clear();
    DP_ASSIGN_OR_RETURN(bool held, tx.leases().acquire(kSchedulerLease, options_.node_id, now_ms,
                                                       options_.lease.count()));
    if (!held) return Ok{};
    if (prune) {
      DP_TRY(tx.triggers().prune_deliveries(now_ms - options_.delivery_retention.count()));
    }
    DP_ASSIGN_OR_RETURN(std::vector<store::TriggerState> due,
                        tx.triggers().due(now_ms, options_.max_fires_per_tick));
    for (auto& row : due) {
      DP_ASSIGN_OR_RETURN(model::Workflow w, tx.workflows().get(row.workflow_id));
      auto def = parse_definition(w.definition);
      const Trigger* t = def.ok() ? def->trigger(row.trigger_id) : nullptr;
      if (t == nullptr || t->kind != "schedule") {
        // The definition no longer has it (a concurrent update syncs the rows too).
        DP_TRY(tx.triggers().remove(row.workflow_id, row.trigger_id));
        continue;
      }
      auto spec = parse_cron(t->cron);
      auto zone = find_zone(t->timezone);
      if (!spec.ok() || !zone.ok()) {
        DP_TRY(tx.triggers().remove(row.workflow_id, row.trigger_id));
        continue;
      }
      // Every scheduled time in (last run, now]: the latest is the one a run is for.
      std::int64_t latest = row.next_fire_at;
      int times = 1;
      for (;;) {
        auto n = next_fire(*spec, *zone, latest);
        if (!n || *n > now_ms || times >= kMaxCountedTimes) break;
        latest = *n;
        ++times;
      }
      const bool late = now_ms - latest > options_.late_tolerance.count();
      const bool fire = !late || t->missed == "once";
      row.next_fire_at = next_fire(*spec, *zone, std::max(latest, now_ms)).value_or(0);
      if (fire) {
        ExecutionCause cause;
        cause.cause = "schedule";
        cause.created_by = "trigger:" + t->id;
        cause.detail = json::object{{"trigger", t->id},
                                    {"cron", t->cron},
                                    {"timezone", t->timezone},
                                    {"scheduledAt", clock::format_iso8601(latest)}};
        if (late || times > 1) {
          cause.detail["missedRuns"] = times - (late ? 0 : 1);
          cause.detail["missedPolicy"] = t->missed;
        }
        auto e = start_execution(tx, w.id, t->inputs, std::move(cause), now_ms, &*def);
        if (e.ok()) {
          row.last_fire_at = latest;
          row.last_execution_id = e->id;
          started.push_back(e->id);
        } else if (e.error().code == ErrorCode::kInvalidArgument ||
                   e.error().code == ErrorCode::kFailedPrecondition) {
          // The trigger's inputs do not satisfy the workflow's declaration (or it was just
          // archived): nothing to start for this time; the schedule moves on.
          log::global().warn("a scheduled workflow run was not started",
                    {{"workflowId", w.id}, {"trigger", t->id}, {"error", e.error().message}});
        } else {
          return e.error();
        }
      }
      DP_TRY(tx.triggers().put(row));
    }
    return Ok{};
  }));
  if (prune) last_prune_ = now_ms;
  if (started_) {
    for (const auto& id : started) started_(id);
  }
  return started;
}

}  // namespace dp::workflow
