// Tasks for command agents over real HTTP: the real binary runs them in real bubblewrap
// sandboxes, on SQLite and on PostgreSQL.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;


class TasksTest : public BackendServerTest {
 protected:
  void SetUp() override { start(); }

  std::string agent(const std::string& name, json::object config, bool start = true) {
    auto r = client_->post("/api/v1/agents",
                           json::serialize(json::object{{"name", name}, {"type", "command"},
                                                        {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    if (start) {
      auto s = client_->post("/api/v1/agents/" + id + "/start", "");
      EXPECT_EQ(s.status, 200u) << s.describe();
    }
    return id;
  }

  HttpResponse submit(const std::string& agent_id, const json::object& body) {
    return client_->post("/api/v1/agents/" + agent_id + "/tasks", json::serialize(body));
  }

  // Polls until the task has finished (bounded); returns its last state.
  HttpResponse wait_done(const std::string& agent_id, const std::string& task_id,
                         std::chrono::seconds limit = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    HttpResponse r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = client_->get("/api/v1/agents/" + agent_id + "/tasks/" + task_id);
      const auto st = r.str("/data/status");
      if (st == "succeeded" || st == "failed" || st == "cancelled") return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "task did not finish in time: " << r.describe();
    return r;
  }

};

TEST_P(TasksTest, RunsATaskInASandboxAndReturnsItsResult) {
  const std::string id = agent(
      "echoer", json::object{{"command", json::array{"sh", "-c",
                                                     "read x; echo got:$x; echo done > "
                                                     "outputs/o.txt; ln -s /etc/passwd outputs/link"}}});
  auto r = submit(id, json::object{{"input", "hello"}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  // The agent runs, so this node claims the task in the commit that creates it.
  EXPECT_EQ(r.str("/data/status"), "running");
  EXPECT_EQ(r.num("/data/attempts"), 1);
  EXPECT_NE(r.header("Location").find("/tasks/"), std::string::npos);
  auto done = wait_done(id, r.str("/data/id"));
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.str("/data/result/stdout"), "got:hello\n");
  EXPECT_EQ(done.num("/data/result/exitCode"), 0);
  EXPECT_EQ(done.num("/data/attempts"), 1);
  const auto* isolated = done.at("/data/result/isolated");
  ASSERT_NE(isolated, nullptr);
  EXPECT_TRUE(isolated->as_bool());
  // Outputs are listed; the planted symlink is reported as a link, never followed.
  const auto* outputs = done.at("/data/result/outputs");
  ASSERT_NE(outputs, nullptr);
  bool file = false, link = false;
  for (const auto& o : outputs->as_array()) {
    const auto& obj = o.as_object();
    if (obj.at("path") == "o.txt" && obj.at("type") == "file") file = true;
    if (obj.at("path") == "link" && obj.at("type") == "symlink") link = !obj.contains("size");
  }
  EXPECT_TRUE(file) << json::serialize(*outputs);
  EXPECT_TRUE(link) << json::serialize(*outputs);
}

TEST_P(TasksTest, AFailingProgramFailsTheTaskWithItsReason) {
  const std::string id = agent("failer", json::object{{"command", "echo oops >&2; exit 3"}});
  auto r = submit(id, json::object{{"input", json::object{{"x", 1}}}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  auto done = wait_done(id, r.str("/data/id"));
  EXPECT_EQ(done.str("/data/status"), "failed");
  EXPECT_EQ(done.str("/data/error"), "exited with code 3");
  EXPECT_EQ(done.str("/data/result/stderr"), "oops\n");
}

// A program that exits without reading its input must not take the server down with it
// (a write to a closed pipe raises SIGPIPE, which ends a process that does not ignore it).
TEST_P(TasksTest, AProgramThatIgnoresItsInputLeavesTheServerRunning) {
  const std::string id = agent("deaf", json::object{{"command", "exit 0"}});
  auto r = submit(id, json::object{{"input", std::string(200 * 1024, 'x')}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  auto done = wait_done(id, r.str("/data/id"));
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(client_->get("/api/v1/system/health").status, 200u);
  EXPECT_TRUE(server_->process().running());
}

TEST_P(TasksTest, AnIdempotencyKeyReturnsTheFirstTask) {
  const std::string id = agent("idem", json::object{{"command", "cat"}});
  auto a = submit(id, json::object{{"input", "one"}, {"idempotencyKey", "job-7"}});
  ASSERT_EQ(a.status, 201u) << a.describe();
  auto b = client_->post("/api/v1/agents/" + id + "/tasks",
                         json::serialize(json::object{{"input", "two"}}),
                         {{"Idempotency-Key", "job-7"}});
  ASSERT_EQ(b.status, 200u) << b.describe();
  EXPECT_EQ(b.str("/data/id"), a.str("/data/id"));
  const auto* created = b.at("/meta/created");
  ASSERT_NE(created, nullptr);
  EXPECT_FALSE(created->as_bool());
  auto list = client_->get("/api/v1/agents/" + id + "/tasks");
  EXPECT_EQ(list.num("/meta/total"), 1);
}

TEST_P(TasksTest, CancellingARunningTaskStopsIt) {
  const std::string id = agent("sleeper", json::object{{"command", json::array{"sleep", "1000"}}});
  auto r = submit(id, json::object{{"input", "x"}});
  ASSERT_EQ(r.status, 201u);
  const std::string task = r.str("/data/id");
  // Wait until it runs, then cancel.
  for (int i = 0; i < 600; ++i) {
    if (client_->get("/api/v1/agents/" + id + "/tasks/" + task).str("/data/status") == "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto c = client_->post("/api/v1/agents/" + id + "/tasks/" + task + "/cancel", "");
  ASSERT_EQ(c.status, 200u) << c.describe();
  auto done = wait_done(id, task);
  EXPECT_EQ(done.str("/data/status"), "cancelled") << done.describe();
  auto again = client_->post("/api/v1/agents/" + id + "/tasks/" + task + "/cancel", "");
  EXPECT_EQ(again.status, 409u);
  EXPECT_EQ(again.str("/error/code"), "invalid_transition");
}

TEST_P(TasksTest, TasksWaitWhileTheAgentIsStoppedAndCanBeCancelledThere) {
  const std::string id = agent("idle", json::object{{"command", "cat"}}, /*start=*/false);
  auto r = submit(id, json::object{{"input", "later"}});
  ASSERT_EQ(r.status, 201u);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto q = client_->get("/api/v1/agents/" + id + "/tasks/" + r.str("/data/id"));
  EXPECT_EQ(q.str("/data/status"), "queued");
  auto c = client_->post("/api/v1/agents/" + id + "/tasks/" + r.str("/data/id") + "/cancel", "");
  EXPECT_EQ(c.status, 200u);
  EXPECT_EQ(c.str("/data/status"), "cancelled");
  // Once started, the agent runs what is queued after that.
  auto r2 = submit(id, json::object{{"input", "now"}});
  ASSERT_EQ(client_->post("/api/v1/agents/" + id + "/start", "").status, 200u);
  auto done = wait_done(id, r2.str("/data/id"));
  EXPECT_EQ(done.str("/data/result/stdout"), "now");
}

TEST_P(TasksTest, BadRequestsAreRefusedAndChangeNothing) {
  const std::string id = agent("strict", json::object{{"command", "cat"}}, false);
  const std::string other = agent("other", json::object{{"command", "cat"}}, false);
  const std::string base = "/api/v1/agents/" + id + "/tasks";
  struct Case {
    std::string target, body;
    unsigned status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {base, "{", 400, "invalid_json"},
      {base, "[]", 422, "validation_failed"},
      {base, "{}", 422, "validation_failed"},
      {base, R"({"input": 5})", 422, "validation_failed"},
      {base, R"({"input": "x", "priority": 1})", 422, "validation_failed"},
      {base, R"({"input": "x", "idempotencyKey": ""})", 422, "validation_failed"},
      {base, R"({"input": "x", "idempotencyKey": "has space"})", 422, "validation_failed"},
      {base, "{\"input\": \"" + std::string(300 * 1024, 'a') + "\"}", 422, "validation_failed"},
      {"/api/v1/agents/not-a-uuid/tasks", R"({"input": "x"})", 400, "invalid_id"},
      {"/api/v1/agents/01a217b7-0070-716d-ad26-85bd9f3e54b2/tasks", R"({"input": "x"})", 404,
       "not_found"},
  };
  for (const auto& c : cases) {
    auto r = client_->post(c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 80) << " -> " << r.describe();
    EXPECT_EQ(r.str("/error/code"), c.code) << c.body.substr(0, 80);
  }
  EXPECT_EQ(client_->get(base).num("/meta/total"), 0);
  auto t = submit(id, json::object{{"input", "x"}});
  ASSERT_EQ(t.status, 201u);
  // A task is only reachable under its own agent.
  auto wrong = client_->get("/api/v1/agents/" + other + "/tasks/" + t.str("/data/id"));
  EXPECT_EQ(wrong.status, 404u);
  EXPECT_EQ(client_->get(base + "/nope").status, 400u);
  EXPECT_EQ(client_->get(base + "?limit=0").status, 422u);
  EXPECT_EQ(client_->get(base + "?status=bogus").status, 422u);
  // A decommissioned agent takes no tasks.
  ASSERT_EQ(client_->del("/api/v1/agents/" + other).status, 200u);
  auto dead = submit(other, json::object{{"input", "x"}});
  EXPECT_EQ(dead.status, 409u) << dead.describe();
  EXPECT_EQ(dead.str("/error/code"), "invalid_transition");
  EXPECT_EQ(client_->get("/api/v1/system/health").status, 200u);
}

INSTANTIATE_TEST_SUITE_P(Backends, TasksTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
