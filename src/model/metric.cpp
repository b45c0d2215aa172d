#include "model/metric.hpp"

#include <cmath>

#include "core/clock.hpp"

namespace dp::model {

boost::json::object to_json(const Metric& m) {
  boost::json::object o{{"id", m.id},
                        {"agentId", m.agent_id},
                        {"metricType", m.metric_type},
                        {"labels", m.labels},
                        {"timestamp", clock::format_iso8601(m.timestamp)}};
  o["taskId"] = m.task_id.empty() ? boost::json::value(nullptr) : boost::json::value(m.task_id);
  // Counts stay integers in JSON; fractional values (rates) stay doubles.
  if (std::floor(m.value) == m.value && std::fabs(m.value) < 9.0e15) {
    o["value"] = static_cast<std::int64_t>(m.value);
  } else {
    o["value"] = m.value;
  }
  return o;
}

}  // namespace dp::model
