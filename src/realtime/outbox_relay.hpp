// OutboxRelay: moves committed events from the store's outbox to the bus, in order.
//
// "Commit, then announce": services write a state change and its event in one store
// transaction; the relay publishes afterwards. Each round, in one store transaction, it
// takes or renews the lease "outbox-relay" (so only one node publishes at a time) and
// gives the next rows their global `seq`; then it publishes them and marks them published.
// A crash between publishing and marking republishes the same seqs, which the bus drops as
// duplicates; a crash before publishing leaves the rows for the next holder. Published
// events stay in the outbox for `retention` so that clients can resume from them.
//
// The relay polls (every `poll_interval`) and wakes at once on `notify()`, which the app
// calls after each local commit. Thread safety: safe from any thread; it runs its own
// thread between start() and stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "bus/event_bus.hpp"
#include "store/store.hpp"

namespace dp::realtime {

struct RelayOptions {
  std::string node_id;
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds lease_ttl{10'000};
  std::chrono::milliseconds retry_backoff_max{5'000};
  std::chrono::milliseconds retention{24 * 3600 * 1000};
  std::chrono::milliseconds prune_interval{60'000};
  int batch = 512;
};

struct RelayStats {
  bool leader = false;
  std::int64_t published = 0;   // events published by this relay since start
  std::int64_t last_seq = 0;    // highest seq this relay published
  std::int64_t failures = 0;    // rounds that failed (store or bus down)
  std::string last_error;
};

class OutboxRelay {
 public:
  OutboxRelay(store::Store& store, bus::EventBus& bus, RelayOptions options);
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void start();
  // Publishes what is already committed (best effort, bounded), releases the lease, joins.
  void stop();
  // Something was committed: run a round now rather than at the next poll.
  void notify();
  RelayStats stats() const;

  // One round, for tests and for stop(): sequence, publish, mark. Returns how many events
  // were published; kUnavailable when the store or the bus is down, kAborted when another
  // node holds the lease.
  Result<std::int64_t> run_once();

 private:
  void loop();
  void prune_if_due();

  store::Store& store_;
  bus::EventBus& bus_;
  const RelayOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;     // guarded by mu_
  bool wake_ = false;     // guarded by mu_
  RelayStats stats_;      // guarded by mu_
  std::chrono::steady_clock::time_point next_prune_;  // relay thread only
  // Epoch ms after which the lease is renewed; 0: not held. Used by one round at a time
  // (the relay thread, or stop() after it has joined).
  std::int64_t lease_renew_at_ = 0;
  std::thread thread_;
};

}  // namespace dp::realtime
