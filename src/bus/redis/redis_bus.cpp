#include "bus/redis/redis_bus.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "bus/internal/invoke.hpp"
#include "bus/internal/validation.hpp"
#include "bus/redis/redis_conn.hpp"
#include "bus/redis/stream_reply.hpp"
#include "core/log.hpp"

namespace dp::bus::redis {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kBackoffMin{100};
constexpr milliseconds kBackoffMax{5'000};
// How long one XREAD/XREADGROUP waits on the server. Stopping does not wait for it (the
// socket is shut down), so it only sets how often an idle reader proves its connection.
constexpr milliseconds kBlock{2'000};
constexpr int kEventReadCount = 256;
constexpr std::size_t kPipelineChunk = 256;

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

Error closed_error() { return Error::unavailable("bus: closed"); }

class InertSubscription final : public Subscription {};

}  // namespace

class Reader;

struct RedisBus::Shared {
  BusOptions options;
  Endpoint endpoint;
  std::string events_key;

  std::mutex pub_mu;
  std::condition_variable reconnect_cv;  // the publish connection was lost, or closing
  std::unique_ptr<Connection> pub;        // guarded by pub_mu; null while Redis is away
  bool closed = false;                    // guarded by pub_mu
  std::thread reconnector;
  std::atomic<bool> close_started{false};

  std::mutex readers_mu;
  bool readers_closed = false;                       // guarded by readers_mu
  std::vector<std::weak_ptr<Reader>> readers;     // guarded by readers_mu

  std::string queue_key(std::string_view queue) const {
    return options.key_prefix + ":queue:" + std::string(queue);
  }

  // Called with pub_mu held after an I/O error: hand the reconnect to the background.
  void drop_pub() {
    pub.reset();
    reconnect_cv.notify_all();
  }

  void reconnect_loop();
  // Runs one command on the publish connection. REQUIRES: pub_mu held.
  Result<Value> pub_command(const Command& cmd);
};

// A thread with its own connection that blocks on Redis and calls a handler. Subclasses
// write run(); this class owns the connection, its backoff and stopping.
// Thread safety: stop_and_join() from any thread; everything else on the reader's thread.
class Reader : public std::enable_shared_from_this<Reader> {
 public:
  explicit Reader(std::shared_ptr<RedisBus::Shared> shared) : shared_(std::move(shared)) {}
  virtual ~Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  void start() {
    std::lock_guard jl(join_mu_);
    thread_ = std::thread([self = shared_from_this()] { self->run(); });
  }

  void stop_and_join() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      // Wakes a blocked XREAD at once; the connection stays alive until the thread drops it.
      if (conn_) conn_->interrupt();
    }
    cv_.notify_all();
    std::lock_guard jl(join_mu_);
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // destroyed from its own handler; the loop ends when it returns
    } else {
      thread_.join();
    }
  }

 protected:
  virtual void run() = 0;

  bool stopping() {
    std::lock_guard lk(mu_);
    return stop_;
  }

  // Connects if needed, waiting out the backoff after failures. False when stopping.
  bool ensure_connected() {
    while (!stopping()) {
      if (conn_) return true;
      auto c = Connection::open(shared_->endpoint, shared_->options.io_timeout);
      if (c.ok()) {
        std::lock_guard lk(mu_);
        if (stop_) return false;
        conn_ = std::move(c).value();
        if (down_) log::global().info("bus: redis reader reconnected", {{"reader", name()}});
        down_ = false;
        return true;
      }
      note_down(c.error());
      backoff_wait();
    }
    return false;
  }

  // After an I/O error: drop the connection and wait before the next attempt, so that a
  // server that accepts and then drops connections does not make us spin.
  void lost(const Error& e) {
    {
      std::lock_guard lk(mu_);
      conn_.reset();
    }
    note_down(e);
    backoff_wait();
  }

  // A command answered: the connection is healthy, start the next outage from scratch.
  void healthy() { backoff_ = kBackoffMin; }

  void backoff_wait() {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, backoff_, [&] { return stop_; });
    backoff_ = std::min(backoff_ * 2, kBackoffMax);
  }

  virtual std::string name() const = 0;

  std::shared_ptr<RedisBus::Shared> shared_;
  // Written only by the reader thread, always under mu_, so stop_and_join() can interrupt.
  std::unique_ptr<Connection> conn_;

 private:
  void note_down(const Error& e) {
    if (!down_) {
      log::global().warn("bus: redis reader lost its connection; reconnecting",
                         {{"reader", name()}, {"error", e.message}});
    }
    down_ = true;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  bool down_ = false;  // reader thread only
  milliseconds backoff_ = kBackoffMin;  // reader thread only (read in backoff_wait under mu_)
  std::mutex join_mu_;
  std::thread thread_;
};

namespace {

class EventReader final : public Reader {
 public:
  EventReader(std::shared_ptr<RedisBus::Shared> shared, EventHandler handler,
              std::optional<std::string> last_id)
      : Reader(std::move(shared)), handler_(std::move(handler)), last_id_(std::move(last_id)) {}

 private:
  std::string name() const override { return shared_->events_key; }

  void run() override {
    const std::string& key = shared_->events_key;
    while (ensure_connected()) {
      if (!last_id_) {
        // Redis was away at subscribe time: "from now on" starts when we first reach it.
        auto r = conn_->command({"XREVRANGE", key, "+", "-", "COUNT", "1"});
        if (!r.ok()) {
          lost(r.error());
          continue;
        }
        ParsedEntries top = parse_entries(*r);
        last_id_ = !top.entries.empty() ? top.entries.front().id : std::string("0-0");
      }
      auto r = conn_->command({"XREAD", "COUNT", std::to_string(kEventReadCount), "BLOCK",
                               std::to_string(kBlock.count()), "STREAMS", key, *last_id_},
                              kBlock);
      if (!r.ok()) {
        lost(r.error());
        continue;
      }
      healthy();
      auto parsed = parse_read_reply(*r, key);
      if (!parsed.ok()) {
        log::global().error("bus: bad XREAD reply", {{"error", parsed.error().message}});
        backoff_wait();
        continue;
      }
      if (!deliver(*parsed)) return;
    }
  }

  // False when stopping in the middle.
  bool deliver(const ParsedEntries& parsed) {
    auto advance = [&](const std::string& id) {
      auto next = parse_stream_id(id);
      auto cur = parse_stream_id(*last_id_);
      if (next && (!cur || *next > *cur)) last_id_ = id;
    };
    if (parsed.malformed > 0 || !parsed.skipped_ids.empty()) {
      log::global().warn("bus: skipped malformed event entries",
                         {{"malformed", parsed.malformed},
                          {"skipped", static_cast<std::int64_t>(parsed.skipped_ids.size())}});
    }
    for (const auto& id : parsed.skipped_ids) advance(id);
    for (const StreamEntry& entry : parsed.entries) {
      if (stopping()) return false;
      advance(entry.id);
      auto event = event_from_entry(entry);
      if (!event.ok()) {
        log::global().warn("bus: skipped a bad event entry", {{"error", event.error().message}});
        continue;
      }
      if (event->seq <= last_seq_) continue;  // XREAD ids only grow; this is belt and braces
      last_seq_ = event->seq;
      internal::invoke_event_handler(handler_, *event);
    }
    return true;
  }

  EventHandler handler_;
  std::optional<std::string> last_id_;
  std::int64_t last_seq_ = 0;
};

class QueueConsumer final : public Reader {
 public:
  QueueConsumer(std::shared_ptr<RedisBus::Shared> shared, ConsumerOptions options,
                QueueHandler handler)
      : Reader(std::move(shared)),
        options_(std::move(options)),
        handler_(std::move(handler)),
        key_(shared_->queue_key(options_.queue)),
        claim_every_(std::clamp(options_.claim_idle / 2, milliseconds(50), kBackoffMax)) {}

 private:
  std::string name() const override { return key_ + "/" + options_.group + "/" + options_.consumer; }

  void run() override {
    auto next_claim = Clock::now();  // first thing: take over what dead consumers left
    while (ensure_connected()) {
      if (!group_ready_) {
        auto r = conn_->command({"XGROUP", "CREATE", key_, options_.group, "0", "MKSTREAM"});
        if (!r.ok()) {
          lost(r.error());
          continue;
        }
        if (r->is_error() && !starts_with(r->str, "BUSYGROUP")) {
          log::global().error("bus: XGROUP CREATE failed", {{"queue", key_}, {"error", r->str}});
          backoff_wait();
          continue;
        }
        group_ready_ = true;
      }
      const auto now = Clock::now();
      if (now >= next_claim) {
        if (!claim()) continue;
        // A cursor other than 0-0 means more of the pending list is left to scan.
        next_claim = cursor_ == "0-0" ? now + claim_every_ : now;
        continue;
      }
      const auto wait = std::clamp(
          std::chrono::duration_cast<milliseconds>(next_claim - now), milliseconds(1), kBlock);
      auto r = conn_->command({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                               std::to_string(options_.batch), "BLOCK",
                               std::to_string(wait.count()), "STREAMS", key_, ">"},
                              wait);
      if (!r.ok()) {
        lost(r.error());
        continue;
      }
      healthy();
      if (r->is_error() && starts_with(r->str, "NOGROUP")) {
        group_ready_ = false;  // the key was deleted (or Redis came back empty): recreate
        continue;
      }
      auto parsed = parse_read_reply(*r, key_);
      if (!parsed.ok()) {
        log::global().error("bus: bad XREADGROUP reply", {{"error", parsed.error().message}});
        backoff_wait();
        continue;
      }
      if (!handle(*parsed, {})) return;
    }
  }

  // One XAUTOCLAIM round. False after an I/O error (the caller reconnects).
  bool claim() {
    auto r = conn_->command({"XAUTOCLAIM", key_, options_.group, options_.consumer,
                             std::to_string(options_.claim_idle.count()), cursor_, "COUNT",
                             std::to_string(options_.batch)});
    if (!r.ok()) {
      lost(r.error());
      return false;
    }
    healthy();
    if (r->is_error()) {
      if (starts_with(r->str, "NOGROUP")) group_ready_ = false;
      else log::global().error("bus: XAUTOCLAIM failed", {{"queue", key_}, {"error", r->str}});
      cursor_ = "0-0";
      return true;
    }
    auto parsed = parse_autoclaim_reply(*r);
    if (!parsed.ok()) {
      log::global().error("bus: bad XAUTOCLAIM reply", {{"error", parsed.error().message}});
      cursor_ = "0-0";
      return true;
    }
    cursor_ = parsed->next_cursor;
    std::map<std::string, std::int64_t> deliveries;
    const auto& claimed = parsed->claimed.entries;
    if (!claimed.empty()) {
      // XAUTOCLAIM counted this delivery but does not say how many there were: ask. The
      // range may also hold our own failed messages, hence the headroom in COUNT.
      auto p = conn_->command({"XPENDING", key_, options_.group, claimed.front().id,
                               claimed.back().id, std::to_string(claimed.size() + 256),
                               options_.consumer});
      if (!p.ok()) {
        lost(p.error());
        return false;
      }
      if (auto rows = parse_pending_reply(*p); rows.ok()) {
        for (const auto& row : *rows) deliveries[row.id] = row.deliveries;
      }
    }
    return handle(parsed->claimed, deliveries) || !stopping();
  }

  // Calls the handler for each entry, acknowledging those it accepts. Entries without a
  // usable payload can never succeed: they are acknowledged and logged so they do not come
  // back forever. False when stopping: what is left stays pending, as for a dead consumer.
  bool handle(const ParsedEntries& parsed, const std::map<std::string, std::int64_t>& counts) {
    std::vector<std::string> poison = parsed.skipped_ids;
    for (const StreamEntry& entry : parsed.entries) {
      if (entry.field("payload") == nullptr) poison.push_back(entry.id);
    }
    if (parsed.malformed > 0 || !poison.empty()) {
      log::global().warn("bus: dropping malformed queue entries",
                         {{"queue", key_},
                          {"malformed", parsed.malformed},
                          {"dropped", static_cast<std::int64_t>(poison.size())}});
      for (const auto& id : poison) {
        if (!ack(id)) return !stopping();
      }
    }
    for (const StreamEntry& entry : parsed.entries) {
      const std::string* payload = entry.field("payload");
      if (payload == nullptr) continue;
      if (stopping()) return false;
      auto it = counts.find(entry.id);
      // Claimed entries missing from XPENDING were acknowledged meanwhile by a slow consumer;
      // they are still delivered, as at least once allows, counted as a second delivery.
      const std::int64_t deliveries = counts.empty() ? 1 : (it != counts.end() ? it->second : 2);
      QueueMessage msg{entry.id, *payload, deliveries};
      const Status s = internal::invoke_queue_handler(handler_, msg);
      if (!s.ok()) {
        log::global().warn("bus: queue handler failed; message stays pending",
                           {{"queue", key_}, {"id", entry.id}, {"error", s.error().message}});
        continue;
      }
      if (!ack(entry.id)) return !stopping();
    }
    return true;
  }

  bool ack(const std::string& id) {
    auto r = conn_->command({"XACK", key_, options_.group, id});
    if (!r.ok()) {
      // Not acknowledged: it stays pending and is redelivered after claim_idle.
      lost(r.error());
      return false;
    }
    if (r->is_error()) {
      log::global().warn("bus: XACK failed", {{"queue", key_}, {"id", id}, {"error", r->str}});
    }
    return true;
  }

  ConsumerOptions options_;
  QueueHandler handler_;
  std::string key_;
  milliseconds claim_every_;
  bool group_ready_ = false;
  std::string cursor_ = "0-0";
};

class ReaderSubscription final : public Subscription {
 public:
  explicit ReaderSubscription(std::shared_ptr<Reader> reader) : reader_(std::move(reader)) {}
  ~ReaderSubscription() override { reader_->stop_and_join(); }

 private:
  std::shared_ptr<Reader> reader_;
};

}  // namespace

Result<Value> RedisBus::Shared::pub_command(const Command& cmd) {
  if (closed) return closed_error();
  if (!pub) return Error::unavailable("redis: not connected; reconnecting");
  auto r = pub->command(cmd);
  if (!r.ok()) drop_pub();
  return r;
}

void RedisBus::Shared::reconnect_loop() {
  std::unique_lock lk(pub_mu);
  milliseconds backoff = kBackoffMin;
  bool down_logged = false;
  while (!closed) {
    if (pub) {
      // Nothing to do until a caller drops a broken connection (or close()).
      reconnect_cv.wait_for(lk, std::chrono::seconds(1));
      continue;
    }
    lk.unlock();  // a connect can take io_timeout; publishers must not wait behind it
    auto c = Connection::open(endpoint, options.io_timeout);
    lk.lock();
    if (closed) break;
    if (c.ok()) {
      pub = std::move(c).value();
      backoff = kBackoffMin;
      if (down_logged) log::global().info("bus: redis connection restored");
      down_logged = false;
      continue;
    }
    if (!down_logged) {
      log::global().warn("bus: redis unavailable; retrying with backoff",
                         {{"error", c.error().message}});
      down_logged = true;
    }
    reconnect_cv.wait_for(lk, backoff, [&] { return closed; });
    backoff = std::min(backoff * 2, kBackoffMax);
  }
}

Result<std::unique_ptr<RedisBus>> RedisBus::open(const BusOptions& options) {
  DP_ASSIGN_OR_RETURN(Endpoint endpoint, parse_redis_url(options.redis_url));
  if (options.key_prefix.empty()) {
    return Error::invalid_argument("bad_config", "bus key prefix must not be empty");
  }
  if (options.io_timeout.count() <= 0 || options.max_events <= 0 || options.max_queue <= 0) {
    return Error::invalid_argument("bad_config", "bus limits and timeouts must be positive");
  }
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  shared->endpoint = std::move(endpoint);
  shared->events_key = options.key_prefix + ":events";
  if (auto c = Connection::open(shared->endpoint, options.io_timeout); c.ok()) {
    shared->pub = std::move(c).value();
  } else {
    log::global().warn("bus: redis unavailable at start; connecting in the background",
                       {{"error", c.error().message}});
  }
  shared->reconnector = std::thread([s = shared] { s->reconnect_loop(); });
  return std::unique_ptr<RedisBus>(new RedisBus(std::move(shared)));
}

RedisBus::RedisBus(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

RedisBus::~RedisBus() { close(); }

Status RedisBus::publish(const std::vector<Event>& events) {
  DP_TRY(internal::validate_events(events, shared_->options.max_payload_bytes));
  std::lock_guard lk(shared_->pub_mu);
  if (shared_->closed) return closed_error();
  for (std::size_t begin = 0; begin < events.size(); begin += kPipelineChunk) {
    const std::size_t end = std::min(events.size(), begin + kPipelineChunk);
    std::vector<Command> cmds;
    cmds.reserve(end - begin);
    for (std::size_t i = begin; i < end; ++i) {
      cmds.push_back(event_xadd(shared_->events_key, shared_->options.max_events, events[i]));
    }
    if (!shared_->pub) return Error::unavailable("redis: not connected; reconnecting");
    auto replies = shared_->pub->pipeline(cmds);
    if (!replies.ok()) {
      shared_->drop_pub();
      // Some of the chunk may have gone in; the caller's retry is deduplicated by the ids.
      return std::move(replies).error();
    }
    for (const Value& r : *replies) {
      // "The ID specified in XADD is equal or smaller than the target stream top item":
      // this seq was published before (by us or another node). That is success.
      if (r.is_error() && r.str.find("equal or smaller") == std::string::npos) {
        return Error::internal("redis: XADD failed: " + r.str);
      }
    }
  }
  return Ok{};
}

std::unique_ptr<Subscription> RedisBus::subscribe(EventHandler handler) {
  std::optional<std::string> last_id;
  {
    std::lock_guard lk(shared_->pub_mu);
    if (shared_->closed) return std::make_unique<InertSubscription>();
    // Fix "now" before returning, so that an event published right after subscribe() is
    // seen; the reader thread may take a moment to connect.
    auto r = shared_->pub_command({"XREVRANGE", shared_->events_key, "+", "-", "COUNT", "1"});
    if (r.ok() && !r->is_error()) {
      ParsedEntries top = parse_entries(*r);
      last_id = !top.entries.empty() ? top.entries.front().id : std::string("0-0");
    }
  }
  auto reader = std::make_shared<EventReader>(shared_, std::move(handler), std::move(last_id));
  {
    std::lock_guard lk(shared_->readers_mu);
    if (shared_->readers_closed) return std::make_unique<InertSubscription>();
    std::erase_if(shared_->readers, [](const auto& w) { return w.expired(); });
    shared_->readers.push_back(reader);
  }
  reader->start();
  return std::make_unique<ReaderSubscription>(std::move(reader));
}

Result<std::string> RedisBus::enqueue(std::string_view queue, std::string_view payload) {
  DP_TRY(internal::validate_queue_name(queue));
  DP_TRY(internal::validate_payload(payload, shared_->options.max_payload_bytes));
  std::lock_guard lk(shared_->pub_mu);
  DP_ASSIGN_OR_RETURN(Value r, shared_->pub_command({"XADD", shared_->queue_key(queue), "MAXLEN",
                                                     "~", std::to_string(shared_->options.max_queue),
                                                     "*", "payload", std::string(payload)}));
  if (!r.is_string()) {
    return Error::internal("redis: XADD failed: " + (r.is_error() ? r.str : "unexpected reply"));
  }
  return r.str;
}

Result<std::unique_ptr<Subscription>> RedisBus::consume(const ConsumerOptions& options,
                                                        QueueHandler handler) {
  DP_TRY(internal::validate_consumer_options(options));
  {
    std::lock_guard lk(shared_->pub_mu);
    if (shared_->closed) return closed_error();
    // Create the group now when we can, so queue_depth counts it from the moment consume
    // returns; the consumer thread does it again (BUSYGROUP is fine) after reconnects.
    auto r = shared_->pub_command(
        {"XGROUP", "CREATE", shared_->queue_key(options.queue), options.group, "0", "MKSTREAM"});
    r.ignore_error();  // Redis down: the consumer thread creates it once Redis is back
  }
  auto consumer = std::make_shared<QueueConsumer>(shared_, options, std::move(handler));
  {
    std::lock_guard lk(shared_->readers_mu);
    if (shared_->readers_closed) return closed_error();
    std::erase_if(shared_->readers, [](const auto& w) { return w.expired(); });
    shared_->readers.push_back(consumer);
  }
  consumer->start();
  return std::unique_ptr<Subscription>(std::make_unique<ReaderSubscription>(std::move(consumer)));
}

Result<std::int64_t> RedisBus::queue_depth(std::string_view queue, std::string_view group) {
  DP_TRY(internal::validate_queue_name(queue));
  DP_TRY(internal::validate_group_name(group));
  const std::string key = shared_->queue_key(queue);
  std::lock_guard lk(shared_->pub_mu);
  DP_ASSIGN_OR_RETURN(Value info, shared_->pub_command({"XINFO", "GROUPS", key}));
  if (info.is_error() && info.str.find("no such key") != std::string::npos) {
    return std::int64_t{0};
  }
  DP_ASSIGN_OR_RETURN(std::vector<GroupInfo> groups, parse_groups_reply(info));
  auto it = std::find_if(groups.begin(), groups.end(),
                         [&](const GroupInfo& g) { return g.name == group; });
  // XLEN counts acknowledged entries too (streams keep them until trimmed), so it is only
  // the answer when the group has not read anything; otherwise the group's own lag.
  if (it != groups.end() && it->lag) return *it->lag + it->pending;
  DP_ASSIGN_OR_RETURN(Value len, shared_->pub_command({"XLEN", key}));
  if (len.type != Value::Type::kInteger) return Error::internal("redis: XLEN: unexpected reply");
  // Without a lag (Redis cannot tell after deletions), XLEN is an upper bound.
  return it != groups.end() ? std::max(len.integer, it->pending) : len.integer;
}

Status RedisBus::ping() {
  std::lock_guard lk(shared_->pub_mu);
  DP_ASSIGN_OR_RETURN(Value r, shared_->pub_command({"PING"}));
  if (!r.is_string() || r.str != "PONG") return Error::unavailable("redis: unexpected PING reply");
  return Ok{};
}

void RedisBus::close() {
  if (shared_->close_started.exchange(true)) return;
  {
    std::lock_guard lk(shared_->pub_mu);
    shared_->closed = true;
    shared_->pub.reset();
  }
  shared_->reconnect_cv.notify_all();
  if (shared_->reconnector.joinable()) shared_->reconnector.join();
  std::vector<std::shared_ptr<Reader>> readers;
  {
    std::lock_guard lk(shared_->readers_mu);
    shared_->readers_closed = true;
    for (auto& w : shared_->readers) {
      if (auto r = w.lock()) readers.push_back(std::move(r));
    }
    shared_->readers.clear();
  }
  for (auto& r : readers) r->stop_and_join();
}

}  // namespace dp::bus::redis
