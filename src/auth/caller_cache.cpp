#include "auth/caller_cache.hpp"

#include <algorithm>

namespace dp::auth {

std::optional<http::Caller> CallerCache::find(std::string_view token, std::int64_t now_ms) const {
  if (ttl_ms_ <= 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(token));
  if (it == entries_.end() || it->second.valid_until_ms <= now_ms) return std::nullopt;
  return it->second.caller;
}

void CallerCache::put(std::string_view token, const http::Caller& caller, std::int64_t now_ms,
                      std::int64_t expires_at_ms) {
  if (ttl_ms_ <= 0 || capacity_ == 0) return;
  std::int64_t until = now_ms + ttl_ms_;
  if (expires_at_ms > 0) until = std::min(until, expires_at_ms);
  if (until <= now_ms) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_) entries_.clear();
  entries_.insert_or_assign(std::string(token), Entry{caller, until});
}

void CallerCache::clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

std::size_t CallerCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace dp::auth
