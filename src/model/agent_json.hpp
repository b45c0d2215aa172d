// JSON mapping of agents (camelCase, as the API and events show them).
#pragma once

#include <string>

#include <boost/json/value.hpp>

#include "model/agent.hpp"

namespace dp::model {

boost::json::object to_json(const Agent& agent);
boost::json::object to_json(const AgentStateEntry& entry);

// Appends the agent's JSON text to `out`: the same members in the same order as to_json,
// written straight into the text instead of through a JSON tree (a list response writes 50
// agents; building and freeing their trees was a third of its CPU).
void append_json(std::string& out, const Agent& agent);

}  // namespace dp::model
