#include "core/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"

namespace dp::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<Format> g_format{Format::kJson};
std::mutex g_write_mu;

}  // namespace

Result<Level> parse_level(std::string_view text) {
  if (text == "debug") return Level::kDebug;
  if (text == "info") return Level::kInfo;
  if (text == "warn" || text == "warning") return Level::kWarn;
  if (text == "error") return Level::kError;
  return Error::invalid_argument("bad_config", "log level must be debug, info, warn or error");
}

Result<Format> parse_format(std::string_view text) {
  if (text == "json") return Format::kJson;
  if (text == "text") return Format::kText;
  return Error::invalid_argument("bad_config", "log format must be json or text");
}

std::string_view to_string(Level level) noexcept {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void configure(Level level, Format format) {
  g_level.store(static_cast<int>(level));
  g_format.store(format);
}

bool enabled(Level level) noexcept { return static_cast<int>(level) >= g_level.load(); }

void Logger::debug(std::string_view m, boost::json::object c) const { write(Level::kDebug, m, std::move(c)); }
void Logger::info(std::string_view m, boost::json::object c) const { write(Level::kInfo, m, std::move(c)); }
void Logger::warn(std::string_view m, boost::json::object c) const { write(Level::kWarn, m, std::move(c)); }
void Logger::error(std::string_view m, boost::json::object c) const { write(Level::kError, m, std::move(c)); }

void Logger::write(Level level, std::string_view message, boost::json::object context) const {
  if (!enabled(level)) return;
  std::string line;
  const std::string ts = clock::format_iso8601(clock::now_ms());
  if (g_format.load() == Format::kJson) {
    boost::json::object o;
    o["timestamp"] = ts;
    o["level"] = to_string(level);
    o["message"] = message;
    o["correlationId"] = correlation_id_.empty() ? boost::json::value(nullptr)
                                                 : boost::json::value(correlation_id_);
    o["agentId"] =
        agent_id_.empty() ? boost::json::value(nullptr) : boost::json::value(agent_id_);
    o["context"] = std::move(context);
    line = boost::json::serialize(o);
  } else {
    line = ts;
    line += ' ';
    line += to_string(level);
    line += ' ';
    line += message;
    if (!correlation_id_.empty()) line += " [" + correlation_id_ + "]";
    if (!agent_id_.empty()) line += " agent=" + agent_id_;
    if (!context.empty()) line += " " + boost::json::serialize(context);
  }
  line.push_back('\n');
  std::lock_guard lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

const Logger& global() {
  static const Logger logger;
  return logger;
}

}  // namespace dp::log
