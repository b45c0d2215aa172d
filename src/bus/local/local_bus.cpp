#include "bus/local/local_bus.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "bus/internal/invoke.hpp"
#include "bus/internal/validation.hpp"

namespace dp::bus::local {
namespace {

using Clock = std::chrono::steady_clock;

// Idle threads wake at least this often; it bounds every wait without costing anything.
constexpr auto kIdleWake = std::chrono::seconds(1);

Error closed_error() { return Error::unavailable("bus: closed"); }

struct EventSub {
  std::uint64_t id = 0;
  EventHandler handler;
  std::int64_t after_seq = 0;  // "from now on": events at or below this seq are not for it
  bool active = true;          // guarded by State::mu
};

struct Pending {
  std::string consumer;
  std::int64_t deliveries = 1;
  Clock::time_point delivered_at;
};

struct Group {
  std::uint64_t last_delivered = 0;          // like a consumer group's last-delivered-id
  std::map<std::uint64_t, Pending> pending;  // delivered, not acknowledged
};

struct Queue {
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::string> entries;
  std::map<std::string, Group, std::less<>> groups;
};

struct Consumer;

}  // namespace

struct LocalBus::State {
  explicit State(const BusOptions& o) : options(o) {}

  const BusOptions options;
  std::mutex mu;
  std::condition_variable events_cv;  // an event was queued, or the bus closed
  std::condition_variable idle_cv;    // an event handler returned
  std::condition_variable queue_cv;   // a message was enqueued, or a consumer must stop
  bool closed = false;
  std::atomic<bool> close_started{false};  // the first close() does the work

  // Events.
  std::int64_t last_published = 0;
  std::deque<Event> backlog;
  std::map<std::uint64_t, std::shared_ptr<EventSub>> subs;
  std::uint64_t next_sub_id = 1;
  std::uint64_t running_sub = 0;  // whose handler runs on the delivery thread now; 0 = none
  std::thread delivery;
  std::thread::id delivery_id;

  // Queues.
  std::map<std::string, Queue, std::less<>> queues;
  std::vector<std::weak_ptr<Consumer>> consumers;

  void deliver_loop();
  // Drops entries every group has acknowledged. REQUIRES: mu held.
  static void trim(Queue& q);
};

namespace {

// Thread safety: `stop` is guarded by State::mu; the thread handle by join_mu.
struct Consumer {
  ConsumerOptions options;
  QueueHandler handler;
  std::shared_ptr<LocalBus::State> state;
  bool stop = false;
  std::mutex join_mu;
  std::thread thread;

  void run();
  void stop_and_join() {
    {
      std::lock_guard lk(state->mu);
      stop = true;
    }
    state->queue_cv.notify_all();
    std::lock_guard jl(join_mu);
    if (!thread.joinable()) return;
    // Destroyed from inside its own handler: the thread cannot join itself. It sees `stop`
    // when the handler returns and exits; it owns what it touches through shared_ptr.
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }
};

class EventSubscription final : public Subscription {
 public:
  EventSubscription(std::shared_ptr<LocalBus::State> state, std::uint64_t id)
      : state_(std::move(state)), id_(id) {}
  ~EventSubscription() override {
    if (!state_) return;
    std::unique_lock lk(state_->mu);
    auto it = state_->subs.find(id_);
    if (it != state_->subs.end()) {
      it->second->active = false;
      state_->subs.erase(it);
    }
    // Wait out a call in progress so that the handler is not running when we return; from
    // the delivery thread itself that call is our caller, and waiting would deadlock.
    if (std::this_thread::get_id() != state_->delivery_id) {
      state_->idle_cv.wait(lk, [&] { return state_->running_sub != id_; });
    }
  }

 private:
  std::shared_ptr<LocalBus::State> state_;
  std::uint64_t id_;
};

class InertSubscription final : public Subscription {};

class ConsumerSubscription final : public Subscription {
 public:
  explicit ConsumerSubscription(std::shared_ptr<Consumer> c) : consumer_(std::move(c)) {}
  ~ConsumerSubscription() override { consumer_->stop_and_join(); }

 private:
  std::shared_ptr<Consumer> consumer_;
};

void Consumer::run() {
  std::unique_lock lk(state->mu);
  while (!stop && !state->closed) {
    Queue& q = state->queues[options.queue];
    Group& g = q.groups[options.group];
    const auto now = Clock::now();
    auto next_wake = now + kIdleWake;
    std::uint64_t id = 0;
    std::int64_t deliveries = 1;
    // Pending messages idle for claim_idle first: their consumer died or failed them.
    for (auto& [pid, p] : g.pending) {
      if (now - p.delivered_at >= options.claim_idle) {
        id = pid;
        p.consumer = options.consumer;
        p.delivered_at = now;
        deliveries = ++p.deliveries;
        break;
      }
      next_wake = std::min(next_wake, p.delivered_at + options.claim_idle);
    }
    if (id == 0) {
      auto it = q.entries.upper_bound(g.last_delivered);
      if (it != q.entries.end()) {
        id = it->first;
        g.last_delivered = id;
        g.pending[id] = Pending{options.consumer, 1, now};
      }
    }
    if (id == 0) {
      state->queue_cv.wait_until(lk, next_wake);
      continue;
    }
    // A pending id always has its entry: trim() keeps everything some group still holds.
    QueueMessage msg{std::to_string(id), q.entries.at(id), deliveries};
    lk.unlock();
    const Status s = internal::invoke_queue_handler(handler, msg);
    lk.lock();
    Queue& q2 = state->queues[options.queue];  // re-lookup: std::map nodes are stable,
    Group& g2 = q2.groups[options.group];      // but keep it obvious after the unlock
    if (s.ok()) {
      g2.pending.erase(id);
      LocalBus::State::trim(q2);
    } else {
      log::global().warn("bus: queue handler failed; message stays pending",
                         {{"queue", options.queue},
                          {"id", msg.id},
                          {"error", s.error().message}});
    }
  }
}

}  // namespace

void LocalBus::State::trim(Queue& q) {
  if (q.groups.empty()) return;  // nobody consumed yet: keep everything for the first group
  std::uint64_t keep_from = UINT64_MAX;
  for (const auto& [name, g] : q.groups) {
    keep_from = std::min(keep_from, g.last_delivered + 1);
    if (!g.pending.empty()) keep_from = std::min(keep_from, g.pending.begin()->first);
  }
  q.entries.erase(q.entries.begin(), q.entries.lower_bound(keep_from));
}

void LocalBus::State::deliver_loop() {
  std::unique_lock lk(mu);
  while (!closed) {
    if (backlog.empty()) {
      events_cv.wait_for(lk, kIdleWake);
      continue;
    }
    const Event event = std::move(backlog.front());
    backlog.pop_front();
    std::vector<std::shared_ptr<EventSub>> snapshot;
    snapshot.reserve(subs.size());
    for (const auto& [id, sub] : subs) snapshot.push_back(sub);
    for (const auto& sub : snapshot) {
      if (closed) break;
      if (!sub->active || event.seq <= sub->after_seq) continue;
      running_sub = sub->id;
      lk.unlock();  // never hold the lock while a handler runs: it may publish or unsubscribe
      internal::invoke_event_handler(sub->handler, event);
      lk.lock();
      running_sub = 0;
      idle_cv.notify_all();
    }
  }
}

LocalBus::LocalBus(const BusOptions& options) : state_(std::make_shared<State>(options)) {
  // The thread holds the state, not the bus: a subscription destroyed after the bus still
  // finds it.
  state_->delivery = std::thread([st = state_] { st->deliver_loop(); });
  std::lock_guard lk(state_->mu);
  state_->delivery_id = state_->delivery.get_id();
}

LocalBus::~LocalBus() { close(); }

Status LocalBus::publish(const std::vector<Event>& events) {
  DP_TRY(internal::validate_events(events, state_->options.max_payload_bytes));
  {
    std::lock_guard lk(state_->mu);
    if (state_->closed) return closed_error();
    const auto cap = static_cast<std::size_t>(std::max<std::int64_t>(1, state_->options.max_events));
    for (const Event& e : events) {
      if (e.seq <= state_->last_published) continue;  // a replayed batch: already published
      if (state_->backlog.size() >= cap) {
        // What went in stays in; the caller retries the batch and the seq filter skips it.
        state_->events_cv.notify_one();
        return Error::unavailable("bus: event backlog full (" + std::to_string(cap) +
                                  "); subscribers are not keeping up");
      }
      state_->backlog.push_back(e);
      state_->last_published = e.seq;
    }
  }
  state_->events_cv.notify_one();
  return Ok{};
}

std::unique_ptr<Subscription> LocalBus::subscribe(EventHandler handler) {
  std::lock_guard lk(state_->mu);
  if (state_->closed) return std::make_unique<InertSubscription>();
  auto sub = std::make_shared<EventSub>();
  sub->id = state_->next_sub_id++;
  sub->handler = std::move(handler);
  sub->after_seq = state_->last_published;
  state_->subs.emplace(sub->id, sub);
  return std::make_unique<EventSubscription>(state_, sub->id);
}

Result<std::string> LocalBus::enqueue(std::string_view queue, std::string_view payload) {
  DP_TRY(internal::validate_queue_name(queue));
  DP_TRY(internal::validate_payload(payload, state_->options.max_payload_bytes));
  std::string id;
  {
    std::lock_guard lk(state_->mu);
    if (state_->closed) return closed_error();
    auto it = state_->queues.find(queue);
    if (it == state_->queues.end()) it = state_->queues.emplace(std::string(queue), Queue{}).first;
    Queue& q = it->second;
    if (static_cast<std::int64_t>(q.entries.size()) >= state_->options.max_queue) {
      return Error{ErrorCode::kResourceExhausted, "queue_full",
                   "bus: queue '" + std::string(queue) + "' holds its maximum of " +
                       std::to_string(state_->options.max_queue) + " messages",
                   nullptr};
    }
    const std::uint64_t n = q.next_id++;
    q.entries.emplace(n, std::string(payload));
    id = std::to_string(n);
  }
  state_->queue_cv.notify_all();
  return id;
}

Result<std::unique_ptr<Subscription>> LocalBus::consume(const ConsumerOptions& options,
                                                        QueueHandler handler) {
  DP_TRY(internal::validate_consumer_options(options));
  auto c = std::make_shared<Consumer>();
  c->options = options;
  c->handler = std::move(handler);
  c->state = state_;
  {
    std::lock_guard lk(state_->mu);
    if (state_->closed) return closed_error();
    // Create the group now, so queue_depth sees it from the moment consume returns.
    state_->queues[options.queue].groups[options.group];
    std::erase_if(state_->consumers, [](const auto& w) { return w.expired(); });
    state_->consumers.push_back(c);
  }
  {
    std::lock_guard jl(c->join_mu);
    c->thread = std::thread([c] { c->run(); });
  }
  return std::unique_ptr<Subscription>(std::make_unique<ConsumerSubscription>(c));
}

Result<std::int64_t> LocalBus::queue_depth(std::string_view queue, std::string_view group) {
  DP_TRY(internal::validate_queue_name(queue));
  DP_TRY(internal::validate_group_name(group));
  std::lock_guard lk(state_->mu);
  if (state_->closed) return closed_error();
  auto qi = state_->queues.find(queue);
  if (qi == state_->queues.end()) return std::int64_t{0};
  const Queue& q = qi->second;
  auto gi = q.groups.find(group);
  if (gi == q.groups.end()) return static_cast<std::int64_t>(q.entries.size());
  const Group& g = gi->second;
  const auto waiting = std::distance(q.entries.upper_bound(g.last_delivered), q.entries.end());
  return static_cast<std::int64_t>(waiting) + static_cast<std::int64_t>(g.pending.size());
}

Status LocalBus::ping() {
  std::lock_guard lk(state_->mu);
  if (state_->closed) return closed_error();
  return Ok{};
}

void LocalBus::close() {
  // Only the first caller stops the threads; a lock held across the joins instead would
  // deadlock against a close() called from inside a handler.
  if (state_->close_started.exchange(true)) return;
  std::vector<std::shared_ptr<Consumer>> consumers;
  {
    std::lock_guard lk(state_->mu);
    state_->closed = true;
    state_->backlog.clear();
    for (auto& w : state_->consumers) {
      if (auto c = w.lock()) consumers.push_back(std::move(c));
    }
    state_->consumers.clear();
  }
  state_->events_cv.notify_all();
  state_->queue_cv.notify_all();
  // Joined outside the lock: the threads need it to finish their last handler call.
  if (state_->delivery.joinable()) {
    if (state_->delivery.get_id() == std::this_thread::get_id()) {
      state_->delivery.detach();  // close() from an event handler; the loop ends after it
    } else {
      state_->delivery.join();
    }
  }
  for (auto& c : consumers) c->stop_and_join();
}

}  // namespace dp::bus::local
