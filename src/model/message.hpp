// Message: a note from one agent (or a person, when `from_agent_id` is empty) to an agent,
// kept in the seed's `messages` table. `delivered_at` is set once the recipient has it.
// Plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

namespace dp::model {

struct Message {
  std::string id;                    // UUIDv7
  std::string from_agent_id;         // empty: sent by a person or the platform
  std::string to_agent_id;
  std::string message_type;          // e.g. "text", "task.handoff"
  boost::json::object payload;
  std::int64_t created_at = 0;       // epoch ms
  std::optional<std::int64_t> delivered_at;
};

boost::json::object to_json(const Message& m);

}  // namespace dp::model
