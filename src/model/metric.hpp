// Metric: one measurement about an agent (the seed's `agent_metrics` table), e.g. the tokens
// one model call used. `task_id` ties it to a task when there is one; `labels` say more (the
// provider, the model, the call's number within the task). Plain value type.
#pragma once

#include <cstdint>
#include <string>

#include <boost/json/object.hpp>

namespace dp::model {

struct Metric {
  std::int64_t id = 0;  // assigned by the store
  std::string agent_id;
  std::string task_id;  // empty: not about one task
  std::string metric_type;  // e.g. "llm.input_tokens", "llm.latency_ms", "task.turns"
  double value = 0;
  boost::json::object labels;
  std::int64_t timestamp = 0;  // epoch ms
};

boost::json::object to_json(const Metric& m);

}  // namespace dp::model
