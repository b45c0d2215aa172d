// The agent loop against a provider fake behind llm::Provider (the wire formats are tested in
// src/llm, the whole path over HTTP in tests/integration/llm_agents_test.cpp): tool calls run
// and their results go back, and every guard stops with its reason.
#include "agents/llm_loop.hpp"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dp::agents {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

llm::ChatResponse answer(std::string text) {
  llm::ChatResponse r;
  r.text = std::move(text);
  r.usage = {10, 5, true};
  r.stop_reason = "stop";
  return r;
}

llm::ChatResponse calls(std::vector<std::pair<std::string, std::string>> list) {
  llm::ChatResponse r;
  int n = 0;
  for (auto& [name, args] : list) {
    llm::ToolCall c;
    c.id = "call_" + std::to_string(++n);
    c.name = name;
    c.arguments_text = args;
    boost::system::error_code ec;
    auto v = json::parse(args, ec);
    if (!ec && v.is_object()) {
      c.arguments = v.as_object();
    } else {
      c.arguments_error = "the arguments are not valid JSON";
    }
    r.tool_calls.push_back(std::move(c));
  }
  r.usage = {100, 20, true};
  r.stop_reason = "tool_calls";
  return r;
}

class ScriptProvider final : public llm::Provider {
 public:
  explicit ScriptProvider(std::vector<Result<llm::ChatResponse>> script) : script_(std::move(script)) {}
  Result<llm::ChatResponse> chat(const llm::ChatRequest& r, const std::atomic<bool>*) const override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    std::lock_guard lock(mu_);
    requests_.push_back(r);
    const std::size_t i = std::min(requests_.size() - 1, script_.size() - 1);
    return script_[i];
  }
  std::string_view name() const noexcept override { return "script"; }
  void set_delay(std::chrono::milliseconds d) { delay_ = d; }
  std::vector<llm::ChatRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::vector<Result<llm::ChatResponse>> script_;
  std::chrono::milliseconds delay_{0};
  mutable std::mutex mu_;
  mutable std::vector<llm::ChatRequest> requests_;
};

class LlmLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = fs::temp_directory_path() / ("dp_loop_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(ws_);
    std::ofstream(ws_ / "notes.md") << "the answer is 42";
    ctx_.workspace = ws_.string();
    ctx_.cancel = &cancel_;
    auto c = parse_llm_config(
        json::parse(R"({"provider":"openai","model":"m","systemPrompt":"sys",
                        "tools":["workspace.read_file","clock.now"],"maxTurns":5})")
            .as_object(),
        builtin_tools());
    ASSERT_TRUE(c.ok()) << c.error().message;
    cfg_ = *c;
  }
  void TearDown() override { fs::remove_all(ws_); }

  LoopResult run(const ScriptProvider& p) {
    return run_llm_loop(p, cfg_, builtin_tools(), "what is the answer?", ctx_, {});
  }

  fs::path ws_;
  std::atomic<bool> cancel_{false};
  ToolContext ctx_;
  LlmConfig cfg_;
};

TEST_F(LlmLoopTest, RunsToolsAndReturnsTheFinalAnswer) {
  ScriptProvider p({calls({{"workspace_read_file", R"({"path":"notes.md"})"}, {"clock_now", "{}"}}),
                    answer("42")});
  auto r = run(p);
  EXPECT_EQ(r.status, "succeeded") << r.error;
  EXPECT_EQ(r.stop_reason, "final_answer");
  EXPECT_EQ(r.answer, "42");
  EXPECT_EQ(r.turns, 2);
  EXPECT_EQ(r.tool_calls, 2);
  EXPECT_EQ(r.input_tokens, 110);
  EXPECT_EQ(r.output_tokens, 25);
  auto reqs = p.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].system, "sys");
  ASSERT_EQ(reqs[0].tools.size(), 2u);
  EXPECT_EQ(reqs[0].tools[0].name, "workspace_read_file");  // in the config's order
  const auto& second = reqs[1].messages;
  ASSERT_EQ(second.size(), 4u);  // task, assistant with calls, two results
  EXPECT_EQ(second[2].role, llm::Role::kTool);
  EXPECT_EQ(second[2].tool_call_id, "call_1");
  EXPECT_EQ(second[2].text, "the answer is 42");
  EXPECT_NE(second[3].text.find("epochMs"), std::string::npos);
}

TEST_F(LlmLoopTest, UnknownToolsAndBrokenArgumentsAreAnsweredNotRun) {
  ScriptProvider p({calls({{"workspace_write_file", R"({"path":"x","content":"y"})"},
                           {"workspace_read_file", "{\"path\":"}}),
                    answer("done")});
  auto r = run(p);
  EXPECT_EQ(r.status, "succeeded");
  auto reqs = p.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_TRUE(reqs[1].messages[2].is_error);
  EXPECT_NE(reqs[1].messages[2].text.find("no tool named"), std::string::npos);
  EXPECT_TRUE(reqs[1].messages[3].is_error);
  EXPECT_NE(reqs[1].messages[3].text.find("JSON"), std::string::npos);
  EXPECT_FALSE(fs::exists(ws_ / "x"));  // write_file was not allowed
}

TEST_F(LlmLoopTest, MaxTurnsStops) {
  cfg_.max_turns = 3;
  ScriptProvider p({calls({{"clock_now", R"({"n":1})"}}), calls({{"clock_now", R"({"n":2})"}}),
                    calls({{"clock_now", R"({"n":3})"}}), answer("late")});
  auto r = run(p);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.stop_reason, "max_turns");
  EXPECT_NE(r.error.find("maxTurns (3)"), std::string::npos);
  EXPECT_EQ(p.requests().size(), 3u);
}

TEST_F(LlmLoopTest, TheLoopGuardStopsARepeatedCall) {
  cfg_.loop_guard = 3;
  // The same call with the keys in another order is the same call.
  ScriptProvider p({calls({{"workspace_read_file", R"({"path":"notes.md","maxBytes":9})"}}),
                    calls({{"workspace_read_file", R"({"maxBytes":9,"path":"notes.md"})"}}),
                    calls({{"workspace_read_file", R"({"path":"notes.md","maxBytes":9})"}})});
  auto r = run(p);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.stop_reason, "loop_guard");
  EXPECT_NE(r.error.find("workspace.read_file"), std::string::npos) << r.error;
  EXPECT_EQ(r.tool_calls, 2);  // the third was not run
}

TEST_F(LlmLoopTest, MaxTokensAndMaxToolCallsStop) {
  cfg_.max_tokens = 150;
  ScriptProvider p({calls({{"clock_now", R"({"n":1})"}}), calls({{"clock_now", R"({"n":2})"}}),
                    answer("x")});
  auto r = run(p);
  EXPECT_EQ(r.stop_reason, "max_tokens");
  EXPECT_EQ(p.requests().size(), 2u);
  EXPECT_EQ(p.requests()[1].max_tokens, 30);  // what is left of the budget
  cfg_.max_tokens = 0;
  cfg_.max_tool_calls = 1;
  ScriptProvider q({calls({{"clock_now", R"({"n":1})"}, {"clock_now", R"({"n":2})"}})});
  r = run(q);
  EXPECT_EQ(r.stop_reason, "max_tool_calls");
  EXPECT_EQ(r.tool_calls, 1);
}

TEST_F(LlmLoopTest, AProviderErrorFailsWithItsMessageAndCancelStops) {
  ScriptProvider p({Result<llm::ChatResponse>(Error{ErrorCode::kUnavailable, "provider_unavailable",
                                                    "HTTP 500: boom", nullptr})});
  auto r = run(p);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.stop_reason, "provider_error");
  EXPECT_EQ(r.error, "model call 1 failed (provider_unavailable): HTTP 500: boom");
  cancel_ = true;
  ScriptProvider q({answer("never")});
  r = run(q);
  EXPECT_EQ(r.status, "cancelled");
  EXPECT_TRUE(q.requests().empty());
}

TEST_F(LlmLoopTest, WallTimeStopsAndEachCallGetsWhatIsLeft) {
  cfg_.timeout = std::chrono::seconds(1);
  ScriptProvider p({calls({{"clock_now", R"({"n":1})"}}), calls({{"clock_now", R"({"n":2})"}}),
                    answer("late")});
  p.set_delay(std::chrono::milliseconds(600));
  auto r = run(p);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.stop_reason, "timeout");
  EXPECT_NE(r.error.find("timeoutSeconds (1)"), std::string::npos) << r.error;
  auto reqs = p.requests();
  ASSERT_EQ(reqs.size(), 2u);
  ASSERT_TRUE(reqs[0].timeout.has_value());
  EXPECT_LE(reqs[0].timeout->count(), 1000);
  EXPECT_LT(reqs[1].timeout->count(), 500);  // the second call only gets the rest
}

TEST(LlmConfigTest, RefusesWhatCannotRun) {
  auto bad = [](const char* text) {
    return parse_llm_config(json::parse(text).as_object(), builtin_tools());
  };
  EXPECT_FALSE(bad(R"({"provider":"gemini","model":"m"})").ok());
  EXPECT_FALSE(bad(R"({"provider":"openai"})").ok());
  auto r = bad(R"({"provider":"openai","model":"m","tools":["github.search"]})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("github.search"), std::string::npos);
  EXPECT_EQ(wire_tool_name("workspace.read_file"), "workspace_read_file");
  EXPECT_EQ(wire_tool_name(std::string(100, 'a')).size(), 64u);
}

}  // namespace
}  // namespace dp::agents
