// The wire formats without I/O: request bodies, whole responses, stream assembly (text and
// tool-call deltas, usage), and what happens with malformed, truncated or hostile input.
#include "llm/wire.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace dp::llm::wire {
namespace {

namespace json = boost::json;

template <class Stream>
Status feed(Stream& s, std::string_view text) {
  SseParser p;
  return p.feed(text, [&](const SseEvent& e) { return s.on_event(e); });
}

ChatRequest sample_request() {
  ChatRequest r;
  r.model = "m1";
  r.system = "be brief";
  r.messages.push_back(Message{Role::kUser, "hi", {}, {}, false});
  ToolCall c;
  c.id = "c1";
  c.name = "clock_now";
  c.arguments = json::object{{"tz", "UTC"}};
  c.arguments_text = R"({"tz":"UTC"})";
  r.messages.push_back(Message{Role::kAssistant, "", {c}, {}, false});
  r.messages.push_back(Message{Role::kTool, "12:00", {}, "c1", false});
  r.messages.push_back(Message{Role::kTool, "boom", {}, "c2", true});
  r.tools.push_back(ToolSpec{"clock_now", "the time", json::object{{"type", "object"}}});
  r.max_tokens = 100;
  r.temperature = 0.5;
  return r;
}

TEST(OpenAiWireTest, BuildsAChatCompletionsBody) {
  const auto v = json::parse(openai_body(sample_request()));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("model"), "m1");
  EXPECT_EQ(o.at("stream"), true);
  EXPECT_EQ(o.at("stream_options").at("include_usage"), true);
  EXPECT_EQ(o.at("max_tokens"), 100);
  const auto& m = o.at("messages").as_array();
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].at("role"), "system");
  EXPECT_EQ(m[1].at("content"), "hi");
  EXPECT_TRUE(m[2].at("content").is_null());
  EXPECT_EQ(m[2].at("tool_calls").at(0).at("function").at("arguments"), R"({"tz":"UTC"})");
  EXPECT_EQ(m[3].at("role"), "tool");
  EXPECT_EQ(m[3].at("tool_call_id"), "c1");
  EXPECT_EQ(o.at("tools").at(0).at("function").at("name"), "clock_now");
}

TEST(AnthropicWireTest, BuildsAMessagesBodyWithToolResultsTogether) {
  const auto v = json::parse(anthropic_body(sample_request()));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("system"), "be brief");
  EXPECT_EQ(o.at("max_tokens"), 100);
  const auto& m = o.at("messages").as_array();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1].at("content").at(0).at("type"), "tool_use");
  EXPECT_EQ(m[1].at("content").at(0).at("input").at("tz"), "UTC");
  EXPECT_EQ(m[2].at("role"), "user");
  const auto& results = m[2].at("content").as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].at("tool_use_id"), "c1");
  EXPECT_FALSE(results[0].as_object().contains("is_error"));
  EXPECT_EQ(results[1].at("is_error"), true);
  EXPECT_EQ(o.at("tools").at(0).at("input_schema").at("type"), "object");
}

TEST(OpenAiWireTest, ParsesAWholeResponse) {
  auto r = openai_parse(R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,
    "tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
                  {"id":"b","type":"function","function":{"name":"g","arguments":"{bad"}}]},
    "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":11,"completion_tokens":7}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tool_calls.size(), 2u);
  EXPECT_EQ(r->tool_calls[0].arguments.at("x"), 1);
  EXPECT_TRUE(r->tool_calls[0].arguments_error.empty());
  // Broken arguments do not fail the call: the loop tells the model.
  EXPECT_NE(r->tool_calls[1].arguments_error.find("not valid JSON"), std::string::npos);
  EXPECT_EQ(r->tool_calls[1].arguments_text, "{bad");
  EXPECT_EQ(r->stop_reason, "tool_calls");
  EXPECT_EQ(r->usage.input_tokens, 11);
  EXPECT_EQ(r->usage.output_tokens, 7);
}

TEST(OpenAiWireTest, RefusesWhatIsNotTheFormat) {
  for (const char* body : {"", "garbage", "[]", "{}", R"({"choices":[]})", R"({"choices":[1]})",
                           R"({"choices":[{"message":"x"}]})",
                           R"({"choices":[{"message":{"tool_calls":[{"function":{}}]}}]})",
                           R"({"error":{"message":"overloaded"}})"}) {
    auto r = openai_parse(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().reason, "bad_provider_response") << body;
  }
  auto e = openai_parse(R"({"error":{"message":"model not found"}})");
  EXPECT_NE(e.error().message.find("model not found"), std::string::npos);
}

TEST(OpenAiWireTest, AssemblesAStreamWithToolCallDeltasAndUsage) {
  std::string seen;
  OpenAiStream s([&](std::string_view t) { seen += t; });
  ASSERT_TRUE(feed(s, R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}

data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"workspace_read_file","arguments":""}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","function":{"name":"clock_now","arguments":"{}"}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\": \"a.txt\"}"}}]}}]}

data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}

data: [DONE]

)")
                  .ok());
  auto r = s.finish();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text, "Hello");
  EXPECT_EQ(seen, "Hello");
  ASSERT_EQ(r->tool_calls.size(), 2u);
  EXPECT_EQ(r->tool_calls[0].id, "call_1");
  EXPECT_EQ(r->tool_calls[0].name, "workspace_read_file");
  EXPECT_EQ(r->tool_calls[0].arguments.at("path"), "a.txt");
  EXPECT_EQ(r->tool_calls[1].name, "clock_now");
  EXPECT_TRUE(r->tool_calls[1].arguments.empty());
  EXPECT_EQ(r->stop_reason, "tool_calls");
  EXPECT_TRUE(r->usage.reported);
  EXPECT_EQ(r->usage.input_tokens, 20);
  EXPECT_EQ(r->usage.output_tokens, 9);
}

TEST(OpenAiWireTest, ATruncatedStreamIsAnError) {
  OpenAiStream s;
  ASSERT_TRUE(feed(s, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n").ok());
  auto r = s.finish();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "bad_provider_response");
  EXPECT_NE(r.error().message.find("ended before"), std::string::npos);
}

TEST(OpenAiWireTest, GarbageAndErrorEventsInTheStreamFail) {
  OpenAiStream a;
  Status s = feed(a, "data: {not json\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "bad_provider_response");
  OpenAiStream b;
  s = feed(b, "data: {\"error\":{\"message\":\"quota exceeded\"}}\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("quota exceeded"), std::string::npos);
  OpenAiStream c;
  s = feed(c, "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{}}]}}]}\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no index"), std::string::npos);
}

TEST(OpenAiWireTest, BrokenStreamedArgumentsAreMarkedNotFatal) {
  OpenAiStream s;
  ASSERT_TRUE(feed(s, R"(data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"tool_calls"}]}

data: [DONE]

)")
                  .ok());
  auto r = s.finish();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_FALSE(r->tool_calls[0].arguments_error.empty());
  ToolCall arr;
  set_arguments(arr, "[1,2]");
  EXPECT_EQ(arr.arguments_error, "the arguments are not a JSON object");
}

TEST(OpenAiWireTest, TooManyToolCallsAreRefused) {
  OpenAiStream s;
  std::string text;
  for (std::size_t i = 0; i <= kMaxToolCalls; ++i) {
    text += R"(data: {"choices":[{"delta":{"tool_calls":[{"index":)" + std::to_string(i) +
            R"(,"id":"x","function":{"name":"f","arguments":"{}"}}]}}]})" + "\n\n";
  }
  Status st = feed(s, text);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("too many"), std::string::npos);
}

TEST(AnthropicWireTest, ParsesAWholeResponse) {
  auto r = anthropic_parse(R"({"id":"msg_1","type":"message","role":"assistant","content":[
    {"type":"text","text":"Let me look."},
    {"type":"tool_use","id":"toolu_1","name":"workspace_list","input":{"path":"."}}],
    "stop_reason":"tool_use","usage":{"input_tokens":30,"cache_read_input_tokens":5,"output_tokens":12}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text, "Let me look.");
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].id, "toolu_1");
  EXPECT_EQ(r->tool_calls[0].arguments.at("path"), ".");
  EXPECT_EQ(r->stop_reason, "tool_use");
  EXPECT_EQ(r->usage.input_tokens, 35);
  EXPECT_EQ(r->usage.output_tokens, 12);
}

TEST(AnthropicWireTest, RefusesWhatIsNotTheFormat) {
  for (const char* body : {"", "<html>", "{}", R"({"content":"x"})", R"({"content":[1]})",
                           R"({"content":[{"type":"tool_use","input":{}}]})",
                           R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"}) {
    auto r = anthropic_parse(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().reason, "bad_provider_response") << body;
  }
}

constexpr std::string_view kAnthropicStream = R"(event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Reading"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_9","name":"workspace_read_file","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"path\": \"no"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"tes.md\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":17}}

)";

TEST(AnthropicWireTest, AssemblesAStreamWithInputJsonDeltas) {
  std::string seen;
  AnthropicStream s([&](std::string_view t) { seen += t; });
  ASSERT_TRUE(feed(s, std::string(kAnthropicStream) +
                          "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
                  .ok());
  auto r = s.finish();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text, "Reading");
  EXPECT_EQ(seen, "Reading");
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].id, "toolu_9");
  EXPECT_EQ(r->tool_calls[0].arguments.at("path"), "notes.md");
  EXPECT_EQ(r->stop_reason, "tool_use");
  EXPECT_EQ(r->usage.input_tokens, 25);
  EXPECT_EQ(r->usage.output_tokens, 17);
}

TEST(AnthropicWireTest, AStreamWithoutMessageStopIsTruncated) {
  AnthropicStream s;
  ASSERT_TRUE(feed(s, kAnthropicStream).ok());
  auto r = s.finish();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("message_stop"), std::string::npos);
}

TEST(AnthropicWireTest, OutOfOrderAndErrorEventsFail) {
  AnthropicStream a;
  Status s = feed(a, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                     "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("message_start"), std::string::npos);
  AnthropicStream b;
  s = feed(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,"
              "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not started"), std::string::npos);
  AnthropicStream c;
  s = feed(c, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
              "\"message\":\"Overloaded\"}}\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("Overloaded"), std::string::npos);
  AnthropicStream d;
  s = feed(d, "event: message_start\ndata: [1,2\n\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "bad_provider_response");
}

TEST(AnthropicWireTest, BrokenInputJsonIsMarkedNotFatal) {
  AnthropicStream s;
  ASSERT_TRUE(feed(s, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
                      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n"
                      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\": tru\"}}\n\n"
                      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
                  .ok());
  auto r = s.finish();
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_FALSE(r->tool_calls[0].arguments_error.empty());
  EXPECT_EQ(r->usage.input_tokens, 0);
}

TEST(RetryAfterTest, ReadsSecondsMillisecondsAndDates) {
  EXPECT_EQ(retry_after(std::nullopt, "3", 0), std::chrono::milliseconds(3000));
  EXPECT_EQ(retry_after("250", "3", 0), std::chrono::milliseconds(250));
  EXPECT_EQ(retry_after("1.5", std::nullopt, 0), std::chrono::milliseconds(1));
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480
  EXPECT_EQ(retry_after(std::nullopt, "Wed, 21 Oct 2015 07:28:00 GMT", 1445412470),
            std::chrono::milliseconds(10'000));
  EXPECT_EQ(retry_after(std::nullopt, "Wed, 21 Oct 2015 07:28:00 GMT", 1445412490),
            std::chrono::milliseconds(0));
  EXPECT_EQ(retry_after(std::nullopt, "-1", 0), std::nullopt);
  EXPECT_EQ(retry_after(std::nullopt, "soon", 0), std::nullopt);
  EXPECT_EQ(retry_after("x", std::nullopt, 0), std::nullopt);
  EXPECT_EQ(retry_after(std::nullopt, std::nullopt, 0), std::nullopt);
}

TEST(ErrorMessageTest, IsShortAndSingleLine) {
  EXPECT_EQ(error_message(R"({"error":{"message":"bad key"}})"), "bad key");
  EXPECT_EQ(error_message(std::string(1000, 'x')).size(), 300u);
  EXPECT_EQ(error_message("a\nb"), "a b");
}

}  // namespace
}  // namespace dp::llm::wire
