// MessageService: messages to agents (POST/GET /api/v1/agents/:id/messages).
//
// Sending writes, in one store transaction, the message and an `agent.message` event in the
// outbox, so the dashboard and the recipient's node learn of it live. A message is delivered
// when its recipient has it: a remote agent acknowledges it over its connection, a local
// agent when its runtime hands it over; until then `deliveredAt` is null and `undelivered`
// lists it, so nothing is lost while the recipient is away.
// Blocking (calls the store): run on the blocking pool. Safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"
#include "model/message.hpp"
#include "store/store.hpp"

namespace dp::agents {

struct NewMessage {
  std::string to_agent_id;
  std::string from_agent_id;  // empty: from a person or the platform
  std::string type;
  boost::json::object payload;
};

class MessageService {
 public:
  explicit MessageService(store::Store& store) : store_(store) {}

  // kNotFound when the recipient (or the named sender) does not exist; kFailedPrecondition
  // `invalid_transition` when the recipient is decommissioned.
  Result<model::Message> send(NewMessage&& message, const std::string& correlation_id);
  // kNotFound when the agent does not exist.
  Result<store::Page<model::Message>> list(const std::string& agent_id,
                                           std::optional<std::string> after, int limit,
                                           bool undelivered_only);
  // Marks messages delivered to `agent_id`; returns how many changed.
  Result<std::int64_t> mark_delivered(const std::string& agent_id,
                                      const std::vector<std::string>& ids);

 private:
  store::Store& store_;
};

}  // namespace dp::agents
