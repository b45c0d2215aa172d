// Memory: one remembered piece of text with its embedding (the seed's `vector_embeddings`):
// a note someone added, or the outcome of an agent's task. Plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace dp::model {

struct Memory {
  std::string id;    // UUIDv7
  std::string kind;  // task_outcome | note
  std::string text;
  // {agentId?, taskId?, executionId?, status?, labels?}
  boost::json::object metadata;
  std::string agent_id;  // metadata.agentId, kept apart for filters ("" when none)
  std::string task_id;   // metadata.taskId ("" when none); unique among memories
  std::string embedder;  // which embedder made `embedding` (e.g. "hashing-v1-384")
  std::vector<float> embedding;  // L2-normalised
  std::int64_t created_at = 0;   // epoch ms
  std::string created_by;        // "user:<id>", "apikey:<id>", "system:executor"
};

}  // namespace dp::model
