// Unit tests of the in-process bus: what is specific to it (its delivery thread, backlog
// and queue limits, re-entrant handlers). The behaviour both backends share is tested in
// bus/bus_test.cpp.
#include "bus/local/local_bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bus/bus_test_util.hpp"

namespace dp::bus::local {
namespace {

using testing::EventLog;
using testing::kWait;
using testing::make_event;
using testing::make_events;
using testing::QueueLog;
using testing::range;

// A one-shot gate a handler can wait on, with a bound.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, kWait, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class LocalBusTest : public ::testing::Test {
 protected:
  BusOptions options_;
};

TEST_F(LocalBusTest, OpenBusWithoutRedisUrlIsInProcess) {
  auto bus = open_bus(options_);
  ASSERT_TRUE(bus.ok());
  EXPECT_EQ((*bus)->backend(), "in-process");
  EXPECT_TRUE((*bus)->ping().ok());
}

TEST_F(LocalBusTest, HandlersRunOnTheBusThread) {
  LocalBus bus(options_);
  const auto caller = std::this_thread::get_id();
  std::thread::id seen;
  std::mutex mu;
  EventLog log;
  auto sub = bus.subscribe([&, h = log.handler()](const Event& e) {
    {
      std::lock_guard lk(mu);
      seen = std::this_thread::get_id();
    }
    h(e);
  });
  ASSERT_TRUE(bus.publish({make_event(1)}).ok());
  ASSERT_TRUE(log.wait_for_count(1));
  std::lock_guard lk(mu);
  EXPECT_NE(seen, caller);
  EXPECT_NE(seen, std::thread::id());
}

TEST_F(LocalBusTest, HandlerMayPublishAndSubscribeWithoutDeadlock) {
  LocalBus bus(options_);
  EventLog log;
  std::unique_ptr<Subscription> late;
  EventLog late_log;
  auto sub = bus.subscribe([&, h = log.handler()](const Event& e) {
    h(e);
    if (e.seq == 1) {
      late = bus.subscribe(late_log.handler());  // only touched on the bus thread until the end
      EXPECT_TRUE(bus.publish({make_event(2)}).ok());
    }
  });
  ASSERT_TRUE(bus.publish({make_event(1)}).ok());
  ASSERT_TRUE(log.wait_for_count(2));
  ASSERT_TRUE(late_log.wait_for_count(1));
  EXPECT_EQ(late_log.seqs(), range(2, 2));  // subscribed after 1 was published
  bus.close();
  late.reset();
}

TEST_F(LocalBusTest, SubscriptionDestroyedInsideItsOwnHandler) {
  LocalBus bus(options_);
  EventLog self_log;
  EventLog other;
  std::unique_ptr<Subscription> self;
  self = bus.subscribe([&, h = self_log.handler()](const Event& e) {
    h(e);
    if (e.seq == 2) self.reset();  // must not deadlock waiting for itself
  });
  auto keep = bus.subscribe(other.handler());
  ASSERT_TRUE(bus.publish(make_events(1, 5)).ok());
  ASSERT_TRUE(other.wait_for_count(5));
  EXPECT_EQ(self_log.seqs(), range(1, 2));
}

TEST_F(LocalBusTest, DestroyingASubscriptionWaitsForItsRunningHandler) {
  LocalBus bus(options_);
  Gate entered;
  Gate release;
  std::atomic<bool> finished{false};
  auto sub = bus.subscribe([&](const Event&) {
    entered.open();
    release.wait();
    finished = true;
  });
  ASSERT_TRUE(bus.publish({make_event(1)}).ok());
  ASSERT_TRUE(entered.wait());
  std::atomic<bool> finished_when_destroyed{false};
  std::thread t([&] {
    sub.reset();
    finished_when_destroyed = finished.load();
  });
  release.open();
  t.join();
  EXPECT_TRUE(finished_when_destroyed);
}

TEST_F(LocalBusTest, ThrowingHandlerDoesNotStopDelivery) {
  LocalBus bus(options_);
  EventLog log;
  auto bad = bus.subscribe([](const Event&) { throw std::runtime_error("boom"); });
  auto good = bus.subscribe(log.handler());
  ASSERT_TRUE(bus.publish(make_events(1, 3)).ok());
  ASSERT_TRUE(log.wait_for_count(3));
  EXPECT_EQ(log.seqs(), range(1, 3));
}

TEST_F(LocalBusTest, FullBacklogIsUnavailableAndTheRetryIsDeduplicated) {
  options_.max_events = 3;
  LocalBus bus(options_);
  Gate entered;
  Gate release;
  EventLog log;
  auto sub = bus.subscribe([&, h = log.handler()](const Event& e) {
    if (e.seq == 1) {
      entered.open();
      release.wait();
    }
    h(e);
  });
  ASSERT_TRUE(bus.publish({make_event(1)}).ok());
  ASSERT_TRUE(entered.wait());  // event 1 left the backlog; the handler holds the thread
  const Status full = bus.publish(make_events(2, 5));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  release.open();
  // The relay retries the whole batch: 2..4 went in before, only 5 is new.
  ASSERT_TRUE(testing::eventually([&] { return bus.publish(make_events(2, 5)).ok(); }));
  ASSERT_TRUE(log.wait_for_count(5));
  ASSERT_TRUE(bus.publish({make_event(6)}).ok());
  ASSERT_TRUE(log.wait_for_count(6));
  EXPECT_EQ(log.seqs(), range(1, 6));
}

TEST_F(LocalBusTest, FullQueueIsResourceExhausted) {
  options_.max_queue = 2;
  LocalBus bus(options_);
  ASSERT_TRUE(bus.enqueue("jobs", "a").ok());
  ASSERT_TRUE(bus.enqueue("jobs", "b").ok());
  auto third = bus.enqueue("jobs", "c");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kResourceExhausted);
  EXPECT_TRUE(bus.enqueue("other", "c").ok());  // the limit is per queue
}

TEST_F(LocalBusTest, AcknowledgedMessagesFreeTheirSlot) {
  options_.max_queue = 2;
  LocalBus bus(options_);
  QueueLog log;
  auto c = bus.consume({"jobs", "g", "c1"}, [&](const QueueMessage& m) {
    log.add("c1", m);
    return Status(Ok{});
  });
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 10; ++i) {
    const std::string payload = "m" + std::to_string(i);
    ASSERT_TRUE(testing::eventually([&] { return bus.enqueue("jobs", payload).ok(); }));
  }
  ASSERT_TRUE(log.wait_for_count(10));
  EXPECT_TRUE(testing::eventually([&] { return *bus.queue_depth("jobs", "g") == 0; }));
}

TEST_F(LocalBusTest, ThrowingQueueHandlerLeavesTheMessagePending) {
  LocalBus bus(options_);
  QueueLog log;
  std::atomic<int> calls{0};
  ConsumerOptions o{"jobs", "g", "c1", std::chrono::milliseconds(100)};
  auto c = bus.consume(o, [&](const QueueMessage& m) -> Status {
    log.add("c1", m);
    if (calls++ == 0) throw std::runtime_error("boom");
    return Ok{};
  });
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(bus.enqueue("jobs", "x").ok());
  ASSERT_TRUE(log.wait_for_count(2));
  EXPECT_EQ(log.deliveries()[1].message.deliveries, 2);
  EXPECT_TRUE(testing::eventually([&] { return *bus.queue_depth("jobs", "g") == 0; }));
}

TEST_F(LocalBusTest, ConsumerDestroyedInsideItsOwnHandler) {
  LocalBus bus(options_);
  std::unique_ptr<Subscription> self;
  Gate installed;
  Gate done;
  auto c = bus.consume({"jobs", "g", "c1"}, [&](const QueueMessage&) {
    installed.wait();
    self.reset();
    done.open();
    return Status(Ok{});
  });
  ASSERT_TRUE(c.ok());
  self = std::move(c).value();
  installed.open();
  ASSERT_TRUE(bus.enqueue("jobs", "x").ok());
  ASSERT_TRUE(done.wait());
  EXPECT_TRUE(testing::eventually([&] { return *bus.queue_depth("jobs", "g") == 0; }));
}

TEST_F(LocalBusTest, CloseFromInsideAHandler) {
  LocalBus bus(options_);
  Gate closed;
  auto sub = bus.subscribe([&](const Event&) {
    bus.close();
    closed.open();
  });
  ASSERT_TRUE(bus.publish({make_event(1)}).ok());
  ASSERT_TRUE(closed.wait());
  EXPECT_EQ(bus.publish({make_event(2)}).error().code, ErrorCode::kUnavailable);
}

TEST_F(LocalBusTest, SubscriptionsMayOutliveTheBus) {
  auto bus = std::make_unique<LocalBus>(options_);
  EventLog log;
  auto sub = bus->subscribe(log.handler());
  auto c = bus->consume({"jobs", "g", "c1"}, [](const QueueMessage&) { return Status(Ok{}); });
  ASSERT_TRUE(c.ok());
  bus.reset();
  sub.reset();
  c->reset();
}

TEST_F(LocalBusTest, RejectsBadConsumerOptions) {
  LocalBus bus(options_);
  auto handler = [](const QueueMessage&) { return Status(Ok{}); };
  EXPECT_EQ(bus.consume({"Bad Name", "g", "c"}, handler).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.consume({"jobs", "", "c"}, handler).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.consume({"jobs", "g", "has space"}, handler).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.consume({"jobs", "g", "c", std::chrono::milliseconds(0)}, handler).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.consume({"jobs", "g", "c", std::chrono::milliseconds(10), 0}, handler)
                .error()
                .code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.enqueue(std::string(65, 'a'), "x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.queue_depth("jobs", "").error().code, ErrorCode::kInvalidArgument);
}

TEST_F(LocalBusTest, RejectsBadEventsWithoutPublishingAnyOfTheBatch) {
  LocalBus bus(options_);
  EventLog log;
  auto sub = bus.subscribe(log.handler());
  std::vector<Event> batch = make_events(1, 3);
  batch[2].topic.clear();
  EXPECT_EQ(bus.publish(batch).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.publish({make_event(0)}).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(bus.publish({make_event(1)}).ok());  // 1 was not taken by the bad batch
  ASSERT_TRUE(log.wait_for_count(1));
  EXPECT_EQ(log.seqs(), range(1, 1));
}

}  // namespace
}  // namespace dp::bus::local
