// The agent cards' data over real HTTP and /ws: a real sandboxed task burning CPU and holding
// memory in its cgroup shows as the agent's current task with non-zero figures, then clears;
// kinds devplane cannot measure say so; bad requests are refused. SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "backend_fixture.hpp"
#include "harness.hpp"
#include "ws_client.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;


double number(const json::value* v) {
  if (v == nullptr || v->is_null()) return -1;
  return v->to_number<double>();
}

class AgentActivityTest : public BackendServerTest {
 protected:
  void SetUp() override {
    // Sample every 300 ms instead of 5 s so the test sees several samples quickly.
    start({}, Env{{"DEVPLANE_AGENT_RESOURCES_INTERVAL_MS", "300"}});
  }

  std::string agent(const std::string& name, const std::string& type, json::object config, bool start) {
    auto r = client_->post("/api/v1/agents", json::serialize(json::object{
                                                 {"name", name}, {"type", type}, {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    if (start) {
      auto s = client_->post("/api/v1/agents/" + id + "/start", "");
      EXPECT_EQ(s.status, 200u) << s.describe();
    }
    return id;
  }

  // The activity item of `id` (asked alone).
  json::object activity(const std::string& id) {
    auto r = client_->get("/api/v1/agents/activity?ids=" + id);
    EXPECT_EQ(r.status, 200u) << r.describe();
    if (!r.json) return {};
    const auto& items = r.json->at("data").as_array();
    EXPECT_EQ(items.size(), 1u);
    return items.empty() ? json::object{} : items.front().as_object();
  }

  // Polls the activity of `id` until `ok(item)` (bounded); returns the last item.
  template <typename Ok>
  json::object wait_activity(const std::string& id, Ok ok, std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    json::object a;
    while (std::chrono::steady_clock::now() < deadline) {
      a = activity(id);
      if (ok(a)) return a;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "activity never reached the expected state: " << json::serialize(a);
    return a;
  }

};

TEST_P(AgentActivityTest, ASandboxedTaskShowsAsCurrentWithItsResourceUseThenClears) {
  WsClient ws;
  ASSERT_EQ(ws.connect(server_->port()), "");
  ASSERT_EQ(ws.receive(15s).type(), "hello");
  ASSERT_EQ(ws.send(R"({"op":"subscribe","id":"s","topics":["agent.resources","agent.task.update"]})"), "");
  ASSERT_EQ(ws.receive_reply(15s).type(), "ack");

  // 32 MiB held in a shell variable, then a busy loop until cancelled.
  const std::string id = agent(
      "burner", "command",
      json::object{{"command", json::array{"sh", "-c",
                                           R"(x=$(head -c 33554432 /dev/zero | tr '\000' a); echo held; while :; do :; done)"}},
                   {"memoryMb", 256}},
      true);
  const std::string idle_id = agent("idler", "command", json::object{{"command", "true"}}, true);
  // Idle: no current task, nothing sampled yet, but measurable.
  auto idle = activity(idle_id);
  EXPECT_TRUE(idle.at("currentTask").is_null()) << json::serialize(idle);
  EXPECT_EQ(idle.at("runningTasks").as_int64(), 0);
  EXPECT_TRUE(idle.at("resources").at("available").as_bool()) << json::serialize(idle);
  EXPECT_TRUE(idle.at("resources").at("memoryBytes").is_null()) << json::serialize(idle);

  auto t = client_->post("/api/v1/agents/" + id + "/tasks",
                         json::serialize(json::object{{"input", "burn\nsome cpu"}}));
  ASSERT_EQ(t.status, 201u) << t.describe();
  const std::string task_id = t.str("/data/id");
  ASSERT_EQ(t.str("/data/status"), "running");

  auto busy = wait_activity(id, [](const json::object& a) {
    const auto& r = a.at("resources").as_object();
    return number(r.if_contains("memoryBytes")) > 16.0 * 1024 * 1024 && number(r.if_contains("cpuPercent")) > 5;
  });
  ASSERT_TRUE(busy.at("currentTask").is_object()) << json::serialize(busy);
  const auto& cur = busy.at("currentTask").as_object();
  EXPECT_EQ(cur.at("id").as_string(), task_id);
  EXPECT_EQ(cur.at("summary").as_string(), "burn some cpu");
  EXPECT_TRUE(cur.at("startedAt").is_string());
  EXPECT_EQ(busy.at("runningTasks").as_int64(), 1);
  const auto& res = busy.at("resources").as_object();
  std::cout << "busy agent's sample: " << json::serialize(res) << "\n";
  EXPECT_EQ(number(res.if_contains("memoryLimitBytes")), 256.0 * 1024 * 1024) << json::serialize(res);
  EXPECT_LT(number(res.if_contains("memoryBytes")), 256.0 * 1024 * 1024);
  // One busy loop under a 1-CPU quota: at most about one core.
  EXPECT_LT(number(res.if_contains("cpuPercent")), 130) << json::serialize(res);
  EXPECT_EQ(res.at("tasks").as_int64(), 1);
  EXPECT_TRUE(res.at("sampledAt").is_string());
  // Asked together with the idle agent, in the order asked, duplicates dropped.
  auto both = client_->get("/api/v1/agents/activity?ids=" + idle_id + "," + id + "," + idle_id);
  ASSERT_EQ(both.status, 200u) << both.describe();
  ASSERT_EQ(both.json->at("data").as_array().size(), 2u) << both.describe();
  EXPECT_EQ(both.str("/data/0/agentId"), idle_id);
  EXPECT_EQ(both.str("/data/1/currentTask/id"), task_id);
  // The samples are metrics too.
  auto m = client_->get("/api/v1/agents/" + id + "/metrics?type=agent.memory_bytes");
  ASSERT_EQ(m.status, 200u) << m.describe();
  EXPECT_GE(m.json->at("data").as_array().size(), 1u) << m.describe();

  ASSERT_EQ(client_->post("/api/v1/agents/" + id + "/tasks/" + task_id + "/cancel", "").status, 200u);
  auto after = wait_activity(id, [](const json::object& a) {
    const auto& r = a.at("resources").as_object();
    return a.at("currentTask").is_null() && number(r.if_contains("memoryBytes")) == 0 &&
           r.at("tasks").is_int64() && r.at("tasks").as_int64() == 0;
  });
  EXPECT_EQ(after.at("runningTasks").as_int64(), 0);
  EXPECT_EQ(number(after.at("resources").as_object().if_contains("cpuPercent")), 0);

  // The same story on /ws: the task's start (with its summary), samples with figures, its end.
  bool started = false, sampled = false, ended = false;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!(started && sampled && ended) && std::chrono::steady_clock::now() < deadline) {
    WsMessage e = ws.receive(2s);
    if (!e.is_text() || e.type() != "event" || e.str("/data/agentId") != id) continue;
    if (e.topic() == "agent.task.update" && e.str("/data/status") == "running") {
      started = e.str("/data/summary") == "burn some cpu" && !e.str("/data/startedAt").empty();
    } else if (e.topic() == "agent.task.update" && e.str("/data/status") == "cancelled") {
      // The end carries the run's timestamps (bench/agents splits the overhead with them).
      ended = e.num("/data/startedAtUs") > 0 && e.num("/data/endedAtUs") >= e.num("/data/startedAtUs");
    } else if (e.topic() == "agent.resources" && e.num("/data/memoryBytes") > 16 * 1024 * 1024) {
      sampled = e.num("/data/memoryLimitBytes") == 256 * 1024 * 1024 && e.num("/data/tasks") == 1;
    }
  }
  EXPECT_TRUE(started);
  EXPECT_TRUE(sampled);
  EXPECT_TRUE(ended);
}

TEST_P(AgentActivityTest, KindsDevplaneCannotMeasureSaySo) {
  const std::string remote = agent("far", "remote", json::object{}, false);
  const std::string docker = agent("boxed", "command",
                                   json::object{{"command", "true"}, {"isolation", "docker"}, {"image", "alpine"}},
                                   false);
  for (const auto& id : {remote, docker}) {
    auto a = activity(id);
    const auto& r = a.at("resources").as_object();
    EXPECT_FALSE(r.at("available").as_bool()) << json::serialize(a);
    EXPECT_FALSE(r.at("reason").as_string().empty()) << json::serialize(a);
    EXPECT_FALSE(r.contains("memoryBytes")) << json::serialize(a);
  }
}

TEST_P(AgentActivityTest, BadRequestsAreRefused) {
  const std::string id = agent("quiet", "command", json::object{{"command", "true"}}, false);
  const std::string base = "/api/v1/agents/activity";
  struct Case {
    std::string query;
    unsigned status;
    std::string code;
  };
  std::string many;
  for (int i = 0; i < 101; ++i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "00000000-0000-7000-8000-%012d", i);
    many += (many.empty() ? "" : ",") + std::string(buf);
  }
  const std::vector<Case> cases = {
      {"", 422, "validation_failed"},
      {"?ids=", 422, "validation_failed"},
      {"?ids=nope", 422, "validation_failed"},
      {"?ids=" + id + ",", 422, "validation_failed"},
      {"?ids=" + id + "&limit=5", 422, "validation_failed"},
      {"?ids=" + many, 422, "validation_failed"},
      {"?ids=" + id + ",00000000-0000-7000-8000-000000000001", 404, "not_found"},
  };
  for (const auto& c : cases) {
    auto r = client_->get(base + c.query);
    EXPECT_EQ(r.status, c.status) << c.query.substr(0, 80) << " -> " << r.describe();
    EXPECT_EQ(r.str("/error/code"), c.code) << c.query.substr(0, 80);
  }
  // No credentials: 401. An agent's key: 403. A viewer reads.
  auto none = client_->get(base + "?ids=" + id, Headers{{"Authorization", ""}});
  EXPECT_EQ(none.status, 401u) << none.describe();
  auto key = client_->post("/api/v1/api-keys", json::serialize(json::object{{"name", "bot"}, {"role", "agent"}, {"agentId", id}}));
  ASSERT_EQ(key.status, 201u) << key.describe();
  auto agent_key = client_->get(base + "?ids=" + id, Headers{{"Authorization", "Bearer " + key.str("/data/key")}});
  EXPECT_EQ(agent_key.status, 403u) << agent_key.describe();
  auto vkey = client_->post("/api/v1/api-keys", json::serialize(json::object{{"name", "eyes"}, {"role", "viewer"}}));
  ASSERT_EQ(vkey.status, 201u) << vkey.describe();
  auto viewer = client_->get(base + "?ids=" + id, Headers{{"Authorization", "Bearer " + vkey.str("/data/key")}});
  EXPECT_EQ(viewer.status, 200u) << viewer.describe();
  // A route, not an agent id: the agent routes still answer as before.
  EXPECT_EQ(client_->get("/api/v1/agents/" + id).status, 200u);
}

INSTANTIATE_TEST_SUITE_P(Backends, AgentActivityTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

}  // namespace
}  // namespace dp::it
