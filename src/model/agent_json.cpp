#include "model/agent_json.hpp"

#include <utility>

#include "core/clock.hpp"

namespace dp::model {

namespace {

// The API's shape of an agent; labels and config are copied or moved in by the callers.
boost::json::object agent_json(const Agent& a, boost::json::value labels,
                               boost::json::value config) {
  boost::json::object o;
  o.reserve(11);
  o.emplace("id", a.id);
  o.emplace("name", a.name);
  o.emplace("type", a.type);
  o.emplace("status", to_string(a.status));
  o.emplace("statusReason", a.status_reason.empty() ? boost::json::value(nullptr)
                                                    : boost::json::value(a.status_reason));
  o.emplace("description", a.description);
  o.emplace("labels", std::move(labels));
  o.emplace("config", std::move(config));
  o.emplace("version", a.version);
  o.emplace("createdAt", clock::format_iso8601(a.created_at));
  o.emplace("updatedAt", clock::format_iso8601(a.updated_at));
  return o;
}

}  // namespace

boost::json::object to_json(const Agent& a) { return agent_json(a, a.labels, a.config); }

boost::json::object to_json(Agent&& a) {
  return agent_json(a, std::move(a.labels), std::move(a.config));
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
