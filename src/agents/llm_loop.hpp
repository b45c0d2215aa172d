// The `llm` agent kind: its config and the agent loop.
//
// The loop: system prompt + the task -> the model -> the tool calls it asks for are run (only
// the tools the config allows) -> their results go back to the model -> ... until the model
// answers without calling a tool (the final answer) or a guard stops it:
//
//   maxTurns        model calls per task (default 20)
//   maxTokens       input + output tokens per task; no new call once reached (default none)
//   timeoutSeconds  wall time per task (default 600)
//   maxToolCalls    tool calls per task (default 100)
//   maxCostUsd      spend per task from the price table (default none); checked after each
//                   call, so the call that crosses it is the last one
//   loopGuard       the same tool with the same arguments asked for this many times stops
//                   the task (default 3; the repeated call is not run)
//   cancel          the task was cancelled, its agent stopped or the node shuts down
//
// Every stop names its reason in LoopResult::stop_reason. Tools get names the providers
// accept on the wire (`workspace.read_file` -> `workspace_read_file`); the model's answers
// are mapped back. A call to a tool that is not allowed, or with arguments that are not a
// JSON object, is answered with an error the model reads, not run.
//
// Thread safety: run_llm_loop blocks the calling thread (model calls, tools); the objects it
// is given must outlive the call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "agents/tools.hpp"
#include "core/result.hpp"
#include "llm/provider.hpp"

namespace dp::agents {

struct LlmConfig {
  llm::Kind provider = llm::Kind::kOpenAi;
  std::string provider_name = "openai";
  std::string model;
  std::string base_url;
  std::string api_key_secret;  // the name of a secret; empty: no key
  std::string system_prompt;
  std::vector<std::string> tools;
  int max_turns = 20;
  std::int64_t max_tokens = 0;  // 0: no budget
  std::int64_t max_output_tokens = 4096;
  std::optional<double> temperature;
  std::chrono::seconds timeout{600};
  int max_tool_calls = 100;
  int loop_guard = 3;
  bool stream = true;
  int max_retries = 3;
  // Cost guard: prices per million tokens (from the server's price table; negative: unknown)
  // and the most a task may spend (0: no limit). With a limit and no price the task fails.
  double input_price_per_mtok = -1;
  double output_price_per_mtok = -1;
  double max_cost_usd = 0;
};

// The config of an `llm` agent (validated at create time; read defensively here).
// kInvalidArgument `invalid_config` when it cannot run: no model, an unknown provider, a tool
// that no tool set offers, two tools with the same wire name.
Result<LlmConfig> parse_llm_config(const boost::json::object& config, const ToolSet& available);

// One model call, for metrics and the task result.
struct CallRecord {
  int turn = 0;
  llm::Usage usage;
  std::int64_t latency_ms = 0;
  int attempts = 0;
  std::vector<std::string> tool_calls;  // tool names asked for
  std::string stop_reason;
};

struct LoopResult {
  std::string status;       // succeeded | failed | cancelled
  std::string stop_reason;  // final_answer | max_turns | max_tokens | max_tool_calls |
                            // max_cost | loop_guard | timeout | cancelled | provider_error
  std::string error;        // empty on success
  std::string answer;       // the final answer (or the last text when stopped)
  int turns = 0;
  int tool_calls = 0;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t wall_ms = 0;
  double cost_usd = 0;  // from the price table; 0 when the model has no price
  std::vector<CallRecord> calls;

  boost::json::object to_json(const LlmConfig& config) const;
};

struct LoopHooks {
  std::function<void(const CallRecord&)> on_call;    // after each model call
  std::function<void(std::string_view line)> on_log;  // progress lines (tool calls, text)
  // Streamed answer text as it arrives (config.stream); when set, the text is not repeated
  // through on_log.
  std::function<void(std::string_view piece)> on_text;
};

// The wire name of a tool: every character outside [A-Za-z0-9_-] becomes '_', at most 64.
std::string wire_tool_name(std::string_view name);

LoopResult run_llm_loop(const llm::Provider& provider, const LlmConfig& config,
                        const ToolSet& tools, const std::string& task_text,
                        const ToolContext& context, const LoopHooks& hooks);

}  // namespace dp::agents
