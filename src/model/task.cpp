#include "model/task.hpp"

#include "core/clock.hpp"

namespace dp::model {

boost::json::object to_json(const Task& t) {
  auto time = [](const std::optional<std::int64_t>& v) {
    return v ? boost::json::value(clock::format_iso8601(*v)) : boost::json::value(nullptr);
  };
  return boost::json::object{
      {"id", t.id},
      {"agentId", t.agent_id},
      {"idempotencyKey", t.idempotency_key},
      {"input", t.input},
      {"status", t.status},
      {"result", t.result},
      {"error", t.error.empty() ? boost::json::value(nullptr) : boost::json::value(t.error)},
      {"attempts", t.attempts},
      {"cancelRequested", t.cancel_requested},
      {"createdAt", clock::format_iso8601(t.created_at)},
      {"startedAt", time(t.started_at)},
      {"finishedAt", time(t.finished_at)},
      {"repo", t.options.contains("repo") ? t.options.at("repo") : boost::json::value(nullptr)},
      {"baseRef", t.options.contains("baseRef") ? t.options.at("baseRef") : boost::json::value(nullptr)},
      {"limits", t.options.contains("limits") ? t.options.at("limits") : boost::json::value(nullptr)},
  };
}

}  // namespace dp::model
