// JSON mapping of agents (camelCase, as the API and events show them).
#pragma once

#include <boost/json/value.hpp>

#include "model/agent.hpp"

namespace dp::model {

boost::json::object to_json(const Agent& agent);
// The same, taking labels and config over instead of copying them.
boost::json::object to_json(Agent&& agent);
boost::json::object to_json(const AgentStateEntry& entry);

}  // namespace dp::model
