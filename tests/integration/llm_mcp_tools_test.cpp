// llm agents calling MCP tools: the real binary runs the agent loop against the scripted
// provider (tests/llm/scripted_provider.mjs) while the tools come from a real
// server-everything over stdio (tests/mcp), on SQLite and PostgreSQL. Multi-turn tasks calling
// two MCP tools in both wire formats with token accounting and the audited tool_executions
// rows; `<adapter>.*`; unknown adapters and tools refused at create and update (nothing
// changes); a tool held after its description changed is refused and the model reads why;
// an adapter removed after the agent was made fails the task with the reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include <boost/json.hpp>

#include "child_process.hpp"
#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// The string a JSON value holds ("" for anything else).
std::string text_of(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : std::string(); }

std::string mcp_dir() { return DP_MCP_TEST_DIR; }
std::string everything_js() {
  return mcp_dir() + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
}

json::object tool_step(const std::string& name, json::object args, int in, int out) {
  return json::object{{"toolCalls", json::array{json::object{{"name", name}, {"arguments", std::move(args)}}}},
                      {"usage", json::object{{"input", in}, {"output", out}}}};
}

json::object text_step(const std::string& text, int in, int out) {
  return json::object{{"text", text}, {"usage", json::object{{"input", in}, {"output", out}}}};
}

class LlmMcpToolsTest : public BackendServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(everything_js())) << "run `npm ci` in tests/mcp (scripts/test does)";
    node_ = node_binary(DP_NODE_BINARY);
    ASSERT_FALSE(node_.empty()) << "node not found: install nodejs or set DEVPLANE_TEST_NODE";
    const std::string port = provider_.start({node_, DP_SCRIPTED_PROVIDER, "--port", "0"}, {},
                                             "scripted-provider listening on ");
    ASSERT_FALSE(port.empty()) << provider_.error();
    provider_port_ = static_cast<std::uint16_t>(std::stoi(port));
    control_ = std::make_unique<HttpClient>(provider_port_);
    control_->set_token("");
    start();
  }

  std::string register_adapter(const std::string& name, json::object config) {
    auto r = client_->post("/api/v1/tools",
                           json::serialize(json::object{{"name", name}, {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    return r.str("/data/id");
  }
  json::object everything_config() const {
    return json::object{{"transport", "stdio"}, {"command", node_},
                        {"args", json::array{everything_js(), "stdio"}},
                        {"sandbox", false}, {"timeoutMs", 10'000}};
  }

  void script(const json::array& steps) {
    auto r = control_->put("/_script", json::serialize(steps));
    ASSERT_EQ(r.status, 204u) << r.describe();
  }
  json::array recorded() {
    auto r = control_->get("/_requests");
    EXPECT_EQ(r.status, 200u) << r.describe();
    return r.json && r.json->is_array() ? r.json->as_array() : json::array{};
  }

  json::object llm_config(const std::string& format, json::array tools) const {
    const std::string root = "http://127.0.0.1:" + std::to_string(provider_port_);
    return json::object{{"provider", format},
                        {"model", format == "openai" ? "gpt-test" : "claude-test"},
                        {"baseUrl", format == "openai" ? root + "/v1" : root},
                        {"tools", std::move(tools)},
                        {"maxRetries", 1}};
  }
  HttpResponse create_agent(const std::string& name, json::object config) {
    return client_->post("/api/v1/agents", json::serialize(json::object{{"name", name}, {"type", "llm"},
                                                                         {"config", std::move(config)}}));
  }
  std::string agent(const std::string& name, json::object config) {
    auto r = create_agent(name, std::move(config));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    EXPECT_EQ(client_->post("/api/v1/agents/" + id + "/start", "").status, 200u);
    return id;
  }

  HttpResponse run_task(const std::string& agent_id, const std::string& input,
                        const std::string& request_id) {
    auto r = client_->post("/api/v1/agents/" + agent_id + "/tasks",
                           json::serialize(json::object{{"input", input}}), {{"X-Request-Id", request_id}});
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string task_id = r.str("/data/id");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      r = client_->get("/api/v1/agents/" + agent_id + "/tasks/" + task_id);
      const auto st = r.str("/data/status");
      if (st == "succeeded" || st == "failed" || st == "cancelled") return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "task did not finish in time: " << r.describe();
    return r;
  }

  // The adapter's tool_executions rows with this correlation id, oldest first.
  std::vector<json::object> executions(const std::string& adapter_id, const std::string& correlation_id) {
    auto r = client_->get("/api/v1/tools/" + adapter_id + "/executions?limit=500");
    EXPECT_EQ(r.status, 200u) << r.describe();
    std::vector<json::object> out;
    if (const auto* items = r.at("/data"); items != nullptr && items->is_array()) {
      for (const auto& e : items->as_array()) {
        if (text_of(e.at("correlationId")) == correlation_id) out.push_back(e.as_object());
      }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.at("id").as_string() < b.at("id").as_string();
    });
    return out;
  }

  std::string node_;
  ChildProcess provider_;
  std::uint16_t provider_port_ = 0;
  std::unique_ptr<HttpClient> control_;
};

// Issue 5's Must-show: two MCP tools of server-everything, both wire formats.
TEST_P(LlmMcpToolsTest, CompletesAMultiTurnTaskCallingTwoMcpToolsInBothWireFormats) {
  const std::string adapter = register_adapter("everything", everything_config());
  for (const std::string format : {"openai", "anthropic"}) {
    SCOPED_TRACE(format);
    const std::string id = agent("mcp-" + format, llm_config(format, json::array{"everything.echo", "everything.get-sum"}));
    script(json::array{tool_step("everything_echo", {{"message", "hello " + format}}, 200, 30),
                       tool_step("everything_get-sum", {{"a", 19}, {"b", 23}}, 240, 25),
                       text_step("Echoed, and 19 + 23 = 42.", 280, 12)});
    const std::string corr = "llm-mcp-" + format;
    auto done = run_task(id, "Echo a greeting, then add 19 and 23.", corr);
    ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
    EXPECT_EQ(done.str("/data/result/answer"), "Echoed, and 19 + 23 = 42.");
    EXPECT_EQ(done.num("/data/result/turns"), 3);
    EXPECT_EQ(done.num("/data/result/toolCalls"), 2);
    EXPECT_EQ(done.num("/data/result/usage/inputTokens"), 720);
    EXPECT_EQ(done.num("/data/result/usage/outputTokens"), 67);
    EXPECT_EQ(done.num("/data/result/usage/totalTokens"), 787);
    EXPECT_EQ(done.str("/data/result/calls/0/toolCalls/0"), "everything.echo");
    EXPECT_EQ(done.str("/data/result/calls/1/toolCalls/0"), "everything.get-sum");

    // The model saw both tools with the adapter's descriptions and schemas, and each result.
    const auto reqs = recorded();
    ASSERT_EQ(reqs.size(), 3u);
    const auto& tools = reqs[0].at("body").at("tools").as_array();
    ASSERT_EQ(tools.size(), 2u);
    if (format == "openai") {
      EXPECT_EQ(tools[0].at("function").at("name"), "everything_echo");
      EXPECT_EQ(tools[0].at("function").at("description"), "Echoes back the input string");
      EXPECT_EQ(tools[1].at("function").at("parameters").at("required").at(0), "a");
      const auto& m1 = reqs[1].at("body").at("messages").as_array().back();
      EXPECT_EQ(m1.at("role"), "tool");
      EXPECT_EQ(m1.at("content"), "Echo: hello openai");
      const auto& m2 = reqs[2].at("body").at("messages").as_array().back();
      EXPECT_NE(std::string(m2.at("content").as_string()).find("42"), std::string::npos) << m2;
    } else {
      EXPECT_EQ(tools[1].at("name"), "everything_get-sum");
      EXPECT_EQ(tools[1].at("input_schema").at("properties").at("b").at("type"), "number");
      const auto& m1 = reqs[1].at("body").at("messages").as_array().back();
      EXPECT_EQ(m1.at("content").at(0).at("type"), "tool_result");
      EXPECT_EQ(m1.at("content").at(0).at("content"), "Echo: hello anthropic");
      const auto& m2 = reqs[2].at("body").at("messages").as_array().back();
      EXPECT_NE(json::serialize(m2).find("42"), std::string::npos) << m2;
    }

    // Audited: one tool_executions row per call, caller the agent, the task's correlation id.
    const auto rows = executions(adapter, corr);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].at("tool"), "echo");
    EXPECT_EQ(rows[0].at("status"), "succeeded");
    EXPECT_EQ(text_of(rows[0].at("caller")), "agent:" + id);
    EXPECT_EQ(text_of(rows[0].at("arguments").at("message")), "hello " + format);
    EXPECT_EQ(rows[1].at("tool"), "get-sum");
    EXPECT_EQ(text_of(rows[1].at("caller")), "agent:" + id);
    EXPECT_EQ(rows[1].at("arguments").at("a"), 19);
    EXPECT_NE(json::serialize(rows[1].at("result")).find("42"), std::string::npos);

    // Token accounting in agent_metrics.
    auto m = client_->get("/api/v1/agents/" + id + "/metrics?taskId=" + done.str("/data/id") + "&type=task.input_tokens");
    ASSERT_EQ(m.status, 200u) << m.describe();
    EXPECT_EQ(m.num("/data/0/value"), 720);
  }
}

TEST_P(LlmMcpToolsTest, AWildcardGivesEveryToolOfTheAdapter) {
  register_adapter("everything", everything_config());
  const std::string id = agent("all-tools", llm_config("anthropic", json::array{"everything.*", "clock.now"}));
  script(json::array{tool_step("everything_get-sum", {{"a", 1}, {"b", 2}}, 10, 1), text_step("3", 10, 1)});
  auto done = run_task(id, "add", "llm-mcp-wildcard");
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  const auto reqs = recorded();
  ASSERT_FALSE(reqs.empty());
  const auto& tools = reqs[0].at("body").at("tools").as_array();
  EXPECT_GT(tools.size(), 5u);
  bool echo = false;
  bool clock = false;
  for (const auto& t : tools) {
    echo = echo || t.at("name") == "everything_echo";
    clock = clock || t.at("name") == "clock_now";
  }
  EXPECT_TRUE(echo && clock) << json::serialize(tools);
}

TEST_P(LlmMcpToolsTest, UnknownAdaptersAndToolsAreRefusedAndChangeNothing) {
  register_adapter("everything", everything_config());
  for (const auto& bad : {"nosuch.echo", "everything.nosuch", "everything", "everything.", ".echo"}) {
    SCOPED_TRACE(bad);
    auto r = create_agent(std::string("bad-") + bad, llm_config("openai", json::array{bad}));
    ASSERT_EQ(r.status, 422u) << r.describe();
    EXPECT_EQ(r.str("/error/code"), "validation_failed");
    EXPECT_EQ(r.str("/error/details/0/field"), "config.tools");
    EXPECT_EQ(r.str("/error/details/0/code"), "unknown_tool");
  }
  auto unknown = create_agent("x", llm_config("openai", json::array{"everything.nosuch"}));
  EXPECT_NE(unknown.str("/error/details/0/message").find("has no tool 'nosuch'"), std::string::npos) << unknown.describe();
  auto list = client_->get("/api/v1/agents");
  EXPECT_EQ(list.num("/meta/total"), 0) << list.describe();

  // An update naming an unknown tool is refused; the stored config stays.
  const std::string id = agent("good", llm_config("openai", json::array{"everything.echo"}));
  auto put = client_->put("/api/v1/agents/" + id,
                          json::serialize(json::object{{"version", 1},
                                                       {"config", llm_config("openai", json::array{"gone.echo"})}}));
  ASSERT_EQ(put.status, 422u) << put.describe();
  EXPECT_EQ(put.str("/error/details/0/code"), "unknown_tool");
  auto got = client_->get("/api/v1/agents/" + id);
  EXPECT_EQ(got.str("/data/config/tools/0"), "everything.echo");
  // Unauthenticated: refused before anything is looked up.
  client_->set_token("");
  EXPECT_EQ(create_agent("anon", llm_config("openai", json::array{"everything.echo"})).status, 401u);
}

TEST_P(LlmMcpToolsTest, AHeldToolIsRefusedAndTheModelReadsWhy) {
  TempDir dir;
  const std::string adapter = register_adapter(
      "mutating", json::object{{"transport", "stdio"}, {"command", node_},
                               {"args", json::array{mcp_dir() + "/fake_server.mjs", "mutating"}},
                               {"env", json::object{{"MUTATE_FILE", dir.str() + "/mutated"}}},
                               {"sandbox", false}, {"timeoutMs", 5'000}});
  const std::string id = agent("poisoned", llm_config("openai", json::array{"mutating.echo", "mutating.mutate"}));
  script(json::array{tool_step("mutating_mutate", {}, 10, 1), tool_step("mutating_echo", {{"message", "hi"}}, 10, 1),
                     text_step("the echo tool is held", 10, 1)});
  auto done = run_task(id, "mutate then echo", "llm-mcp-held");
  ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
  const auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 3u);
  const std::string fed = json::serialize(reqs[2].at("body").at("messages").as_array().back());
  EXPECT_NE(fed.find("tool_held"), std::string::npos) << fed;
  EXPECT_NE(fed.find("approve"), std::string::npos) << fed;
  const auto rows = executions(adapter, "llm-mcp-held");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("tool"), "mutate");
  EXPECT_EQ(rows[1].at("tool"), "echo");
  EXPECT_EQ(rows[1].at("status"), "refused");
  EXPECT_EQ(text_of(rows[1].at("caller")), "agent:" + id);
}

TEST_P(LlmMcpToolsTest, AnAdapterRemovedLaterFailsTheTaskWithTheReason) {
  const std::string adapter = register_adapter("everything", everything_config());
  const std::string id = agent("orphan", llm_config("openai", json::array{"everything.echo"}));
  ASSERT_EQ(client_->del("/api/v1/tools/" + adapter).status, 204u);
  script(json::array{text_step("unused", 1, 1)});
  auto done = run_task(id, "echo", "llm-mcp-removed");
  EXPECT_EQ(done.str("/data/status"), "failed") << done.describe();
  EXPECT_NE(done.str("/data/error").find("no MCP adapter named 'everything'"), std::string::npos) << done.describe();
  EXPECT_TRUE(recorded().empty());
}

// A task cancelled while its MCP tool call runs: the call stops (server-everything is sent
// notifications/cancelled), its record says cancelled, the task ends cancelled long before
// the 30 s the operation would take, and the adapter serves the next task.
TEST_P(LlmMcpToolsTest, CancellingTheTaskStopsItsMcpCallInFlight) {
  const std::string adapter = register_adapter("everything", everything_config());
  const std::string id = agent("mcp-cancel", llm_config("openai", json::array{"everything.*"}));
  script(json::array{tool_step("everything_trigger-long-running-operation", {{"duration", 30}, {"steps", 30}}, 100, 10),
                     text_step("never reached", 10, 1)});
  auto r = client_->post("/api/v1/agents/" + id + "/tasks", json::serialize(json::object{{"input", "wait long"}}),
                         {{"X-Request-Id", "llm-mcp-cancel"}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  const std::string task_id = r.str("/data/id");
  // Wait until the tool call is in flight: its progress reaches the outbox as events.
  bool in_flight = false;
  for (int i = 0; i < 200 && !in_flight; ++i) {
    auto t = client_->get("/api/v1/agents/" + id + "/tasks/" + task_id);
    in_flight = t.str("/data/status") == "running" && recorded().size() == 1u;
    if (!in_flight) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(in_flight);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(executions(adapter, "llm-mcp-cancel").size(), 0u);  // still running
  const auto t0 = std::chrono::steady_clock::now();
  auto c = client_->post("/api/v1/agents/" + id + "/tasks/" + task_id + "/cancel", "");
  ASSERT_LT(c.status, 300u) << c.describe();
  std::string status;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
    status = client_->get("/api/v1/agents/" + id + "/tasks/" + task_id).str("/data/status");
    if (status == "cancelled" || status == "failed" || status == "succeeded") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, "cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  std::vector<json::object> rows;
  for (int i = 0; i < 100 && rows.empty(); ++i) {
    rows = executions(adapter, "llm-mcp-cancel");
    if (rows.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("tool"), "trigger-long-running-operation");
  EXPECT_EQ(rows[0].at("status"), "cancelled");
  EXPECT_LT(rows[0].at("durationMs").to_number<double>(), 20'000.0);
  // The model was never asked again.
  EXPECT_EQ(recorded().size(), 1u);

  script(json::array{tool_step("everything_echo", {{"message", "still here"}}, 10, 1), text_step("done", 10, 1)});
  auto done = run_task(id, "echo", "llm-mcp-after-cancel");
  EXPECT_EQ(done.str("/data/status"), "succeeded") << done.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, LlmMcpToolsTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

}  // namespace
}  // namespace dp::it
