// Helpers shared by the bus tests: collectors that wait on condition variables (never on
// sleeps), and a bounded poll for state only observable by asking (queue_depth).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/event_bus.hpp"

namespace dp::bus::testing {

// Generous: a loaded 2-core machine with sanitizers must never fail a correct bus.
inline constexpr std::chrono::seconds kWait{30};

inline Event make_event(std::int64_t seq, std::string topic = "agent.status.update") {
  Event e;
  e.seq = seq;
  e.topic = std::move(topic);
  e.payload = R"({"n":)" + std::to_string(seq) + "}";
  e.correlation_id = "cid-" + std::to_string(seq);
  e.created_at = 1'700'000'000'000 + seq;
  return e;
}

inline std::vector<Event> make_events(std::int64_t first, std::int64_t last) {
  std::vector<Event> v;
  for (std::int64_t s = first; s <= last; ++s) v.push_back(make_event(s));
  return v;
}

// Thread safety: safe from any thread.
class EventLog {
 public:
  EventHandler handler() {
    return [this](const Event& e) {
      {
        std::lock_guard lk(mu_);
        events_.push_back(e);
      }
      cv_.notify_all();
    };
  }
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return events_.size() >= n; });
  }
  std::vector<Event> events() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  std::vector<std::int64_t> seqs() const {
    std::lock_guard lk(mu_);
    std::vector<std::int64_t> v;
    for (const auto& e : events_) v.push_back(e.seq);
    return v;
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return events_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

inline std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> v;
  for (std::int64_t s = first; s <= last; ++s) v.push_back(s);
  return v;
}

// Thread safety: safe from any thread.
struct Delivery {
  std::string consumer;
  QueueMessage message;
};
class QueueLog {
 public:
  void add(std::string consumer, const QueueMessage& m) {
    {
      std::lock_guard lk(mu_);
      deliveries_.push_back(Delivery{std::move(consumer), m});
    }
    cv_.notify_all();
  }
  bool wait_for(const std::function<bool(const std::vector<Delivery>&)>& pred,
                std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return pred(deliveries_); });
  }
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout = kWait) {
    return wait_for([n](const auto& d) { return d.size() >= n; }, timeout);
  }
  std::vector<Delivery> deliveries() const {
    std::lock_guard lk(mu_);
    return deliveries_;
  }
  // payload -> how many times it was handled
  std::map<std::string, int> counts() const {
    std::lock_guard lk(mu_);
    std::map<std::string, int> m;
    for (const auto& d : deliveries_) ++m[d.message.payload];
    return m;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Delivery> deliveries_;
};

// For state that can only be observed by asking the backend: ask every 20 ms, up to
// `timeout`. Bounded, and each check is a real round trip, not a spin.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace dp::bus::testing
