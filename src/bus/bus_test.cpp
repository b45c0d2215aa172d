// The EventBus contract, run unchanged against both backends (in-process and Redis
// Streams), plus what only Redis has: several nodes on one Redis, and Redis restarted in
// the middle of a stream.
//
// Redis cases use DEVPLANE_TEST_REDIS_URL (scripts/test sets it) with a random key prefix
// per test, deleted afterwards; without it they fail and say so. The restart case starts
// its own redis-server (DEVPLANE_TEST_REDIS_SERVER, default `redis-server`) on a free
// loopback port, with an append-only file so that acknowledged writes survive a SIGKILL.
#include "bus/event_bus.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "bus/bus_test_util.hpp"
#include "bus/redis/redis_conn.hpp"

extern char** environ;

namespace dp::bus {
namespace {

using namespace std::chrono_literals;
using testing::Delivery;
using testing::eventually;
using testing::EventLog;
using testing::kWait;
using testing::make_event;
using testing::make_events;
using testing::QueueLog;
using testing::range;

constexpr std::size_t kMaxPayload = 4096;

std::string random_prefix() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  char buf[32];
  std::snprintf(buf, sizeof buf, "dptest:%016llx", static_cast<unsigned long long>(gen()));
  return buf;
}

const char* redis_url_from_env() {
  const char* url = std::getenv("DEVPLANE_TEST_REDIS_URL");
  return (url != nullptr && *url != '\0') ? url : nullptr;
}

constexpr const char* kNoRedis =
    "DEVPLANE_TEST_REDIS_URL is not set: the Redis bus tests need a Redis server "
    "(scripts/test provides one; for development: DEVPLANE_TEST_REDIS_URL=redis://127.0.0.1:56379)";

// Deletes every key under `prefix` (SCAN + DEL), so tests leave the shared Redis clean.
void delete_keys(const std::string& url, const std::string& prefix) {
  auto ep = redis::parse_redis_url(url);
  if (!ep.ok()) return;
  auto conn = redis::Connection::open(*ep, 2s);
  if (!conn.ok()) return;
  std::string cursor = "0";
  do {
    auto r = (*conn)->command({"SCAN", cursor, "MATCH", prefix + ":*", "COUNT", "1000"});
    if (!r.ok() || !r->is_array() || r->elements.size() != 2) return;
    cursor = r->elements[0].str;
    redis::Command del{"DEL"};
    for (const auto& k : r->elements[1].elements) del.push_back(k.str);
    if (del.size() > 1) (*conn)->command(del).ignore_error();
  } while (cursor != "0");
}

Status ok_handler(const QueueMessage&) { return Ok{}; }

// ---------------------------------------------------------------------------------------
// The contract, on both backends.

class BusTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    options_.max_payload_bytes = kMaxPayload;
    if (GetParam() == "redis") {
      const char* url = redis_url_from_env();
      ASSERT_NE(url, nullptr) << kNoRedis;
      options_.redis_url = url;
      options_.key_prefix = random_prefix();
    }
    auto bus = open_bus(options_);
    ASSERT_TRUE(bus.ok()) << bus.error().message;
    bus_ = std::move(bus).value();
    ASSERT_TRUE(bus_->ping().ok()) << "backend " << GetParam() << " is not reachable";
  }
  void TearDown() override {
    bus_.reset();
    if (!options_.redis_url.empty()) delete_keys(options_.redis_url, options_.key_prefix);
  }

  std::int64_t depth(const std::string& queue, const std::string& group) {
    auto d = bus_->queue_depth(queue, group);
    EXPECT_TRUE(d.ok()) << d.error().message;
    return d.ok() ? *d : -1;
  }

  BusOptions options_;
  std::unique_ptr<EventBus> bus_;
};

INSTANTIATE_TEST_SUITE_P(Backends, BusTest, ::testing::Values("local", "redis"),
                         [](const auto& p) { return p.param; });

TEST_P(BusTest, PreservesOrderAcrossManyEvents) {
  EventLog log;
  auto sub = bus_->subscribe(log.handler());
  constexpr std::int64_t kCount = 2000;
  for (std::int64_t first = 1; first <= kCount; first += 100) {
    ASSERT_TRUE(bus_->publish(make_events(first, first + 99)).ok());
  }
  ASSERT_TRUE(log.wait_for_count(kCount));
  EXPECT_EQ(log.seqs(), range(1, kCount));
  const Event e = log.events()[1233];
  const Event want = make_event(1234);
  EXPECT_EQ(e.topic, want.topic);
  EXPECT_EQ(e.payload, want.payload);
  EXPECT_EQ(e.correlation_id, want.correlation_id);
  EXPECT_EQ(e.created_at, want.created_at);
}

TEST_P(BusTest, EverySubscriberGetsEveryEventExactlyOnce) {
  EventLog a, b, c;
  auto sa = bus_->subscribe(a.handler());
  auto sb = bus_->subscribe(b.handler());
  auto sc = bus_->subscribe(c.handler());
  std::int64_t seq = 1;
  for (int batch = 1; seq <= 300; ++batch) {  // batches of 1, 2, 3, ... events
    const std::int64_t last = std::min<std::int64_t>(300, seq + batch - 1);
    ASSERT_TRUE(bus_->publish(make_events(seq, last)).ok());
    seq = last + 1;
  }
  // A last event: once it has arrived, a duplicate of anything before it would have too.
  ASSERT_TRUE(bus_->publish({make_event(301)}).ok());
  for (EventLog* log : {&a, &b, &c}) {
    ASSERT_TRUE(log->wait_for_count(301));
    EXPECT_EQ(log->seqs(), range(1, 301));
  }
}

TEST_P(BusTest, DuplicateSeqIsDropped) {
  EventLog log;
  auto sub = bus_->subscribe(log.handler());
  ASSERT_TRUE(bus_->publish(make_events(1, 10)).ok());
  ASSERT_TRUE(bus_->publish(make_events(5, 12)).ok());  // a relay replaying after a crash
  ASSERT_TRUE(bus_->publish({make_event(3)}).ok());
  ASSERT_TRUE(bus_->publish({make_event(12)}).ok());
  ASSERT_TRUE(bus_->publish({make_event(13)}).ok());
  ASSERT_TRUE(log.wait_for_count(13));
  EXPECT_EQ(log.seqs(), range(1, 13));
}

TEST_P(BusTest, SubscribersGetOnlyEventsPublishedAfterSubscribing) {
  ASSERT_TRUE(bus_->publish(make_events(1, 5)).ok());
  EventLog log;
  auto sub = bus_->subscribe(log.handler());
  ASSERT_TRUE(bus_->publish(make_events(6, 8)).ok());
  ASSERT_TRUE(log.wait_for_count(3));
  EXPECT_EQ(log.seqs(), range(6, 8));
}

TEST_P(BusTest, UnsubscribeStopsDelivery) {
  EventLog gone, stays;
  auto sg = bus_->subscribe(gone.handler());
  auto ss = bus_->subscribe(stays.handler());
  ASSERT_TRUE(bus_->publish(make_events(1, 5)).ok());
  ASSERT_TRUE(gone.wait_for_count(5));
  ASSERT_TRUE(stays.wait_for_count(5));
  sg.reset();
  ASSERT_TRUE(bus_->publish(make_events(6, 10)).ok());
  ASSERT_TRUE(stays.wait_for_count(10));
  EXPECT_EQ(gone.seqs(), range(1, 5));
}

TEST_P(BusTest, CompetingConsumersHandleEachMessageOnce) {
  // batch = 1 and a handler that holds each consumer until all three hold a message: the
  // only way through is for the three to take different messages.
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> holding;
  QueueLog log;
  std::vector<std::unique_ptr<Subscription>> consumers;
  for (std::string name : {"c1", "c2", "c3"}) {
    ConsumerOptions o{"jobs", "workers", name};
    o.batch = 1;
    auto c = bus_->consume(o, [&, name](const QueueMessage& m) -> Status {
      {
        std::unique_lock lk(mu);
        holding.insert(name);
        cv.notify_all();
        cv.wait_for(lk, kWait, [&] { return holding.size() == 3; });
      }
      log.add(name, m);
      return Ok{};
    });
    ASSERT_TRUE(c.ok()) << c.error().message;
    consumers.push_back(std::move(c).value());
  }
  constexpr int kCount = 30;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(bus_->enqueue("jobs", "job-" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(log.wait_for_count(kCount));
  EXPECT_TRUE(eventually([&] { return depth("jobs", "workers") == 0; }));
  consumers.clear();
  const auto counts = log.counts();
  ASSERT_EQ(counts.size(), static_cast<std::size_t>(kCount));
  for (const auto& [payload, n] : counts) EXPECT_EQ(n, 1) << payload;
  std::set<std::string> who;
  for (const Delivery& d : log.deliveries()) who.insert(d.consumer);
  EXPECT_EQ(who.size(), 3u);
}

TEST_P(BusTest, AckedMessagesStayDoneFailedOnesAreRedelivered) {
  QueueLog log;
  ConsumerOptions o{"jobs", "workers", "c1", 200ms};
  auto c = bus_->consume(o, [&](const QueueMessage& m) -> Status {
    log.add("c1", m);
    if (m.payload == "fail-once" && m.deliveries == 1) {
      return Error::unavailable("downstream busy");
    }
    return Ok{};
  });
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(bus_->enqueue("jobs", "ok").ok());
  ASSERT_TRUE(bus_->enqueue("jobs", "fail-once").ok());
  ASSERT_TRUE(log.wait_for([](const auto& d) {
    return std::count_if(d.begin(), d.end(),
                         [](const Delivery& x) { return x.message.payload == "fail-once"; }) >= 2;
  }));
  // Depth 0 means nothing is pending: the acknowledged "ok" cannot come back.
  EXPECT_TRUE(eventually([&] { return depth("jobs", "workers") == 0; }));
  c->reset();
  std::vector<std::int64_t> ok_deliveries, fail_deliveries;
  for (const Delivery& d : log.deliveries()) {
    (d.message.payload == "ok" ? ok_deliveries : fail_deliveries).push_back(d.message.deliveries);
  }
  EXPECT_EQ(ok_deliveries, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(fail_deliveries, (std::vector<std::int64_t>{1, 2}));
}

TEST_P(BusTest, DeadConsumersMessagesAreReclaimedByAnother) {
  QueueLog first;
  ConsumerOptions a_opts{"jobs", "workers", "a", 60s};
  a_opts.batch = 10;
  // "a" takes five messages and dies before finishing any of them.
  auto a = bus_->consume(a_opts, [&](const QueueMessage& m) -> Status {
    first.add("a", m);
    return Error::internal("crashed");
  });
  ASSERT_TRUE(a.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bus_->enqueue("jobs", "m" + std::to_string(i)).ok());
  ASSERT_TRUE(first.wait_for_count(5));
  a->reset();
  EXPECT_EQ(depth("jobs", "workers"), 5);

  QueueLog second;
  auto b = bus_->consume({"jobs", "workers", "b", 200ms}, [&](const QueueMessage& m) {
    second.add("b", m);
    return Status(Ok{});
  });
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(second.wait_for_count(5));
  EXPECT_TRUE(eventually([&] { return depth("jobs", "workers") == 0; }));
  b->reset();
  const auto counts = second.counts();
  EXPECT_EQ(counts.size(), 5u);
  for (const Delivery& d : second.deliveries()) EXPECT_EQ(d.message.deliveries, 2) << d.message.id;
  EXPECT_EQ(first.deliveries().size(), 5u);
}

TEST_P(BusTest, QueueDepthCountsWaitingAndPending) {
  EXPECT_EQ(depth("nothing-here", "workers"), 0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(bus_->enqueue("jobs", "m" + std::to_string(i)).ok());
  EXPECT_EQ(depth("jobs", "workers"), 4);  // no group yet: everything waits
  EXPECT_EQ(depth("jobs", "others"), 4);
  QueueLog log;
  auto failing = bus_->consume({"jobs", "workers", "c1", 60s}, [&](const QueueMessage& m) {
    log.add("c1", m);
    return Status(Error::internal("not now"));
  });
  ASSERT_TRUE(failing.ok());
  ASSERT_TRUE(log.wait_for_count(4));
  EXPECT_EQ(depth("jobs", "workers"), 4);  // delivered but not acknowledged
  ASSERT_TRUE(bus_->enqueue("jobs", "m4").ok());
  ASSERT_TRUE(log.wait_for_count(5));
  EXPECT_EQ(depth("jobs", "workers"), 5);
  failing->reset();
  auto good = bus_->consume({"jobs", "workers", "c2", 200ms}, ok_handler);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(eventually([&] { return depth("jobs", "workers") == 0; }));
}

TEST_P(BusTest, OversizedPayloadIsRejected) {
  EventLog log;
  auto sub = bus_->subscribe(log.handler());
  Event big = make_event(1);
  big.payload.assign(kMaxPayload + 1, 'x');
  const Status s = bus_->publish({big});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  auto q = bus_->enqueue("jobs", std::string(kMaxPayload + 1, 'x'));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(depth("jobs", "workers"), 0);
  // At the limit is fine.
  big.payload.assign(kMaxPayload, 'y');
  ASSERT_TRUE(bus_->publish({big}).ok());
  ASSERT_TRUE(bus_->enqueue("jobs", std::string(kMaxPayload, 'y')).ok());
  ASSERT_TRUE(log.wait_for_count(1));
  EXPECT_EQ(log.events()[0].payload.size(), kMaxPayload);
}

TEST_P(BusTest, BadNamesAreInvalidArguments) {
  EXPECT_EQ(bus_->enqueue("Upper", "x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus_->enqueue("", "x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus_->enqueue("a:b", "x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus_->consume({"jobs", "g", ""}, ok_handler).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus_->publish({make_event(-1)}).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(BusTest, CloseStopsEverythingThenUnavailable) {
  EventLog log;
  auto sub = bus_->subscribe(log.handler());
  auto consumer = bus_->consume({"jobs", "workers", "c1"}, ok_handler);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE(bus_->publish({make_event(1)}).ok());
  ASSERT_TRUE(log.wait_for_count(1));
  bus_->close();
  bus_->close();  // twice is fine
  EXPECT_EQ(bus_->publish({make_event(2)}).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bus_->enqueue("jobs", "x").error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bus_->queue_depth("jobs", "workers").error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bus_->ping().error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bus_->consume({"jobs", "workers", "c2"}, ok_handler).error().code,
            ErrorCode::kUnavailable);
  auto late = bus_->subscribe(log.handler());
  EXPECT_NE(late, nullptr);
  EXPECT_EQ(log.size(), 1u);
  sub.reset();  // subscriptions outliving close() are still destroyed cleanly
  consumer->reset();
}

// ---------------------------------------------------------------------------------------
// Redis only.

class RedisBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = redis_url_from_env();
    ASSERT_NE(url, nullptr) << kNoRedis;
    options_.redis_url = url;
    options_.key_prefix = random_prefix();
  }
  void TearDown() override {
    if (!options_.redis_url.empty()) delete_keys(options_.redis_url, options_.key_prefix);
  }
  std::unique_ptr<EventBus> open() {
    auto bus = open_bus(options_);
    EXPECT_TRUE(bus.ok()) << bus.error().message;
    return bus.ok() ? std::move(bus).value() : nullptr;
  }
  BusOptions options_;
};

TEST_F(RedisBusTest, EventsReachSubscribersOnEveryNode) {
  auto node1 = open();
  auto node2 = open();
  ASSERT_TRUE(node1 && node2);
  EventLog on1, on2;
  auto s1 = node1->subscribe(on1.handler());
  auto s2 = node2->subscribe(on2.handler());
  ASSERT_TRUE(node1->publish(make_events(1, 10)).ok());
  ASSERT_TRUE(node2->publish(make_events(11, 20)).ok());
  ASSERT_TRUE(node1->publish(make_events(15, 20)).ok());  // the other relay's batch, replayed
  ASSERT_TRUE(node1->publish({make_event(21)}).ok());
  for (EventLog* log : {&on1, &on2}) {
    ASSERT_TRUE(log->wait_for_count(21));
    EXPECT_EQ(log->seqs(), range(1, 21));
  }
}

TEST_F(RedisBusTest, ConsumersOnTwoNodesShareAQueue) {
  auto node1 = open();
  auto node2 = open();
  ASSERT_TRUE(node1 && node2);
  QueueLog log;
  auto handler = [&](std::string who) {
    return [&, who](const QueueMessage& m) {
      log.add(who, m);
      return Status(Ok{});
    };
  };
  auto c1 = node1->consume({"jobs", "workers", "node1"}, handler("node1"));
  auto c2 = node2->consume({"jobs", "workers", "node2"}, handler("node2"));
  ASSERT_TRUE(c1.ok() && c2.ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((i % 2 ? node1 : node2)->enqueue("jobs", "j" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(log.wait_for_count(40));
  EXPECT_TRUE(eventually([&] { return *node1->queue_depth("jobs", "workers") == 0; }));
  c1->reset();
  c2->reset();
  const auto counts = log.counts();
  EXPECT_EQ(counts.size(), 40u);
  for (const auto& [payload, n] : counts) EXPECT_EQ(n, 1) << payload;
}

TEST_F(RedisBusTest, BadUrlIsRejectedAndAnAbsentServerIsUnavailable) {
  options_.redis_url = "http://127.0.0.1:1";
  auto bad = open_bus(options_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  options_.redis_url = "redis://127.0.0.1:1";  // nothing listens on port 1
  auto bus = open_bus(options_);
  ASSERT_TRUE(bus.ok());  // it connects in the background
  EXPECT_EQ((*bus)->ping().error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*bus)->publish({make_event(1)}).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*bus)->enqueue("jobs", "x").error().code, ErrorCode::kUnavailable);
  EventLog log;
  auto sub = (*bus)->subscribe(log.handler());  // never fails; retries in the background
  auto consumer = (*bus)->consume({"jobs", "g", "c"}, ok_handler);
  ASSERT_TRUE(consumer.ok());
  consumer->reset();
  sub.reset();
  options_.redis_url.clear();  // nothing to clean up
}

TEST_F(RedisBusTest, WritingToALostConnectionFailsInsteadOfRaisingSigpipe) {
  auto ep = redis::parse_redis_url(options_.redis_url);
  ASSERT_TRUE(ep.ok());
  auto conn = redis::Connection::open(*ep, 2s);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  (*conn)->interrupt();  // our side of the socket is shut down: a write now raises SIGPIPE
  auto r = (*conn)->command({"PING"});
  ASSERT_FALSE(r.ok());  // and we are still here to see the error
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE((*conn)->broken());
}

// A redis-server of our own, restartable on the same port and data directory.
class OwnRedis {
 public:
  OwnRedis() {
    char tmpl[] = "/tmp/dp-bus-redis-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    dir_ = d != nullptr ? d : "";
    port_ = free_port();
  }
  ~OwnRedis() {
    kill9();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Starts the server and waits (bounded) until it answers PING.
  ::testing::AssertionResult start() {
    if (dir_.empty() || port_ == 0) return ::testing::AssertionFailure() << "no temp dir or port";
    const char* env = std::getenv("DEVPLANE_TEST_REDIS_SERVER");
    const std::string binary = (env != nullptr && *env != '\0') ? env : "redis-server";
    std::vector<std::string> args = {binary,       "--port",       std::to_string(port_),
                                     "--bind",     "127.0.0.1",    "--save",
                                     "",           "--appendonly", "yes",
                                     "--appendfsync", "always",    "--dir",
                                     dir_,         "--logfile",    dir_ + "/redis.log"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = 0;
      return ::testing::AssertionFailure() << "cannot start " << binary
                                           << " (set DEVPLANE_TEST_REDIS_SERVER)";
    }
    auto ep = redis::parse_redis_url(url());
    const bool up = eventually([&] {
      auto c = redis::Connection::open(*ep, 500ms);
      return c.ok() && (*c)->command({"PING"}).ok();
    }, 20s);
    if (!up) return ::testing::AssertionFailure() << binary << " did not answer on " << url();
    return ::testing::AssertionSuccess();
  }

  // A crash: no shutdown, no final save. Waits until the process is gone.
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

 private:
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

TEST_F(RedisBusTest, RedisRestartedMidStreamLosesNothingAcknowledged) {
  OwnRedis server;
  ASSERT_TRUE(server.start());
  options_.redis_url = server.url();
  auto bus = open();
  ASSERT_TRUE(bus);
  EventLog log;
  auto sub = bus->subscribe(log.handler());
  QueueLog jobs;
  auto consumer = bus->consume({"jobs", "workers", "c1", 1s}, [&](const QueueMessage& m) {
    jobs.add("c1", m);
    return Status(Ok{});
  });
  ASSERT_TRUE(consumer.ok());

  for (std::int64_t first = 1; first <= 50; first += 10) {
    ASSERT_TRUE(bus->publish(make_events(first, first + 9)).ok());
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(bus->enqueue("jobs", "a" + std::to_string(i)).ok());
  ASSERT_TRUE(log.wait_for_count(1));  // the reader is live; the rest may still be in flight

  server.kill9();
  const Status down = bus->publish(make_events(51, 60));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bus->enqueue("jobs", "lost?").error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bus->ping().error().code, ErrorCode::kUnavailable);

  ASSERT_TRUE(server.start());
  // The relay retries what was refused until the bus reconnects (backoff is at most 5 s).
  ASSERT_TRUE(eventually([&] { return bus->publish(make_events(51, 60)).ok(); }));
  for (std::int64_t first = 61; first <= 100; first += 10) {
    ASSERT_TRUE(bus->publish(make_events(first, first + 9)).ok());
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(bus->enqueue("jobs", "b" + std::to_string(i)).ok());

  ASSERT_TRUE(log.wait_for_count(100)) << "got " << log.size();
  ASSERT_TRUE(bus->publish({make_event(101)}).ok());
  ASSERT_TRUE(log.wait_for_count(101));
  EXPECT_EQ(log.seqs(), range(1, 101));  // nothing lost, nothing twice, in order

  ASSERT_TRUE(jobs.wait_for([](const auto&) { return true; }));
  const bool all_jobs = jobs.wait_for([](const std::vector<Delivery>& d) {
    std::set<std::string> seen;
    for (const auto& x : d) seen.insert(x.message.payload);
    return seen.size() >= 20;
  });
  EXPECT_TRUE(all_jobs);
  const auto counts = jobs.counts();
  EXPECT_EQ(counts.size(), 20u);
  EXPECT_EQ(counts.count("lost?"), 0u);
  EXPECT_TRUE(eventually([&] {
    auto d = bus->queue_depth("jobs", "workers");
    return d.ok() && *d == 0;
  }));
  consumer->reset();
  sub.reset();
  bus.reset();
  options_.redis_url.clear();  // the server and its data go away with the test
}

}  // namespace
}  // namespace dp::bus
