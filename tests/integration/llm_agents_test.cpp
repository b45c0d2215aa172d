// llm agents over real HTTP: the real binary runs the agent loop against the scripted provider
// (tests/llm/scripted_provider.mjs, the one test double: it speaks the real OpenAI and
// Anthropic wire formats, streamed and whole, and records what devplane sent), on SQLite and
// PostgreSQL. Multi-turn tasks calling two tools in both formats with token accounting, the
// guards (maxTurns, loop guard) with their recorded reasons, bad provider answers (500,
// garbage, a cut stream) failing the task while the server stays healthy, and the secrets and
// metrics routes with malformed, oversized and unauthorized input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "child_process.hpp"
#include "backend_fixture.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;


class LlmAgentsTest : public BackendServerTest {
 protected:
  void SetUp() override {
    const std::string node = node_binary(DP_NODE_BINARY);
    ASSERT_FALSE(node.empty()) << "node not found: install nodejs or set DEVPLANE_TEST_NODE";
    const std::string port = provider_.start({node, DP_SCRIPTED_PROVIDER, "--port", "0"}, {},
                                             "scripted-provider listening on ");
    ASSERT_FALSE(port.empty()) << provider_.error();
    provider_port_ = static_cast<std::uint16_t>(std::stoi(port));
    control_ = std::make_unique<HttpClient>(provider_port_);
    control_->set_token("");
    start();
  }

  std::string base_url(const std::string& format) const {
    const std::string root = "http://127.0.0.1:" + std::to_string(provider_port_);
    return format == "openai" ? root + "/v1" : root;
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

  std::string agent(const std::string& name, json::object config) {
    auto r = client_->post("/api/v1/agents",
                           json::serialize(json::object{{"name", name}, {"type", "llm"},
                                                        {"config", std::move(config)}}));
    EXPECT_EQ(r.status, 201u) << r.describe();
    const std::string id = r.str("/data/id");
    auto s = client_->post("/api/v1/agents/" + id + "/start", "");
    EXPECT_EQ(s.status, 200u) << s.describe();
    return id;
  }

  json::object llm_config(const std::string& format, json::array tools = {}) {
    return json::object{{"provider", format},
                        {"model", format == "openai" ? "gpt-test" : "claude-test"},
                        {"baseUrl", base_url(format)},
                        {"systemPrompt", "You are a careful test agent."},
                        {"tools", std::move(tools)},
                        {"maxRetries", 1}};
  }

  // Submits `input` and waits (bounded) for the task to finish; returns its last state.
  HttpResponse run_task(const std::string& agent_id, const std::string& input) {
    auto r = client_->post("/api/v1/agents/" + agent_id + "/tasks",
                           json::serialize(json::object{{"input", input}}));
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

  // Sum of the metric rows of `type` for the task (and their count).
  std::pair<std::int64_t, int> metric(const std::string& agent_id, const std::string& task_id,
                                      const std::string& type) {
    auto r = client_->get("/api/v1/agents/" + agent_id + "/metrics?taskId=" + task_id + "&type=" + type);
    EXPECT_EQ(r.status, 200u) << r.describe();
    std::int64_t sum = 0;
    int n = 0;
    if (const auto* items = r.at("/data"); items != nullptr && items->is_array()) {
      for (const auto& m : items->as_array()) {
        sum += m.at("value").to_number<std::int64_t>();
        ++n;
      }
    }
    return {sum, n};
  }

  ChildProcess provider_;
  std::uint16_t provider_port_ = 0;
  std::unique_ptr<HttpClient> control_;
};

json::object tool_step(const std::string& name, json::object args, int in, int out) {
  return json::object{{"toolCalls", json::array{json::object{{"name", name}, {"arguments", std::move(args)}}}},
                      {"usage", json::object{{"input", in}, {"output", out}}}};
}

json::object text_step(const std::string& text, int in, int out) {
  return json::object{{"text", text}, {"usage", json::object{{"input", in}, {"output", out}}}};
}

TEST_P(LlmAgentsTest, CompletesAMultiTurnTaskCallingTwoToolsInBothWireFormats) {
  auto put = client_->put("/api/v1/secrets/provider-key", R"({"value":"sk-live-123"})");
  ASSERT_EQ(put.status, 201u) << put.describe();
  for (const std::string format : {"openai", "anthropic"}) {
    for (const bool stream : {true, false}) {
      SCOPED_TRACE(format + (stream ? " streamed" : " whole"));
      auto cfg = llm_config(format, json::array{"workspace.write_file", "workspace.read_file"});
      cfg["apiKeySecret"] = "provider-key";
      cfg["stream"] = stream;
      const std::string id = agent("writer-" + format + (stream ? "-s" : "-w"), cfg);
      script(json::array{
          tool_step("workspace_write_file", {{"path", "notes/answer.md"}, {"content", "the answer is 42"}}, 100, 20),
          tool_step("workspace_read_file", {{"path", "notes/answer.md"}}, 120, 15),
          text_step("The file says: the answer is 42.", 150, 10)});
      auto done = run_task(id, "Write the answer to notes/answer.md, read it back and report it.");
      ASSERT_EQ(done.str("/data/status"), "succeeded") << done.describe();
      const std::string task_id = done.str("/data/id");
      EXPECT_EQ(done.str("/data/result/answer"), "The file says: the answer is 42.");
      EXPECT_EQ(done.str("/data/result/stopReason"), "final_answer");
      EXPECT_EQ(done.num("/data/result/turns"), 3);
      EXPECT_EQ(done.num("/data/result/toolCalls"), 2);
      EXPECT_EQ(done.num("/data/result/usage/inputTokens"), 370);
      EXPECT_EQ(done.num("/data/result/usage/outputTokens"), 45);
      EXPECT_EQ(done.str("/data/result/calls/0/toolCalls/0"), "workspace.write_file");
      EXPECT_EQ(done.str("/data/result/provider"), format);
      EXPECT_EQ(done.body.find("sk-live-123"), std::string::npos);

      // agent_metrics: one row per call and figure, and the task's totals.
      EXPECT_EQ(metric(id, task_id, "llm.input_tokens"), (std::pair<std::int64_t, int>{370, 3}));
      EXPECT_EQ(metric(id, task_id, "llm.output_tokens"), (std::pair<std::int64_t, int>{45, 3}));
      EXPECT_EQ(metric(id, task_id, "llm.latency_ms").second, 3);
      EXPECT_EQ(metric(id, task_id, "task.turns").first, 3);
      EXPECT_EQ(metric(id, task_id, "task.tool_calls").first, 2);
      EXPECT_EQ(metric(id, task_id, "task.input_tokens").first, 370);

      // What devplane sent: the key in the provider's header, the tools under wire names, the
      // system prompt, and each tool result back to the model.
      const auto reqs = recorded();
      ASSERT_EQ(reqs.size(), 3u);
      const auto& h = reqs[0].at("headers").as_object();
      const auto& body0 = reqs[0].at("body").as_object();
      if (format == "openai") {
        EXPECT_EQ(reqs[0].at("path"), "/v1/chat/completions");
        EXPECT_EQ(h.at("authorization"), "Bearer sk-live-123");
        EXPECT_EQ(body0.at("messages").at(0).at("role"), "system");
        EXPECT_EQ(body0.at("tools").at(0).at("function").at("name"), "workspace_write_file");
        if (stream) {
          EXPECT_EQ(body0.at("stream_options").at("include_usage"), true);
        }
        const auto& msgs = reqs[2].at("body").at("messages").as_array();
        EXPECT_EQ(msgs.back().at("role"), "tool");
        EXPECT_EQ(msgs.back().at("content"), "the answer is 42");
      } else {
        EXPECT_EQ(reqs[0].at("path"), "/v1/messages");
        EXPECT_EQ(h.at("x-api-key"), "sk-live-123");
        EXPECT_EQ(h.at("anthropic-version"), "2023-06-01");
        EXPECT_FALSE(h.contains("authorization"));
        EXPECT_EQ(body0.at("system"), "You are a careful test agent.");
        EXPECT_EQ(body0.at("tools").at(1).at("name"), "workspace_read_file");
        const auto& last = reqs[2].at("body").at("messages").as_array().back();
        EXPECT_EQ(last.at("role"), "user");
        EXPECT_EQ(last.at("content").at(0).at("type"), "tool_result");
        EXPECT_EQ(last.at("content").at(0).at("content"), "the answer is 42");
      }
      EXPECT_EQ(body0.contains("stream") && body0.at("stream").as_bool(), stream);
    }
  }
  // The secret is listed by name only.
  auto list = client_->get("/api/v1/secrets");
  ASSERT_EQ(list.status, 200u) << list.describe();
  EXPECT_EQ(list.str("/data/0/name"), "provider-key");
  EXPECT_EQ(list.body.find("sk-live"), std::string::npos);
}

TEST_P(LlmAgentsTest, MaxTurnsAndTheLoopGuardStopWithTheirReason) {
  auto cfg = llm_config("openai", json::array{"clock.now", "workspace.read_file"});
  cfg["maxTurns"] = 2;
  const std::string turns_id = agent("chatty", cfg);
  script(json::array{tool_step("clock_now", {{"i", 1}}, 10, 1), tool_step("clock_now", {{"i", 2}}, 10, 1),
                     text_step("never reached", 1, 1)});
  auto done = run_task(turns_id, "loop");
  EXPECT_EQ(done.str("/data/status"), "failed") << done.describe();
  EXPECT_EQ(done.str("/data/result/stopReason"), "max_turns");
  EXPECT_EQ(done.str("/data/error"), "stopped: maxTurns (2) reached without a final answer");
  EXPECT_EQ(recorded().size(), 2u);

  auto cfg2 = llm_config("anthropic", json::array{"workspace.read_file"});
  cfg2["loopGuard"] = 3;
  const std::string guard_id = agent("stuck", cfg2);
  json::object same = tool_step("workspace_read_file", {{"path", "missing.txt"}}, 10, 1);
  same["repeat"] = true;
  script(json::array{same});
  done = run_task(guard_id, "read it");
  EXPECT_EQ(done.str("/data/status"), "failed") << done.describe();
  EXPECT_EQ(done.str("/data/result/stopReason"), "loop_guard");
  EXPECT_NE(done.str("/data/error").find("loop guard"), std::string::npos) << done.describe();
  EXPECT_EQ(done.num("/data/result/toolCalls"), 2);
  // The stop is in the audit log with its reason.
  auto audit = client_->get("/api/v1/audit?action=agent.task.stopped");
  ASSERT_EQ(audit.status, 200u) << audit.describe();
  EXPECT_NE(audit.body.find("loop_guard"), std::string::npos) << audit.describe();
  EXPECT_NE(audit.body.find("max_turns"), std::string::npos) << audit.describe();
}

// Budgets for llm agents: cost from the price table, tool calls per task, and the agent's
// token budget spanning its tasks, each stop with its reason in the task and the audit log.
TEST_P(LlmAgentsTest, CostToolCallAndAgentBudgetsStopWithTheirReason) {
  // $0.1 per input token and $0.2 per output token: a call of 10 in + 1 out costs $1.2.
  ASSERT_EQ(server_->process().stop(), 0);
  server_ = std::make_unique<TestServer>(GetParam(), std::vector<std::string>{},
                                         Env{{"DEVPLANE_LLM_PRICES", "gpt-test=100000/200000, other=1/1"}});
  ASSERT_EQ(server_->error(), "") << "server did not start";
  client_ = std::make_unique<HttpClient>(server_->port());

  const std::string spender = agent("spender", llm_config("openai", json::array{"clock.now"}));
  script(json::array{tool_step("clock_now", {{"i", 1}}, 10, 1), tool_step("clock_now", {{"i", 2}}, 10, 1),
                     text_step("never reached", 1, 1)});
  auto r = client_->post("/api/v1/agents/" + spender + "/tasks",
                         R"({"input": "spend", "limits": {"maxCostUsd": 2}})");
  ASSERT_EQ(r.status, 201u) << r.describe();
  auto done = [&](const std::string& agent_id, const std::string& task_id) {
    HttpResponse t;
    for (int i = 0; i < 1200; ++i) {
      t = client_->get("/api/v1/agents/" + agent_id + "/tasks/" + task_id);
      const auto st = t.str("/data/status");
      if (st == "succeeded" || st == "failed" || st == "cancelled") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return t;
  };
  auto d = done(spender, r.str("/data/id"));
  EXPECT_EQ(d.str("/data/status"), "failed") << d.describe();
  EXPECT_EQ(d.str("/data/result/stopReason"), "max_cost");
  EXPECT_EQ(d.num("/data/result/turns"), 2);
  const auto* cost = d.at("/data/result/costUsd");
  ASSERT_NE(cost, nullptr);
  EXPECT_NEAR(cost->to_number<double>(), 2.4, 1e-9);
  EXPECT_EQ(recorded().size(), 2u);

  // A task's maxToolCalls.
  script(json::array{tool_step("clock_now", {{"i", 1}}, 1, 1), tool_step("clock_now", {{"i", 2}}, 1, 1),
                     text_step("never reached", 1, 1)});
  r = client_->post("/api/v1/agents/" + spender + "/tasks", R"({"input": "x", "limits": {"maxToolCalls": 1}})");
  d = done(spender, r.str("/data/id"));
  EXPECT_EQ(d.str("/data/result/stopReason"), "max_tool_calls") << d.describe();
  EXPECT_EQ(d.num("/data/result/toolCalls"), 1);

  // A cost limit on a model without a price fails at once.
  auto unpriced_cfg = llm_config("anthropic");
  unpriced_cfg["maxCostUsd"] = 1;
  const std::string unpriced = agent("unpriced", unpriced_cfg);
  r = client_->post("/api/v1/agents/" + unpriced + "/tasks", R"({"input": "x"})");
  d = done(unpriced, r.str("/data/id"));
  EXPECT_EQ(d.str("/data/status"), "failed");
  EXPECT_NE(d.str("/data/error").find("no price"), std::string::npos) << d.describe();

  // The agent's token budget spans its tasks: 15 used, then 11 more trips it in the second
  // task, and the third does not call the model at all.
  auto cfg = llm_config("openai", json::array{"clock.now"});
  cfg["budget"] = json::object{{"maxTokens", 25}};
  const std::string thrifty = agent("thrifty", cfg);
  script(json::array{text_step("one", 10, 5), tool_step("clock_now", {{"i", 1}}, 10, 1),
                     text_step("never reached", 1, 1)});
  const std::size_t before = recorded().size();
  auto t1 = done(thrifty, client_->post("/api/v1/agents/" + thrifty + "/tasks", R"({"input": "1"})").str("/data/id"));
  EXPECT_EQ(t1.str("/data/status"), "succeeded") << t1.describe();
  auto t2 = done(thrifty, client_->post("/api/v1/agents/" + thrifty + "/tasks", R"({"input": "2"})").str("/data/id"));
  EXPECT_EQ(t2.str("/data/status"), "failed") << t2.describe();
  EXPECT_EQ(t2.str("/data/result/stopReason"), "agent_budget");
  EXPECT_NE(t2.str("/data/error").find("config.budget"), std::string::npos) << t2.describe();
  auto t3 = done(thrifty, client_->post("/api/v1/agents/" + thrifty + "/tasks", R"({"input": "3"})").str("/data/id"));
  EXPECT_EQ(t3.str("/data/status"), "failed") << t3.describe();
  EXPECT_EQ(t3.str("/data/result/stopReason"), "agent_budget");
  EXPECT_NE(t3.str("/data/error").find("config.budget.maxTokens (25) reached with 26"), std::string::npos)
      << t3.describe();
  EXPECT_EQ(recorded().size(), before + 2);

  auto audit = client_->get("/api/v1/audit?action=agent.task.stopped");
  ASSERT_EQ(audit.status, 200u) << audit.describe();
  for (const char* reason : {"max_cost", "max_tool_calls", "agent_budget"}) {
    EXPECT_NE(audit.body.find(reason), std::string::npos) << reason << ": " << audit.describe();
  }
}

TEST_P(LlmAgentsTest, CancellingATaskEndsAModelCallInFlight) {
  const std::string id = agent("slowpoke", llm_config("anthropic"));
  json::object slow = text_step("too late", 1, 1);
  slow["delayMs"] = 30000;
  script(json::array{slow});
  auto r = client_->post("/api/v1/agents/" + id + "/tasks", R"({"input":"take your time"})");
  ASSERT_EQ(r.status, 201u) << r.describe();
  const std::string task_id = r.str("/data/id");
  // Wait until the model call is in flight (the provider has the request).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (recorded().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(recorded().size(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = client_->post("/api/v1/agents/" + id + "/tasks/" + task_id + "/cancel", "");
  ASSERT_EQ(c.status, 200u) << c.describe();
  HttpResponse done;
  while (std::chrono::steady_clock::now() < t0 + std::chrono::seconds(20)) {
    done = client_->get("/api/v1/agents/" + id + "/tasks/" + task_id);
    if (done.str("/data/status") == "cancelled") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(done.str("/data/status"), "cancelled") << done.describe();
  EXPECT_EQ(done.str("/data/result/stopReason"), "cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_P(LlmAgentsTest, BadProviderAnswersFailTheTaskAndTheServerStaysHealthy) {
  struct Case {
    std::string format;
    json::object step;
    std::string error_part;
    std::size_t requests;
  };
  json::object five{{"status", 500}, {"body", R"({"error":{"message":"upstream exploded"}})"},
                    {"headers", json::object{{"retry-after", "0"}}}, {"repeat", true}};
  json::object cut = text_step("this answer will be cut off somewhere in the middle", 5, 5);
  cut["truncate"] = true;
  const std::vector<Case> cases = {
      {"openai", five, "HTTP 500: upstream exploded (after 2 attempts)", 2},
      {"anthropic", five, "provider_unavailable", 2},
      {"openai", json::object{{"garbage", "<html>not a model</html>"}}, "bad_provider_response", 1},
      {"anthropic", json::object{{"garbage", "{\"content\": 5}"}}, "bad_provider_response", 1},
      {"openai", cut, "bad_provider_response", 1},
      {"anthropic", cut, "bad_provider_response", 1},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.format + " " + json::serialize(c.step));
    const std::string id = agent("broken-" + std::to_string(++n), llm_config(c.format));
    script(json::array{c.step});
    auto done = run_task(id, "hello");
    EXPECT_EQ(done.str("/data/status"), "failed") << done.describe();
    EXPECT_EQ(done.str("/data/result/stopReason"), "provider_error");
    EXPECT_NE(done.str("/data/error").find("model call 1 failed"), std::string::npos) << done.describe();
    EXPECT_NE(done.str("/data/error").find(c.error_part), std::string::npos) << done.describe();
    EXPECT_EQ(recorded().size(), c.requests);
    EXPECT_EQ(client_->get("/api/v1/system/health").status, 200u);
  }
  // A key secret that does not exist fails the task before any call.
  auto cfg = llm_config("openai");
  cfg["apiKeySecret"] = "nope";
  const std::string id = agent("keyless", cfg);
  script(json::array{text_step("unused", 1, 1)});
  auto done = run_task(id, "hello");
  EXPECT_EQ(done.str("/data/status"), "failed");
  EXPECT_NE(done.str("/data/error").find("'nope'"), std::string::npos) << done.describe();
  EXPECT_EQ(recorded().size(), 0u);
}

TEST_P(LlmAgentsTest, RefusesBadConfigsSecretsAndMetricQueries) {
  auto bad = [&](json::object cfg, const std::string& field) {
    auto r = client_->post("/api/v1/agents", json::serialize(json::object{
                                                 {"name", "bad"}, {"type", "llm"}, {"config", std::move(cfg)}}));
    EXPECT_EQ(r.status, 422u) << r.describe();
    EXPECT_NE(r.body.find(field), std::string::npos) << r.describe();
  };
  bad(json::object{{"provider", "openai"}, {"model", "m"}, {"tools", json::array{"workspace.delete"}}},
      "workspace.delete");
  bad(json::object{{"provider", "openai"}, {"model", "m"}, {"baseUrl", "ftp://x"}}, "config.baseUrl");
  bad(json::object{{"provider", "openai"}, {"model", "m"}, {"apiKeySecret", "sk-live 123"}}, "config.apiKeySecret");
  bad(json::object{{"provider", "openai"}, {"model", "m"}, {"loopGuard", 1}}, "config.loopGuard");
  bad(json::object{{"provider", "gemini"}, {"model", "m"}}, "config.provider");

  // Secrets: malformed, oversized, bad names, unknown keys, no token; nothing is stored.
  EXPECT_EQ(client_->put("/api/v1/secrets/k", "{not json").status, 400u);
  EXPECT_EQ(client_->put("/api/v1/secrets/k", R"({"value":""})").status, 422u);
  EXPECT_EQ(client_->put("/api/v1/secrets/k", R"({"value":"x","extra":1})").status, 422u);
  EXPECT_EQ(client_->put("/api/v1/secrets/k", json::serialize(json::object{{"value", std::string(16 * 1024 + 1, 'x')}})).status,
            422u);
  EXPECT_EQ(client_->put("/api/v1/secrets/bad%20name", R"({"value":"x"})").status, 422u);
  EXPECT_EQ(client_->put("/api/v1/secrets/k", R"({"value":"x"})", {{"Authorization", ""}}).status, 401u);
  auto list = client_->get("/api/v1/secrets");
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(list.num("/meta/total"), 0);
  EXPECT_EQ(client_->del("/api/v1/secrets/k").status, 404u);
  ASSERT_EQ(client_->put("/api/v1/secrets/k", R"({"value":"one"})").status, 201u);
  auto again = client_->put("/api/v1/secrets/k", R"({"value":"two"})");
  EXPECT_EQ(again.status, 200u);
  EXPECT_EQ(client_->del("/api/v1/secrets/k").status, 200u);
  EXPECT_EQ(client_->del("/api/v1/secrets/k").status, 404u);

  // Metrics: unknown agent, bad ids and parameters.
  EXPECT_EQ(client_->get("/api/v1/agents/0190a5c8-0000-7000-8000-000000000000/metrics").status, 404u);
  EXPECT_EQ(client_->get("/api/v1/agents/not-a-uuid/metrics").status, 400u);
  const std::string id = agent("quiet", llm_config("openai"));
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/metrics?taskId=x").status, 422u);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/metrics?limit=0").status, 422u);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/metrics?bogus=1").status, 422u);
  auto empty = client_->get("/api/v1/agents/" + id + "/metrics");
  EXPECT_EQ(empty.status, 200u);
  EXPECT_EQ(empty.num("/meta/count"), 0);
  EXPECT_EQ(client_->get("/api/v1/agents/" + id + "/metrics", {{"Authorization", ""}}).status, 401u);
}

// The llm examples in examples/agents/ are valid agents (they need a model server to run
// tasks, not to be created) and need no API key.
TEST_P(LlmAgentsTest, TheExampleAgentsAreValid) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(source_dir() + "/examples/agents")) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = client_->post("/api/v1/agents", ss.str());
    EXPECT_EQ(r.status, 201u) << e.path() << ": " << r.describe();
    if (r.str("/data/type") == "llm") {
      EXPECT_EQ(r.at("/data/config/apiKeySecret"), nullptr) << e.path();
      ++n;
    }
  }
  EXPECT_GE(n, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, LlmAgentsTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

}  // namespace
}  // namespace dp::it
