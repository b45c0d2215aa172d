#include "bus/event_bus.hpp"

#include "bus/local/local_bus.hpp"
#include "bus/redis/redis_bus.hpp"

namespace dp::bus {

Result<std::unique_ptr<EventBus>> open_bus(const BusOptions& options) {
  if (options.max_events <= 0 || options.max_queue <= 0) {
    return Error::invalid_argument("bad_config", "bus max_events and max_queue must be positive");
  }
  if (options.redis_url.empty()) {
    return std::unique_ptr<EventBus>(std::make_unique<local::LocalBus>(options));
  }
  DP_ASSIGN_OR_RETURN(auto bus, redis::RedisBus::open(options));
  return std::unique_ptr<EventBus>(std::move(bus));
}

}  // namespace dp::bus
