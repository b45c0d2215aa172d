// /api/v1/memory over real HTTP on the real binary, on SQLite and PostgreSQL: notes are found by
// meaning, bad input is refused and changes nothing, roles are enforced, memories survive a
// restart, and a command agent's finished task shows up in search (memory_outcomes on), or not
// (off).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;

class MemoryApiTest : public BackendServerTest {
 protected:
  HttpResponse add(const json::object& body) { return client_->post("/api/v1/memory", json::serialize(body)); }
  HttpResponse search(const std::string& query) { return client_->get("/api/v1/memory/search?" + query); }
  std::int64_t total() {
    // Everything matches a one-word query at minScore -1.
    auto r = search("q=the&k=50&minScore=-1");
    EXPECT_EQ(r.status, 200u) << r.describe();
    return r.num("/meta/count");
  }

  std::string key(const std::string& name, const std::string& role) {
    auto r = client_->post("/api/v1/api-keys", json::serialize(json::object{{"name", name}, {"role", role}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/key");
  }

  std::string run_task(const std::string& script, const std::string& input) {
    auto a = client_->post("/api/v1/agents",
                           json::serialize(json::object{{"name", "builder"},
                                                        {"type", "command"},
                                                        {"config", json::object{{"command", json::array{"sh", "-c", script}}}}}));
    EXPECT_EQ(a.status, 201u) << a.describe();
    agent_id_ = a.str("/data/id");
    EXPECT_EQ(client_->post("/api/v1/agents/" + agent_id_ + "/start", "").status, 200u);
    auto t = client_->post("/api/v1/agents/" + agent_id_ + "/tasks", json::serialize(json::object{{"input", input}}));
    EXPECT_EQ(t.status, 201u) << t.describe();
    const std::string task_id = t.str("/data/id");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = client_->get("/api/v1/agents/" + agent_id_ + "/tasks/" + task_id);
      const auto st = r.str("/data/status");
      if (st == "succeeded" || st == "failed") return task_id;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "task did not finish";
    return task_id;
  }

  std::string agent_id_;
};

TEST_P(MemoryApiTest, NotesAreFoundByMeaningAndSurviveARestart) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto a = add(json::object{{"text", "Deploys to staging fail when the database migration runs longer than 30 s."},
                            {"metadata", json::object{{"labels", json::array{"deploy"}}}}});
  ASSERT_EQ(a.status, 201u) << a.describe();
  const std::string deploy_id = a.str("/data/id");
  EXPECT_EQ(a.header("Location"), "/api/v1/memory/" + deploy_id);
  ASSERT_EQ(add(json::object{{"text", "The on-call rotation changes every Monday at 09:00 UTC."}}).status, 201u);
  ASSERT_EQ(add(json::object{{"text", "Use the staging database only for load tests."}, {"kind", "convention"}}).status, 201u);

  auto r = search("q=why%20do%20staging%20deployments%20fail%3F&k=2");
  ASSERT_EQ(r.status, 200u) << r.describe();
  ASSERT_EQ(r.num("/meta/count"), 2) << r.describe();
  EXPECT_EQ(r.str("/data/0/id"), deploy_id) << r.describe();
  EXPECT_EQ(r.at("/data/0/embedding"), nullptr);  // never returned
  EXPECT_GT(r.at("/data/0/score")->to_number<double>(), r.at("/data/1/score")->to_number<double>());
  auto conv = search("q=staging&kind=convention");
  ASSERT_EQ(conv.num("/meta/count"), 1) << conv.describe();
  EXPECT_EQ(conv.str("/data/0/kind"), "convention");
  EXPECT_EQ(search("q=staging&minScore=0.99").num("/meta/count"), 0);

  ASSERT_EQ(server_->process().stop(), 0);
  ASSERT_EQ(server_->restart(), "");
  client_ = std::make_unique<HttpClient>(server_->port());
  r = search("q=why%20do%20staging%20deployments%20fail%3F&k=1");
  ASSERT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(r.str("/data/0/id"), deploy_id) << r.describe();
  auto one = client_->get("/api/v1/memory/" + deploy_id);
  ASSERT_EQ(one.status, 200u) << one.describe();
  EXPECT_EQ(one.str("/data/metadata/labels/0"), "deploy");

  EXPECT_EQ(client_->del("/api/v1/memory/" + deploy_id).status, 204u);
  EXPECT_EQ(client_->del("/api/v1/memory/" + deploy_id).status, 404u);
  EXPECT_EQ(client_->get("/api/v1/memory/" + deploy_id).status, 404u);
  r = search("q=why%20do%20staging%20deployments%20fail%3F&k=5");
  for (const auto& h : r.at("/data")->as_array()) EXPECT_NE(h.at("id").as_string(), deploy_id);
}

TEST_P(MemoryApiTest, BadInputIsRefusedAndChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_EQ(add(json::object{{"text", "a first note about releases"}}).status, 201u);
  const std::int64_t before = total();
  ASSERT_EQ(before, 1);
  struct Case {
    std::string body;
    unsigned status;
    std::string field;
  };
  const std::string big(16 * 1024 + 1, 'a');
  const Case cases[] = {
      {"{\"text\": \"unterminated", 400, ""},
      {"[1, 2]", 422, ""},
      {"{}", 422, "text"},
      {json::serialize(json::object{{"text", big}}), 422, "text"},
      {json::serialize(json::object{{"text", "bell \x07 here"}}), 422, "text"},
      {json::serialize(json::object{{"text", 42}}), 422, "text"},
      {json::serialize(json::object{{"text", "?!"}}), 422, "text"},
      {json::serialize(json::object{{"text", "ok"}, {"kind", "Bad Kind"}}), 422, "kind"},
      {json::serialize(json::object{{"text", "ok"}, {"metadata", json::object{{"agentId", "x"}}}}), 422, "metadata.agentId"},
      {json::serialize(json::object{{"text", "ok"}, {"metadata", json::object{{"secret", 1}}}}), 422, "metadata.secret"},
      {json::serialize(json::object{{"text", "ok"}, {"metadata", "no"}}), 422, "metadata"},
      {json::serialize(json::object{{"text", "ok"}, {"extra", true}}), 422, "extra"},
  };
  for (const auto& c : cases) {
    auto r = client_->post("/api/v1/memory", c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 80) << " -> " << r.describe();
    if (!c.field.empty()) {
      EXPECT_EQ(r.str("/error/details/0/field"), c.field) << r.describe();
    }
  }
  // A body over the server's limit (1 MiB): 413 before any handler.
  auto huge = client_->post("/api/v1/memory", json::serialize(json::object{{"text", std::string(2 << 20, 'b')}}));
  EXPECT_EQ(huge.status, 413u) << huge.status;

  for (const char* q : {"", "q=", "k=5", "q=x&k=0", "q=x&k=51", "q=x&k=ten", "q=x&agentId=nope",
                        "q=x&kind=NO", "q=x&minScore=2", "q=x&minScore=abc", "q=x&sort=new", "q=%3F%3F"}) {
    auto r = search(q);
    EXPECT_EQ(r.status, 422u) << q << " -> " << r.describe();
  }
  EXPECT_EQ(client_->get("/api/v1/memory/not-a-uuid").status, 400u);
  EXPECT_EQ(client_->del("/api/v1/memory/not-a-uuid").status, 400u);
  EXPECT_EQ(client_->get("/api/v1/memory/0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee").status, 404u);
  EXPECT_EQ(total(), before);
}

TEST_P(MemoryApiTest, RolesAreEnforced) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto a = add(json::object{{"text", "rotate the signing keys every 90 days"}});
  ASSERT_EQ(a.status, 201u);
  const std::string id = a.str("/data/id");
  const std::string viewer = key("v", "viewer");
  const std::string agent = key("g", "agent");
  client_->set_token("");
  EXPECT_EQ(search("q=keys").status, 401u);
  EXPECT_EQ(add(json::object{{"text", "anonymous note"}}).status, 401u);
  client_->set_token(viewer);
  EXPECT_EQ(search("q=signing%20keys").status, 200u);
  EXPECT_EQ(client_->get("/api/v1/memory/" + id).status, 200u);
  EXPECT_EQ(add(json::object{{"text", "a viewer's note"}}).status, 403u);
  EXPECT_EQ(client_->del("/api/v1/memory/" + id).status, 403u);
  client_->set_token(agent);
  EXPECT_EQ(search("q=keys").status, 403u);
  client_->reset_token();
  EXPECT_EQ(total(), 1);
}

TEST_P(MemoryApiTest, AFinishedTaskIsRemembered) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string task_id =
      run_task("read x; echo \"compiled $x\"; echo 'linker error: undefined reference to zstd_compress' >&2; exit 2",
               "build the compression module");
  // The outcome is written by the memory worker just after the task's end.
  HttpResponse r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    r = search("q=undefined%20reference%20zstd%20linker&kind=task_outcome&agentId=" + agent_id_);
    if (r.num("/meta/count") > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(r.num("/meta/count"), 1) << r.describe();
  EXPECT_EQ(r.str("/data/0/metadata/taskId"), task_id);
  EXPECT_EQ(r.str("/data/0/metadata/status"), "failed");
  EXPECT_EQ(r.str("/data/0/createdBy"), "system:memory");
  EXPECT_NE(r.str("/data/0/text").find("build the compression module"), std::string::npos) << r.describe();
  EXPECT_NE(r.str("/data/0/text").find("zstd_compress"), std::string::npos) << r.describe();
}

TEST_P(MemoryApiTest, OutcomesAreNotRememberedWhenTurnedOff) {
  ASSERT_NO_FATAL_FAILURE(start({}, Env{{"DEVPLANE_MEMORY_OUTCOMES", "off"}}));
  run_task("echo done", "say done");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(search("q=done&kind=task_outcome&minScore=-1").num("/meta/count"), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, MemoryApiTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

}  // namespace
}  // namespace dp::it
