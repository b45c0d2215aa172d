// EventBus: how devplane announces what happened and hands out work, on one node or many.
//
// Two kinds of traffic:
//  - Events (broadcast). The outbox relay publishes committed events in `seq` order; every
//    subscriber on every node receives every event, in `seq` order, at most once per
//    subscription. `seq` is assigned by the store when the relay claims an outbox row, so it
//    is global and strictly increasing across nodes. The bus keeps only a bounded window of
//    events; the durable history for resume lives in the store's outbox, not here.
//  - Work queues (competing consumers). A message put on a queue is handled by exactly one
//    consumer of a group at a time; it is acknowledged when the handler returns Ok, and a
//    message whose consumer died (not acknowledged within `claim_idle`) is handed to another
//    consumer. Delivery is at least once: handlers must be idempotent.
//
// Backends: `local` (in-process, embedded default) and `redis` (Redis Streams: XADD with
// MAXLEN ~, XREAD for events, XREADGROUP/XACK/XAUTOCLAIM for queues). Both reconnect by
// themselves; while Redis is down, `publish` and `enqueue` fail with kUnavailable and the
// caller retries later (the outbox keeps the events meanwhile).
//
// Thread safety: every method is safe from any thread. Handlers run on a thread owned by
// the bus, never on the caller's; an event handler must not block (post the work elsewhere).
// A queue handler may take its time: each consumer has its own thread. A handler that throws
// is treated like one returning an error (queue) or is skipped with a log line (events).
// Errors: kUnavailable (backend down, bus closed, or the in-process backlog is full: retry
// later), kInvalidArgument (bad name or oversized payload), kInternal.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/result.hpp"

namespace dp::bus {

struct Event {
  std::int64_t seq = 0;  // global order, assigned by the store's outbox; > 0
  std::string topic;     // e.g. "agent.status.update"
  std::string payload;   // a JSON object, camelCase keys
  std::string correlation_id;
  std::int64_t created_at = 0;  // epoch ms, when the change was committed
};

// Destroying a Subscription stops delivery: when the destructor returns, its handler is
// not running and will not be called again (unless the destructor runs inside that very
// handler, which then finishes normally). A Subscription may outlive its bus.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

using EventHandler = std::function<void(const Event&)>;

struct QueueMessage {
  std::string id;       // backend id (Redis stream entry id)
  std::string payload;  // opaque to the bus
  std::int64_t deliveries = 1;  // > 1 when it was reclaimed from a dead consumer
};
// Ok acknowledges the message; an error leaves it pending, to be redelivered after `claim_idle`.
using QueueHandler = std::function<Status(const QueueMessage&)>;

struct ConsumerOptions {
  std::string queue;     // [a-z0-9._-]{1,64}
  std::string group;     // consumers of one group share the queue's messages
  std::string consumer;  // unique per live consumer, e.g. the node id
  std::chrono::milliseconds claim_idle{30'000};  // reclaim messages pending this long
  int batch = 16;
};

class EventBus {
 public:
  virtual ~EventBus() = default;

  // Publishes events, in the order given (callers give them in `seq` order). An event whose
  // seq is not greater than the last one published is dropped silently, so a relay that
  // publishes a batch twice after a crash does not duplicate it.
  virtual Status publish(const std::vector<Event>& events) = 0;
  // Every event published from now on, on any node, in seq order. Never fails: on a closed
  // bus the subscription is inert; with Redis down it starts delivering once Redis is back.
  virtual std::unique_ptr<Subscription> subscribe(EventHandler handler) = 0;

  // Appends a message to a work queue; returns its id.
  virtual Result<std::string> enqueue(std::string_view queue, std::string_view payload) = 0;
  // Starts consuming `options.queue` as `options.consumer` of `options.group`. A group that
  // does not exist yet is created and sees every message still in the queue. Destroying the
  // returned Subscription leaves messages it had received but not acknowledged pending: they
  // are reclaimed by another consumer after `claim_idle`, as for a consumer that died.
  virtual Result<std::unique_ptr<Subscription>> consume(const ConsumerOptions& options,
                                                        QueueHandler handler) = 0;
  // Messages waiting in a queue (not yet delivered to any consumer of `group`) plus those
  // delivered but not acknowledged. A group that does not exist yet counts every message;
  // an unknown queue has depth 0.
  virtual Result<std::int64_t> queue_depth(std::string_view queue, std::string_view group) = 0;

  // A cheap round trip; kUnavailable when the backend cannot be reached.
  virtual Status ping() = 0;
  virtual std::string_view backend() const noexcept = 0;  // "in-process" | "redis"
  // Stops every subscription and consumer and closes connections; later calls fail with
  // kUnavailable.
  virtual void close() = 0;
};

struct BusOptions {
  std::string redis_url;       // empty: in-process
  std::string key_prefix = "devplane";  // Redis keys: <prefix>:events, <prefix>:queue:<name>
  std::int64_t max_events = 100'000;    // MAXLEN ~ of the events stream
  std::int64_t max_queue = 1'000'000;   // MAXLEN ~ of each queue stream
  std::size_t max_payload_bytes = 1 << 20;
  // Redis: deadline of a connect and of each command (a blocking read adds its block time).
  std::chrono::milliseconds io_timeout{2'000};
};

// The bus the options name. Does not fail when Redis is down at start: it connects in the
// background and `ping` reports the state.
Result<std::unique_ptr<EventBus>> open_bus(const BusOptions& options);

}  // namespace dp::bus
