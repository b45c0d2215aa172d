// RedisBus: the EventBus of the distributed mode, on Redis Streams.
//
// Events: one stream `<prefix>:events`, `XADD ... MAXLEN ~ <max_events> <seq>-1 ...`; the id
// carries the seq, so Redis itself rejects a seq that is not greater than the newest (two
// relays, or one replaying a batch, cannot duplicate an event). Each subscription reads with
// `XREAD BLOCK` on its own thread and connection, from the stream's last id at subscribe
// time, and keeps the concrete last id it has seen, so after a reconnect it continues where
// it was and loses nothing the stream still holds.
// Queues: one stream per queue, `<prefix>:queue:<name>`, with consumer groups: `XREADGROUP`
// for new messages, `XACK` when the handler returns Ok, and a periodic `XAUTOCLAIM` that
// takes over messages pending longer than `claim_idle` (a dead consumer's, or ones whose
// handler failed), with the delivery count read back from `XPENDING`.
// Connections: one for publish/enqueue/queue_depth/ping behind a mutex, restored by a
// background thread with exponential backoff (100 ms .. 5 s) while those calls return
// kUnavailable; one per reader thread, each restoring its own the same way. Every command
// has a deadline (BusOptions::io_timeout, plus the block time for blocking reads).
//
// Thread safety: safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bus/event_bus.hpp"

namespace dp::bus::redis {

class RedisBus final : public EventBus {
 public:
  // kInvalidArgument for a malformed URL. Succeeds with Redis down: one connect attempt is
  // made here so that a healthy bus works at once, then a background thread keeps trying.
  static Result<std::unique_ptr<RedisBus>> open(const BusOptions& options);
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  // bus::EventBus
  Status publish(const std::vector<Event>& events) override;
  std::unique_ptr<Subscription> subscribe(EventHandler handler) override;
  Result<std::string> enqueue(std::string_view queue, std::string_view payload) override;
  Result<std::unique_ptr<Subscription>> consume(const ConsumerOptions& options,
                                                QueueHandler handler) override;
  Result<std::int64_t> queue_depth(std::string_view queue, std::string_view group) override;
  Status ping() override;
  std::string_view backend() const noexcept override { return "redis"; }
  void close() override;

  struct Shared;  // shared with reader threads and subscriptions, which may outlive the bus

 private:
  explicit RedisBus(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace dp::bus::redis
