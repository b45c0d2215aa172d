#include "realtime/outbox_relay.hpp"

#include <algorithm>
#include <optional>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace dp::realtime {
namespace {

constexpr std::string_view kLease = "outbox-relay";

}  // namespace

OutboxRelay::OutboxRelay(store::Store& store, bus::EventBus& bus, RelayOptions options)
    : store_(store), bus_(bus), options_(std::move(options)) {}

OutboxRelay::~OutboxRelay() { stop(); }

void OutboxRelay::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  next_prune_ = std::chrono::steady_clock::now() + options_.prune_interval;
  thread_ = std::thread([this] { loop(); });
}

void OutboxRelay::stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // Announce what was committed before the stop; a few rounds at most, so a dead bus
  // cannot hold the shutdown.
  for (int i = 0; i < 4; ++i) {
    auto n = run_once();
    if (!n.ok() || *n == 0) break;
  }
  store_.write([&](store::Tx& tx) { return Status(tx.leases().release(kLease, options_.node_id)); })
      .ignore_error();
  lease_renew_at_ = 0;
}

void OutboxRelay::notify() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

RelayStats OutboxRelay::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<std::int64_t> OutboxRelay::run_once() {
  std::vector<store::OutboxEvent> rows;
  bool leader = false;
  const std::int64_t now = clock::now_ms();
  // Renewing the lease is a write (a disk sync on SQLite): do it only when a third of its
  // time has passed, not on every round, so a round before publishing usually writes nothing.
  const bool renew = now >= lease_renew_at_;
  // With the lease fresh and every row already sequenced (always so on SQLite), a read is
  // enough: it does not queue behind other writers' disk syncs, which delivery would wait for.
  bool claimed = false;
  Status s = Ok{};
  if (!renew) {
    std::optional<std::vector<store::OutboxEvent>> ready;
    s = store_.read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(ready, tx.outbox().ready_to_publish(options_.batch));
      return Ok{};
    });
    if (s.ok() && ready) {
      rows = std::move(*ready);
      leader = claimed = true;
    }
  }
  if (!claimed) {
    s = store_.write([&](store::Tx& tx) -> Status {
      if (renew) {
        DP_ASSIGN_OR_RETURN(leader, tx.leases().acquire(kLease, options_.node_id, now,
                                                        options_.lease_ttl.count()));
      } else {
        leader = true;
      }
      if (!leader) return Ok{};
      DP_ASSIGN_OR_RETURN(rows, tx.outbox().claim_for_publishing(options_.batch));
      return Ok{};
    });
  }
  {
    std::lock_guard lock(mu_);
    stats_.leader = s.ok() && leader;
  }
  if (!s.ok()) {
    lease_renew_at_ = 0;
    return std::move(s).error();
  }
  if (!leader) {
    lease_renew_at_ = 0;
    return Error::aborted("another node holds the outbox relay lease");
  }
  if (renew) lease_renew_at_ = now + options_.lease_ttl.count() / 3;
  if (rows.empty()) return std::int64_t{0};

  std::vector<bus::Event> events;
  events.reserve(rows.size());
  std::vector<std::int64_t> ids;
  ids.reserve(rows.size());
  for (auto& r : rows) {
    events.push_back(bus::Event{r.seq, std::move(r.topic), std::move(r.payload),
                                std::move(r.correlation_id), r.created_at});
    ids.push_back(r.id);
  }
  DP_TRY(bus_.publish(events));
  const std::int64_t at = clock::now_ms();
  // Relaxed: a mark lost in a crash only makes the next relay publish these rows again, as a
  // crash between publish and mark always could (the bus drops a seq it already has); waiting
  // for the disk here would hold up the next writer, whose own commit does that wait anyway.
  DP_TRY(store_.write_relaxed([&](store::Tx& tx) { return tx.outbox().mark_published(ids, at); }));
  std::lock_guard lock(mu_);
  stats_.published += static_cast<std::int64_t>(events.size());
  stats_.last_seq = std::max(stats_.last_seq, events.back().seq);
  return static_cast<std::int64_t>(events.size());
}

void OutboxRelay::prune_if_due() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_prune_) return;
  next_prune_ = now + options_.prune_interval;
  const std::int64_t before = clock::now_ms() - options_.retention.count();
  Result<std::int64_t> n = std::int64_t{0};
  Status s = store_.write([&](store::Tx& tx) -> Status {
    n = tx.outbox().prune(before);
    return n.ok() ? Status(Ok{}) : Status(n.error());
  });
  if (!s.ok()) {
    log::global().warn("outbox prune failed", {{"error", s.error().message}});
  } else if (*n > 0) {
    log::global().debug("outbox pruned", {{"events", *n}});
  }
}

void OutboxRelay::loop() {
  auto backoff = options_.poll_interval;
  bool was_failing = false;
  for (;;) {
    auto published = run_once();
    std::chrono::milliseconds wait = options_.poll_interval;
    if (published.ok()) {
      if (was_failing) log::global().info("outbox relay recovered");
      was_failing = false;
      backoff = options_.poll_interval;
      // A full batch means more is waiting: go again at once.
      if (*published >= options_.batch) wait = std::chrono::milliseconds(0);
      prune_if_due();
    } else if (published.error().code == ErrorCode::kAborted) {
      // Another node leads; poll at the lease's pace to take over if it dies.
      wait = std::max(options_.poll_interval, options_.lease_ttl / 3);
    } else {
      {
        std::lock_guard lock(mu_);
        stats_.failures += 1;
        stats_.last_error = published.error().message;
      }
      if (!was_failing) {
        log::global().warn("outbox relay cannot publish; retrying",
                           {{"error", published.error().message}});
      }
      was_failing = true;
      wait = backoff;
      backoff = std::min(backoff * 2, options_.retry_backoff_max);
    }
    std::unique_lock lock(mu_);
    if (wait.count() > 0) {
      // After a failure, a notify must not turn the backoff into a busy loop.
      cv_.wait_for(lock, wait, [&] { return stop_ || (wake_ && !was_failing); });
    }
    wake_ = false;
    if (stop_) return;
  }
}

}  // namespace dp::realtime
