// Reachability of a Redis server: connect with a deadline and PING. Blocking; run it on
// the blocking pool. The full Redis Streams bus arrives with the real-time issue.
#pragma once

#include <chrono>
#include <string>

#include "core/result.hpp"

namespace dp::bus {

// kInvalidArgument for a malformed URL, kUnavailable when Redis does not answer PONG.
Status redis_ping(const std::string& url, std::chrono::milliseconds timeout);

}  // namespace dp::bus
