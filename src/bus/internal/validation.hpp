// Input checks shared by every bus backend, so both reject the same things with the same
// errors (kInvalidArgument, reason "invalid_event" / "invalid_queue" / "payload_too_large").
// Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "bus/event_bus.hpp"
#include "core/result.hpp"

namespace dp::bus::internal {

inline constexpr std::size_t kMaxTopicBytes = 256;
inline constexpr std::size_t kMaxCorrelationIdBytes = 256;
inline constexpr std::size_t kMaxQueueNameBytes = 64;
inline constexpr std::size_t kMaxConsumerNameBytes = 128;

// seq > 0, a non-empty topic, field sizes within limits. A batch is checked whole before
// anything is published, so a bad batch changes nothing.
Status validate_events(const std::vector<Event>& events, std::size_t max_payload_bytes);
// [a-z0-9._-]{1,64}
Status validate_queue_name(std::string_view queue);
Status validate_payload(std::string_view payload, std::size_t max_payload_bytes);
// Queue name, non-empty printable group and consumer names, claim_idle > 0, batch >= 1.
Status validate_consumer_options(const ConsumerOptions& options);
// Group names as queue_depth receives them: non-empty, printable.
Status validate_group_name(std::string_view group);

}  // namespace dp::bus::internal
