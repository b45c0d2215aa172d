// Task: a piece of work given to one agent (POST /api/v1/agents/:id/tasks), with its result.
// Plain value type.
//
// Lifecycle: queued -> running -> succeeded | failed | cancelled; queued -> cancelled.
// A running task whose node died (lease lapsed) goes back to queued.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace dp::model {

struct Task {
  std::string id;               // UUIDv7
  std::string agent_id;
  std::string idempotency_key;  // unique per agent; a repeated key returns the first task
  boost::json::value input;     // what the agent is asked to do (a string or an object)
  std::string status = "queued";
  boost::json::value result;    // null until finished
  std::string error;
  std::int64_t attempts = 0;
  bool cancel_requested = false;
  std::string node_id;
  std::int64_t lease_until = 0;
  std::string created_by;
  std::string correlation_id;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> started_at;
  std::optional<std::int64_t> finished_at;
  // Given at creation: {repo?, baseRef?, limits?} (the git repository the agent works on in
  // its own worktree, the ref it starts from, and the task's budget).
  boost::json::object options;

  bool finished() const noexcept {
    return status == "succeeded" || status == "failed" || status == "cancelled";
  }
};

boost::json::object to_json(const Task& t);

}  // namespace dp::model
