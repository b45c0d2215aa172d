// LLM providers: one chat call to a model, with tools, over the provider's own wire format.
//
// A Provider turns a ChatRequest (system prompt, the conversation so far, the tools the model
// may call) into one HTTP call to the provider and gives back the model's answer: its text,
// the tool calls it asked for, why it stopped, and the tokens it used. Two wire formats:
//
// - `openai`: OpenAI-compatible chat completions (`POST <baseUrl>/chat/completions`; OpenAI,
//   Ollama, vLLM, llama.cpp server). Tools as `tools[].function`, calls in
//   `message.tool_calls` (arguments are a JSON string), results as `role: tool` messages.
//   Streaming: `stream: true` with `stream_options.include_usage`, SSE chunks whose
//   `delta.tool_calls[]` are assembled by index, ended by `data: [DONE]`.
// - `anthropic`: the Anthropic Messages API (`POST <baseUrl>/v1/messages`, `x-api-key`,
//   `anthropic-version`). Content blocks `text` / `tool_use`, results as `tool_result` blocks.
//   Streaming: message_start, content_block_start/delta (text_delta, input_json_delta)/stop,
//   message_delta (stop_reason, usage), message_stop.
//
// Bounded: each call has a deadline and a response size limit; 429, 5xx (and 529) and
// refused connections are retried with exponential backoff that honours Retry-After (and
// retry-after-ms), within `max_retries`. Cancellation: `chat` checks the flag it is given
// between retries and while a streamed response arrives.
//
// Errors (reason in parentheses): kInvalidArgument (`provider_rejected`: a 4xx other than 401,
// 403, 429), kPermissionDenied (`provider_auth`: 401, 403), kResourceExhausted
// (`provider_rate_limited`: 429 after the retries; `response_too_large`), kUnavailable
// (`provider_unavailable`: 5xx after the retries, connection refused; `bad_provider_response`:
// not the wire format, a stream that ends early, an error event in the stream),
// kDeadlineExceeded (`timeout`), kAborted (`cancelled`). Messages never contain the key.
//
// Thread safety: a Provider is immutable after construction; `chat` blocks the calling thread
// (it uses the blocking HTTP client) and is safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"

namespace dp::llm {

enum class Role { kUser, kAssistant, kTool };

struct ToolCall {
  std::string id;
  std::string name;               // the wire name the model used
  boost::json::object arguments;  // parsed; empty when `arguments_error` is set
  std::string arguments_text;     // as received (OpenAI sends a JSON string)
  std::string arguments_error;    // non-empty when the arguments are not a JSON object
};

struct Message {
  Role role = Role::kUser;
  std::string text;                 // user/assistant text, or a tool result's content
  std::vector<ToolCall> tool_calls;  // assistant
  std::string tool_call_id;          // tool
  bool is_error = false;             // tool: the call failed
};

struct ToolSpec {
  std::string name;  // wire name: [A-Za-z0-9_-]{1,64}
  std::string description;
  boost::json::object input_schema;  // JSON Schema of the arguments object
};

struct Usage {
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  bool reported = false;  // false when the provider sent no usage
};

struct ChatRequest {
  std::string model;
  std::string system;
  std::vector<Message> messages;
  std::vector<ToolSpec> tools;
  std::int64_t max_tokens = 4096;  // output tokens of this call (Anthropic requires it)
  std::optional<double> temperature;
  bool stream = true;
  // Caps each attempt's deadline below ProviderOptions::timeout (the caller's wall budget).
  std::optional<std::chrono::milliseconds> timeout;
  // Streaming: each piece of answer text as it arrives (may be empty).
  std::function<void(std::string_view)> on_text;
};

struct ChatResponse {
  std::string text;
  std::vector<ToolCall> tool_calls;
  std::string stop_reason;  // as the provider said it: stop, tool_calls, end_turn, tool_use, ...
  Usage usage;
  std::int64_t latency_ms = 0;  // the whole call, retries included
  int attempts = 0;
};

enum class Kind { kOpenAi, kAnthropic };

struct ProviderOptions {
  Kind kind = Kind::kOpenAi;
  std::string base_url;  // empty: the provider's public endpoint
  std::string api_key;   // empty: no credential header (Ollama, local servers)
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{300'000};  // one attempt, connect included
  std::size_t max_response_bytes = 8 * 1024 * 1024;
  int max_retries = 3;
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds max_backoff{30'000};  // also caps a Retry-After
  std::string anthropic_version = "2023-06-01";
};

class Provider {
 public:
  virtual ~Provider() = default;
  // One model call. `cancel` (may be null) ends it with kAborted when set.
  virtual Result<ChatResponse> chat(const ChatRequest& request,
                                    const std::atomic<bool>* cancel = nullptr) const = 0;
  virtual std::string_view name() const noexcept = 0;
};

// kInvalidArgument `bad_url` when the base URL is not http(s).
Result<std::unique_ptr<Provider>> make_provider(ProviderOptions options);

// "openai" / "anthropic" -> Kind; nullopt otherwise.
std::optional<Kind> parse_kind(std::string_view text) noexcept;

}  // namespace dp::llm
