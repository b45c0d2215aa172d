// SlidingWindowLimiter: counts events (failed logins) per key over a sliding window and
// says how long a key must wait once it reached the limit. In memory, per process: the
// persisted lockout in the users table is what holds across restarts and nodes.
// Thread safety: safe from any thread (one mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace dp::auth {

class SlidingWindowLimiter {
 public:
  SlidingWindowLimiter(std::size_t max_events, std::int64_t window_ms,
                       std::size_t max_keys = 100'000);

  // Milliseconds until `key` may try again; 0 when it is under the limit now.
  std::int64_t retry_after_ms(const std::string& key, std::int64_t now_ms);
  // Records one event for `key` at `now_ms`.
  void add(const std::string& key, std::int64_t now_ms);
  // Forgets `key` (after a successful login).
  void clear(const std::string& key);
  std::size_t keys() const;

 private:
  void expire(std::deque<std::int64_t>& events, std::int64_t now_ms) const;

  const std::size_t max_events_;
  const std::int64_t window_ms_;
  const std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::deque<std::int64_t>> events_;  // guarded by mu_
};

}  // namespace dp::auth
