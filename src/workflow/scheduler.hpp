// Scheduler: starts the executions that workflows' cron triggers ask for (docs/workflows.md,
// "Triggers").
//
// Every node runs one, but only the holder of the store lease `workflow-scheduler` fires:
// a pass reads the earliest due time (a cheap read) and, when something is due, runs one store
// write that takes or renews the lease, reads the due triggers and, for each, inserts the
// execution (cause `schedule`) and moves the trigger's next_fire_at and last_fire_at, all in
// that one transaction. So a scheduled time starts at most one execution even when nodes race
// or one dies mid-pass, and the state survives restarts.
//
// Missed runs: a scheduled time that a pass sees more than `late_tolerance` after it passed
// was missed (no node ran, or the server was down). Per trigger, `missed: once` (the default)
// starts one execution for the whole missed window, for its latest scheduled time, with
// `missedRuns` in causeDetail; `missed: skip` starts none and waits for the next time.
//
// The clock is injectable for tests. Thread safety: start/stop from one thread; tick() from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "store/store.hpp"

namespace dp::workflow {

inline constexpr std::string_view kSchedulerLease = "workflow-scheduler";

struct SchedulerOptions {
  std::string node_id;
  std::chrono::milliseconds tick{1000};
  std::chrono::milliseconds lease{15'000};
  std::chrono::milliseconds late_tolerance{60'000};
  // Webhook deliveries are remembered this long (replay protection needs the timestamp window).
  std::chrono::milliseconds delivery_retention{24 * 3600 * 1000};
  int max_fires_per_tick = 100;
  std::function<std::int64_t()> now_ms;  // default: the system clock
};

class Scheduler {
 public:
  // `started` (may be empty) gets the id of every execution a pass started (to wake the engine).
  Scheduler(store::Store& store, SchedulerOptions options,
            std::function<void(const std::string&)> started = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  void stop();

  // One pass: the ids of the executions it started (empty when nothing was due or another
  // node holds the lease).
  Result<std::vector<std::string>> tick();

 private:
  std::int64_t now() const;
  void loop();

  store::Store& store_;
  const SchedulerOptions options_;
  std::function<void(const std::string&)> started_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::int64_t last_prune_ = 0;
  std::thread thread_;
};

}  // namespace dp::workflow
