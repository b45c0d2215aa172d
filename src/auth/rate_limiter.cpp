#include "auth/rate_limiter.hpp"

#include <algorithm>
#include <iterator>

namespace dp::auth {

SlidingWindowLimiter::SlidingWindowLimiter(std::size_t max_events, std::int64_t window_ms,
                                           std::size_t max_keys)
    : max_events_(std::max<std::size_t>(1, max_events)),
      window_ms_(window_ms),
      max_keys_(max_keys) {}

void SlidingWindowLimiter::expire(std::deque<std::int64_t>& events, std::int64_t now_ms) const {
  while (!events.empty() && events.front() <= now_ms - window_ms_) events.pop_front();
}

std::int64_t SlidingWindowLimiter::retry_after_ms(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = events_.find(key);
  if (it == events_.end()) return 0;
  expire(it->second, now_ms);
  if (it->second.size() < max_events_) {
    if (it->second.empty()) events_.erase(it);
    return 0;
  }
  // The oldest event that still counts must leave the window before one more is allowed.
  const std::size_t excess = it->second.size() - max_events_;
  return std::max<std::int64_t>(1, it->second[excess] + window_ms_ - now_ms);
}

void SlidingWindowLimiter::add(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (events_.size() >= max_keys_ && !events_.contains(key)) {
    // Bound the memory an attacker spraying names or addresses can take: drop idle keys,
    // and if that is not enough, every key (the persisted lockout still holds).
    for (auto it = events_.begin(); it != events_.end();) {
      expire(it->second, now_ms);
      it = it->second.empty() ? events_.erase(it) : std::next(it);
    }
    if (events_.size() >= max_keys_) events_.clear();
  }
  auto& q = events_[key];
  expire(q, now_ms);
  q.push_back(now_ms);
  // Keep at most what the limit needs.
  while (q.size() > max_events_) q.pop_front();
}

void SlidingWindowLimiter::clear(const std::string& key) {
  std::lock_guard lock(mu_);
  events_.erase(key);
}

std::size_t SlidingWindowLimiter::keys() const {
  std::lock_guard lock(mu_);
  return events_.size();
}

}  // namespace dp::auth
