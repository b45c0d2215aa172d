// Structured logging: one JSON object per line, in the seed's shape
//   {"timestamp","level","message","correlationId","agentId","context"}
// or a one-line human format (`--log-format text`). Output goes to stderr.
//
// `configure` is called once at start-up before other threads log; after that every
// function here is safe from any thread (one short mutex around the write).
#pragma once

#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/result.hpp"

namespace dp::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kJson, kText };

Result<Level> parse_level(std::string_view text);
Result<Format> parse_format(std::string_view text);
std::string_view to_string(Level level) noexcept;

void configure(Level level, Format format);
bool enabled(Level level) noexcept;

// A logger bound to a correlation id (and optionally an agent id). Cheap to copy.
class Logger {
 public:
  Logger() = default;
  explicit Logger(std::string correlation_id, std::string agent_id = {})
      : correlation_id_(std::move(correlation_id)), agent_id_(std::move(agent_id)) {}

  void debug(std::string_view message, boost::json::object context = {}) const;
  void info(std::string_view message, boost::json::object context = {}) const;
  void warn(std::string_view message, boost::json::object context = {}) const;
  void error(std::string_view message, boost::json::object context = {}) const;
  void write(Level level, std::string_view message, boost::json::object context) const;

  const std::string& correlation_id() const noexcept { return correlation_id_; }

 private:
  std::string correlation_id_;
  std::string agent_id_;
};

// Process-wide logger with no correlation id.
const Logger& global();

}  // namespace dp::log
