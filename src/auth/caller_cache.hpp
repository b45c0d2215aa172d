// CallerCache: who a bearer credential belonged to, remembered for a moment.
//
// Every authenticated request would otherwise verify its JWT (or hash its API key) and read
// the user or key row. A hit skips both. An entry lives `ttl` at most, and never past the
// credential's own expiry, so a change made elsewhere (another node, the CLI) takes effect
// within `ttl`; changes made through this process's AuthService clear the cache at once.
// Only successes are kept. Bounded: when full, the cache starts over.
// Thread safety: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http/message.hpp"

namespace dp::auth {

class CallerCache {
 public:
  CallerCache(std::int64_t ttl_ms, std::size_t capacity) : ttl_ms_(ttl_ms), capacity_(capacity) {}

  std::optional<http::Caller> find(std::string_view token, std::int64_t now_ms) const;
  // Keeps `caller` for `token` until min(now + ttl, expires_at_ms); expires_at_ms 0: no expiry.
  void put(std::string_view token, const http::Caller& caller, std::int64_t now_ms,
           std::int64_t expires_at_ms);
  void clear();
  std::size_t size() const;

 private:
  struct Entry {
    http::Caller caller;
    std::int64_t valid_until_ms = 0;
  };
  const std::int64_t ttl_ms_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace dp::auth
