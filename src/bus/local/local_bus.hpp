// LocalBus: the in-process EventBus of the embedded mode.
//
// Events go through one bus-owned delivery thread that calls every subscriber in seq order;
// the backlog of undelivered events is bounded by `max_events` (publish returns kUnavailable
// when it is full, and the outbox keeps the events meanwhile). Queues live in memory: each
// group tracks the last message it handed out and its pending (delivered, unacknowledged)
// messages, as a Redis Streams consumer group does; each consumer runs its handler on its
// own thread and takes over pending messages idle for `claim_idle`. A queue holds at most
// `max_queue` messages not yet acknowledged by every group (enqueue: kResourceExhausted).
// Nothing survives the process.
//
// Thread safety: safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bus/event_bus.hpp"

namespace dp::bus::local {

class LocalBus final : public EventBus {
 public:
  explicit LocalBus(const BusOptions& options);
  ~LocalBus() override;
  LocalBus(const LocalBus&) = delete;
  LocalBus& operator=(const LocalBus&) = delete;

  // bus::EventBus
  Status publish(const std::vector<Event>& events) override;
  std::unique_ptr<Subscription> subscribe(EventHandler handler) override;
  Result<std::string> enqueue(std::string_view queue, std::string_view payload) override;
  Result<std::unique_ptr<Subscription>> consume(const ConsumerOptions& options,
                                                QueueHandler handler) override;
  Result<std::int64_t> queue_depth(std::string_view queue, std::string_view group) override;
  Status ping() override;
  std::string_view backend() const noexcept override { return "in-process"; }
  void close() override;

  struct State;  // shared with the threads and subscriptions, which may outlive the bus

 private:
  std::shared_ptr<State> state_;
};

}  // namespace dp::bus::local
