// Workflows over real HTTP on the real binary, on SQLite and on PostgreSQL: validation and
// versions, a DAG of command-agent steps, an approval gate, retries, cancel, and a kill -9 in
// the middle of an execution that the restarted server finishes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;


class WorkflowsTest : public BackendServerTest {
 protected:
  void SetUp() override {
    // A short lease so that a restarted PostgreSQL node takes over quickly.
    start({}, Env{{"DEVPLANE_WORKFLOW_LEASE_MS", "2000"}, {"DEVPLANE_TASK_LEASE_MS", "2000"}});
  }

  std::string agent(const std::string& name, json::object config) {
    auto r = client_->post("/api/v1/agents",
                           json::serialize(json::object{{"name", name}, {"type", "command"},
                                                        {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    auto s = client_->post("/api/v1/agents/" + id + "/start", "");
    EXPECT_EQ(s.status, 200u) << s.describe();
    return id;
  }

  std::string create(const std::string& yaml) {
    auto r = client_->post("/api/v1/workflows", json::serialize(json::object{{"definition", yaml}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }

  std::string execute(const std::string& wf, const json::object& inputs = {}) {
    auto r = client_->post("/api/v1/workflows/" + wf + "/execute",
                           json::serialize(json::object{{"inputs", inputs}}));
    EXPECT_EQ(r.status, 202u) << r.describe();
    return r.str("/data/id");
  }

  // Polls the execution until `pred` holds or it finished (bounded).
  HttpResponse wait_for(const std::string& id, const std::function<bool(const HttpResponse&)>& pred,
                        std::chrono::seconds limit = std::chrono::seconds(90)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    HttpResponse r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = client_->get("/api/v1/executions/" + id);
      if (r.status == 200 && pred(r)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "execution did not reach the state in time: " << r.describe();
    return r;
  }
  HttpResponse wait_done(const std::string& id, std::chrono::seconds limit = std::chrono::seconds(90)) {
    return wait_for(id, [](const HttpResponse& r) {
      const auto s = r.str("/data/status");
      return s == "succeeded" || s == "failed" || s == "cancelled";
    }, limit);
  }
  static const json::object* step(const HttpResponse& r, const std::string& id) {
    const auto* steps = r.at("/data/steps");
    if (steps == nullptr) return nullptr;
    for (const auto& s : steps->as_array()) {
      if (s.as_object().at("stepId").as_string() == id) return &s.as_object();
    }
    return nullptr;
  }
  static std::string step_status(const HttpResponse& r, const std::string& id) {
    const auto* s = step(r, id);
    return s == nullptr ? "" : std::string(s->at("status").as_string());
  }

};

TEST_P(WorkflowsTest, InvalidDefinitionsAre422WithEveryProblemAndLineNumbers) {
  const std::string bad = "name: bad\nsteps:\n  - id: a\n    type: wait\n    duration: 1s\n    needs: [b]\n"
                          "  - id: b\n    type: wait\n    duration: 1s\n    needs: [a]\n    colour: red\n"
                          "  - id: c\n    type: agent\n    agent: x\n    if: \"steps.ghost.status ==\"\n";
  auto r = client_->post("/api/v1/workflows", json::serialize(json::object{{"definition", bad}}));
  ASSERT_EQ(r.status, 422u) << r.describe();
  EXPECT_EQ(r.str("/error/code"), "validation_failed");
  const auto* details = r.at("/error/details");
  ASSERT_NE(details, nullptr);
  std::set<std::string> codes;
  for (const auto& d : details->as_array()) {
    codes.insert(std::string(d.as_object().at("code").as_string()));
    EXPECT_GT(d.as_object().at("line").as_int64(), 0) << json::serialize(d);
  }
  EXPECT_TRUE(codes.contains("cycle")) << r.body;
  EXPECT_TRUE(codes.contains("unknown_key")) << r.body;
  EXPECT_TRUE(codes.contains("bad_expression")) << r.body;
  // Nothing was saved.
  auto list = client_->get("/api/v1/workflows");
  EXPECT_EQ(list.num("/meta/total"), 0);

  // Malformed, unknown fields, wrong types, oversized, unauthenticated.
  EXPECT_EQ(client_->post("/api/v1/workflows", "{not json").status, 400u);
  EXPECT_EQ(client_->post("/api/v1/workflows", R"({"definition": "name: x", "extra": 1})").status, 422u);
  EXPECT_EQ(client_->post("/api/v1/workflows", R"({"definition": 42})").status, 422u);
  EXPECT_EQ(client_->post("/api/v1/workflows", "[]").status, 422u);
  const std::string big = json::serialize(json::object{{"definition", "name: x\n#" + std::string(600 * 1024, 'x')}});
  auto too_big = client_->post("/api/v1/workflows", big);
  EXPECT_TRUE(too_big.status == 413u) << too_big.describe();
  auto anon = client_->post("/api/v1/workflows", R"({"definition": "name: x"})", {{"Authorization", ""}});
  EXPECT_EQ(anon.status, 401u);
  EXPECT_EQ(client_->get("/api/v1/workflows/not-a-uuid").status, 400u);
  EXPECT_EQ(client_->get("/api/v1/workflows/0190b6a0-0000-7000-8000-000000000000").status, 404u);
  EXPECT_EQ(client_->get("/api/v1/workflows?bogus=1").status, 422u);
  EXPECT_EQ(client_->get("/api/v1/executions?status=weird").status, 422u);
  EXPECT_EQ(client_->post("/api/v1/executions/0190b6a0-0000-7000-8000-000000000000/cancel", "").status, 404u);
  list = client_->get("/api/v1/workflows");
  EXPECT_EQ(list.num("/meta/total"), 0);
}

TEST_P(WorkflowsTest, EveryChangeIsANewVersionAndOldOnesStayReadable) {
  const std::string v1 = "name: versioned\nsteps:\n  - {id: w, type: wait, duration: 10ms}\n";
  const std::string id = create(v1);
  const std::string v2 = "name: versioned\ndescription: second\nsteps:\n  - {id: w, type: wait, duration: 20ms}\n";
  auto put = client_->put("/api/v1/workflows/" + id, json::serialize(json::object{{"definition", v2}, {"version", 1}}));
  ASSERT_EQ(put.status, 200u) << put.describe();
  EXPECT_EQ(put.num("/data/version"), 2);
  EXPECT_EQ(put.str("/data/description"), "second");
  // A stale version is a conflict and changes nothing.
  auto stale = client_->put("/api/v1/workflows/" + id, json::serialize(json::object{{"definition", v1}, {"version", 1}}));
  EXPECT_EQ(stale.status, 409u) << stale.describe();
  // An invalid new definition is refused; the current one stays.
  auto invalid = client_->put("/api/v1/workflows/" + id, json::serialize(json::object{{"definition", "name: x\nsteps: 1"}}));
  EXPECT_EQ(invalid.status, 422u);
  auto one = client_->get("/api/v1/workflows/" + id + "/versions/1");
  ASSERT_EQ(one.status, 200u) << one.describe();
  EXPECT_EQ(one.str("/data/definition"), v1);
  EXPECT_EQ(client_->get("/api/v1/workflows/" + id + "/versions/2").str("/data/definition"), v2);
  EXPECT_EQ(client_->get("/api/v1/workflows/" + id + "/versions/3").status, 404u);
  EXPECT_EQ(client_->get("/api/v1/workflows/" + id + "/versions/x").status, 400u);
  // An execution records the version it ran.
  const std::string ex = execute(id);
  auto done = wait_done(ex);
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.num("/data/workflowVersion"), 2);
  // Archiving frees the name and refuses new executions.
  auto del = client_->del("/api/v1/workflows/" + id);
  ASSERT_EQ(del.status, 200u) << del.describe();
  EXPECT_EQ(del.str("/data/status"), "archived");
  EXPECT_EQ(client_->post("/api/v1/workflows/" + id + "/execute", "{}").status, 409u);
  create(v1);
}

TEST_P(WorkflowsTest, RunsADagOfAgentStepsPassingOutputsThroughTemplates) {
  // `cat` echoes the task input (JSON) back, so each step's outputs.json is its rendered input.
  agent("echo", json::object{{"command", json::array{"cat"}}});
  const std::string id = create(R"(name: dag
inputs:
  project: {type: string, required: true}
  suites: {type: array, default: [unit, e2e, lint]}
outputs:
  report: ${{ steps.report.outputs.json.summary }}
steps:
  - id: build
    type: agent
    agent: echo
    inputs: {artifact: "${{ inputs.project }}.tar"}
  - id: test
    type: agent
    agent: echo
    needs: [build]
    forEach: ${{ inputs.suites }}
    concurrency: 2
    inputs: {suite: "${{ item }}", of: "${{ steps.build.outputs.json.artifact }}"}
  - id: lint
    type: agent
    agent: {name: echo}
    needs: build
    if: inputs.project != 'skip-me'
    inputs: "lint ${{ steps.build.outputs.json.artifact }}"
  - id: never
    type: agent
    agent: echo
    needs: build
    if: inputs.project == 'other'
  - id: report
    type: agent
    agent: echo
    needs: [test, lint]
    inputs: {summary: "${{ len(steps.test.outputs.results) }} suites for ${{ steps.build.outputs.json.artifact }}"}
)");
  // Inputs are checked against the declaration.
  auto bad = client_->post("/api/v1/workflows/" + id + "/execute", R"({"inputs": {"project": 5, "x": 1}})");
  EXPECT_EQ(bad.status, 422u) << bad.describe();
  EXPECT_EQ(client_->post("/api/v1/workflows/" + id + "/execute", R"({"inputs": []})").status, 422u);
  const std::string ex = execute(id, json::object{{"project", "devplane"}});
  auto done = wait_done(ex);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.str("/data/outputs/report"), "3 suites for devplane.tar");
  EXPECT_EQ(step_status(done, "never"), "skipped");
  EXPECT_EQ(step_status(done, "test[2]"), "succeeded");
  const auto* t1 = step(done, "test[1]");
  ASSERT_NE(t1, nullptr);
  // (PostgreSQL keeps task inputs as JSONB, which orders keys its own way.)
  EXPECT_EQ(t1->at("outputs").at("json"), json::parse(R"({"suite":"e2e","of":"devplane.tar"})"));
  EXPECT_FALSE(t1->at("taskId").as_string().empty());
  EXPECT_EQ(step(done, "lint")->at("outputs").at("stdout"), "lint devplane.tar");
  // Each agent step ran as a task keyed <execution>/<step>/<attempt>.
  auto list = client_->get("/api/v1/executions?workflowId=" + id);
  EXPECT_EQ(list.num("/meta/total"), 1);
}

TEST_P(WorkflowsTest, AnApprovalGateWaitsForAHumanAndRecordsTheDecision) {
  const std::string id = create(R"(name: gated
steps:
  - id: gate
    type: approval
    message: "deploy ${{ inputs.env }}?"
    approvers: [admin]
  - id: after
    type: wait
    needs: [gate]
    duration: 10ms
inputs: {env: {type: string, default: prod}}
)");
  const std::string ex = execute(id);
  auto waiting = wait_for(ex, [](const HttpResponse& r) { return step_status(r, "gate") == "waiting_approval"; });
  EXPECT_EQ(waiting.str("/data/status"), "running");
  // The step row itself says what is asked and of whom (not only the approval.requested event).
  const auto* gate = step(waiting, "gate");
  ASSERT_NE(gate, nullptr) << waiting.describe();
  EXPECT_EQ(gate->at("outputs").at("message"), "deploy prod?") << waiting.describe();
  EXPECT_EQ(gate->at("outputs").at("approvers"), json::value(json::array{"admin"}));
  EXPECT_TRUE(gate->at("outputs").at("expiresAt").is_null());
  // Bad input changes nothing.
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/steps/after/approve", "").status, 409u);
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/steps/nope/approve", "").status, 404u);
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/steps/gate/approve", R"({"comment": 5})").status, 422u);
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/steps/gate/approve", R"({"x": 1})").status, 422u);
  auto ok = client_->post("/api/v1/executions/" + ex + "/steps/gate/approve", R"({"comment": "ship it"})");
  ASSERT_EQ(ok.status, 200u) << ok.describe();
  EXPECT_EQ(ok.str("/data/status"), "succeeded");
  EXPECT_EQ(ok.str("/data/outputs/comment"), "ship it");
  EXPECT_EQ(ok.str("/data/outputs/by"), "user:admin");
  EXPECT_EQ(ok.str("/data/outputs/message"), "deploy prod?");
  // Deciding twice is a conflict.
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/steps/gate/reject", "").status, 409u);
  auto done = wait_done(ex);
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();

  // A rejection fails the execution, and retry brings the gate back.
  const std::string ex2 = execute(id);
  wait_for(ex2, [](const HttpResponse& r) { return step_status(r, "gate") == "waiting_approval"; });
  auto no = client_->post("/api/v1/executions/" + ex2 + "/steps/gate/reject", R"({"comment": "not today"})");
  ASSERT_EQ(no.status, 200u) << no.describe();
  EXPECT_EQ(no.str("/data/outputs/message"), "deploy prod?");
  EXPECT_EQ(no.str("/data/outputs/comment"), "not today");
  auto failed = wait_done(ex2);
  EXPECT_EQ(failed.str("/data/status"), "failed");
  EXPECT_NE(failed.str("/data/error").find("not today"), std::string::npos) << failed.describe();
  EXPECT_EQ(step_status(failed, "after"), "skipped");
  auto again = client_->post("/api/v1/executions/" + ex2 + "/retry", "");
  ASSERT_EQ(again.status, 202u) << again.describe();
  wait_for(ex2, [](const HttpResponse& r) { return step_status(r, "gate") == "waiting_approval"; });
  ASSERT_EQ(client_->post("/api/v1/executions/" + ex2 + "/steps/gate/approve", "").status, 200u);
  EXPECT_EQ(wait_done(ex2).str("/data/status"), "succeeded");

  // With a timeout the row shows when the request expires; a gate nobody decides fails and
  // still shows what was asked.
  const std::string timed = create(R"(name: gated-briefly
steps:
  - id: gate
    type: approval
    message: "merge ${{ inputs.branch }}?"
    approvers: [operator, admin]
    timeout: 2s
inputs: {branch: {type: string, default: main}}
)");
  const std::string ex3 = execute(timed);
  auto asked = wait_for(ex3, [](const HttpResponse& r) { return step_status(r, "gate") == "waiting_approval"; });
  const auto* g3 = step(asked, "gate");
  ASSERT_NE(g3, nullptr);
  EXPECT_EQ(g3->at("outputs").at("message"), "merge main?");
  EXPECT_EQ(g3->at("outputs").at("approvers"), json::value(json::array{"operator", "admin"}));
  ASSERT_TRUE(g3->at("outputs").at("expiresAt").is_string()) << asked.describe();
  EXPECT_EQ(g3->at("outputs").at("expiresAt"), g3->at("wakeAt")) << asked.describe();
  auto expired = wait_done(ex3);
  EXPECT_EQ(expired.str("/data/status"), "failed");
  EXPECT_EQ(step_status(expired, "gate"), "failed");
  EXPECT_EQ(step(expired, "gate")->at("outputs").at("message"), "merge main?") << expired.describe();
}

TEST_P(WorkflowsTest, RetriesWithBackoffUntilTheStepSucceeds) {
  TempDir shared;
  // Fails twice, then succeeds (a counter outside the workspace: no isolation for this agent).
  const std::string counter = (shared.path() / "count").string();
  agent("flaky", json::object{{"isolation", "none"},
                              {"command", "n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " +
                                              counter + "; echo attempt $n; [ $n -ge 3 ] || exit 2"}});
  const std::string id = create(R"(name: flaky
steps:
  - id: try
    type: agent
    agent: flaky
    retry: {maxAttempts: 4, backoff: 100ms, retryOn: ["exit:2"]}
  - id: wrong-code
    type: agent
    agent: flaky
    needs: [try]
    inputs: "x"
    retry: {maxAttempts: 3, backoff: 100ms, retryOn: ["exit:9"]}
    continueOnError: true
)");
  const std::string ex = execute(id);
  auto done = wait_done(ex);
  const auto* s = step(done, "try");
  ASSERT_NE(s, nullptr) << done.describe();
  EXPECT_EQ(s->at("status"), "succeeded");
  EXPECT_EQ(s->at("attempt").as_int64(), 3);
  EXPECT_EQ(s->at("outputs").at("stdout"), "attempt 3\n");
  EXPECT_EQ(s->at("history").as_array().size(), 3u);
  // The second step passes (counter >= 3 now) on its first attempt.
  EXPECT_EQ(step_status(done, "wrong-code"), "succeeded");
  EXPECT_EQ(done.str("/data/status"), "succeeded");
}

TEST_P(WorkflowsTest, ToolStepsFailClearlyAndCancelStopsAnExecution) {
  const std::string tool = create("name: tool\nsteps:\n  - {id: t, type: tool, tool: fs/read_file}\n");
  auto failed = wait_done(execute(tool));
  EXPECT_EQ(failed.str("/data/status"), "failed");
  // No adapter named `fs` is registered: the step fails at once, naming it (tool steps proper
  // are tested in workflow_tools_test.cpp).
  EXPECT_NE(failed.str("/data/error").find("no MCP adapter named 'fs'"), std::string::npos) << failed.describe();

  const std::string slow = create("name: slow\nsteps:\n  - {id: w, type: wait, duration: 1h}\n");
  const std::string ex = execute(slow);
  wait_for(ex, [](const HttpResponse& r) { return step_status(r, "w") == "waiting"; });
  auto c = client_->post("/api/v1/executions/" + ex + "/cancel", "");
  ASSERT_EQ(c.status, 202u) << c.describe();
  auto done = wait_done(ex);
  EXPECT_EQ(done.str("/data/status"), "cancelled");
  EXPECT_EQ(step_status(done, "w"), "cancelled");
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/cancel", "").status, 409u);
  EXPECT_EQ(client_->post("/api/v1/executions/" + ex + "/cancel", R"({"force": true})").status, 422u);
}

// kill -9 while a step's task runs and while a timer is pending; the restarted server resumes
// the execution: every step finishes once per idempotency key (at least once, same key).
TEST_P(WorkflowsTest, AKilledServerResumesExecutionsAfterRestart) {
  TempDir shared;
  const std::string ledger = (shared.path() / "ledger").string();
  agent("ledger", json::object{{"isolation", "none"},
                               {"command", "echo \"$DEVPLANE_IDEMPOTENCY_KEY\" >> " + ledger + "; sleep 1"}});
  const std::string id = create(R"(name: durable
steps:
  - {id: a, type: agent, agent: ledger}
  - {id: pause, type: wait, duration: 3s, needs: [a]}
  - {id: b, type: agent, agent: ledger, needs: [pause]}
  - {id: c, type: agent, agent: ledger, needs: [pause]}
)");
  const std::string ex = execute(id);
  wait_for(ex, [](const HttpResponse& r) { return step_status(r, "pause") == "waiting"; });
  server_->process().kill9();
  ASSERT_EQ(server_->restart(), "");
  client_ = std::make_unique<HttpClient>(server_->port());
  auto done = wait_done(ex, std::chrono::seconds(120));
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  std::ifstream in(ledger);
  std::map<std::string, int> runs;  // "<execution>/<step>/<attempt>" -> times run
  std::string line;
  while (std::getline(in, line)) {
    // DEVPLANE_IDEMPOTENCY_KEY is "<agent>/<execution>/<step>/<attempt>/<task attempt>".
    const auto first = line.find('/');
    const auto last = line.rfind('/');
    ASSERT_NE(first, last) << line;
    runs[line.substr(first + 1, last - first - 1)]++;
  }
  EXPECT_EQ(runs.size(), 3u);
  for (const char* s : {"a", "b", "c"}) EXPECT_EQ(runs[ex + "/" + s + "/1"], 1) << s;
}

// The examples in examples/workflows run end to end with a `shell` command agent.
TEST_P(WorkflowsTest, TheExamplesRun) {
  agent("shell", json::object{{"command", json::array{"sh", "-s"}}, {"concurrency", 4}});
  auto read = [](const std::string& name) {
    std::ifstream f(source_dir() + "/examples/workflows/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string ci = execute(create(read("ci-pipeline.yaml")));
  const std::string files = execute(create(read("fan-out-files.yaml")));
  const std::string review = execute(create(read("review-loop.yaml")), json::object{{"change", "a line"}});
  auto ci_done = wait_done(ci);
  ASSERT_EQ(ci_done.str("/data/status"), "succeeded") << ci_done.describe();
  EXPECT_EQ(ci_done.str("/data/outputs/report"), "demo: 3 suites passed, lint succeeded\n");
  auto files_done = wait_done(files);
  ASSERT_EQ(files_done.str("/data/status"), "succeeded") << files_done.describe();
  EXPECT_EQ(files_done.num("/data/outputs/counted"), 4);
  wait_for(review, [](const HttpResponse& r) { return step_status(r, "review") == "waiting_approval"; });
  ASSERT_EQ(client_->post("/api/v1/executions/" + review + "/steps/review/approve", R"({"comment": "lgtm"})").status, 200u);
  auto review_done = wait_done(review);
  ASSERT_EQ(review_done.str("/data/status"), "succeeded") << review_done.describe();
  EXPECT_EQ(step(review_done, "apply")->at("outputs").at("stdout"), "applied, approved by user:admin: lgtm\n");
}

// The crash-recovery check of the issue, scaled to a test's budget: executions of a 5-step
// workflow whose agent makes one effect per idempotency key (mkdir is atomic) and logs every
// run; the server is killed with SIGKILL at random moments and restarted. Every execution
// finishes, every step made its effect exactly once under the key of attempt 1, and the raw
// repeats stay within what can have been in flight at the kills.
TEST_P(WorkflowsTest, RandomKillsLoseNoStepAndRepeatNoEffect) {
  constexpr int kExecutions = 10;
  constexpr int kKills = 3;
  TempDir shared;
  const std::string dir = shared.str();
  fs::create_directories(shared.path() / "effects");
  agent("ledger", json::object{
                      {"isolation", "none"},
                      {"concurrency", 8},
                      {"command", "K=$(echo \"$DEVPLANE_IDEMPOTENCY_KEY\" | cut -d/ -f2-4 | tr / _); "
                                  "echo \"$K\" >> " + dir + "/raw; sleep 0.3; "
                                  "if mkdir " + dir + "/effects/$K 2>/dev/null; then echo \"$K\" >> " +
                                      dir + "/effectlog; fi"}});
  const std::string id = create(R"(name: five
steps:
  - {id: s1, type: agent, agent: ledger}
  - {id: s2, type: agent, agent: ledger, needs: [s1]}
  - {id: s3, type: agent, agent: ledger, needs: [s1]}
  - {id: s4, type: agent, agent: ledger, needs: [s2, s3]}
  - {id: s5, type: agent, agent: ledger, needs: [s4]}
)");
  std::vector<std::string> runs;
  for (int i = 0; i < kExecutions; ++i) runs.push_back(execute(id));
  std::mt19937 rng(std::random_device{}());
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 2000));
    server_->process().kill9();
    ASSERT_EQ(server_->restart(), "");
    client_ = std::make_unique<HttpClient>(server_->port());
  }
  for (const auto& ex : runs) {
    auto done = wait_done(ex, std::chrono::seconds(180));
    EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  }
  auto lines = [](const fs::path& p) {
    std::vector<std::string> out;
    std::ifstream in(p);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  };
  // Orphaned runs of the killed server may still be finishing their sleep.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  std::set<std::string> expected;
  for (const auto& ex : runs) {
    for (const char* s : {"s1", "s2", "s3", "s4", "s5"}) expected.insert(ex + "_" + s + "_1");
  }
  const auto effects = lines(shared.path() / "effectlog");
  const std::set<std::string> unique(effects.begin(), effects.end());
  EXPECT_EQ(effects.size(), unique.size()) << "a key had two effects";
  EXPECT_EQ(unique, expected) << "a step is missing, or ran under another attempt's key";
  const auto raw = lines(shared.path() / "raw");
  const std::size_t repeats = raw.size() - std::set<std::string>(raw.begin(), raw.end()).size();
  // At most two steps of an execution run at once (s2 and s3).
  EXPECT_LE(repeats, static_cast<std::size_t>(kKills * kExecutions * 2));
  std::cout << "[ figures  ] " << to_string(GetParam()) << ": " << kExecutions << " executions x 5 steps, "
            << kKills << " kills, " << raw.size() << " runs, " << repeats << " repeated runs, "
            << effects.size() << " effects\n";
}

INSTANTIATE_TEST_SUITE_P(Backends, WorkflowsTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
