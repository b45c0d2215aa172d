#include "realtime/health_reporter.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace dp::realtime {
namespace {

// utime + stime of this process, in clock ticks; -1 when /proc is unreadable.
std::int64_t cpu_ticks() {
  std::ifstream f("/proc/self/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string tok;
  std::int64_t utime = 0, stime = 0;
  for (int field = 3; rest >> tok; ++field) {
    if (field == 14) utime = std::stoll(tok);
    if (field == 15) {
      stime = std::stoll(tok);
      return utime + stime;
    }
  }
  return -1;
}

std::int64_t status_kib(std::string_view key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with(key)) return std::stoll(line.substr(key.size()));
  }
  return 0;
}

double timed_ms(const std::function<Status()>& probe, bool& up) {
  const auto t0 = std::chrono::steady_clock::now();
  up = probe().ok();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

HealthReporter::HealthReporter(store::Store& store, bus::EventBus& bus, HealthSources sources,
                               std::chrono::milliseconds interval)
    : store_(store), bus_(bus), sources_(std::move(sources)), interval_(interval) {}

HealthReporter::~HealthReporter() { stop(); }

boost::json::object HealthReporter::measure() {
  const auto now = std::chrono::steady_clock::now();
  const std::int64_t ticks = cpu_ticks();
  double cpu = 0;
  if (ticks >= 0 && last_cpu_ticks_ >= 0) {
    const double secs = std::chrono::duration<double>(now - last_cpu_at_).count();
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    if (secs > 0 && hz > 0) cpu = static_cast<double>(ticks - last_cpu_ticks_) / hz / secs * 100.0;
  }
  last_cpu_ticks_ = ticks;
  last_cpu_at_ = now;
  bool store_up = false, bus_up = false;
  const double store_ms = timed_ms([&] { return store_.ping(); }, store_up);
  const double bus_ms = timed_ms([&] { return bus_.ping(); }, bus_up);
  std::int64_t pending = 0;
  std::pair<std::int64_t, std::int64_t> range{0, 0};
  store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(auto rows, tx.outbox().pending(1000));
    pending = static_cast<std::int64_t>(rows.size());
    DP_ASSIGN_OR_RETURN(range, tx.outbox().seq_range());
    return Ok{};
  }).ignore_error();  // a down store shows as storeUp=false already
  auto round2 = [](double v) { return static_cast<double>(static_cast<std::int64_t>(v * 100 + 0.5)) / 100; };
  return boost::json::object{
      {"nodeId", sources_.node_id},
      {"status", !store_up ? "down" : (bus_up ? "ok" : "degraded")},
      {"cpuPercent", round2(cpu)},
      {"memoryRssBytes", status_kib("VmRSS:") * 1024},
      {"httpConnections", sources_.http_connections ? sources_.http_connections() : 0},
      {"websocketConnections", sources_.websocket_connections ? sources_.websocket_connections() : 0},
      {"queueDepth", pending},
      {"lastEventId", range.second},
      {"store", boost::json::object{{"up", store_up}, {"latencyMs", round2(store_ms)}}},
      {"bus", boost::json::object{{"up", bus_up}, {"latencyMs", round2(bus_ms)}, {"backend", bus_.backend()}}},
      {"timestamp", clock::format_iso8601(clock::now_ms())},
  };
}

void HealthReporter::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    for (;;) {
      auto payload = measure();
      const std::string text = boost::json::serialize(payload);
      Status s = store_.write([&](store::Tx& tx) -> Status {
        return tx.outbox().append(store::OutboxEvent{0, "system.health.status", text, "",
                                                     clock::now_ms(), std::nullopt});
      });
      if (!s.ok()) {
        log::global().debug("health event not written", {{"error", s.error().message}});
      } else if (sources_.on_written) {
        sources_.on_written();
      }
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, interval_, [&] { return stop_; })) return;
    }
  });
}

void HealthReporter::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace dp::realtime
