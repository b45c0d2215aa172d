// Calling user handlers from bus threads. A handler that throws must not take the bus
// thread (and the process) down with it: the exception is logged and, for a queue message,
// counts as a failure, so the message stays pending and is redelivered.
// Safe from any thread.
#pragma once

#include <exception>
#include <string>

#include "bus/event_bus.hpp"
#include "core/log.hpp"

namespace dp::bus::internal {

inline void invoke_event_handler(const EventHandler& handler, const Event& event) noexcept {
  try {
    handler(event);
  } catch (const std::exception& e) {
    log::global().error("bus: event handler threw", {{"seq", event.seq},
                                                      {"topic", event.topic},
                                                      {"what", e.what()}});
  } catch (...) {
    log::global().error("bus: event handler threw", {{"seq", event.seq},
                                                      {"topic", event.topic}});
  }
}

inline Status invoke_queue_handler(const QueueHandler& handler,
                                   const QueueMessage& message) noexcept {
  try {
    return handler(message);
  } catch (const std::exception& e) {
    return Error::internal(std::string("queue handler threw: ") + e.what());
  } catch (...) {
    return Error::internal("queue handler threw");
  }
}

}  // namespace dp::bus::internal
