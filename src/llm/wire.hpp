// The two wire formats as pure functions (no I/O), so that they can be tested piece by piece:
// request bodies, whole responses, and stream assemblers that take SSE events one at a time.
//
// Parsing never trusts the peer: a body that is not the format gives kUnavailable
// `bad_provider_response` naming what is wrong; tool-call arguments that are not a JSON object
// do not fail the call (the agent loop tells the model) but are marked in
// `ToolCall::arguments_error`. Limits: at most kMaxToolCalls calls and kMaxTextBytes of text
// per answer.
// Thread safety: the functions are pure; an assembler is used by one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <map>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "llm/provider.hpp"
#include "http/sse.hpp"

namespace dp::llm {
// The one event-stream parser (http/sse.hpp), under the names the llm code uses.
using SseEvent = http::SseEvent;
using SseParser = http::SseParser;
}  // namespace dp::llm

namespace dp::llm::wire {

inline constexpr std::size_t kMaxToolCalls = 128;
inline constexpr std::size_t kMaxTextBytes = 4 * 1024 * 1024;

Error bad_response(std::string message);
// Parses `text` into a tool call's arguments (`{}` for empty text).
void set_arguments(ToolCall& call, std::string_view text);

// ---- OpenAI-compatible chat completions ----
std::string openai_body(const ChatRequest& request);
Result<ChatResponse> openai_parse(std::string_view body);

class OpenAiStream {
 public:
  explicit OpenAiStream(std::function<void(std::string_view)> on_text = {})
      : on_text_(std::move(on_text)) {}
  Status on_event(const SseEvent& event);
  // The assembled answer; kUnavailable when the stream ended before `[DONE]` or a
  // finish_reason.
  Result<ChatResponse> finish();

 private:
  struct Partial {
    ToolCall call;
    std::string args;
  };
  std::function<void(std::string_view)> on_text_;
  ChatResponse out_;
  std::map<std::int64_t, Partial> calls_;  // by the delta's index
  bool done_ = false;
  bool finished_ = false;
};

// ---- Anthropic Messages ----
std::string anthropic_body(const ChatRequest& request);
Result<ChatResponse> anthropic_parse(std::string_view body);

class AnthropicStream {
 public:
  explicit AnthropicStream(std::function<void(std::string_view)> on_text = {})
      : on_text_(std::move(on_text)) {}
  Status on_event(const SseEvent& event);
  // kUnavailable when the stream ended before message_stop.
  Result<ChatResponse> finish();

 private:
  struct Block {
    std::string type;
    ToolCall call;
    std::string json;
  };
  std::function<void(std::string_view)> on_text_;
  ChatResponse out_;
  std::map<std::int64_t, Block> blocks_;
  bool started_ = false;
  bool stopped_ = false;
};

// The human message of a provider's error body ({"error":{"message":...}} in both formats,
// or the start of the text), at most 300 bytes.
std::string error_message(std::string_view body);

}  // namespace dp::llm::wire

namespace dp::llm::wire {

// The wait a 429/503 response asks for: `retry-after-ms` (milliseconds), else `Retry-After`
// as seconds or as an HTTP date (relative to `now_epoch_s`). nullopt when absent or unreadable;
// never negative.
std::optional<std::chrono::milliseconds> retry_after(std::optional<std::string_view> retry_after_ms,
                                                     std::optional<std::string_view> retry_after,
                                                     std::int64_t now_epoch_s);

}  // namespace dp::llm::wire
