#include "bus/internal/validation.hpp"

#include <string>

namespace dp::bus::internal {
namespace {

bool printable_name(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    // Names become Redis arguments and log fields: keep them to visible ASCII.
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

Status validate_payload(std::string_view payload, std::size_t max_payload_bytes) {
  if (payload.size() > max_payload_bytes) {
    return Error::invalid_argument("payload_too_large",
                                   "payload of " + std::to_string(payload.size()) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(max_payload_bytes));
  }
  return Ok{};
}

Status validate_events(const std::vector<Event>& events, std::size_t max_payload_bytes) {
  for (const Event& e : events) {
    if (e.seq <= 0) {
      return Error::invalid_argument("invalid_event",
                                     "event seq must be > 0, got " + std::to_string(e.seq));
    }
    if (e.topic.empty() || e.topic.size() > kMaxTopicBytes) {
      return Error::invalid_argument("invalid_event", "event topic must have 1.." +
                                                          std::to_string(kMaxTopicBytes) +
                                                          " bytes");
    }
    if (e.correlation_id.size() > kMaxCorrelationIdBytes) {
      return Error::invalid_argument("invalid_event", "correlation id is too long");
    }
    DP_TRY(validate_payload(e.payload, max_payload_bytes));
  }
  return Ok{};
}

Status validate_queue_name(std::string_view queue) {
  bool ok = !queue.empty() && queue.size() <= kMaxQueueNameBytes;
  for (char c : queue) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '_' || c == '-';
    ok = ok && allowed;
  }
  if (!ok) {
    return Error::invalid_argument("invalid_queue",
                                   "queue name must match [a-z0-9._-]{1,64}: '" +
                                       std::string(queue.substr(0, 80)) + "'");
  }
  return Ok{};
}

Status validate_group_name(std::string_view group) {
  if (!printable_name(group, kMaxConsumerNameBytes)) {
    return Error::invalid_argument("invalid_queue",
                                   "group name must be 1..128 visible ASCII characters");
  }
  return Ok{};
}

Status validate_consumer_options(const ConsumerOptions& options) {
  DP_TRY(validate_queue_name(options.queue));
  DP_TRY(validate_group_name(options.group));
  if (!printable_name(options.consumer, kMaxConsumerNameBytes)) {
    return Error::invalid_argument("invalid_queue",
                                   "consumer name must be 1..128 visible ASCII characters");
  }
  if (options.claim_idle.count() <= 0) {
    return Error::invalid_argument("invalid_queue", "claim_idle must be positive");
  }
  if (options.batch < 1) return Error::invalid_argument("invalid_queue", "batch must be >= 1");
  return Ok{};
}

}  // namespace dp::bus::internal
