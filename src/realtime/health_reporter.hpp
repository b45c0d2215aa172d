// HealthReporter: every `interval`, measures this node (CPU, memory, connections, queue
// depth, store and bus latency) and announces it as a `system.health.status` event through
// the outbox, so it reaches every dashboard like any other event.
// Thread safety: start/stop from one thread; it runs on its own thread in between.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <boost/json/object.hpp>

#include "bus/event_bus.hpp"
#include "store/store.hpp"

namespace dp::realtime {

struct HealthSources {
  std::string node_id;
  std::function<std::size_t()> http_connections;
  std::function<std::size_t()> websocket_connections;
  std::function<void()> on_written;  // e.g. wake the outbox relay
};

class HealthReporter {
 public:
  HealthReporter(store::Store& store, bus::EventBus& bus, HealthSources sources,
                 std::chrono::milliseconds interval);
  ~HealthReporter();
  HealthReporter(const HealthReporter&) = delete;
  HealthReporter& operator=(const HealthReporter&) = delete;

  void start();
  void stop();

  // One measurement (the event's payload). CPU is the share of one core used since the
  // previous call.
  boost::json::object measure();

 private:
  store::Store& store_;
  bus::EventBus& bus_;
  const HealthSources sources_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
  std::int64_t last_cpu_ticks_ = -1;  // measuring thread only
  std::chrono::steady_clock::time_point last_cpu_at_;
};

}  // namespace dp::realtime
