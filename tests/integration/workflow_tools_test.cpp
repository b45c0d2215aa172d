// Workflow `tool` steps on the real binary against real MCP servers from npm (server-everything
// and server-filesystem over stdio, tests/mcp), on SQLite and PostgreSQL: templated arguments,
// outputs from content and from structuredContent feeding later steps, the audit rows (caller
// the execution's step, correlation id the execution), isError failing the step and retried per
// its policy, refusals (no such adapter, arguments that fail the schema) never retried,
// examples/workflows/fan-out-files-mcp.yaml end to end, and the cancel of an execution
// stopping every step in flight (tool calls, an agent's task, a timer, a sub-workflow).
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "child_process.hpp"
#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string mcp_dir() { return DP_MCP_TEST_DIR; }
std::string package_js(const std::string& name) {
  return mcp_dir() + "/node_modules/@modelcontextprotocol/" + name + "/dist/index.js";
}
// 32 bytes, base64: a master key two processes can share (sealed adapter env).
constexpr const char* kMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::string text_of(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

class WorkflowToolsTest : public BackendServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(package_js("server-everything"))) << "run `npm ci` in tests/mcp (scripts/test does)";
    node_ = node_binary(DP_NODE_BINARY);
    ASSERT_FALSE(node_.empty());
    // A short lease so that a restarted PostgreSQL node takes over quickly.
    start({}, Env{{"DEVPLANE_WORKFLOW_LEASE_MS", "2000"}});
  }

  std::string register_adapter(const std::string& name, json::array args) {
    auto r = client_->post("/api/v1/tools", json::serialize(json::object{
        {"name", name},
        {"config", json::object{{"transport", "stdio"}, {"command", node_}, {"args", std::move(args)},
                                {"sandbox", false}, {"timeoutMs", 10'000}}}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }
  std::string create(const std::string& yaml) {
    auto r = client_->post("/api/v1/workflows", json::serialize(json::object{{"definition", yaml}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }
  std::string execute(const std::string& wf, const json::object& inputs = {}) {
    auto r = client_->post("/api/v1/workflows/" + wf + "/execute", json::serialize(json::object{{"inputs", inputs}}));
    EXPECT_EQ(r.status, 202u) << r.describe();
    return r.str("/data/id");
  }
  HttpResponse wait_done(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    HttpResponse r;
    while (std::chrono::steady_clock::now() < deadline) {
      r = client_->get("/api/v1/executions/" + id);
      const auto s = r.str("/data/status");
      if (s == "succeeded" || s == "failed" || s == "cancelled") return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "execution did not finish in time: " << r.describe();
    return r;
  }
  static const json::object* step(const HttpResponse& r, const std::string& id) {
    const auto* steps = r.at("/data/steps");
    if (steps == nullptr) return nullptr;
    for (const auto& s : steps->as_array()) {
      if (s.as_object().at("stepId").as_string() == id) return &s.as_object();
    }
    return nullptr;
  }
  std::vector<json::object> executions(const std::string& adapter_id) {
    auto r = client_->get("/api/v1/tools/" + adapter_id + "/executions?limit=500");
    EXPECT_EQ(r.status, 200u) << r.describe();
    std::vector<json::object> out;
    if (const auto* items = r.at("/data"); items != nullptr && items->is_array()) {
      for (const auto& e : items->as_array()) out.push_back(e.as_object());
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.at("id").as_string() < b.at("id").as_string(); });
    return out;
  }

  // fake_server.mjs "silent" as the adapter `silent`: it never answers a tools/call, appends
  // each one it gets to `calls` and each notifications/cancelled to `cancelled`.
  void register_silent(const std::string& cancelled, const std::string& calls, int timeout_ms) {
    auto reg = client_->post("/api/v1/tools", json::serialize(json::object{
        {"name", "silent"},
        {"config", json::object{{"transport", "stdio"}, {"command", node_},
                                {"args", json::array{mcp_dir() + "/fake_server.mjs", "silent"}},
                                {"env", json::object{{"RECORD_FILE", cancelled}, {"CALL_FILE", calls}}},
                                {"sandbox", false}, {"timeoutMs", timeout_ms}}}}));
    ASSERT_EQ(reg.status, 201u) << reg.describe();
  }
  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static long lines_of(const std::string& path) {
    const std::string text = read_file(path);
    return std::count(text.begin(), text.end(), '\n');
  }
  // Polls (every 50 ms, at most `limit`) until `pred` holds.
  static bool eventually(const std::function<bool()>& pred, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }
  // Waits until step `id` of execution `ex` is dispatched.
  bool wait_dispatched(const std::string& ex, const std::string& id) {
    return eventually([&] {
      const auto now = client_->get("/api/v1/executions/" + ex);
      const auto* st = step(now, id);
      return st != nullptr && text_of(&st->at("status")) == "dispatched";
    }, std::chrono::seconds(30));
  }

  std::string node_;
};

TEST_P(WorkflowToolsTest, ToolStepsCallMcpToolsAndFeedTheirOutputsOn) {
  const std::string adapter = register_adapter("everything", json::array{package_js("server-everything"), "stdio"});
  const std::string wf = create(R"(
name: tools-chain
inputs:
  who: {type: string, default: world}
outputs:
  said: ${{ steps.again.outputs.text }}
  sum: ${{ steps.sum.outputs.text }}
steps:
  - id: greet
    type: tool
    tool: everything/echo
    arguments: {message: "hello ${{ inputs.who }}"}
  - id: sum
    type: tool
    adapter: everything
    tool: get-sum
    inputs: {a: 19, b: 23}
  - id: again
    type: tool
    tool: everything/echo
    needs: [greet, sum]
    arguments:
      message: "${{ steps.greet.outputs.text }} / ${{ steps.sum.outputs.text }}"
)");
  const std::string ex = execute(wf, {{"who", "devplane"}});
  auto done = wait_done(ex);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  const auto* greet = step(done, "greet");
  ASSERT_NE(greet, nullptr);
  EXPECT_EQ(text_of(&greet->at("outputs").at("text")), "Echo: hello devplane");
  EXPECT_EQ(greet->at("outputs").at("content").at(0).at("type"), "text");
  EXPECT_EQ(text_of(&greet->at("inputs").at("message")), "hello devplane");
  const std::string said = done.str("/data/outputs/said");
  EXPECT_NE(said.find("Echo: Echo: hello devplane / "), std::string::npos) << said;
  EXPECT_NE(said.find("42"), std::string::npos) << said;

  // Audited: one row per call, the caller the execution's step, the correlation id the execution.
  const auto rows = executions(adapter);
  ASSERT_EQ(rows.size(), 3u);
  std::set<std::string> callers;
  for (const auto& row : rows) {
    EXPECT_EQ(text_of(&row.at("correlationId")), ex);
    EXPECT_EQ(text_of(&row.at("status")), "succeeded");
    callers.insert(text_of(&row.at("caller")));
  }
  EXPECT_EQ(callers, (std::set<std::string>{"execution:" + ex + "/greet", "execution:" + ex + "/sum",
                                            "execution:" + ex + "/again"}));
}

TEST_P(WorkflowToolsTest, IsErrorFailsTheStepAfterItsRetriesAndRefusalsAreNotRetried) {
  TempDir dir;
  const std::string adapter = register_adapter("files", json::array{package_js("server-filesystem"), dir.str()});
  const std::string wf = create(R"(
name: tool-failures
inputs:
  dir: string
steps:
  - id: missing
    type: tool
    tool: files/read_text_file
    retry: {maxAttempts: 3, backoff: 100ms}
    continueOnError: true
    arguments: {path: "${{ inputs.dir }}/no-such-file.txt"}
  - id: badargs
    type: tool
    tool: files/read_text_file
    retry: {maxAttempts: 3, backoff: 100ms}
    continueOnError: true
    arguments: {path: 42}
  - id: noadapter
    type: tool
    tool: nosuch/read_text_file
    retry: {maxAttempts: 3, backoff: 100ms}
    continueOnError: true
)");
  const std::string ex = execute(wf, {{"dir", dir.str()}});
  auto done = wait_done(ex);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  const auto* missing = step(done, "missing");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(text_of(&missing->at("status")), "failed");
  EXPECT_EQ(missing->at("attempt").to_number<int>(), 3) << json::serialize(*missing);
  EXPECT_NE(text_of(&missing->at("error")).find("the tool answered with an error"), std::string::npos)
      << json::serialize(*missing);
  const auto* bad = step(done, "badargs");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(text_of(&bad->at("status")), "failed");
  EXPECT_EQ(bad->at("attempt").to_number<int>(), 1) << json::serialize(*bad);
  EXPECT_NE(text_of(&bad->at("error")).find("validation_failed"), std::string::npos) << json::serialize(*bad);
  const auto* none = step(done, "noadapter");
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->at("attempt").to_number<int>(), 1);
  EXPECT_NE(text_of(&none->at("error")).find("no MCP adapter named 'nosuch'"), std::string::npos);
  // Three tool_error rows for the retried call; the schema failure never reached the server.
  int tool_errors = 0;
  for (const auto& row : executions(adapter)) tool_errors += text_of(&row.at("status")) == "tool_error";
  EXPECT_EQ(tool_errors, 3);
}

TEST_P(WorkflowToolsTest, TheFanOutExampleReadsEveryFileThroughTheFilesystemServer) {
  TempDir dir;
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"README.md", "# readme\n"}, {"NOTES.txt", "some notes\n"}, {"TODO.txt", "- ship it\n"}}) {
    std::ofstream(dir.path() / name) << text;
  }
  // Sandboxed, as the example's README registers it: the server sees the folder as /workspace.
  auto reg = client_->post("/api/v1/tools", json::serialize(json::object{
      {"name", "files"},
      {"config", json::object{{"transport", "stdio"}, {"command", node_},
                              {"args", json::array{package_js("server-filesystem"), "/workspace"}},
                              {"sandbox", true}, {"cwd", dir.str()},
                              {"readOnlyPaths", json::array{mcp_dir() + "/node_modules"}},
                              {"timeoutMs", 10'000}}}}));
  ASSERT_EQ(reg.status, 201u) << reg.describe();
  ASSERT_EQ(reg.str("/data/status"), "healthy") << reg.describe();
  std::ifstream in(std::string(DP_EXAMPLES_DIR) + "/workflows/fan-out-files-mcp.yaml");
  std::stringstream yaml;
  yaml << in.rdbuf();
  const std::string wf = create(yaml.str());
  const std::string ex = execute(wf, {{"dir", "/workspace"}});
  auto done = wait_done(ex);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  EXPECT_EQ(done.num("/data/outputs/read"), 3);
  EXPECT_NE(done.str("/data/outputs/report").find("report.json"), std::string::npos) << done.describe();
  std::ifstream report(dir.path() / "report.json");
  std::stringstream got;
  got << report.rdbuf();
  const auto parsed = json::parse(got.str());
  ASSERT_TRUE(parsed.is_array()) << got.str();
  ASSERT_EQ(parsed.as_array().size(), 3u);
  EXPECT_EQ(parsed.as_array()[0].at("content"), "# readme\n");
  EXPECT_EQ(parsed.as_array()[2].at("content"), "- ship it\n");
}

// kill -9 while a tool step's call is in flight: the restarted server makes the call again
// (at least once, the same attempt) and the execution finishes.
TEST_P(WorkflowToolsTest, AToolCallCutByACrashIsMadeAgainOnResume) {
  const std::string adapter = register_adapter("everything", json::array{package_js("server-everything"), "stdio"});
  const std::string wf = create(R"(
name: slow-tool
steps:
  - id: slow
    type: tool
    tool: everything/trigger-long-running-operation
    arguments: {duration: 3, steps: 3}
  - id: after
    type: tool
    tool: everything/echo
    needs: [slow]
    arguments: {message: done}
)");
  const std::string ex = execute(wf);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client_->get("/api/v1/executions/" + ex);
    const auto* s = step(r, "slow");
    if (s != nullptr && text_of(&s->at("status")) == "dispatched") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // the call is in flight
  server_->process().kill9();
  ASSERT_EQ(server_->restart(), "");
  client_ = std::make_unique<HttpClient>(server_->port());
  auto done = wait_done(ex);
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  const auto* slow = step(done, "slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->at("attempt").to_number<int>(), 1) << json::serialize(*slow);
  EXPECT_NE(text_of(&slow->at("outputs").at("text")).find("completed"), std::string::npos) << json::serialize(*slow);
  // The cut call left no row (a row is written when a call ends); the repeated one did.
  int slow_rows = 0;
  for (const auto& row : executions(adapter)) {
    slow_rows += text_of(&row.at("caller")) == "execution:" + ex + "/slow";
  }
  EXPECT_EQ(slow_rows, 1);
}

// Cancelling an execution stops what its steps are doing, well before any of it would end by
// itself: a slow tool call (server-everything's 30 s operation) and one the server never
// answers (fake_server.mjs, which records the notifications/cancelled it is sent) end with
// records that say cancelled; an agent's task (sleep 30) is stopped; a 1 h timer is dropped;
// a sub-workflow is cancelled with its own agent task and timer. The adapters serve the next
// execution.
TEST_P(WorkflowToolsTest, CancellingAnExecutionStopsEveryStepInFlight) {
  TempDir dir;
  const std::string record = (dir.path() / "cancelled.jsonl").string();
  const std::string everything = register_adapter("everything", json::array{package_js("server-everything"), "stdio"});
  auto reg = client_->post("/api/v1/tools", json::serialize(json::object{
      {"name", "silent"},
      {"config", json::object{{"transport", "stdio"}, {"command", node_},
                              {"args", json::array{mcp_dir() + "/fake_server.mjs", "silent"}},
                              {"env", json::object{{"RECORD_FILE", record}}},
                              {"sandbox", false}, {"timeoutMs", 60'000}}}}));
  ASSERT_EQ(reg.status, 201u) << reg.describe();
  const std::string silent = reg.str("/data/id");
  auto a = client_->post("/api/v1/agents", json::serialize(json::object{
      {"name", "sleeper"}, {"type", "command"},
      {"config", json::object{{"command", "sleep 30"}, {"isolation", "none"}, {"concurrency", 2}}}}));
  ASSERT_EQ(a.status, 201u) << a.describe();
  const std::string agent = a.str("/data/id");
  ASSERT_EQ(client_->post("/api/v1/agents/" + agent + "/start", "").status, 200u);
  create(R"(
name: cancel-child
steps:
  - {id: nap, type: agent, agent: sleeper}
  - {id: later, type: wait, duration: 1h}
)");
  const std::string wf = create(R"(
name: cancel-parent
steps:
  - id: slow
    type: tool
    tool: everything/trigger-long-running-operation
    arguments: {duration: 30, steps: 30}
  - id: hang
    type: tool
    tool: silent/echo
    arguments: {message: never answered}
  - {id: nap, type: agent, agent: sleeper}
  - {id: pause, type: wait, duration: 1h}
  - {id: child, type: workflow, workflow: cancel-child}
  - {id: after, type: tool, tool: everything/echo, needs: [slow], arguments: {message: never}}
)");
  const std::string ex = execute(wf);
  // Everything in flight: both calls dispatched, the task and the child running.
  HttpResponse r;
  auto status_of = [](const HttpResponse& resp, const std::string& id) {
    const auto* s = step(resp, id);
    return s == nullptr ? std::string() : text_of(&s->at("status"));
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string child_ex;
  bool ready = false;
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    r = client_->get("/api/v1/executions/" + ex);
    ready = status_of(r, "slow") == "dispatched" && status_of(r, "hang") == "dispatched" &&
            status_of(r, "nap") == "running" && status_of(r, "pause") == "waiting" &&
            status_of(r, "child") == "running";
    if (ready) {
      child_ex = text_of(&step(r, "child")->at("taskId"));
      auto c = client_->get("/api/v1/executions/" + child_ex);
      ready = status_of(c, "nap") == "running" && status_of(c, "later") == "waiting";
    }
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready) << r.describe();
  const std::string task = text_of(&step(r, "nap")->at("taskId"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // the calls and the sleeps run
  ASSERT_TRUE(executions(everything).empty());  // no call has ended yet
  ASSERT_EQ(client_->get("/api/v1/agents/" + agent + "/tasks/" + task).str("/data/status"), "running");

  const auto t0 = std::chrono::steady_clock::now();
  auto c = client_->post("/api/v1/executions/" + ex + "/cancel", "");
  ASSERT_EQ(c.status, 202u) << c.describe();
  auto done = wait_done(ex);
  ASSERT_EQ(done.str("/data/status"), "cancelled") << done.describe();
  for (const char* s : {"slow", "hang", "nap", "pause", "child", "after"}) {
    EXPECT_EQ(status_of(done, s), "cancelled") << s << ": " << done.describe();
  }
  auto child_done = wait_done(child_ex);
  EXPECT_EQ(child_done.str("/data/status"), "cancelled") << child_done.describe();
  EXPECT_EQ(status_of(child_done, "nap"), "cancelled") << child_done.describe();
  EXPECT_EQ(status_of(child_done, "later"), "cancelled") << child_done.describe();
  const std::string child_task = text_of(&step(child_done, "nap")->at("taskId"));

  // The tasks stop, the calls end with records that say cancelled, the silent server was told.
  auto ended = [&](const std::function<bool()>& pred) {
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  for (const auto& t : {task, child_task}) {
    EXPECT_TRUE(ended([&] {
      return client_->get("/api/v1/agents/" + agent + "/tasks/" + t).str("/data/status") == "cancelled";
    })) << client_->get("/api/v1/agents/" + agent + "/tasks/" + t).describe();
  }
  EXPECT_TRUE(ended([&] { return executions(everything).size() == 1u && executions(silent).size() == 1u; }));
  const auto slow_rows = executions(everything);
  ASSERT_EQ(slow_rows.size(), 1u);
  EXPECT_EQ(text_of(&slow_rows[0].at("caller")), "execution:" + ex + "/slow");
  EXPECT_EQ(text_of(&slow_rows[0].at("status")), "cancelled") << json::serialize(slow_rows[0]);
  EXPECT_LT(slow_rows[0].at("durationMs").to_number<double>(), 20'000.0);
  const auto hang_rows = executions(silent);
  ASSERT_EQ(hang_rows.size(), 1u);
  EXPECT_EQ(text_of(&hang_rows[0].at("status")), "cancelled") << json::serialize(hang_rows[0]);
  std::string sent;
  EXPECT_TRUE(ended([&] {
    std::ifstream in(record);
    std::stringstream ss;
    ss << in.rdbuf();
    sent = ss.str();
    return !sent.empty();
  }));
  EXPECT_NE(sent.find("requestId"), std::string::npos) << sent;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));

  // The adapter serves the next execution.
  const std::string next = create("name: after-cancel\nsteps:\n  - {id: e, type: tool, tool: everything/echo, arguments: {message: again}}\n");
  auto again = wait_done(execute(next));
  ASSERT_EQ(again.str("/data/status"), "succeeded") << again.describe();
  EXPECT_EQ(text_of(&step(again, "e")->at("outputs").at("text")), "Echo: again");
}

// SIGTERM while a tool step's call is in flight and would not end for minutes (fake_server.mjs
// "silent", an adapter timeout of 120 s): the server gives it its grace period (1 s here), then
// cancels it (the upstream gets notifications/cancelled), writes nothing for it and exits 0.
// The next start makes the call again, as the same attempt.
TEST_P(WorkflowToolsTest, ShutdownCancelsACallThatOutlastsTheGracePeriodAndTheNextStartRepeatsIt) {
  // A fixed master key: on PostgreSQL the restarted node has a data folder of its own, and the
  // adapter's env is sealed.
  ASSERT_NO_FATAL_FAILURE(start({}, Env{{"DEVPLANE_WORKFLOW_LEASE_MS", "2000"},
                                        {"DEVPLANE_SHUTDOWN_TIMEOUT_MS", "1000"},
                                        {"DEVPLANE_MASTER_KEY", kMasterKey}}));
  TempDir dir;
  const std::string record = (dir.path() / "cancelled.jsonl").string();
  const std::string calls = (dir.path() / "calls.jsonl").string();
  ASSERT_NO_FATAL_FAILURE(register_silent(record, calls, 120'000));
  const std::string ex = execute(create("name: outlasts\nsteps:\n  - {id: hang, type: tool, tool: silent/echo, arguments: {message: hi}}\n"));
  ASSERT_TRUE(wait_dispatched(ex, "hang"));
  ASSERT_TRUE(eventually([&] { return lines_of(calls) == 1; }, std::chrono::seconds(30)))
      << "the call never reached its server";

  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->process().stop(), 0) << server_->process().stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_NE(server_->process().stderr_text().find("made again at the next start"), std::string::npos)
      << server_->process().stderr_text();
  ASSERT_TRUE(eventually([&] { return lines_of(record) == 1; }, std::chrono::seconds(5)))
      << "the server was not told: " << read_file(record);
  EXPECT_NE(read_file(record).find("requestId"), std::string::npos) << read_file(record);

  ASSERT_EQ(server_->restart(), "");
  client_ = std::make_unique<HttpClient>(server_->port());
  ASSERT_TRUE(eventually([&] { return lines_of(calls) == 2; }, std::chrono::seconds(30)))
      << "the call was not made again: " << read_file(calls) << "\n"
      << server_->process().stderr_text() << "\n" << client_->get("/api/v1/executions/" + ex).describe();
  auto r = client_->get("/api/v1/executions/" + ex);
  EXPECT_EQ(r.str("/data/status"), "running") << r.describe();
  const auto* st = step(r, "hang");
  ASSERT_NE(st, nullptr) << r.describe();
  EXPECT_EQ(text_of(&st->at("status")), "dispatched") << json::serialize(*st);
  EXPECT_EQ(st->at("attempt").to_number<int>(), 1) << json::serialize(*st);
  EXPECT_EQ(st->at("history").as_array().size(), 0u) << json::serialize(*st);
  ASSERT_EQ(client_->post("/api/v1/executions/" + ex + "/cancel", "").status, 202u);
}

// Two nodes on one PostgreSQL. Node A's process is paused (SIGSTOP) past its 2 s lease while
// a tool step's call is in flight there (fake_server.mjs "silent": it never answers and records
// every notifications/cancelled it gets); node B takes the execution over and makes the call
// again. Once A runs again, its next pass finds the lease gone and cancels its own call: A's
// server is sent notifications/cancelled within seconds, instead of A waiting out its 60 s.
class WorkflowToolsTwoNodesTest : public WorkflowToolsTest {};

TEST_P(WorkflowToolsTwoNodesTest, ANodeThatLostTheLeaseCancelsItsToolCall) {
  // Both nodes get the same master key: the adapter's env is sealed with it.
  const Env env{{"DEVPLANE_WORKFLOW_LEASE_MS", "2000"}, {"DEVPLANE_MASTER_KEY", kMasterKey}};
  ASSERT_NO_FATAL_FAILURE(start({}, env));
  TempDir dir;
  const std::string record = (dir.path() / "cancelled.jsonl").string();
  const std::string calls = (dir.path() / "calls.jsonl").string();
  ASSERT_NO_FATAL_FAILURE(register_silent(record, calls, 60'000));
  const std::string wf = create("name: two-nodes\nsteps:\n  - {id: hang, type: tool, tool: silent/echo, arguments: {message: hi}}\n");
  const std::string ex = execute(wf);
  ASSERT_TRUE(wait_dispatched(ex, "hang"));
  ASSERT_TRUE(eventually([&] { return lines_of(calls) == 1; }, std::chrono::seconds(30)))
      << "A's call never reached its server";

  // Node B, on the same database; A's lease holder noted before A is paused.
  ServerConfig b_cfg = server_->config();
  b_cfg.env = env;
  ServerProcess b;
  ASSERT_EQ(b.start(b_cfg), "");
  PgDatabase* db = server_->pg();
  ASSERT_NE(db, nullptr);
  ASSERT_EQ(db->exec("CREATE TABLE it_holder AS SELECT lease_owner FROM workflow_executions WHERE id = '" + ex + "'"), "");
  server_->process().signal(SIGSTOP);
  const std::string taken_over =
      "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM workflow_executions w, it_holder h WHERE w.id = '" + ex +
      "' AND w.lease_owner IS DISTINCT FROM h.lease_owner) THEN RAISE EXCEPTION 'not taken over'; END IF; END $$";
  std::string err = "never checked";
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!err.empty() && std::chrono::steady_clock::now() < until) {
    err = db->exec(taken_over);
    if (!err.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // B makes the call again, on its own server process.
  const bool remade = err.empty() && eventually([&] { return lines_of(calls) == 2; }, std::chrono::seconds(20));
  server_->process().signal(SIGCONT);
  ASSERT_EQ(err, "") << "node B did not take the execution over";
  ASSERT_TRUE(remade) << "node B did not make the call again: " << read_file(calls);
  EXPECT_EQ(read_file(record), "") << "a call was cancelled before A ran again";

  ASSERT_TRUE(eventually([&] { return lines_of(record) >= 1; }, std::chrono::seconds(15)))
      << "node A never cancelled its call";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a second cancel would be here
  const std::string sent = read_file(record);
  EXPECT_NE(sent.find("requestId"), std::string::npos) << sent;
  EXPECT_EQ(lines_of(record), 1) << "only A's call is cancelled: " << sent;
  // The execution is B's: still running, its step dispatched (B's call hangs as A's did).
  HttpClient on_b(b.port());
  auto r = on_b.get("/api/v1/executions/" + ex);
  EXPECT_EQ(r.str("/data/status"), "running") << r.describe();
  const auto* st = step(r, "hang");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(text_of(&st->at("status")), "dispatched") << json::serialize(*st);
  ASSERT_EQ(on_b.post("/api/v1/executions/" + ex + "/cancel", "").status, 202u);
  EXPECT_EQ(b.stop(), 0) << b.stderr_text();
}

INSTANTIATE_TEST_SUITE_P(Postgres, WorkflowToolsTwoNodesTest, ::testing::Values(Backend::kPostgres), backend_name);

INSTANTIATE_TEST_SUITE_P(Backends, WorkflowToolsTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

}  // namespace
}  // namespace dp::it
