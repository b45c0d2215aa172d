#include "model/message.hpp"

#include "core/clock.hpp"

namespace dp::model {

boost::json::object to_json(const Message& m) {
  return boost::json::object{
      {"id", m.id},
      {"fromAgentId", m.from_agent_id.empty() ? boost::json::value(nullptr)
                                              : boost::json::value(m.from_agent_id)},
      {"toAgentId", m.to_agent_id},
      {"type", m.message_type},
      {"payload", m.payload},
      {"createdAt", clock::format_iso8601(m.created_at)},
      {"deliveredAt", m.delivered_at ? boost::json::value(clock::format_iso8601(*m.delivered_at))
                                     : boost::json::value(nullptr)},
  };
}

}  // namespace dp::model
