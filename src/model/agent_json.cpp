#include "model/agent_json.hpp"

#include "core/clock.hpp"

namespace dp::model {

boost::json::object to_json(const Agent& a) {
  boost::json::object o;
  o.reserve(11);
  o["id"] = a.id;
  o["name"] = a.name;
  o["type"] = a.type;
  o["status"] = to_string(a.status);
  o["statusReason"] = a.status_reason.empty() ? boost::json::value(nullptr)
                                               : boost::json::value(a.status_reason);
  o["description"] = a.description;
  o["labels"] = a.labels;
  o["config"] = a.config;
  o["version"] = a.version;
  o["createdAt"] = clock::format_iso8601(a.created_at);
  o["updatedAt"] = clock::format_iso8601(a.updated_at);
  return o;
}

boost::json::object to_json(const AgentStateEntry& e) {
  boost::json::object o;
  o["id"] = e.id;
  o["agentId"] = e.agent_id;
  o["from"] = e.from_status.empty() ? boost::json::value(nullptr) : boost::json::value(e.from_status);
  o["status"] = e.status;
  o["reason"] = e.reason;
  o["version"] = e.version;
  o["timestamp"] = clock::format_iso8601(e.created_at);
  return o;
}

}  // namespace dp::model
