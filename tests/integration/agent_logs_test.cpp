// GET /api/v1/agents/:id/logs over real HTTP with the real binary and real sandboxed command
// agents: the kept tail with ids, resume by id, rotation and ids across a restart, follow over
// Server-Sent Events receiving lines written after it connected, the follower cap and its
// release when a client leaves, bad parameters and credentials, and a graceful shutdown with a
// follower open.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;


// One raw connection that sends a request and reads what the server streams back.
class RawStream {
 public:
  RawStream(std::uint16_t port, const std::string& target, const std::string& token,
            const Headers& extra = {})
      : sock_(ioc_) {
    sock_.connect({asio::ip::make_address("127.0.0.1"), port});
    std::string head = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
    for (const auto& [k, v] : extra) head += k + ": " + v + "\r\n";
    head += "\r\n";
    asio::write(sock_, asio::buffer(head));
    sock_.non_blocking(true);
  }

  // Reads until `want` is in what arrived, the server closes, or `limit` passes.
  bool read_until(const std::string& want, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[8192];
    while (got_.find(want) == std::string::npos) {
      if (closed_ || std::chrono::steady_clock::now() >= deadline) return false;
      boost::system::error_code ec;
      const std::size_t n = sock_.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      if (ec) {
        closed_ = true;
        continue;
      }
      got_.append(buf, n);
    }
    return true;
  }
  // Reads until the server closes the connection (true) or `limit` passes (false).
  bool read_to_close(std::chrono::milliseconds limit) {
    read_until("\x01never\x01", limit);
    return closed_;
  }
  const std::string& got() const { return got_; }
  void close() {
    boost::system::error_code ec;
    sock_.close(ec);
  }

 private:
  asio::io_context ioc_;
  asio::ip::tcp::socket sock_;
  std::string got_;
  bool closed_ = false;
};

// The ids of the `id:` lines of an event stream, in order.
std::vector<std::uint64_t> event_ids(const std::string& s) {
  std::vector<std::uint64_t> out;
  for (std::size_t p = s.find("\nid: "); p != std::string::npos; p = s.find("\nid: ", p + 1)) {
    out.push_back(std::stoull(s.substr(p + 5, s.find('\n', p + 5) - p - 5)));
  }
  return out;
}

class AgentLogsTest : public BackendServerTest {
 protected:
  void SetUp() override { start(); }

  std::string agent(const std::string& name, const std::string& command) {
    auto r = client_->post("/api/v1/agents",
                           json::serialize(json::object{{"name", name}, {"type", "command"},
                                                        {"config", json::object{{"command", command}}}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    EXPECT_EQ(client_->post("/api/v1/agents/" + id + "/start", "").status, 200u);
    return id;
  }

  std::string run(const std::string& agent_id, const std::string& input) {
    auto r = client_->post("/api/v1/agents/" + agent_id + "/tasks",
                           json::serialize(json::object{{"input", input}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string task = r.str("/data/id");
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto t = client_->get("/api/v1/agents/" + agent_id + "/tasks/" + task);
      const auto st = t.str("/data/status");
      if (st == "succeeded" || st == "failed" || st == "cancelled") {
        EXPECT_EQ(st, "succeeded") << t.describe();
        return task;
      }
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "task did not finish in time";
    return task;
  }

  std::string token() const { return admin_token(server_->port()); }

};

TEST_P(AgentLogsTest, TailKeepsTheLastLinesWithIdsAndResumesAfterAnId) {
  const std::string id = agent("talker", "read x; for i in 1 2 3 4 5; do echo said:$x:$i; done; echo warn:$x >&2");
  const std::string task = run(id, "one");
  auto all = client_->get("/api/v1/agents/" + id + "/logs");
  ASSERT_EQ(all.status, 200u) << all.describe();
  ASSERT_TRUE(all.at("/data") && all.at("/data")->is_array()) << all.describe();
  const auto& lines = all.at("/data")->as_array();
  ASSERT_EQ(lines.size(), 6u) << all.describe();
  EXPECT_EQ(all.num("/meta/count"), 6);
  EXPECT_EQ(all.num("/meta/tail"), 200);
  int stdout_lines = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& o = lines[i].as_object();
    EXPECT_EQ(o.at("id").to_number<std::int64_t>(), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(o.at("taskId").as_string(), task);
    if (o.at("stream").as_string() == "stdout") {
      ++stdout_lines;
      EXPECT_EQ(o.at("text").as_string(), "said:one:" + std::to_string(stdout_lines)) << all.describe();
    } else {
      EXPECT_EQ(o.at("stream").as_string(), "stderr");
      EXPECT_EQ(o.at("text").as_string(), "warn:one");
    }
    EXPECT_FALSE(o.at("timestamp").as_string().empty());
  }
  EXPECT_EQ(stdout_lines, 5);

  auto last2 = client_->get("/api/v1/agents/" + id + "/logs?tail=2");
  ASSERT_EQ(last2.status, 200u) << last2.describe();
  EXPECT_EQ(last2.num("/meta/count"), 2);
  EXPECT_EQ(last2.num("/data/0/id"), 5);
  EXPECT_EQ(last2.num("/data/1/id"), 6);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/logs?tail=0").num("/meta/count"), 0);

  auto after4 = client_->get("/api/v1/agents/" + id + "/logs?since=4");
  ASSERT_EQ(after4.status, 200u) << after4.describe();
  EXPECT_EQ(after4.num("/meta/count"), 2);
  EXPECT_EQ(after4.num("/data/0/id"), 5);
  EXPECT_EQ(after4.num("/meta/skipped"), 0);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/logs?since=6").num("/meta/count"), 0);

  // An agent that never ran has an empty log, not an error.
  const std::string quiet = agent("quiet", "cat");
  auto none = client_->get("/api/v1/agents/" + quiet + "/logs");
  EXPECT_EQ(none.status, 200u) << none.describe();
  EXPECT_EQ(none.num("/meta/count"), 0);
}

TEST_P(AgentLogsTest, FilesRotateAtTheirCapAndIdsGoOnAfterARestart) {
  // With PostgreSQL the data dir only holds the logs: name one to look into.
  TempDir pg_data;
  std::vector<std::string> args;
  if (GetParam() == Backend::kPostgres) args = {"--data-dir", pg_data.str()};
  start(args, {{"DEVPLANE_AGENT_LOG_MAX_BYTES", "4096"}, {"DEVPLANE_AGENT_LOG_FILES", "1"}});
  const std::string id = agent("chatty", "read x; i=0; while [ $i -lt 150 ]; do i=$((i+1)); echo \"$x line $i of a rotating log\"; done");
  run(id, "a");
  run(id, "b");
  const fs::path dir =
      fs::path(GetParam() == Backend::kPostgres ? pg_data.str() : server_->process().data_dir()) / "logs";
  EXPECT_TRUE(fs::exists(dir / (id + ".log")));
  EXPECT_TRUE(fs::exists(dir / (id + ".log.1")));
  EXPECT_FALSE(fs::exists(dir / (id + ".log.2")));
  for (const char* f : {".log", ".log.1"}) EXPECT_LE(fs::file_size(dir / (id + f)), 4096u) << f;

  auto kept = client_->get("/api/v1/agents/" + id + "/logs?tail=10000");
  ASSERT_EQ(kept.status, 200u) << kept.describe();
  const auto& lines = kept.at("/data")->as_array();
  ASSERT_FALSE(lines.empty());
  EXPECT_LT(lines.size(), 300u) << "the oldest lines were rotated away";
  // The kept lines are the newest, their ids without a hole, ending at the 300th line.
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].at("id").to_number<std::int64_t>(), lines[i - 1].at("id").to_number<std::int64_t>() + 1);
  }
  EXPECT_EQ(lines.back().at("id").to_number<std::int64_t>(), 300);
  EXPECT_EQ(lines.back().at("text").as_string(), "b line 150 of a rotating log");
  // Resuming from an id that was rotated away says how many lines were lost.
  auto old = client_->get("/api/v1/agents/" + id + "/logs?since=1");
  EXPECT_EQ(old.num("/meta/skipped"), lines.front().at("id").to_number<std::int64_t>() - 2) << old.describe();

  ASSERT_EQ(server_->process().stop(), 0);
  ASSERT_EQ(server_->restart(), "");
  client_ = std::make_unique<HttpClient>(server_->port());
  client_->post("/api/v1/agents/" + id + "/start", "");  // 200, or 409 when it is still running
  run(id, "c");
  auto after = client_->get("/api/v1/agents/" + id + "/logs?tail=1");
  EXPECT_EQ(after.num("/data/0/id"), 450) << after.describe();
  EXPECT_EQ(after.str("/data/0/text"), "c line 150 of a rotating log");
}

TEST_P(AgentLogsTest, FollowStreamsLinesWrittenAfterItConnectedAndResumesFromLastEventId) {
  const std::string id = agent("talker", "read x; echo said:$x; sleep 0.2; echo later:$x");
  run(id, "one");
  RawStream follow(server_->port(), "/api/v1/agents/" + id + "/logs?follow=true&tail=1", token());
  ASSERT_TRUE(follow.read_until("later:one", 10s)) << follow.got();
  EXPECT_NE(follow.got().find("HTTP/1.1 200 OK"), std::string::npos) << follow.got();
  EXPECT_NE(follow.got().find("Content-Type: text/event-stream"), std::string::npos) << follow.got();
  EXPECT_NE(follow.got().find("Transfer-Encoding: chunked"), std::string::npos) << follow.got();
  EXPECT_EQ(follow.got().find("said:one"), std::string::npos) << "tail=1 sends only the last line";

  // A task started after the follower connected: its lines arrive as they are written.
  run(id, "two");
  ASSERT_TRUE(follow.read_until("later:two", 10s)) << follow.got();
  EXPECT_NE(follow.got().find("event: log\ndata: {\"id\":3,"), std::string::npos) << follow.got();
  EXPECT_EQ(event_ids(follow.got()), (std::vector<std::uint64_t>{2, 3, 4})) << follow.got();

  // Reconnecting with the last id it got, as an EventSource does: exactly the lines after it.
  RawStream resumed(server_->port(), "/api/v1/agents/" + id + "/logs?follow=true&tail=1", token(),
                    {{"Last-Event-ID", "2"}});
  ASSERT_TRUE(resumed.read_until("later:two", 10s)) << resumed.got();
  EXPECT_EQ(event_ids(resumed.got()), (std::vector<std::uint64_t>{3, 4})) << resumed.got();
  run(id, "three");
  ASSERT_TRUE(resumed.read_until("later:three", 10s)) << resumed.got();
  ASSERT_TRUE(follow.read_until("later:three", 10s)) << follow.got();
  EXPECT_EQ(event_ids(resumed.got()), (std::vector<std::uint64_t>{3, 4, 5, 6})) << resumed.got();
  EXPECT_EQ(event_ids(follow.got()), (std::vector<std::uint64_t>{2, 3, 4, 5, 6})) << follow.got();

  // A viewer may follow too.
  auto key = client_->post("/api/v1/api-keys", json::serialize(json::object{{"name", "watcher"}, {"role", "viewer"}}));
  ASSERT_EQ(key.status, 201u) << key.describe();
  RawStream viewer(server_->port(), "/api/v1/agents/" + id + "/logs?follow=true", key.str("/data/key"));
  ASSERT_TRUE(viewer.read_until("later:three", 10s)) << viewer.got();
}

TEST_P(AgentLogsTest, FollowersAreCappedAndALeavingClientFreesItsPlace) {
  start({}, {{"DEVPLANE_AGENT_LOG_MAX_FOLLOWERS", "1"}});
  const std::string id = agent("talker", "read x; echo said:$x");
  const std::string target = "/api/v1/agents/" + id + "/logs?follow=true";
  auto first = std::make_unique<RawStream>(server_->port(), target, token());
  ASSERT_TRUE(first->read_until("following the logs", 10s)) << first->got();

  RawStream second(server_->port(), target, token());
  ASSERT_TRUE(second.read_until("too_many_followers", 10s)) << second.got();
  EXPECT_NE(second.got().find("HTTP/1.1 429"), std::string::npos) << second.got();
  // Plain reads are not followers: still served.
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/logs").status, 200u);

  first->close();
  first.reset();
  // The server notices the closed connection (not only at its next write) and frees the place.
  bool freed = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!freed && std::chrono::steady_clock::now() < deadline) {
    RawStream again(server_->port(), target, token());
    again.read_until("\r\n\r\n", 5s);
    freed = again.got().find("200 OK") != std::string::npos;
    if (freed) {
      run(id, "after");
      EXPECT_TRUE(again.read_until("said:after", 10s)) << again.got();
    } else {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_TRUE(freed) << "the follower of a client that left was not released";
}

TEST_P(AgentLogsTest, BadParametersUnknownAgentsAndMissingCredentialsAreRefused) {
  const std::string id = agent("talker", "read x; echo said:$x");
  const std::string base = "/api/v1/agents/" + id + "/logs";
  for (const std::string q : {"?follow=maybe", "?follow=", "?tail=-1", "?tail=10001", "?tail=abc",
                              "?tail=99999999999999999999999", "?since=-3", "?since=x", "?colour=red",
                              "?follow=true&tail=-1", "?follow=true&lines=3"}) {
    auto r = client_->get(base + q);
    EXPECT_EQ(r.status, 422u) << q << " -> " << r.describe();
    EXPECT_EQ(r.str("/error/code"), "validation_failed") << q;
  }
  auto bad_id = client_->get(base + "?follow=true", {{"Last-Event-ID", "abc"}});
  EXPECT_EQ(bad_id.status, 422u) << bad_id.describe();
  EXPECT_EQ(client_->get("/api/v1/agents/not-a-uuid/logs").status, 400u);
  EXPECT_EQ(client_->get("/api/v1/agents/01a217b7-0070-716d-ad26-85bd9f3e54b2/logs").status, 404u);
  EXPECT_EQ(client_->get("/api/v1/agents/01a217b7-0070-716d-ad26-85bd9f3e54b2/logs?follow=true").status, 404u);
  client_->set_token("");
  EXPECT_EQ(client_->get(base).status, 401u);
  EXPECT_EQ(client_->get(base + "?follow=true").status, 401u);
  client_->reset_token();
  // None of it left a follower behind or broke the log.
  run(id, "fine");
  auto ok = client_->get(base);
  EXPECT_EQ(ok.num("/meta/count"), 1) << ok.describe();
  EXPECT_EQ(ok.str("/data/0/text"), "said:fine");
}

TEST_P(AgentLogsTest, GracefulShutdownEndsAnOpenFollowerPromptly) {
  const std::string id = agent("talker", "read x; echo said:$x");
  run(id, "one");
  RawStream follow(server_->port(), "/api/v1/agents/" + id + "/logs?follow=true", token());
  ASSERT_TRUE(follow.read_until("said:one", 10s)) << follow.got();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->process().stop(), 0) << server_->process().stderr_text();
  const auto took = std::chrono::steady_clock::now() - t0;
  // The default shutdown_timeout_ms is 10 s: ending well before it shows the follower did not
  // hold the shutdown up.
  EXPECT_LT(took, 5s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  EXPECT_TRUE(follow.read_to_close(5s));
  EXPECT_NE(follow.got().find("\r\n0\r\n\r\n"), std::string::npos) << "the stream ends with its last chunk";
  EXPECT_EQ(server_->process().stderr_text().find("shutdown deadline passed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, AgentLogsTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
