// The real-time capability over real WebSocket against the real binary: the /ws hub, the
// outbox relay and the bus, on {in-process bus + SQLite} and {Redis Streams + PostgreSQL}.
//
// Redis: the binary has no setting for its stream-key prefix (BusOptions::key_prefix is
// always "devplane"), so each test claims a Redis logical database of its own (1..15) with a
// lock key in db 0, empties that one database, and points the binary at redis://host:port/N.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "harness.hpp"
#include "ws_client.hpp"

extern char** environ;

namespace dp::it {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

enum class Mode { kLocalSqlite, kRedisPostgres };

std::string mode_name(const ::testing::TestParamInfo<Mode>& p) {
  return p.param == Mode::kLocalSqlite ? "InProcessSqlite" : "RedisPostgres";
}

// Quiet by default: one health event at start, then none for an hour.
constexpr const char* kQuietHealth = "3600000";

std::string env_or(const char* name, const std::string& fallback = {}) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// VmRSS of a process in bytes; 0 when unreadable.
std::int64_t rss_bytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// ---------------------------------------------------------------------------- Redis helpers

struct RedisAddr {
  std::string host;
  int port = 0;
};

// host and port of a redis:// URL; empty host on a parse failure.
RedisAddr parse_redis_url(const std::string& url) {
  RedisAddr a;
  auto u = boost::urls::parse_uri(url);
  if (!u) return a;
  a.host = std::string(u->host());
  a.port = u->has_port() ? u->port_number() : 6379;
  return a;
}

// One synchronous hiredis command; returns the reply's string/status/integer as text, or
// "ERR: ..." on failure.
std::string redis_cmd(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (r == nullptr) return std::string("ERR: ") + (c->errstr[0] != '\0' ? c->errstr : "no reply");
  std::string out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out = std::to_string(r->integer);
      break;
    case REDIS_REPLY_NIL:
      out = "(nil)";
      break;
    case REDIS_REPLY_ERROR:
      out = "ERR: " + std::string(r->str, r->len);
      break;
    default:
      out = "(other)";
  }
  freeReplyObject(r);
  return out;
}

redisContext* redis_connect(const RedisAddr& a, std::chrono::milliseconds timeout = 2s) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  redisContext* c = redisConnectWithTimeout(a.host.c_str(), a.port, tv);
  if (c != nullptr && c->err == 0) redisSetTimeout(c, tv);
  return c;
}

// A Redis logical database claimed for one test (see the file comment).
class RedisDb {
 public:
  RedisDb() {
    const std::string base = env_or("DEVPLANE_TEST_REDIS_URL");
    if (base.empty()) {
      error_ =
          "DEVPLANE_TEST_REDIS_URL is not set: the Redis real-time tests need it (scripts/test "
          "sets it, e.g. redis://127.0.0.1:56379)";
      return;
    }
    addr_ = parse_redis_url(base);
    if (addr_.host.empty()) {
      error_ = "DEVPLANE_TEST_REDIS_URL is not a redis:// URL: " + base;
      return;
    }
    redisContext* c = redis_connect(addr_);
    if (c == nullptr || c->err != 0) {
      error_ = "cannot reach Redis at DEVPLANE_TEST_REDIS_URL=" + base + ": " +
               (c != nullptr ? c->errstr : "out of memory");
      if (c != nullptr) redisFree(c);
      return;
    }
    std::mt19937 rng{std::random_device{}()};
    token_ = std::to_string(::getpid()) + "-" + std::to_string(rng());
    std::vector<int> dbs;
    for (int i = 1; i <= 15; ++i) dbs.push_back(i);
    // Waits (bounded) for a database when all are taken by tests running in parallel.
    const auto deadline = Clock::now() + 120s;
    while (db_ < 0 && Clock::now() < deadline) {
      std::shuffle(dbs.begin(), dbs.end(), rng);
      for (int n : dbs) {
        if (redis_cmd(c, {"SELECT", "0"}) != "OK") break;
        if (redis_cmd(c, {"SET", lock_key(n), token_, "NX", "EX", "1800"}) == "OK") {
          db_ = n;
          break;
        }
      }
      if (db_ < 0) std::this_thread::sleep_for(200ms);
    }
    if (db_ < 0) {
      error_ = "no free Redis logical database (1..15) at " + base;
    } else {
      redis_cmd(c, {"SELECT", std::to_string(db_)});
      const std::string r = redis_cmd(c, {"FLUSHDB"});
      if (r != "OK") error_ = "FLUSHDB on db " + std::to_string(db_) + ": " + r;
      url_ = "redis://" + addr_.host + ":" + std::to_string(addr_.port) + "/" + std::to_string(db_);
    }
    redisFree(c);
  }
  ~RedisDb() {
    if (db_ < 0) return;
    redisContext* c = redis_connect(addr_);
    if (c == nullptr) return;
    if (c->err == 0) {
      redis_cmd(c, {"SELECT", std::to_string(db_)});
      redis_cmd(c, {"FLUSHDB"});
      redis_cmd(c, {"SELECT", "0"});
      if (redis_cmd(c, {"GET", lock_key(db_)}) == token_) redis_cmd(c, {"DEL", lock_key(db_)});
    }
    redisFree(c);
  }
  RedisDb(const RedisDb&) = delete;
  RedisDb& operator=(const RedisDb&) = delete;

  const std::string& error() const { return error_; }
  const std::string& url() const { return url_; }

 private:
  static std::string lock_key(int n) { return "dp-it:realtime:db-lock:" + std::to_string(n); }
  RedisAddr addr_;
  std::string token_;
  int db_ = -1;
  std::string url_;
  std::string error_;
};

// A redis-server of our own (for the restart test), with AOF in a temp dir.
class OwnRedis {
 public:
  OwnRedis() : port_(free_port()) {}
  ~OwnRedis() { kill(); }
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;

  // Empty on success.
  std::string start() {
    if (pid_ > 0) return "already running";
    const std::string bin = env_or("DEVPLANE_TEST_REDIS_SERVER", "redis-server");
    std::vector<std::string> args = {bin,           "--port",       std::to_string(port_),
                                     "--bind",      "127.0.0.1",    "--save",
                                     "",            "--appendonly", "yes",
                                     "--dir",       dir_.str(),     "--daemonize",
                                     "no",          "--logfile",    (dir_.path() / "redis.log").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      return "cannot start " + bin + " (DEVPLANE_TEST_REDIS_SERVER): " + std::strerror(rc);
    }
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      redisContext* c = redis_connect(RedisAddr{"127.0.0.1", port_}, 500ms);
      const bool up = c != nullptr && c->err == 0 && redis_cmd(c, {"PING"}) == "PONG";
      if (c != nullptr) redisFree(c);
      if (up) return {};
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return bin + " exited at start; see " + (dir_.path() / "redis.log").string();
      }
      std::this_thread::sleep_for(50ms);
    }
    kill();
    return bin + " did not answer PING within 20 s";
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------- events

struct Ev {
  std::int64_t id = 0;
  std::string topic;
  std::string agent_id;
  std::string status;
};

Ev to_ev(const WsMessage& m) {
  return Ev{m.id(), m.topic(), m.str("/data/agentId"), m.str("/data/status")};
}

std::string ids_of(const std::vector<Ev>& evs) {
  std::string s;
  for (const auto& e : evs) s += std::to_string(e.id) + " ";
  return s;
}

std::vector<std::int64_t> id_list(const std::vector<Ev>& evs) {
  std::vector<std::int64_t> v;
  for (const auto& e : evs) v.push_back(e.id);
  return v;
}

// ---------------------------------------------------------------------------- fixture

class RealtimeBase {
 protected:
  // Starts the (first) server; returns an error or empty.
  std::string start_server(Mode mode, Env env = {}) {
    mode_ = mode;
    std::vector<std::string> args;
    if (mode == Mode::kRedisPostgres) {
      if (!redis_) redis_ = std::make_unique<RedisDb>();
      if (!redis_->error().empty()) return redis_->error();
      args = {"--redis-url", redis_->url()};
    }
    if (std::none_of(env.begin(), env.end(),
                     [](const auto& kv) { return kv.first == "DEVPLANE_HEALTH_INTERVAL_MS"; })) {
      env.emplace_back("DEVPLANE_HEALTH_INTERVAL_MS", kQuietHealth);
    }
    server_ = std::make_unique<TestServer>(
        mode == Mode::kLocalSqlite ? Backend::kSqlite : Backend::kPostgres, args, env);
    if (!server_->error().empty()) return server_->error();
    api_ = std::make_unique<HttpClient>(server_->port());
    return {};
  }

  void stop_all() {
    api_.reset();
    if (server_ && server_->process().running()) {
      const int code = server_->process().stop();
      EXPECT_EQ(code, 0) << "devplane serve did not exit cleanly on SIGTERM; stderr:\n"
                         << tail(server_->process().stderr_text());
    }
    if (server_) check_sanitizers(server_->process().stderr_text());
    server_.reset();
    redis_.reset();
  }

  static std::string tail(const std::string& s) {
    return s.size() <= 6000 ? s : "..." + s.substr(s.size() - 6000);
  }

  static void check_sanitizers(const std::string& err) {
    EXPECT_EQ(err.find("AddressSanitizer"), std::string::npos) << tail(err);
    EXPECT_EQ(err.find("runtime error:"), std::string::npos) << tail(err);
    EXPECT_EQ(err.find("LeakSanitizer"), std::string::npos) << tail(err);
  }

  std::uint16_t port() const { return server_->port(); }

  std::string create_agent(HttpClient& c, const std::string& name,
                           const std::string& description = "",
                           const Headers& headers = {}) {
    json::object body{{"name", name},
                      {"type", "command"},
                      {"config", json::object{{"command", json::array{"echo", "hi"}}}}};
    if (!description.empty()) body["description"] = description;
    auto r = c.post("/api/v1/agents", json::serialize(body), headers);
    EXPECT_EQ(r.status, 201u) << r.describe() << " " << c.error();
    return r.str("/data/id");
  }
  std::string create_agent(const std::string& name) { return create_agent(*api_, name); }

  void lifecycle(HttpClient& c, const std::string& id, const std::string& action) {
    auto r = c.post("/api/v1/agents/" + id + "/" + action, "");
    EXPECT_EQ(r.status, 200u) << action << " " << id << ": " << r.describe() << " " << c.error();
  }
  void lifecycle(const std::string& id, const std::string& action) { lifecycle(*api_, id, action); }

  // Connects and reads the hello; returns its latestEventId (-1 on failure, with a failure
  // recorded).
  std::int64_t open(WsClient& ws, ConnectOptions opts = {}, std::uint16_t on_port = 0) {
    const std::string err = ws.connect(on_port != 0 ? on_port : port(), opts);
    EXPECT_EQ(err, "") << "websocket connect";
    if (!err.empty()) return -1;
    WsMessage hello = ws.receive(15s);
    EXPECT_EQ(hello.type(), "hello") << hello.describe();
    EXPECT_FALSE(hello.str("/connection").empty()) << hello.describe();
    return hello.num("/latestEventId");
  }

  // Sends a subscribe and expects its ack; returns the ack.
  WsMessage subscribe(WsClient& ws, json::object req, const std::string& id = "sub") {
    req["op"] = "subscribe";
    req["id"] = id;
    EXPECT_EQ(ws.send(json::serialize(req)), "");
    WsMessage ack = ws.receive_reply(15s);
    EXPECT_EQ(ack.type(), "ack") << ack.describe();
    EXPECT_EQ(ack.str("/id"), id) << ack.describe();
    EXPECT_EQ(ack.str("/op"), "subscribe") << ack.describe();
    return ack;
  }

  // Ping/pong round trip; returns true when the pong came back.
  bool ping(WsClient& ws, const std::string& id = "ping") {
    if (!ws.send(json::serialize(json::object{{"op", "ping"}, {"id", id}})).empty()) return false;
    WsMessage m = ws.receive_reply(15s);
    return m.type() == "pong" && m.str("/id") == id;
  }

  // Receives events (including those receive_reply skipped earlier) until `done(events)`
  // holds or `timeout` passes; non-event frames other than those are returned in `other`.
  template <typename Done>
  std::vector<Ev> collect(WsClient& ws, Done done, std::chrono::milliseconds timeout,
                          std::vector<WsMessage>* other = nullptr,
                          const std::string& topic_prefix = "") {
    std::vector<Ev> out;
    auto take = [&](const WsMessage& m) {
      if (m.type() == "event") {
        if (topic_prefix.empty() || m.topic().starts_with(topic_prefix)) out.push_back(to_ev(m));
      } else if (other != nullptr) {
        other->push_back(m);
      }
    };
    for (auto& m : ws.skipped()) take(m);
    ws.skipped().clear();
    const auto deadline = Clock::now() + timeout;
    while (!done(out)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      WsMessage m = ws.receive(left);
      if (m.timed_out()) break;
      if (!m.is_text()) {
        if (other != nullptr) other->push_back(m);
        break;
      }
      take(m);
    }
    return out;
  }

  std::vector<Ev> collect_n(WsClient& ws, std::size_t n, std::chrono::milliseconds timeout = 30s,
                            const std::string& topic_prefix = "agent.") {
    return collect(ws, [n](const std::vector<Ev>& e) { return e.size() >= n; }, timeout, nullptr,
                   topic_prefix);
  }

  Mode mode_ = Mode::kLocalSqlite;
  std::unique_ptr<RedisDb> redis_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> api_;
};

class RealtimeTest : public ::testing::TestWithParam<Mode>, public RealtimeBase {
 protected:
  void SetUp() override {}
  void TearDown() override { stop_all(); }
  // For ASSERT_NO_FATAL_FAILURE(start()).
  void start(Env env = {}) {
    const std::string err = start_server(GetParam(), std::move(env));
    ASSERT_EQ(err, "") << "server did not start";
  }
};

// Strictly increasing ids.
void expect_increasing(const std::vector<Ev>& evs, const std::string& what) {
  for (std::size_t i = 1; i < evs.size(); ++i) {
    EXPECT_LT(evs[i - 1].id, evs[i].id) << what << ": ids " << ids_of(evs);
  }
}

// ---------------------------------------------------------------------------- basics

TEST_P(RealtimeTest, HelloAckAndLifecycleEventsArriveInOrder) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient ws;
  const std::int64_t latest = open(ws);
  EXPECT_GE(latest, 0);
  WsMessage ack = subscribe(ws, {{"topics", json::array{"agent.*"}}}, "1");
  EXPECT_EQ(ack.str("/subscription"), "s1") << ack.describe();
  EXPECT_GE(ack.num("/lastEventId"), latest) << ack.describe();

  const std::string id = create_agent(*api_, "ordered", "", {{"X-Request-Id", "rt-corr-1"}});
  ASSERT_FALSE(id.empty());
  lifecycle(id, "start");
  lifecycle(id, "stop");

  std::vector<WsMessage> frames;
  const auto deadline = Clock::now() + 30s;
  while (frames.size() < 5 && Clock::now() < deadline) {
    WsMessage m = ws.receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!m.is_text()) break;
    if (m.type() == "event") frames.push_back(m);
  }
  ASSERT_EQ(frames.size(), 5u);
  const std::vector<std::string> want = {"created", "starting", "running", "stopping", "stopped"};
  std::int64_t prev = ack.num("/lastEventId");
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const WsMessage& f = frames[i];
    EXPECT_EQ(f.topic(), "agent.status.update") << f.describe();
    EXPECT_EQ(f.str("/data/agentId"), id) << f.describe();
    EXPECT_EQ(f.str("/data/status"), want[i]) << f.describe();
    EXPECT_GT(f.id(), prev) << f.describe();
    prev = f.id();
    EXPECT_FALSE(f.str("/timestamp").empty()) << f.describe();
    EXPECT_FALSE(f.str("/data/timestamp").empty()) << f.describe();
  }
  EXPECT_EQ(frames[0].str("/correlationId"), "rt-corr-1") << frames[0].describe();
  EXPECT_EQ(frames[0].num("/data/version"), 1);
  EXPECT_EQ(frames[4].num("/data/version"), 5);
  EXPECT_TRUE(ping(ws));
  ws.close();
}

// Connections are spread over a few shards, and a shard hands an event to its connections a
// slice (128) at a time: with 300 clients every slice boundary is crossed, and each client
// must still get every event, once, in order.
TEST_P(RealtimeTest, FanOutToManyClientsDeliversEveryEventInOrder) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr std::size_t kClients = 300;
  constexpr int kAgents = 4;  // 5 lifecycle events each
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<std::int64_t> start_ids;
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    open(*clients.back());
    start_ids.push_back(subscribe(*clients.back(), {{"topics", json::array{"agent.*"}}}).num("/lastEventId"));
  }
  for (int a = 0; a < kAgents; ++a) {
    const std::string id = create_agent(*api_, "fan-" + std::to_string(a));
    ASSERT_FALSE(id.empty());
    lifecycle(id, "start");
    lifecycle(id, "stop");
  }
  constexpr std::size_t kWant = 5 * kAgents;
  for (std::size_t i = 0; i < kClients; ++i) {
    std::vector<std::int64_t> ids;
    const auto deadline = Clock::now() + 30s;
    while (ids.size() < kWant && Clock::now() < deadline) {
      WsMessage m = clients[i]->receive(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      if (!m.is_text()) break;
      if (m.type() == "event") ids.push_back(m.id());
    }
    ASSERT_EQ(ids.size(), kWant) << "client " << i;
    std::int64_t prev = start_ids[i];
    for (std::int64_t id : ids) {
      EXPECT_GT(id, prev) << "client " << i;
      prev = id;
    }
    // Nothing more (no duplicate) arrives.
    WsMessage extra = clients[i]->receive(i == 0 ? 500ms : 1ms);
    EXPECT_TRUE(extra.timed_out()) << "client " << i << ": " << extra.describe();
  }
  EXPECT_TRUE(ping(*clients.front()));
  for (auto& c : clients) c->close();
}

TEST_P(RealtimeTest, TopicPatternsAndAgentFilter) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient prefix, exact, all, other, both;
  open(prefix);
  open(exact);
  open(all);
  open(other);
  open(both);
  subscribe(prefix, {{"topics", json::array{"agent.*"}}});
  subscribe(all, {{"topics", json::array{"*"}}});
  subscribe(other, {{"topics", json::array{"workflow.*", "agent.status"}}});
  // Two subscriptions on one connection: each event still arrives once.
  subscribe(both, {{"topics", json::array{"agent.*"}}}, "b1");
  subscribe(both, {{"topics", json::array{"agent.status.update", "*"}}}, "b2");

  const std::string x = create_agent("filter-x");
  const std::string y = create_agent("filter-y");
  ASSERT_FALSE(x.empty());
  ASSERT_FALSE(y.empty());
  // A new subscription starts where the hub is, and the hub hears of a commit a moment
  // after it (through the outbox relay and, with Redis, the stream). Wait until both
  // creations have reached a client, so the filtered subscription below starts after them.
  auto p = collect_n(prefix, 2);
  ASSERT_EQ(p.size(), 2u) << ids_of(p);
  WsMessage ack = subscribe(exact, {{"topics", json::array{"agent.status.update"}}, {"agentId", x}});
  lifecycle(x, "start");
  lifecycle(y, "start");

  auto rest = collect_n(prefix, 4);
  p.insert(p.end(), rest.begin(), rest.end());
  ASSERT_EQ(p.size(), 6u) << ids_of(p);
  expect_increasing(p, "agent.*");
  EXPECT_EQ(p[0].agent_id, x);
  EXPECT_EQ(p[1].agent_id, y);
  EXPECT_EQ(p[2].agent_id, x);
  EXPECT_EQ(p[2].status, "starting");
  EXPECT_EQ(p[3].status, "running");
  EXPECT_EQ(p[4].agent_id, y);

  auto e = collect_n(exact, 2);
  ASSERT_EQ(e.size(), 2u) << ids_of(e);
  for (const auto& ev : e) EXPECT_EQ(ev.agent_id, x);
  EXPECT_EQ(e[0].status, "starting");
  EXPECT_EQ(e[1].status, "running");
  EXPECT_GT(e[0].id, ack.num("/lastEventId"));

  auto a = collect_n(all, 6);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(id_list(a), id_list(p)) << "'*' and 'agent.*' see the same agent events";

  auto b = collect_n(both, 6);
  ASSERT_EQ(b.size(), 6u);
  EXPECT_EQ(id_list(b), id_list(p)) << "an event matching two subscriptions arrives once";

  // Nothing else arrives on the filtered connections (bounded wait, then a ping).
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(ping(exact));
  EXPECT_TRUE(exact.skipped().empty()) << exact.skipped().front().describe();
  EXPECT_TRUE(ping(other));
  EXPECT_TRUE(other.skipped().empty()) << other.skipped().front().describe();
  EXPECT_TRUE(ping(both));
  for (const auto& m : both.skipped()) {
    EXPECT_FALSE(m.topic().starts_with("agent.")) << "duplicate: " << m.describe();
  }
}

TEST_P(RealtimeTest, UnsubscribeStopsDeliveryAndPingPongs) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient ws, control;
  open(ws);
  open(control);
  subscribe(control, {{"topics", json::array{"agent.*"}}});
  WsMessage ack = subscribe(ws, {{"topics", json::array{"agent.*", "agent.status.update"}}});
  const std::string sub = ack.str("/subscription");
  ASSERT_FALSE(sub.empty());

  const std::string a = create_agent("unsub-a");
  auto first = collect_n(ws, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].agent_id, a);

  // Remove one topic of two: still delivered through the other.
  ASSERT_EQ(ws.send(R"({"op":"unsubscribe","id":"u1","topics":["agent.*"]})"), "");
  WsMessage u1 = ws.receive_reply(15s);
  EXPECT_EQ(u1.type(), "ack") << u1.describe();
  EXPECT_EQ(u1.str("/op"), "unsubscribe");
  EXPECT_EQ(u1.num("/removedTopics"), 1) << u1.describe();
  lifecycle(a, "start");
  auto second = collect_n(ws, 2);
  ASSERT_EQ(second.size(), 2u);

  // Remove everything (no topics): nothing more arrives.
  ASSERT_EQ(ws.send(json::serialize(json::object{{"op", "unsubscribe"}, {"id", "u2"}, {"subscription", sub}})), "");
  WsMessage u2 = ws.receive_reply(15s);
  EXPECT_EQ(u2.type(), "ack") << u2.describe();
  EXPECT_EQ(u2.num("/removedTopics"), 1) << u2.describe();
  lifecycle(a, "stop");
  const std::string b = create_agent("unsub-b");
  auto c = collect_n(control, 6);
  ASSERT_EQ(c.size(), 6u) << "the control client gets all of them";
  EXPECT_EQ(c.back().agent_id, b);
  std::this_thread::sleep_for(300ms);
  // Pings with string and integer ids.
  ASSERT_EQ(ws.send(R"({"op":"ping","id":7})"), "");
  WsMessage pong = ws.receive_reply(15s);
  EXPECT_EQ(pong.type(), "pong") << pong.describe();
  EXPECT_EQ(pong.num("/id"), 7) << pong.describe();
  ASSERT_EQ(ws.send(R"({"op":"ping"})"), "");
  pong = ws.receive_reply(15s);
  EXPECT_EQ(pong.type(), "pong") << pong.describe();
  EXPECT_TRUE(ping(ws, "after"));
  EXPECT_TRUE(ws.skipped().empty()) << "delivered after unsubscribe: " << ws.skipped().front().describe();

  // Subscribing again works and delivers again.
  subscribe(ws, {{"topics", json::array{"agent.*"}}}, "again");
  const std::string d = create_agent("unsub-d");
  auto again = collect_n(ws, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].agent_id, d);
}

// ---------------------------------------------------------------------------- bad input

TEST_P(RealtimeTest, MalformedMessagesGetErrorFramesAndTheConnectionSurvives) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient ws;
  open(ws);
  struct Case {
    std::string msg;
    std::string code;
    std::string id;  // expected echo; empty: null
  };
  std::string many_topics = "[";
  for (int i = 0; i < 65; ++i) many_topics += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  many_topics += "]";
  const std::vector<Case> cases = {
      {"not json", "invalid_json", ""},
      {"{\"op\":\"ping\"", "invalid_json", ""},
      {"", "invalid_json", ""},
      {"[1,2]", "invalid_request", ""},
      {"42", "invalid_request", ""},
      {"\"subscribe\"", "invalid_request", ""},
      {"null", "invalid_request", ""},
      {"{}", "invalid_request", ""},
      {R"({"id":"m1"})", "invalid_request", "m1"},
      {R"({"op":5,"id":"m2"})", "invalid_request", "m2"},
      {R"({"op":"dance","id":"m3"})", "unknown_op", "m3"},
      {R"({"op":"PING","id":"m4"})", "unknown_op", "m4"},
      {R"({"op":"ping","id":"m5","extra":true})", "invalid_request", "m5"},
      {R"({"op":"subscribe","id":"m6","topics":["agent.*"],"color":"red"})", "invalid_request", "m6"},
      {R"({"op":"subscribe","id":"m7","topics":"agent.*"})", "invalid_request", "m7"},
      {R"({"op":"subscribe","id":"m8","topics":[]})", "invalid_request", "m8"},
      {R"({"op":"subscribe","id":"m9"})", "invalid_request", "m9"},
      {R"({"op":"subscribe","id":"m10","topics":["Agent.*"]})", "invalid_request", "m10"},
      {R"({"op":"subscribe","id":"m11","topics":["agent.*.x"]})", "invalid_request", "m11"},
      {R"({"op":"subscribe","id":"m12","topics":["agent status"]})", "invalid_request", "m12"},
      {R"({"op":"subscribe","id":"m13","topics":[1]})", "invalid_request", "m13"},
      {R"({"op":"subscribe","id":"m14","topics":[""]})", "invalid_request", "m14"},
      {R"({"op":"subscribe","id":"m15","topics":[")" + std::string(200, 'a') + R"("]})", "invalid_request", "m15"},
      {R"({"op":"subscribe","id":"m16","topics":)" + many_topics + "}", "invalid_request", "m16"},
      {R"({"op":"ping","id":")" + std::string(200, 'x') + R"("})", "invalid_request", ""},
      {R"({"op":"ping","id":1.5})", "invalid_request", ""},
      {R"({"op":"ping","id":{"a":1}})", "invalid_request", ""},
      {R"({"op":"ping","id":123456789012345678901234567890})", "invalid_request", ""},
      {R"({"op":"subscribe","id":"m17","topics":["*"],"lastEventId":-1})", "invalid_request", "m17"},
      {R"({"op":"subscribe","id":"m18","topics":["*"],"lastEventId":"5"})", "invalid_request", "m18"},
      {R"({"op":"subscribe","id":"m19","topics":["*"],"lastEventId":1.5})", "invalid_request", "m19"},
      {R"({"op":"subscribe","id":"m20","topics":["*"],"lastEventId":18446744073709551615})", "invalid_request", "m20"},
      {R"({"op":"subscribe","id":"m21","topics":["*"],"agentId":""})", "invalid_request", "m21"},
      {R"({"op":"subscribe","id":"m22","topics":["*"],"agentId":5})", "invalid_request", "m22"},
      {R"({"op":"unsubscribe","id":"m23","topics":"agent.*"})", "invalid_request", "m23"},
      {R"({"op":"unsubscribe","id":"m24","topics":[3]})", "invalid_request", "m24"},
      {R"({"op":"unsubscribe","id":"m25","subscription":3})", "invalid_request", "m25"},
      {R"({"op":"unsubscribe","id":"m26","bogus":1})", "invalid_request", "m26"},
  };
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    SCOPED_TRACE("message: " + c.msg.substr(0, 120));
    ASSERT_EQ(ws.send(c.msg), "");
    WsMessage m = ws.receive_reply(15s);
    ASSERT_TRUE(m.is_text()) << m.describe();
    EXPECT_EQ(m.type(), "error") << m.describe();
    EXPECT_EQ(m.str("/code"), c.code) << m.describe();
    EXPECT_FALSE(m.str("/message").empty()) << m.describe();
    if (c.id.empty()) {
      EXPECT_TRUE(m.json.is_object() && m.json.as_object().contains("id") && m.json.at("id").is_null())
          << m.describe();
    } else {
      EXPECT_EQ(m.str("/id"), c.id) << m.describe();
    }
    ASSERT_TRUE(ping(ws)) << "the connection must stay usable";
  }

  // None of those subscribed anything: the first valid subscribe is s1.
  WsMessage ack = subscribe(ws, {{"topics", json::array{"agent.*"}}}, "ok1");
  EXPECT_EQ(ack.str("/subscription"), "s1") << ack.describe();
  const std::string a = create_agent("malformed");
  ASSERT_EQ(collect_n(ws, 1).size(), 1u);

  // lastEventId once events flow on the connection.
  ASSERT_EQ(ws.send(R"({"op":"subscribe","id":"late","topics":["agent.*"],"lastEventId":0})"), "");
  WsMessage late = ws.receive_reply(15s);
  EXPECT_EQ(late.type(), "error") << late.describe();
  EXPECT_EQ(late.str("/code"), "invalid_request") << late.describe();
  EXPECT_EQ(late.str("/id"), "late");
  EXPECT_TRUE(ping(ws));

  // Too many subscriptions: 32 per connection.
  for (int i = 2; i <= 32; ++i) {
    subscribe(ws, {{"topics", json::array{"system.health.status"}}}, "many" + std::to_string(i));
  }
  ASSERT_EQ(ws.send(R"({"op":"subscribe","id":"one-too-many","topics":["agent.*"]})"), "");
  WsMessage many = ws.receive_reply(15s);
  EXPECT_EQ(many.type(), "error") << many.describe();
  EXPECT_EQ(many.str("/code"), "too_many_subscriptions") << many.describe();
  EXPECT_EQ(many.str("/id"), "one-too-many");
  EXPECT_TRUE(ping(ws));
  // Events still arrive once each despite 32 subscriptions.
  lifecycle(a, "start");
  auto evs = collect_n(ws, 2);
  ASSERT_EQ(evs.size(), 2u);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(ping(ws));
  for (const auto& m : ws.skipped()) EXPECT_NE(m.topic(), "agent.status.update") << m.describe();

  // A message over 64 KiB closes the connection with 1009.
  const std::string big = R"({"op":"ping","id":")" + std::string(70 * 1024, 'z') + R"("})";
  ASSERT_EQ(ws.send(big), "");
  WsMessage closed = ws.receive_until([](const WsMessage&) { return false; }, 15s).back();
  ASSERT_TRUE(closed.closed()) << closed.describe();
  EXPECT_EQ(closed.close_code, 1009) << closed.describe();

  // The server is fine: a new connection works, the API answers.
  WsClient again;
  open(again);
  EXPECT_TRUE(ping(again));
  auto h = api_->get("/api/v1/system/health");
  EXPECT_EQ(h.status, 200u) << h.describe();
  again.close();
}

TEST_P(RealtimeTest, OriginAndUpgradeQueryAreChecked) {
  ASSERT_NO_FATAL_FAILURE(
      start({{"DEVPLANE_ALLOWED_ORIGINS", "https://dash.example.com, http://localhost:3000"}}));
  auto attempt = [&](const Headers& headers, const std::string& target = "/ws") {
    WsClient ws;
    ConnectOptions o;
    o.headers = headers;
    o.target = target;
    const std::string err = ws.connect(port(), o);
    struct Out {
      std::string err;
      unsigned status;
      std::string body;
      bool pong;
    } out{err, ws.http_status(), ws.http_body(), false};
    if (err.empty()) {
      WsMessage hello = ws.receive(15s);
      EXPECT_EQ(hello.type(), "hello") << hello.describe();
      out.pong = ping(ws);
      ws.close();
    }
    return out;
  };
  const std::string own = "http://127.0.0.1:" + std::to_string(port());
  for (const std::string& origin : {std::string("http://evil.example"), std::string("https://dash.example.com.evil"),
                                   std::string("null"), "http://127.0.0.1:" + std::to_string(port() + 1),
                                   std::string("https://DASH.example.com/")}) {
    auto r = attempt({{"Origin", origin}});
    EXPECT_NE(r.err, "") << origin << " must be refused";
    EXPECT_EQ(r.status, 403u) << origin << ": " << r.body;
    EXPECT_NE(r.body.find("origin_not_allowed"), std::string::npos) << r.body;
  }
  for (const std::string& origin : {own, "https://127.0.0.1:" + std::to_string(port()),
                                   std::string("https://dash.example.com"), std::string("http://localhost:3000")}) {
    auto r = attempt({{"Origin", origin}});
    EXPECT_EQ(r.err, "") << origin << " must be accepted";
    EXPECT_EQ(r.status, 101u) << origin;
    EXPECT_TRUE(r.pong) << origin;
  }
  // No Origin (not a browser): accepted.
  EXPECT_EQ(attempt({}).err, "");
  // No credential, or a bad one: refused at the upgrade.
  for (const char* auth : {"", "Bearer not-a-token", "Basic YWRtaW46eA=="}) {
    auto r = attempt({{"Authorization", auth}});
    EXPECT_EQ(r.status, 401u) << "Authorization '" << auth << "': " << r.err << " " << r.body;
  }
  // The token may also come as a WebSocket subprotocol "bearer.<token>" (browsers).
  {
    auto r = attempt({{"Authorization", ""}, {"Sec-WebSocket-Protocol", "devplane.v1, bearer." + admin_token(port())}});
    EXPECT_EQ(r.status, 101u) << r.err << " " << r.body;
  }
  // The resume position on the URL must be a non-negative integer.
  for (const std::string q : {"abc", "-1", "1.5", "", "99999999999999999999999"}) {
    auto r = attempt({}, "/ws?lastEventId=" + q);
    EXPECT_EQ(r.status, 400u) << "lastEventId=" << q << ": " << r.err << " " << r.body;
    EXPECT_NE(r.body.find("invalid_request"), std::string::npos) << r.body;
  }
  auto ok = attempt({}, "/ws?lastEventId=0");
  EXPECT_EQ(ok.err, "");
  EXPECT_TRUE(ok.pong);
  // The server is still healthy.
  auto h = api_->get("/api/v1/system/health");
  EXPECT_EQ(h.status, 200u) << h.describe();
}

// ---------------------------------------------------------------------------- resume

TEST_P(RealtimeTest, ResumeDeliversEveryMissedEventExactlyOnceBeforeLiveOnes) {
  ASSERT_NO_FATAL_FAILURE(start());
  // The observer stays connected throughout and sees every agent event.
  WsClient observer, client;
  open(observer);
  subscribe(observer, {{"topics", json::array{"agent.*"}}});
  open(client);
  subscribe(client, {{"topics", json::array{"agent.*"}}});

  std::vector<std::string> agents;
  for (int i = 0; i < 3; ++i) agents.push_back(create_agent("resume-" + std::to_string(i)));
  auto seen = collect_n(client, 3);
  ASSERT_EQ(seen.size(), 3u);
  const std::int64_t k = seen.back().id;
  client.abort();

  // While it is away: more than one replay page (500) of events.
  const std::string busy = agents[0];
  for (int i = 0; i < 160; ++i) {
    lifecycle(busy, "start");
    lifecycle(busy, "stop");
    if (HasFailure()) return;
  }
  for (int i = 0; i < 3; ++i) agents.push_back(create_agent("resume-away-" + std::to_string(i)));

  // Reconnect with lastEventId=k while a writer keeps producing live events.
  std::atomic<bool> writer_done{false};
  std::vector<std::string> live_agents;
  std::thread writer([&] {
    HttpClient c(port());
    for (int i = 0; i < 30; ++i) {
      live_agents.push_back(create_agent(c, "resume-live-" + std::to_string(i)));
      std::this_thread::sleep_for(5ms);
    }
    writer_done = true;
  });
  open(client);
  WsMessage ack = subscribe(client, {{"topics", json::array{"agent.*"}}, {"lastEventId", k}}, "resume");
  EXPECT_EQ(ack.num("/lastEventId"), k) << ack.describe();
  writer.join();
  const std::string marker = create_agent("resume-marker");

  auto until_marker = [&](const std::vector<Ev>& e) { return !e.empty() && e.back().agent_id == marker; };
  std::vector<WsMessage> other;
  auto resumed = collect(client, until_marker, 60s, &other, "agent.");
  auto all = collect(observer, until_marker, 60s, nullptr, "agent.");
  ASSERT_TRUE(until_marker(all)) << "observer did not see the marker; got " << all.size();
  ASSERT_TRUE(until_marker(resumed)) << "resumed client did not see the marker; got " << resumed.size();
  for (const auto& m : other) ADD_FAILURE() << "unexpected frame: " << m.describe();

  std::vector<std::int64_t> want;
  for (const auto& e : all) {
    if (e.id > k) want.push_back(e.id);
  }
  EXPECT_GT(want.size(), 640u);
  EXPECT_EQ(id_list(resumed), want) << "the resumed client must get exactly the events after " << k;

  // A second resume, through the URL this time, from the middle of the history.
  client.abort();
  const std::int64_t mid = want[want.size() / 2];
  ConnectOptions o;
  o.target = "/ws?lastEventId=" + std::to_string(mid);
  open(client, o);
  subscribe(client, {{"topics", json::array{"agent.*"}}}, "url-resume");
  const std::string marker2 = create_agent("resume-marker-2");
  auto until_marker2 = [&](const std::vector<Ev>& e) { return !e.empty() && e.back().agent_id == marker2; };
  auto again = collect(client, until_marker2, 60s, nullptr, "agent.");
  auto all2 = collect(observer, until_marker2, 60s, nullptr, "agent.");
  ASSERT_TRUE(until_marker2(again));
  std::vector<std::int64_t> want2;
  for (auto id : want) {
    if (id > mid) want2.push_back(id);
  }
  for (const auto& e : all2) want2.push_back(e.id);
  EXPECT_EQ(id_list(again), want2);
}

TEST_P(RealtimeTest, KillDashNineDuringWritesLosesAndDuplicatesNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient ws;
  open(ws);
  subscribe(ws, {{"topics", json::array{"agent.*"}}});

  // A burst of writes; the server is killed in the middle of it.
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    HttpClient c(port(), 5s);
    for (int i = 0; i < 5000 && !stop; ++i) {
      json::object body{{"name", "burst-" + std::to_string(i)}, {"type", "command"},
                        {"config", json::object{{"command", json::array{"true"}}}}};
      auto r = c.post("/api/v1/agents", json::serialize(body));
      if (r.status == 201) {
        std::lock_guard lock(mu);
        acknowledged.push_back(r.str("/data/id"));
      } else if (r.status == 0) {
        break;  // the server is gone
      }
    }
  });
  // Read events while the burst runs; kill once some have been acknowledged.
  std::vector<Ev> before;
  const auto deadline = Clock::now() + 60s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (acknowledged.size() >= 40 || Clock::now() > deadline) break;
    }
    WsMessage m = ws.receive(50ms);
    if (m.is_text() && m.type() == "event" && m.topic().starts_with("agent.")) before.push_back(to_ev(m));
  }
  server_->process().kill9();
  stop = true;
  writer.join();
  // Whatever was already on the wire before the kill.
  for (;;) {
    WsMessage m = ws.receive(2s);
    if (!m.is_text()) break;
    if (m.type() == "event" && m.topic().starts_with("agent.")) before.push_back(to_ev(m));
  }
  ASSERT_GE(acknowledged.size(), 40u);
  const std::int64_t last = before.empty() ? 0 : before.back().id;

  ASSERT_EQ(server_->restart(), "") << "restart on the same data";
  api_ = std::make_unique<HttpClient>(port());
  WsClient again;
  open(again);
  subscribe(again, {{"topics", json::array{"agent.*"}}, {"lastEventId", last}}, "after-crash");
  const std::string marker = create_agent("after-crash-marker");
  auto until_marker = [&](const std::vector<Ev>& e) { return !e.empty() && e.back().agent_id == marker; };
  auto after = collect(again, until_marker, 90s, nullptr, "agent.");
  ASSERT_TRUE(until_marker(after)) << "marker not seen; got " << after.size() << " events";

  std::vector<Ev> all = before;
  all.insert(all.end(), after.begin(), after.end());
  expect_increasing(all, "ids across the crash");
  std::map<std::string, int> created;
  std::set<std::int64_t> ids;
  for (const auto& e : all) {
    EXPECT_TRUE(ids.insert(e.id).second) << "event " << e.id << " arrived twice";
    if (e.status == "created") created[e.agent_id] += 1;
  }
  for (const auto& id : acknowledged) {
    EXPECT_EQ(created[id], 1) << "acknowledged agent " << id << ": its created event must arrive once";
  }
  for (const auto& [id, n] : created) EXPECT_EQ(n, 1) << id;
}

// Deletes the outbox rows with seq <= `upto` from the server's store, behind its back.
std::string delete_outbox_rows(TestServer& s, std::int64_t upto) {
  const std::string sql =
      "DELETE FROM outbox WHERE seq IS NOT NULL AND seq <= " + std::to_string(upto);
  if (s.backend() == Backend::kPostgres) return s.pg()->exec(sql);
  sqlite3* db = nullptr;
  const std::string path = s.config().data_dir + "/devplane.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string e = "sqlite3_open " + path + ": " + (db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return e;
  }
  sqlite3_busy_timeout(db, 10'000);
  char* err = nullptr;
  std::string out;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    out = std::string("sqlite: ") + (err ? err : "?");
    sqlite3_free(err);
  }
  sqlite3_close(db);
  return out;
}

TEST_P(RealtimeTest, ResumeBeyondTheOutboxGetsResyncRequiredThenLiveEvents) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient ws;
  open(ws);
  subscribe(ws, {{"topics", json::array{"agent.*"}}});
  for (int i = 0; i < 5; ++i) create_agent("resync-" + std::to_string(i));
  auto evs = collect_n(ws, 5);
  ASSERT_EQ(evs.size(), 5u);
  ws.abort();
  const std::int64_t cut = evs[2].id;
  ASSERT_EQ(delete_outbox_rows(*server_, cut), "");

  WsClient late;
  open(late);
  WsMessage ack = subscribe(late, {{"topics", json::array{"agent.*"}}, {"lastEventId", 0}}, "r0");
  EXPECT_EQ(ack.num("/lastEventId"), 0) << ack.describe();
  WsMessage resync = late.receive_reply(30s);
  ASSERT_EQ(resync.type(), "resync_required") << resync.describe();
  EXPECT_EQ(resync.num("/lastEventId"), 0) << resync.describe();
  EXPECT_EQ(resync.num("/oldestEventId"), cut + 1) << resync.describe();
  EXPECT_GE(resync.num("/latestEventId"), evs.back().id) << resync.describe();
  EXPECT_TRUE(late.skipped().empty()) << "no event before resync_required: " << late.skipped().front().describe();

  // Then live events flow.
  const std::string x = create_agent("resync-live");
  auto live = collect(late, [&](const std::vector<Ev>& e) { return !e.empty() && e.back().agent_id == x; }, 30s,
                      nullptr, "agent.");
  ASSERT_FALSE(live.empty());
  EXPECT_EQ(live.back().agent_id, x);
  for (const auto& e : live) EXPECT_GT(e.id, cut) << "a deleted event was replayed";

  // A resume that is still covered by the outbox works as usual.
  WsClient covered;
  open(covered);
  subscribe(covered, {{"topics", json::array{"agent.*"}}, {"lastEventId", evs[3].id}});
  auto rest = collect(covered, [&](const std::vector<Ev>& e) { return !e.empty() && e.back().agent_id == x; },
                      30s, nullptr, "agent.");
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().id, evs[4].id);
  EXPECT_EQ(rest.back().agent_id, x);
}

// ---------------------------------------------------------------------------- slow consumer

TEST_P(RealtimeTest, SlowConsumerIsClosedWhileFastOnesGetEverything) {
  // Health events tell how many WebSocket connections the server holds. Under
  // AddressSanitizer, freed memory sits in a quarantine (256 MiB by default) and would pass
  // for growth: keep it small so that RSS says something about the server's own bounds.
  std::string asan = env_or("ASAN_OPTIONS");
  asan += (asan.empty() ? "" : ":") + std::string("quarantine_size_mb=16");
  ASSERT_NO_FATAL_FAILURE(
      start({{"DEVPLANE_HEALTH_INTERVAL_MS", "250"}, {"ASAN_OPTIONS", asan}}));
  std::atomic<std::int64_t> ws_conns{-1};
  std::atomic<std::int64_t> ws_conns_max{-1};
  const pid_t pid = server_->process().pid();
  const std::int64_t rss_before = rss_bytes(pid);

  WsClient slow;
  ConnectOptions so;
  so.receive_buffer = 4096;
  open(slow, so);
  subscribe(slow, {{"topics", json::array{"*"}}});

  // Fast readers on their own threads, subscribed to everything: every seq must arrive.
  constexpr int kFast = 3;
  std::atomic<bool> producing_done{false};
  std::atomic<std::int64_t> final_seq{-1};
  struct FastResult {
    std::vector<std::int64_t> ids;
    std::string error;
    std::int64_t start = 0;
  };
  std::vector<FastResult> results(kFast);
  std::vector<std::unique_ptr<WsClient>> fast;
  for (int i = 0; i < kFast; ++i) {
    fast.push_back(std::make_unique<WsClient>());
    open(*fast.back());
    results[static_cast<std::size_t>(i)].start =
        subscribe(*fast.back(), {{"topics", json::array{"*"}}}).num("/lastEventId");
  }
  std::vector<std::thread> readers;
  for (int i = 0; i < kFast; ++i) {
    readers.emplace_back([&, i] {
      auto& r = results[static_cast<std::size_t>(i)];
      auto& ws = *fast[static_cast<std::size_t>(i)];
      const auto deadline = Clock::now() + 600s;
      while (Clock::now() < deadline) {
        const std::int64_t f = final_seq.load();
        if (f >= 0 && !r.ids.empty() && r.ids.back() >= f) return;
        WsMessage m = ws.receive(1s);
        if (m.timed_out()) {
          if (producing_done && f >= 0 && (r.ids.empty() || r.ids.back() >= f)) return;
          continue;
        }
        if (!m.is_text()) {
          r.error = m.describe();
          return;
        }
        if (m.type() == "event") {
          r.ids.push_back(m.id());
          if (i == 0 && m.topic() == "system.health.status") {
            const std::int64_t n = m.num("/data/websocketConnections");
            ws_conns = n;
            if (n > ws_conns_max) ws_conns_max = n;
          }
        }
      }
      r.error = "deadline";
    });
  }

  // Producers: start/stop cycles on a few agents (2 events per request), several threads,
  // until the slow client has been closed (bounded).
  std::vector<std::string> agents;
  for (int i = 0; i < 4; ++i) agents.push_back(create_agent(std::string(120, 'n') + std::to_string(i)));
  std::atomic<bool> slow_closed{false};
  std::atomic<int> requests{0};
  std::atomic<int> producers_finished{0};
  constexpr int kMaxRequestsPerThread = 5000;  // 4 x 5000 x 2 = 40,000 events at most
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      struct Done {
        std::atomic<int>& n;
        ~Done() { ++n; }
      } done{producers_finished};
      HttpClient c(port());
      const std::string& id = agents[static_cast<std::size_t>(t)];
      for (int i = 0; i < kMaxRequestsPerThread && !slow_closed; ++i) {
        auto r = c.post("/api/v1/agents/" + id + (i % 2 == 0 ? "/start" : "/stop"), "");
        if (r.status != 200) {
          ADD_FAILURE() << r.describe() << " " << c.error();
          return;
        }
        ++requests;
      }
    });
  }
  // Watch the server's connection count until the slow client is gone (3 fast remain).
  const auto deadline = Clock::now() + 600s;
  std::int64_t rss_peak = rss_before;
  const auto produce_start = Clock::now();
  while (Clock::now() < deadline && !slow_closed) {
    std::this_thread::sleep_for(250ms);
    // The slow client keeps writing (a ping now and then) while it never reads, so that the
    // server's dead-peer heartbeat does not drop it first: it must be its send queue.
    if (slow.is_open()) (void)slow.send(R"({"op":"ping","id":"slow"})", 2s);
    rss_peak = std::max(rss_peak, rss_bytes(pid));
    // The slow socket is closed either by the close frame or, when that cannot get through,
    // by the grace timer; either way the server drops it from its connection table, which
    // the health events show (4 connections before, the 3 fast ones after).
    if (ws_conns_max.load() >= 4 && ws_conns.load() == kFast) slow_closed = true;
    if (producers_finished.load() == 4) break;
  }
  slow_closed = true;
  for (auto& p : producers) p.join();

  // The last seq: a marker agent, then wait for the fast clients to have everything.
  const std::string marker = create_agent("slow-marker");
  ASSERT_FALSE(marker.empty());
  {
    WsClient probe;
    open(probe);
    auto ack = subscribe(probe, {{"topics", json::array{"agent.*"}}}, "probe");
    final_seq = ack.num("/lastEventId");
  }
  producing_done = true;
  for (auto& r : readers) r.join();

  // The slow client: read what is left; it must end in a close by the server.
  std::size_t slow_events = 0;
  WsMessage end;
  const auto slow_deadline = Clock::now() + 120s;
  while (Clock::now() < slow_deadline) {
    end = slow.receive(10s);
    if (!end.is_text()) break;
    ++slow_events;
  }
  ASSERT_TRUE(end.closed()) << "the server must close the slow consumer; last: " << end.describe()
                            << " after " << slow_events << " frames, " << requests.load()
                            << " requests";
  if (end.close_code != -1) {
    EXPECT_EQ(end.close_code, 1008) << end.describe();
    EXPECT_NE(end.close_reason.find("slow consumer"), std::string::npos) << end.describe();
  }
  const std::string log = server_->process().stderr_text();
  EXPECT_NE(log.find("websocket client too slow; closing"), std::string::npos)
      << "the server must close the slow client for its full send queue, not another reason";
  std::cerr << "[slow consumer] " << requests.load() << " requests in "
            << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - produce_start).count()
            << " s, slow client got "
            << slow_events << " frames then " << end.describe() << "; RSS before "
            << rss_before / 1048576 << " MiB, peak " << rss_peak / 1048576 << " MiB\n";

  // Every fast client got every event, consecutively (they subscribe to "*").
  for (int i = 0; i < kFast; ++i) {
    const auto& r = results[static_cast<std::size_t>(i)];
    EXPECT_EQ(r.error, "") << "fast client " << i;
    ASSERT_FALSE(r.ids.empty()) << "fast client " << i;
    EXPECT_EQ(r.ids.front(), r.start + 1) << "fast client " << i;
    EXPECT_GE(r.ids.back(), final_seq.load()) << "fast client " << i;
    for (std::size_t j = 1; j < r.ids.size(); ++j) {
      if (r.ids[j] != r.ids[j - 1] + 1) {
        ADD_FAILURE() << "fast client " << i << ": after " << r.ids[j - 1] << " came " << r.ids[j];
        break;
      }
    }
    EXPECT_TRUE(ping(*fast[static_cast<std::size_t>(i)])) << "fast client " << i << " still connected";
  }
  // Memory stays bounded: the slow client's backlog is capped (8 MiB per connection).
  EXPECT_LT(rss_peak - rss_before, 256LL * 1024 * 1024)
      << "RSS before " << rss_before << " peak " << rss_peak;
  auto h = api_->get("/api/v1/system/health");
  EXPECT_EQ(h.status, 200u) << h.describe();
}

// ---------------------------------------------------------------------------- health, shutdown

TEST_P(RealtimeTest, HealthStatusEventsArrive) {
  ASSERT_NO_FATAL_FAILURE(start({{"DEVPLANE_HEALTH_INTERVAL_MS", "200"}}));
  WsClient ws;
  open(ws);
  subscribe(ws, {{"topics", json::array{"system.health.status"}}});
  std::vector<WsMessage> health;
  const auto deadline = Clock::now() + 30s;
  bool found = false;
  while (!found && Clock::now() < deadline) {
    WsMessage m = ws.receive(10s);
    if (!m.is_text()) break;
    if (m.type() != "event") continue;
    EXPECT_EQ(m.topic(), "system.health.status") << m.describe();
    health.push_back(m);
    found = m.num("/data/websocketConnections") >= 1 && health.size() >= 3;
  }
  ASSERT_TRUE(found) << "no system.health.status with websocketConnections >= 1; got " << health.size();
  const WsMessage& h = health.back();
  const auto& d = h.json.at("data").as_object();
  ASSERT_TRUE(d.at("cpuPercent").is_number()) << h.describe();
  EXPECT_GE(d.at("cpuPercent").to_number<double>(), 0.0);
  EXPECT_GT(h.num("/data/memoryRssBytes"), 1'000'000) << h.describe();
  EXPECT_GE(h.num("/data/websocketConnections"), 1);
  EXPECT_GE(h.num("/data/queueDepth"), 0) << h.describe();
  EXPECT_FALSE(h.str("/data/nodeId").empty());
  EXPECT_EQ(h.str("/data/status"), "ok") << h.describe();
  EXPECT_TRUE(d.at("store").at("up").as_bool()) << h.describe();
  EXPECT_TRUE(d.at("store").at("latencyMs").is_number()) << h.describe();
  EXPECT_TRUE(d.at("bus").at("up").as_bool()) << h.describe();
  EXPECT_TRUE(d.at("bus").at("latencyMs").is_number()) << h.describe();
  EXPECT_EQ(h.str("/data/bus/backend"), GetParam() == Mode::kLocalSqlite ? "in-process" : "redis");
  for (std::size_t i = 1; i < health.size(); ++i) EXPECT_GT(health[i].id(), health[i - 1].id());
}

TEST_P(RealtimeTest, GracefulShutdownClosesClientsWith1001) {
  ASSERT_NO_FATAL_FAILURE(start());
  WsClient a, b;
  open(a);
  open(b);
  subscribe(a, {{"topics", json::array{"*"}}});
  server_->process().signal(SIGTERM);
  for (WsClient* ws : {&a, &b}) {
    auto frames = ws->receive_until([](const WsMessage&) { return false; }, 30s);
    const WsMessage& last = frames.back();
    ASSERT_TRUE(last.closed()) << last.describe();
    EXPECT_EQ(last.close_code, 1001) << last.describe();
  }
  EXPECT_EQ(server_->process().wait(30s), 0) << tail(server_->process().stderr_text());
}

INSTANTIATE_TEST_SUITE_P(Backends, RealtimeTest,
                         ::testing::Values(Mode::kLocalSqlite, Mode::kRedisPostgres), mode_name);

// ---------------------------------------------------------------------------- Redis only

class RealtimeRedisTest : public ::testing::Test, public RealtimeBase {
 protected:
  void TearDown() override {
    for (auto* p : {&node_b_}) {
      if (*p && (*p)->running()) {
        EXPECT_EQ((*p)->stop(), 0) << tail((*p)->stderr_text());
        check_sanitizers((*p)->stderr_text());
      }
    }
    node_b_.reset();
    stop_all();
  }
  std::unique_ptr<ServerProcess> node_b_;
};

TEST_F(RealtimeRedisTest, EventsCrossNodesThroughRedis) {
  ASSERT_EQ(start_server(Mode::kRedisPostgres), "");
  node_b_ = std::make_unique<ServerProcess>();
  ASSERT_EQ(node_b_->start(server_->config()), "") << "second node on the same PostgreSQL + Redis";
  const std::uint16_t port_b = node_b_->port();

  WsClient on_a, on_b;
  open(on_a);
  open(on_b, {}, port_b);
  subscribe(on_a, {{"topics", json::array{"agent.*"}}});
  subscribe(on_b, {{"topics", json::array{"agent.*"}}});

  // A change through node A reaches the client on node B, and the other way round.
  const std::string x = create_agent("via-a");
  HttpClient api_b(port_b);
  const std::string y = create_agent(api_b, "via-b");
  lifecycle(api_b, x, "start");
  auto ea = collect_n(on_a, 4, 60s);
  auto eb = collect_n(on_b, 4, 60s);
  ASSERT_EQ(ea.size(), 4u) << ids_of(ea);
  ASSERT_EQ(eb.size(), 4u) << ids_of(eb);
  EXPECT_EQ(id_list(ea), id_list(eb)) << "both nodes deliver the same events in the same order";
  EXPECT_EQ(eb[0].agent_id, x);
  EXPECT_EQ(eb[1].agent_id, y);
  EXPECT_EQ(ea[1].agent_id, y);
  EXPECT_EQ(eb[3].status, "running");
  expect_increasing(eb, "node B");

  // Resume on node B from the middle works with events produced through node A.
  WsClient resumer;
  open(resumer, {}, port_b);
  subscribe(resumer, {{"topics", json::array{"agent.*"}}, {"lastEventId", ea[1].id}});
  auto r = collect_n(resumer, 2, 30s);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].id, ea[2].id);
  EXPECT_EQ(r[1].id, ea[3].id);
}

TEST_F(RealtimeRedisTest, RedisRestartMidStreamLosesNothing) {
  OwnRedis redis;
  ASSERT_EQ(redis.start(), "");
  // The node uses our Redis, not the shared one.
  PgDatabase pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  ServerConfig cfg;
  cfg.backend = Backend::kPostgres;
  cfg.database_url = pg.url();
  cfg.extra_args = {"--redis-url", redis.url()};
  cfg.env = {{"DEVPLANE_HEALTH_INTERVAL_MS", kQuietHealth}};
  ServerProcess node;  // destroyed (killed) before the database and Redis on any failure
  ASSERT_EQ(node.start(cfg), "");
  HttpClient api(node.port());

  WsClient ws;
  open(ws, {}, node.port());
  subscribe(ws, {{"topics", json::array{"agent.*"}}});
  const std::string first = create_agent(api, "before-redis-restart");
  auto e1 = collect_n(ws, 1, 30s);
  ASSERT_EQ(e1.size(), 1u);
  EXPECT_EQ(e1[0].agent_id, first);

  redis.kill();
  // The API still works: the store has every change; the outbox keeps their events.
  std::vector<std::string> during;
  for (int i = 0; i < 5; ++i) {
    during.push_back(create_agent(api, "while-redis-down-" + std::to_string(i)));
    ASSERT_FALSE(during.back().empty());
  }
  lifecycle(api, during[0], "start");
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(ping(ws)) << "the WebSocket stays up while Redis is down";

  ASSERT_EQ(redis.start(), "") << "restart Redis on the same port";
  auto until_all = [&](const std::vector<Ev>& e) { return e.size() >= 7; };
  auto after = collect(ws, until_all, 90s, nullptr, "agent.");
  ASSERT_EQ(after.size(), 7u) << ids_of(after);
  expect_increasing(after, "after Redis restart");
  EXPECT_GT(after.front().id, e1[0].id);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(after[i].agent_id, during[i]);
    EXPECT_EQ(after[i].status, "created");
  }
  EXPECT_EQ(after[5].agent_id, during[0]);
  EXPECT_EQ(after[5].status, "starting");
  EXPECT_EQ(after[6].status, "running");
  // And live delivery continues.
  const std::string later = create_agent(api, "after-redis-restart");
  auto more = collect_n(ws, 1, 30s);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].agent_id, later);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(ping(ws));
  for (const auto& m : ws.skipped()) ADD_FAILURE() << "duplicate or extra: " << m.describe();
  ws.close();
  EXPECT_EQ(node.stop(), 0) << tail(node.stderr_text());
  check_sanitizers(node.stderr_text());
}

}  // namespace
}  // namespace dp::it
