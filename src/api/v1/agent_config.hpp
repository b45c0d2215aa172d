// The config schema of each agent kind, checked at create and update time so a typo
// ("memroyMb") is reported with the key named instead of being silently ignored.
#pragma once

#include <string_view>

#include <boost/json/object.hpp>

#include "api/validation.hpp"

namespace dp::api::v1 {

void validate_agent_config(std::string_view type, const boost::json::object& config,
                           Validator& v);

}  // namespace dp::api::v1
