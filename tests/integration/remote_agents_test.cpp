// Remote agents against the real binary, on SQLite and PostgreSQL: the Node.js reference
// client (examples/agents/remote-client) completes tasks and survives a server restart;
// messages get delivered_at only once the agent has acknowledged them; keys of the wrong
// agent, role or kind are refused; malformed, oversized and out-of-order frames get error
// frames; results of superseded attempts are fenced (docs/agent-protocol.md).
//
// Needs node (DP_NODE_BINARY or DEVPLANE_TEST_NODE) and `npm ci` in
// examples/agents/remote-client (scripts/test does both).
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "child_process.hpp"
#include "harness.hpp"
#include "ws_client.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// The server drops an agent silent for this long; its tasks' leases last as long.
constexpr int kHeartbeatTimeoutMs = 3000;

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

class RemoteAgentsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    port_ = free_loopback_port();
    server_ = std::make_unique<TestServer>(
        GetParam(), std::vector<std::string>{"--port", std::to_string(port_)},
        Env{{"DEVPLANE_REMOTE_HEARTBEAT_TIMEOUT_MS", std::to_string(kHeartbeatTimeoutMs)}});
    ASSERT_EQ(server_->error(), "");
    http_ = std::make_unique<HttpClient>(port_);
  }

  std::string create_agent(const std::string& name, const std::string& type = "remote",
                           json::object config = {}) {
    json::object body{{"name", name}, {"type", type}};
    if (type == "command") config["command"] = "cat";
    if (!config.empty()) body["config"] = config;
    auto r = http_->post("/api/v1/agents", json_str(body));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }
  std::string create_key(const std::string& name, const std::string& role,
                         const std::string& agent_id = "") {
    json::object body{{"name", name}, {"role", role}};
    if (!agent_id.empty()) body["agentId"] = agent_id;
    auto r = http_->post("/api/v1/api-keys", json_str(body));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/key");
  }
  std::string post_task(const std::string& agent, const json::value& input) {
    auto r = http_->post("/api/v1/agents/" + agent + "/tasks", json_str(json::object{{"input", input}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }
  HttpResponse get_task(const std::string& agent, const std::string& task) {
    return http_->get("/api/v1/agents/" + agent + "/tasks/" + task);
  }
  // Polls until the task has finished; returns its last state.
  HttpResponse wait_task(const std::string& agent, const std::string& task,
                         std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto r = get_task(agent, task);
      const std::string s = r.str("/data/status");
      if (s == "succeeded" || s == "failed" || s == "cancelled" ||
          std::chrono::steady_clock::now() >= deadline) {
        return r;
      }
      std::this_thread::sleep_for(100ms);
    }
  }
  HttpResponse agent(const std::string& id) { return http_->get("/api/v1/agents/" + id); }
  // Polls until the agent has `status`; returns the agent.
  HttpResponse wait_status(const std::string& id, const std::string& status,
                           std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto r = agent(id);
      if (r.str("/data/status") == status || std::chrono::steady_clock::now() >= deadline) return r;
      std::this_thread::sleep_for(100ms);
    }
  }

  // Starts the reference client for `agent` with `key`; waits for its first connection.
  std::string start_client(ChildProcess& p, const std::string& agent, const std::string& key) {
    const std::string dir = source_dir() + "/examples/agents/remote-client";
    if (!std::filesystem::exists(dir + "/node_modules/ws")) {
      return dir + "/node_modules is missing: run `npm ci` there (scripts/test does)";
    }
    const std::string node = node_binary(DP_NODE_BINARY);
    if (node.empty() || !std::filesystem::exists(node)) {
      return "node not found (" + node + "): install nodejs or set DEVPLANE_TEST_NODE";
    }
    p.start({node, dir + "/client.mjs", "--url", "http://127.0.0.1:" + std::to_string(port_),
             "--agent-id", agent, "--min-backoff-ms", "100", "--max-backoff-ms", "500"},
            {{"DEVPLANE_AGENT_KEY", key}}, "\"event\":\"connected\"", 30s);
    return p.error();
  }

  // A raw protocol connection as `agent` with `key` (no hello sent). Empty on success.
  std::string open(WsClient& ws, const std::string& agent, const std::string& key,
                   Headers extra = {}) {
    ConnectOptions o;
    o.target = "/api/v1/agents/" + agent + "/connect";
    o.headers = key.empty() ? Headers{{"Authorization", ""}} : bearer(key);
    for (auto& h : extra) o.headers.push_back(std::move(h));
    return ws.connect(port_, o);
  }
  // Sends hello and returns the welcome.
  WsMessage hello(WsClient& ws) {
    EXPECT_EQ(ws.send(R"({"type":"hello","protocol":1,"id":"h1","client":{"name":"it"}})"), "");
    WsMessage w = ws.receive(15s);
    EXPECT_EQ(w.type(), "welcome") << w.describe();
    return w;
  }
  // The next frame of `type`, skipping others (heartbeat acks and the like).
  WsMessage next(WsClient& ws, const std::string& type, std::chrono::milliseconds timeout = 15s) {
    auto got = ws.receive_until([&](const WsMessage& m) { return m.type() == type; }, timeout);
    return got.back();
  }
  // Sends `frame` and expects an error frame with `code`; the connection stays.
  void expect_error(WsClient& ws, const std::string& frame, const std::string& code) {
    ASSERT_EQ(ws.send(frame), "") << frame.substr(0, 80);
    WsMessage e = next(ws, "error");
    EXPECT_EQ(e.str("/code"), code) << frame.substr(0, 200) << " -> " << e.describe();
  }

  std::uint16_t port_ = 0;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST_P(RemoteAgentsTest, ReferenceClientCompletesTasks) {
  const std::string id = create_agent("worker-1");
  const std::string key = create_key("worker-1-key", "agent", id);
  // Queued before any connection: the local executor must leave it for the remote agent.
  const std::string early = post_task(id, "echo queued-before-connect");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(get_task(id, early).str("/data/status"), "queued");
  EXPECT_EQ(agent(id).str("/data/status"), "created");

  ChildProcess client;
  ASSERT_EQ(start_client(client, id, key), "");
  auto t0 = wait_task(id, early);
  EXPECT_EQ(t0.str("/data/status"), "succeeded") << t0.describe();
  EXPECT_EQ(t0.str("/data/result/stdout"), "queued-before-connect\n") << t0.describe();
  EXPECT_EQ(t0.num("/data/result/exitCode"), 0);
  EXPECT_EQ(t0.num("/data/attempts"), 1);
  EXPECT_EQ(agent(id).str("/data/status"), "running");

  const std::string failing = post_task(id, "echo out; echo err >&2; exit 3");
  auto t1 = wait_task(id, failing);
  EXPECT_EQ(t1.str("/data/status"), "failed") << t1.describe();
  EXPECT_EQ(t1.num("/data/result/exitCode"), 3);
  EXPECT_EQ(t1.str("/data/result/stderr"), "err\n");
  EXPECT_NE(t1.str("/data/error").find("code 3"), std::string::npos) << t1.describe();

  const std::string echoed = post_task(id, json::object{{"job", "x"}});
  auto t2 = wait_task(id, echoed);
  EXPECT_EQ(t2.str("/data/status"), "succeeded") << t2.describe();
  EXPECT_EQ(t2.str("/data/result/echo/job"), "x") << t2.describe();

  // The output went out as agent.log events (replayed from the outbox).
  WsClient events;
  ASSERT_EQ(events.connect(port_), "");
  ASSERT_EQ(events.receive(15s).type(), "hello");
  ASSERT_EQ(events.send(json::serialize(json::object{{"op", "subscribe"},
                                                     {"id", "s"},
                                                     {"topics", json::array{"agent.log"}},
                                                     {"agentId", id},
                                                     {"lastEventId", 0}})),
            "");
  auto logs = events.receive_until(
      [&](const WsMessage& m) {
        return m.type() == "event" && m.str("/data/taskId") == early &&
               m.str("/data/text").find("queued-before-connect") != std::string::npos;
      },
      15s);
  EXPECT_TRUE(logs.back().is_text()) << logs.back().describe();
  EXPECT_EQ(logs.back().str("/data/stream"), "stdout");
  // And they are kept on the node like a local agent's (GET /api/v1/agents/:id/logs).
  auto kept = http_->get("/api/v1/agents/" + id + "/logs");
  ASSERT_EQ(kept.status, 200u) << kept.describe();
  EXPECT_NE(kept.body.find(R"("stream":"stdout","text":"queued-before-connect")"), std::string::npos)
      << kept.describe();
  EXPECT_NE(kept.body.find(R"("stream":"stderr","text":"err")"), std::string::npos) << kept.describe();

  // A message reaches the client, which acknowledges it: then it is delivered.
  auto msg = http_->post("/api/v1/agents/" + id + "/messages",
                         json_str(json::object{{"type", "text"}, {"payload", json::object{{"hi", 1}}}}));
  ASSERT_EQ(msg.status, 201u) << msg.describe();
  const std::string msg_id = msg.str("/data/id");
  EXPECT_TRUE(client.wait_for([&](const std::string& out) {
    return out.find("\"event\":\"message\",\"messageId\":\"" + msg_id) != std::string::npos;
  }, 15s)) << client.error();
  const auto until = std::chrono::steady_clock::now() + 15s;
  HttpResponse inbox;
  do {
    inbox = http_->get("/api/v1/agents/" + id + "/messages");
    if (inbox.at("/data/0/deliveredAt") != nullptr && !inbox.at("/data/0/deliveredAt")->is_null()) break;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < until);
  EXPECT_EQ(inbox.str("/data/0/id"), msg_id);
  EXPECT_FALSE(inbox.str("/data/0/deliveredAt").empty()) << inbox.describe();

  // Cancelling a running task reaches the client, which stops it.
  const std::string longer = post_task(id, "sleep 30");
  ASSERT_TRUE(client.wait_for([&](const std::string& out) {
    return out.find("\"event\":\"task.started\",\"taskId\":\"" + longer) != std::string::npos;
  }, 15s)) << client.error();
  ASSERT_EQ(http_->post("/api/v1/agents/" + id + "/tasks/" + longer + "/cancel", "").status, 200u);
  auto cancelled = wait_task(id, longer, 15s);
  EXPECT_EQ(cancelled.str("/data/status"), "cancelled") << cancelled.describe();

  // The connection shows in the agent's history; when it ends the agent is marked lost.
  auto states = http_->get("/api/v1/agents/" + id + "/states");
  EXPECT_NE(states.body.find("remote agent connected"), std::string::npos) << states.describe();
  client.stop();
  auto lost = wait_status(id, "error");
  EXPECT_EQ(lost.str("/data/status"), "error") << lost.describe();
  EXPECT_NE(lost.str("/data/statusReason").find("disconnected"), std::string::npos) << lost.describe();
}

// A workflow's agent steps done by a remote agent: each result moves the execution on at once.
// The engine's sweep is set to a minute here, so a chain that finished only through it would
// take minutes, not seconds.
TEST_P(RemoteAgentsTest, AWorkflowStepsTaskEndedByARemoteAgentMovesItsExecutionOnAtOnce) {
  http_.reset();
  server_.reset();
  server_ = std::make_unique<TestServer>(
      GetParam(), std::vector<std::string>{"--port", std::to_string(port_)},
      Env{{"DEVPLANE_REMOTE_HEARTBEAT_TIMEOUT_MS", std::to_string(kHeartbeatTimeoutMs)},
          {"DEVPLANE_WORKFLOW_TICK_MS", "60000"}});
  ASSERT_EQ(server_->error(), "");
  http_ = std::make_unique<HttpClient>(port_);
  const std::string id = create_agent("chain-worker");
  const std::string key = create_key("chain-worker-key", "agent", id);
  ChildProcess client;
  ASSERT_EQ(start_client(client, id, key), "");
  const std::string yaml = "name: remote-chain\nsteps:\n"
                           "  - {id: a, type: agent, agent: " + id + ", inputs: {job: a}}\n"
                           "  - {id: b, type: agent, agent: " + id + ", inputs: {job: b}, needs: [a]}\n"
                           "  - {id: c, type: agent, agent: " + id + ", inputs: {job: c}, needs: [b]}\n";
  auto wf = http_->post("/api/v1/workflows", json_str(json::object{{"definition", yaml}}));
  ASSERT_EQ(wf.status, 201u) << wf.describe();
  auto ex = http_->post("/api/v1/workflows/" + wf.str("/data/id") + "/execute",
                        json_str(json::object{{"inputs", json::object{}}}));
  ASSERT_EQ(ex.status, 202u) << ex.describe();
  const std::string ex_id = ex.str("/data/id");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  HttpResponse got;
  do {
    got = http_->get("/api/v1/executions/" + ex_id);
    if (got.str("/data/status") == "succeeded" || got.str("/data/status") == "failed") break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(got.str("/data/status"), "succeeded") << got.describe();
  for (int i = 0; i < 3; ++i) {
    const std::string p = "/data/steps/" + std::to_string(i);
    EXPECT_EQ(got.str(p + "/status"), "succeeded") << got.describe();
    // Each step's task was the remote agent's: it echoed the step's input back.
    const std::string task = got.str(p + "/taskId");
    auto t = get_task(id, task);
    EXPECT_EQ(t.str("/data/status"), "succeeded") << t.describe();
    EXPECT_EQ(t.str("/data/result/echo/job"), std::string(1, static_cast<char>('a' + i))) << t.describe();
  }
}

TEST_P(RemoteAgentsTest, ClientSurvivesServerRestart) {
  const std::string id = create_agent("survivor");
  const std::string key = create_key("survivor-key", "agent", id);
  ChildProcess client;
  ASSERT_EQ(start_client(client, id, key), "");
  const std::string before = post_task(id, "echo before-restart");
  EXPECT_EQ(wait_task(id, before).str("/data/status"), "succeeded");

  // A task in flight when the server dies: offered again to the reconnected agent (same id,
  // same idempotency key), finished once.
  const std::string slow = post_task(id, "sleep 2; echo slow-done");
  ASSERT_TRUE(client.wait_for([&](const std::string& out) {
    return out.find("\"event\":\"task.started\",\"taskId\":\"" + slow) != std::string::npos;
  }, 20s)) << client.error();
  const std::string slow_key = get_task(id, slow).str("/data/idempotencyKey");
  server_->process().kill9();
  ASSERT_EQ(server_->restart(), "");
  ASSERT_EQ(server_->port(), port_);
  ASSERT_TRUE(client.wait_for([](const std::string& out) {
    return count(out, "\"event\":\"connected\"") >= 2;
  }, 30s)) << client.error() << client.stdout_text();

  auto s = wait_task(id, slow);
  EXPECT_EQ(s.str("/data/status"), "succeeded") << s.describe();
  EXPECT_EQ(s.str("/data/result/stdout"), "slow-done\n");
  EXPECT_EQ(s.str("/data/idempotencyKey"), slow_key);
  const std::string after = post_task(id, "echo after-restart");
  auto a = wait_task(id, after);
  EXPECT_EQ(a.str("/data/status"), "succeeded") << a.describe();
  EXPECT_EQ(a.str("/data/result/stdout"), "after-restart\n");
  EXPECT_EQ(wait_status(id, "running").str("/data/status"), "running");
  EXPECT_TRUE(client.running()) << client.stderr_text();
}

TEST_P(RemoteAgentsTest, MessagesAreDeliveredOnlyOnceTheAgentAcknowledges) {
  const std::string id = create_agent("inbox");
  const std::string key = create_key("inbox-key", "agent", id);
  std::vector<std::string> sent;
  for (int i = 0; i < 2; ++i) {
    auto r = http_->post("/api/v1/agents/" + id + "/messages",
                         json_str(json::object{{"type", "text"}, {"payload", json::object{{"n", i}}}}));
    ASSERT_EQ(r.status, 201u) << r.describe();
    sent.push_back(r.str("/data/id"));
  }
  auto delivered = [&](const std::string& msg) {
    auto r = http_->get("/api/v1/agents/" + id + "/messages");
    for (const auto& m : r.json->at("data").as_array()) {
      if (m.at("id").as_string() == msg) return !m.at("deliveredAt").is_null();
    }
    ADD_FAILURE() << "message " << msg << " not listed: " << r.describe();
    return false;
  };
  EXPECT_FALSE(delivered(sent[0]));

  {
    WsClient ws;
    ASSERT_EQ(open(ws, id, key), "");
    WsMessage w = hello(ws);
    EXPECT_EQ(w.num("/undeliveredMessages"), 2) << w.describe();
    WsMessage m0 = next(ws, "message");
    WsMessage m1 = next(ws, "message");
    EXPECT_EQ(m0.str("/messageId"), sent[0]) << m0.describe();
    EXPECT_EQ(m1.str("/messageId"), sent[1]) << m1.describe();
    EXPECT_EQ(m0.num("/payload/n"), 0);
    // Sent is not delivered: only the acknowledgement sets delivered_at.
    EXPECT_FALSE(delivered(sent[0]));
    ASSERT_EQ(ws.send(json_str(json::object{{"type", "message.ack"},
                                            {"id", "a1"},
                                            {"messageIds", json::array{json::value(sent[0])}}})),
              "");
    WsMessage ok = next(ws, "message.ack.ok");
    EXPECT_EQ(ok.num("/delivered"), 1) << ok.describe();
    EXPECT_TRUE(delivered(sent[0]));
    EXPECT_FALSE(delivered(sent[1]));
    ws.close();
  }
  {
    // Reconnected: only the unacknowledged one comes again; a live one arrives too.
    WsClient ws;
    ASSERT_EQ(open(ws, id, key), "");
    EXPECT_EQ(hello(ws).num("/undeliveredMessages"), 1);
    WsMessage again = next(ws, "message");
    EXPECT_EQ(again.str("/messageId"), sent[1]) << again.describe();
    auto live = http_->post("/api/v1/agents/" + id + "/messages",
                            json_str(json::object{{"type", "task.handoff"}, {"payload", json::object{{"live", true}}}}));
    ASSERT_EQ(live.status, 201u);
    WsMessage lm = next(ws, "message", 10s);
    EXPECT_EQ(lm.str("/messageId"), live.str("/data/id")) << lm.describe();
    EXPECT_EQ(lm.str("/messageType"), "task.handoff");
    ASSERT_EQ(ws.send(json_str(json::object{
                  {"type", "message.ack"},
                  {"messageIds", json::array{json::value(sent[1]), json::value(live.str("/data/id"))}}})),
              "");
    EXPECT_EQ(next(ws, "message.ack.ok").num("/delivered"), 2);
    EXPECT_TRUE(delivered(sent[1]));
    // Acknowledging another agent's message (or one already delivered) changes nothing.
    const std::string other = create_agent("other-inbox");
    auto om = http_->post("/api/v1/agents/" + other + "/messages",
                          json_str(json::object{{"type", "text"}, {"payload", json::object{}}}));
    ASSERT_EQ(om.status, 201u);
    ASSERT_EQ(ws.send(json_str(json::object{
                  {"type", "message.ack"},
                  {"messageIds", json::array{json::value(om.str("/data/id")), json::value(sent[0])}}})),
              "");
    EXPECT_EQ(next(ws, "message.ack.ok").num("/delivered"), 0);
    auto theirs = http_->get("/api/v1/agents/" + other + "/messages");
    EXPECT_TRUE(theirs.at("/data/0/deliveredAt")->is_null()) << theirs.describe();
  }
}

TEST_P(RemoteAgentsTest, OnlyTheAgentsOwnAgentKeyMayConnect) {
  const std::string a = create_agent("ra");
  const std::string b = create_agent("rb");
  const std::string cmd = create_agent("local", "command");
  const std::string key_a = create_key("ka", "agent", a);
  const std::string key_b = create_key("kb", "agent", b);
  const std::string key_cmd = create_key("kc", "agent", cmd);
  const std::string unbound = create_key("unbound", "agent");
  const std::string viewer = create_key("viewer", "viewer");
  const std::string operator_key = create_key("operator", "operator");
  auto refused = [&](const std::string& agent, const std::string& key, unsigned status,
                     const std::string& code, const std::string& why) {
    WsClient ws;
    EXPECT_NE(open(ws, agent, key), "") << why;
    EXPECT_EQ(ws.http_status(), status) << why << ": " << ws.http_body();
    if (!code.empty()) {
      EXPECT_NE(ws.http_body().find("\"" + code + "\""), std::string::npos) << why << ": " << ws.http_body();
    }
  };
  refused(a, "", 401, "unauthenticated", "no credential");
  refused(a, "dp_garbage", 401, "unauthenticated", "garbage key");
  refused(a, key_b, 403, "permission_denied", "another agent's key");
  refused(a, unbound, 403, "permission_denied", "an agent key bound to no agent");
  refused(a, viewer, 403, "", "a viewer key");
  refused(a, operator_key, 403, "", "an operator key");
  refused(a, admin_token(port_), 403, "", "an admin's token");
  refused(cmd, key_cmd, 409, "not_remote", "a command agent");
  refused("not-a-uuid", key_a, 400, "invalid_id", "a malformed agent id");
  // A plain GET is not an upgrade.
  auto plain = http_->get("/api/v1/agents/" + a + "/connect", bearer(key_a));
  EXPECT_EQ(plain.status, 400u) << plain.describe();
  EXPECT_EQ(plain.str("/error/code"), "upgrade_required");

  // The right key, in the header or as the subprotocol browsers use.
  {
    WsClient ws;
    ASSERT_EQ(open(ws, a, key_a), "");
    hello(ws);
    EXPECT_EQ(wait_status(a, "running").str("/data/status"), "running");
    // A second connection replaces the first, which is told why.
    WsClient second;
    ASSERT_EQ(open(second, a, "", {{"Sec-WebSocket-Protocol", "devplane.v1, bearer." + key_a}}), "");
    hello(second);
    WsMessage gone = next(ws, "never", 10s);
    EXPECT_TRUE(gone.closed()) << gone.describe();
    EXPECT_EQ(gone.close_code, 4001) << gone.describe();
    EXPECT_EQ(agent(a).str("/data/status"), "running");

    // An operator's stop ends the connection and keeps the agent out until it is started.
    ASSERT_EQ(http_->post("/api/v1/agents/" + a + "/stop", "").status, 200u);
    WsMessage stopped = next(second, "never", 10s);
    EXPECT_TRUE(stopped.closed()) << stopped.describe();
    EXPECT_EQ(stopped.close_code, 4003) << stopped.describe();
  }
  refused(a, key_a, 409, "agent_stopped", "a stopped agent");
  auto started = http_->post("/api/v1/agents/" + a + "/start", "");
  ASSERT_EQ(started.status, 200u) << started.describe();
  EXPECT_EQ(started.str("/data/status"), "starting") << "a remote agent runs once it connects";
  {
    WsClient ws;
    ASSERT_EQ(open(ws, a, key_a), "");
    hello(ws);
    EXPECT_EQ(wait_status(a, "running").str("/data/status"), "running");
  }
  // A revoked key is refused at once.
  auto keys = http_->get("/api/v1/api-keys");
  for (const auto& k : keys.json->at("data").as_array()) {
    if (k.at("name").as_string() == "ka") {
      ASSERT_EQ(http_->del("/api/v1/api-keys/" + std::string(k.at("id").as_string())).status, 204u);
    }
  }
  refused(a, key_a, 401, "unauthenticated", "a revoked key");
}

TEST_P(RemoteAgentsTest, BadFramesGetErrorsAndChangeNothing) {
  const std::string id = create_agent("frames");
  const std::string key = create_key("frames-key", "agent", id);
  WsClient ws;
  ASSERT_EQ(open(ws, id, key), "");
  expect_error(ws, R"({"type":"heartbeat"})", "out_of_order");
  expect_error(ws, "not json", "malformed");
  EXPECT_EQ(agent(id).str("/data/status"), "created") << "nothing happens before hello";
  hello(ws);
  expect_error(ws, R"({"type":"hello","protocol":1})", "out_of_order");
  expect_error(ws, "[1,2]", "malformed");
  expect_error(ws, R"({"type":42})", "malformed");
  expect_error(ws, R"({"type":"bogus"})", "unknown_type");
  expect_error(ws, R"({"type":"task.result","taskId":"x","attempt":1,"status":"succeeded"})", "malformed");
  expect_error(ws,
               R"({"type":"task.result","taskId":"0190aaaa-bbbb-7ccc-8ddd-000000000001","attempt":1,"status":"succeeded"})",
               "unknown_task");
  expect_error(ws,
               R"({"type":"task.result","taskId":"0190aaaa-bbbb-7ccc-8ddd-000000000001","attempt":1,"status":"done"})",
               "malformed");
  expect_error(ws,
               R"({"type":"task.log","taskId":"0190aaaa-bbbb-7ccc-8ddd-000000000001","attempt":1,"text":"x"})",
               "unknown_task");
  expect_error(ws, R"({"type":"message.ack","messageIds":[]})", "malformed");
  expect_error(ws, R"({"type":"message.ack","messageIds":["nope"]})", "malformed");
  // Oversized for the protocol (256 KiB) but not for the socket: an error frame.
  expect_error(ws, R"({"type":"heartbeat","pad":")" + std::string(300 * 1024, 'x') + "\"}", "too_large");
  // The connection survived all of that.
  ASSERT_EQ(ws.send(R"({"type":"heartbeat","id":7})"), "");
  WsMessage hb = next(ws, "heartbeat.ack");
  EXPECT_EQ(hb.num("/id"), 7) << hb.describe();
  // Beyond the socket's limit (1 MiB): the connection is closed with 1009.
  // (The server may close before the whole frame is written: the send can fail.)
  (void)ws.send(std::string(2 * 1024 * 1024, 'y'));
  WsMessage big = next(ws, "never");
  EXPECT_TRUE(big.closed()) << big.describe();
  if (big.close_code != -1) {
    EXPECT_EQ(big.close_code, 1009) << big.describe();
  }

  // A peer that keeps sending garbage is cut off.
  WsClient abusive;
  ASSERT_EQ(open(abusive, id, key), "");
  for (int i = 0; i < 30; ++i) ASSERT_EQ(abusive.send("{"), "");
  WsMessage cut = next(abusive, "never");
  EXPECT_TRUE(cut.closed()) << cut.describe();
  EXPECT_EQ(cut.close_code, 1008) << cut.describe();

  // An unknown protocol version is refused with the versions this server speaks.
  WsClient future;
  ASSERT_EQ(open(future, id, key), "");
  ASSERT_EQ(future.send(R"({"type":"hello","protocol":2})"), "");
  WsMessage e = next(future, "error");
  EXPECT_EQ(e.str("/code"), "unsupported_protocol") << e.describe();
  EXPECT_EQ(e.num("/details/supported/0"), 1) << e.describe();
  WsMessage closed = next(future, "never");
  EXPECT_EQ(closed.close_code, 4002) << closed.describe();

  auto tasks = http_->get("/api/v1/agents/" + id + "/tasks");
  EXPECT_EQ(tasks.num("/meta/total"), 0) << tasks.describe();
}

TEST_P(RemoteAgentsTest, StaleResultsAreFencedAndUnfinishedTasksReoffered) {
  const std::string id = create_agent("fenced");
  const std::string key = create_key("fenced-key", "agent", id);
  std::string task;
  std::string idem;
  {
    WsClient first;
    ASSERT_EQ(open(first, id, key), "");
    hello(first);
    task = post_task(id, "echo fenced");
    WsMessage assign = next(first, "task.assign");
    ASSERT_EQ(assign.str("/taskId"), task) << assign.describe();
    EXPECT_EQ(assign.num("/attempt"), 1);
    EXPECT_EQ(assign.str("/input"), "echo fenced");
    idem = assign.str("/idempotencyKey");
    EXPECT_FALSE(idem.empty());
    first.abort();  // the network goes away
  }
  {
    // Back within the lease: the same task, same attempt, same key is offered again.
    WsClient second;
    ASSERT_EQ(open(second, id, key), "");
    WsMessage w = hello(second);
    EXPECT_EQ(w.str("/resumedTasks/0"), task) << w.describe();
    WsMessage again = next(second, "task.assign");
    EXPECT_EQ(again.str("/taskId"), task) << again.describe();
    EXPECT_EQ(again.num("/attempt"), 1);
    EXPECT_EQ(again.str("/idempotencyKey"), idem);
    second.abort();
  }
  // Gone longer than the lease: the task goes back to the queue...
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (get_task(id, task).str("/data/status") != "queued" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(get_task(id, task).str("/data/status"), "queued");
  // ...and the next connection gets it as attempt 2: attempt 1's result is fenced.
  WsClient third;
  ASSERT_EQ(open(third, id, key), "");
  EXPECT_EQ(hello(third).json.as_object().at("resumedTasks").as_array().size(), 0u);
  WsMessage assign = next(third, "task.assign");
  ASSERT_EQ(assign.str("/taskId"), task) << assign.describe();
  EXPECT_EQ(assign.num("/attempt"), 2);
  EXPECT_EQ(assign.str("/idempotencyKey"), idem);
  auto result = [&](int attempt, const std::string& status) {
    return json_str(json::object{{"type", "task.result"},
                                 {"taskId", task},
                                 {"attempt", attempt},
                                 {"status", status},
                                 {"result", json::object{{"stdout", "fenced\n"}, {"attempt", attempt}}}});
  };
  ASSERT_EQ(third.send(result(1, "succeeded")), "");
  WsMessage stale = next(third, "error");
  EXPECT_EQ(stale.str("/code"), "stale_result") << stale.describe();
  EXPECT_EQ(stale.num("/details/currentAttempt"), 2) << stale.describe();
  EXPECT_EQ(stale.str("/details/currentStatus"), "running") << stale.describe();
  EXPECT_EQ(get_task(id, task).str("/data/status"), "running");

  ASSERT_EQ(third.send(result(2, "succeeded")), "");
  WsMessage ack = next(third, "task.result.ack");
  EXPECT_EQ(ack.num("/attempt"), 2) << ack.describe();
  EXPECT_FALSE(ack.json.as_object().at("duplicate").as_bool());
  // The same result again (its ack was lost, say) is acknowledged and changes nothing.
  ASSERT_EQ(third.send(result(2, "succeeded")), "");
  EXPECT_TRUE(next(third, "task.result.ack").json.as_object().at("duplicate").as_bool());
  // A different outcome for the finished task is refused.
  ASSERT_EQ(third.send(result(2, "failed")), "");
  WsMessage late = next(third, "error");
  EXPECT_EQ(late.str("/code"), "stale_result") << late.describe();
  EXPECT_EQ(late.str("/details/currentStatus"), "succeeded") << late.describe();

  auto done = get_task(id, task);
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.num("/data/attempts"), 2);
  EXPECT_EQ(done.num("/data/result/attempt"), 2) << done.describe();
}

TEST_P(RemoteAgentsTest, SilentAgentIsDroppedAndMarkedLost) {
  const std::string id = create_agent("quiet");
  const std::string key = create_key("quiet-key", "agent", id);
  WsClient ws;
  ASSERT_EQ(open(ws, id, key), "");
  WsMessage w = hello(ws);
  EXPECT_EQ(w.num("/heartbeatTimeoutMs"), kHeartbeatTimeoutMs) << w.describe();
  EXPECT_EQ(w.num("/heartbeatIntervalMs"), kHeartbeatTimeoutMs / 3) << w.describe();
  EXPECT_EQ(w.num("/protocol"), 1);
  // Heartbeats keep it connected past the timeout...
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(ws.send(json_str(json::object{{"type", "heartbeat"}, {"id", i}})), "");
    EXPECT_EQ(next(ws, "heartbeat.ack").num("/id"), i);
    std::this_thread::sleep_for(1s);
  }
  EXPECT_EQ(agent(id).str("/data/status"), "running");
  // ...silence does not.
  const auto silent_since = std::chrono::steady_clock::now();
  WsMessage gone = next(ws, "never", 15s);
  const auto waited = std::chrono::steady_clock::now() - silent_since;
  EXPECT_TRUE(gone.closed()) << gone.describe();
  EXPECT_EQ(gone.close_code, 4000) << gone.describe();
  EXPECT_LT(waited, std::chrono::milliseconds(kHeartbeatTimeoutMs + 2000));
  auto lost = wait_status(id, "error");
  EXPECT_EQ(lost.str("/data/status"), "error");
  EXPECT_NE(lost.str("/data/statusReason").find("no heartbeat"), std::string::npos) << lost.describe();
}

TEST_P(RemoteAgentsTest, AgentThatNeverReturnsAfterARestartIsMarkedLost) {
  const std::string id = create_agent("vanished");
  const std::string key = create_key("vanished-key", "agent", id);
  {
    WsClient ws;
    ASSERT_EQ(open(ws, id, key), "");
    hello(ws);
    ASSERT_EQ(wait_status(id, "running").str("/data/status"), "running");
    // The node dies with the connection; the agent's process never comes back.
    server_->process().kill9();
  }
  const auto restarted_at = std::chrono::steady_clock::now();
  ASSERT_EQ(server_->restart(), "");
  // Right after the restart it still shows running: it may yet reconnect.
  EXPECT_EQ(agent(id).str("/data/status"), "running");
  auto lost = wait_status(id, "error", 20s);
  const auto waited = std::chrono::steady_clock::now() - restarted_at;
  ASSERT_EQ(lost.str("/data/status"), "error") << lost.describe();
  EXPECT_NE(lost.str("/data/statusReason").find("not connected to any node"), std::string::npos)
      << lost.describe();
  // Not before its presence lapsed (one heartbeat timeout after its last renewal).
  EXPECT_GE(waited, std::chrono::milliseconds(kHeartbeatTimeoutMs / 2));
  // Its process comes back after all: running again.
  WsClient back;
  ASSERT_EQ(open(back, id, key), "");
  hello(back);
  EXPECT_EQ(wait_status(id, "running").str("/data/status"), "running");
}

INSTANTIATE_TEST_SUITE_P(Backends, RemoteAgentsTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& param_info) {
                           return to_string(param_info.param);
                         });

}  // namespace
}  // namespace dp::it
