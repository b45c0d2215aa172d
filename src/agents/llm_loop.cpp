#include "agents/llm_loop.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace dp::agents {
namespace {

namespace json = boost::json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxToolOutputBytes = 64 * 1024;

std::int64_t int_or(const json::object& o, std::string_view key, std::int64_t fallback) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_int64()) return v->as_int64();
  return fallback;
}

std::string str_or(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string(v->as_string());
  return {};
}

// Keys sorted at every depth, so that {"a":1,"b":2} and {"b":2,"a":1} are the same call.
json::value canonical(const json::value& v) {
  if (v.is_object()) {
    std::vector<std::pair<std::string, json::value>> items;
    for (const auto& kv : v.as_object()) items.emplace_back(std::string(kv.key()), canonical(kv.value()));
    std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    json::object o;
    for (auto& [k, x] : items) o[k] = std::move(x);
    return o;
  }
  if (v.is_array()) {
    json::array a;
    for (const auto& x : v.as_array()) a.push_back(canonical(x));
    return a;
  }
  return v;
}

std::string shorten(std::string_view s, std::size_t n) {
  if (s.size() <= n) return std::string(s);
  return std::string(s.substr(0, n)) + "...";
}

}  // namespace

std::string wire_tool_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    out.push_back(ok ? c : '_');
    if (out.size() == 64) break;
  }
  return out;
}

Result<LlmConfig> parse_llm_config(const json::object& c, const ToolSet& available) {
  LlmConfig cfg;
  cfg.provider_name = str_or(c, "provider");
  auto kind = llm::parse_kind(cfg.provider_name);
  if (!kind) {
    return Error::invalid_argument("invalid_config", "config.provider must be openai or anthropic");
  }
  cfg.provider = *kind;
  cfg.model = str_or(c, "model");
  if (cfg.model.empty()) return Error::invalid_argument("invalid_config", "config.model is required");
  cfg.base_url = str_or(c, "baseUrl");
  cfg.api_key_secret = str_or(c, "apiKeySecret");
  cfg.system_prompt = str_or(c, "systemPrompt");
  std::set<std::string> wire_names;
  if (auto* t = c.if_contains("tools"); t != nullptr && t->is_array()) {
    for (const auto& x : t->as_array()) {
      if (!x.is_string()) continue;
      std::string name(x.as_string());
      if (name.size() > 2 && name.ends_with(".*")) {
        // `<adapter>.*`: every tool the source offers under that prefix.
        const std::string prefix = name.substr(0, name.size() - 1);
        bool any = false;
        for (auto& n : available.names()) {
          if (!n.starts_with(prefix)) continue;
          any = true;
          if (std::find(cfg.tools.begin(), cfg.tools.end(), n) != cfg.tools.end()) continue;
          if (!wire_names.insert(wire_tool_name(n)).second) {
            return Error::invalid_argument("invalid_config", "config.tools: two tools would share the "
                                                             "wire name '" + wire_tool_name(n) + "'");
          }
          cfg.tools.push_back(std::move(n));
        }
        if (!any) {
          return Error::invalid_argument("invalid_config",
                                         "config.tools names '" + name + "', which selects no tool");
        }
        continue;
      }
      if (std::find(cfg.tools.begin(), cfg.tools.end(), name) != cfg.tools.end()) continue;
      if (!available.find(name)) {
        return Error::invalid_argument("invalid_config",
                                       "config.tools names '" + name + "', which no tool source offers");
      }
      if (!wire_names.insert(wire_tool_name(name)).second) {
        return Error::invalid_argument("invalid_config", "config.tools: two tools would share the "
                                                         "wire name '" + wire_tool_name(name) + "'");
      }
      cfg.tools.push_back(std::move(name));
    }
  }
  cfg.max_turns = static_cast<int>(std::clamp<std::int64_t>(int_or(c, "maxTurns", 20), 1, 1000));
  cfg.max_tokens = std::max<std::int64_t>(0, int_or(c, "maxTokens", 0));
  cfg.max_output_tokens = std::clamp<std::int64_t>(int_or(c, "maxOutputTokens", 4096), 1, 1'000'000);
  if (auto* t = c.if_contains("temperature"); t != nullptr && t->is_number()) {
    cfg.temperature = t->to_number<double>();
  }
  cfg.timeout = std::chrono::seconds(std::max<std::int64_t>(1, int_or(c, "timeoutSeconds", 600)));
  cfg.max_tool_calls = static_cast<int>(std::clamp<std::int64_t>(int_or(c, "maxToolCalls", 100), 0, 100'000));
  if (auto* m = c.if_contains("maxCostUsd"); m != nullptr && m->is_number()) {
    cfg.max_cost_usd = std::max(0.0, m->to_number<double>());
  }
  cfg.loop_guard = static_cast<int>(std::clamp<std::int64_t>(int_or(c, "loopGuard", 3), 2, 1000));
  if (auto* s = c.if_contains("stream"); s != nullptr && s->is_bool()) cfg.stream = s->as_bool();
  cfg.max_retries = static_cast<int>(std::clamp<std::int64_t>(int_or(c, "maxRetries", 3), 0, 10));
  return cfg;
}

json::object LoopResult::to_json(const LlmConfig& config) const {
  json::array call_list;
  for (const auto& c : calls) {
    json::array names;
    for (const auto& n : c.tool_calls) names.emplace_back(n);
    call_list.push_back(json::object{{"turn", c.turn},
                                     {"inputTokens", c.usage.input_tokens},
                                     {"outputTokens", c.usage.output_tokens},
                                     {"latencyMs", c.latency_ms},
                                     {"attempts", c.attempts},
                                     {"stopReason", c.stop_reason},
                                     {"toolCalls", std::move(names)}});
  }
  return json::object{{"answer", answer},
                      {"stopReason", stop_reason},
                      {"provider", config.provider_name},
                      {"model", config.model},
                      {"turns", turns},
                      {"toolCalls", tool_calls},
                      {"usage", json::object{{"inputTokens", input_tokens},
                                             {"outputTokens", output_tokens},
                                             {"totalTokens", input_tokens + output_tokens}}},
                      {"wallMs", wall_ms},
                      {"costUsd", cost_usd},
                      {"calls", std::move(call_list)}};
}

LoopResult run_llm_loop(const llm::Provider& provider, const LlmConfig& config,
                        const ToolSet& tools, const std::string& task_text,
                        const ToolContext& context, const LoopHooks& hooks) {
  const auto started = SteadyClock::now();
  const auto deadline = started + config.timeout;
  LoopResult out;
  auto log = [&](std::string_view line) {
    if (hooks.on_log) hooks.on_log(line);
  };
  auto stop = [&](std::string status, std::string reason, std::string error) {
    out.status = std::move(status);
    out.stop_reason = std::move(reason);
    out.error = std::move(error);
    out.wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
    if (!out.error.empty()) log("stopped: " + out.error);
    return out;
  };
  auto cancelled = [&] { return context.cancel != nullptr && context.cancel->load(); };

  llm::ChatRequest req;
  req.model = config.model;
  req.system = config.system_prompt;
  req.temperature = config.temperature;
  req.stream = config.stream;
  const bool streams_text = config.stream && static_cast<bool>(hooks.on_text);
  if (streams_text) req.on_text = hooks.on_text;
  std::map<std::string, std::string, std::less<>> by_wire;  // wire name -> tool name
  for (const auto& name : config.tools) {
    auto tool = tools.find(name);
    if (!tool) continue;  // parse_llm_config checked; a tool source may have gone since
    const std::string wire = wire_tool_name(name);
    by_wire[wire] = name;
    req.tools.push_back(llm::ToolSpec{wire, std::string(tool->description()), tool->input_schema()});
  }
  req.messages.push_back(llm::Message{llm::Role::kUser, task_text, {}, {}, false});

  std::map<std::string, int> seen_calls;  // tool + canonical arguments -> times asked
  for (;;) {
    if (cancelled()) return stop("cancelled", "cancelled", "stopped: cancel requested, the agent stopped or the node shut down");
    if (out.turns >= config.max_turns) {
      return stop("failed", "max_turns",
                  "stopped: maxTurns (" + std::to_string(config.max_turns) +
                      ") reached without a final answer");
    }
    const std::int64_t used = out.input_tokens + out.output_tokens;
    if (config.max_cost_usd > 0 && out.cost_usd >= config.max_cost_usd) {
      return stop("failed", "max_cost",
                  "stopped: maxCostUsd (" + std::to_string(config.max_cost_usd) + ") reached after $" +
                      std::to_string(out.cost_usd));
    }
    if (config.max_tokens > 0 && used >= config.max_tokens) {
      return stop("failed", "max_tokens",
                  "stopped: maxTokens (" + std::to_string(config.max_tokens) + ") reached after " +
                      std::to_string(used) + " tokens");
    }
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      return stop("failed", "timeout",
                  "stopped: timeoutSeconds (" + std::to_string(config.timeout.count()) + ") reached");
    }
    req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    req.max_tokens = config.max_output_tokens;
    if (config.max_tokens > 0) req.max_tokens = std::min(req.max_tokens, config.max_tokens - used);

    const int turn = ++out.turns;
    auto r = provider.chat(req, context.cancel);
    if (!r.ok()) {
      if (r.error().reason == "cancelled") {
        return stop("cancelled", "cancelled", "stopped: cancel requested, the agent stopped or the node shut down");
      }
      if (r.error().reason == "timeout" && SteadyClock::now() >= deadline) {
        return stop("failed", "timeout",
                    "stopped: timeoutSeconds (" + std::to_string(config.timeout.count()) +
                        ") reached during model call " + std::to_string(turn));
      }
      return stop("failed", "provider_error",
                  "model call " + std::to_string(turn) + " failed (" + r.error().reason + "): " +
                      r.error().message);
    }
    llm::ChatResponse& resp = *r;
    CallRecord rec;
    rec.turn = turn;
    rec.usage = resp.usage;
    rec.latency_ms = resp.latency_ms;
    rec.attempts = resp.attempts;
    rec.stop_reason = resp.stop_reason;
    for (const auto& c : resp.tool_calls) {
      auto it = by_wire.find(c.name);
      rec.tool_calls.push_back(it == by_wire.end() ? c.name : it->second);
    }
    out.input_tokens += resp.usage.input_tokens;
    out.output_tokens += resp.usage.output_tokens;
    if (config.input_price_per_mtok >= 0 && config.output_price_per_mtok >= 0) {
      out.cost_usd += (static_cast<double>(resp.usage.input_tokens) * config.input_price_per_mtok +
                       static_cast<double>(resp.usage.output_tokens) * config.output_price_per_mtok) /
                      1e6;
    }
    out.calls.push_back(rec);
    if (hooks.on_call) hooks.on_call(rec);
    if (!resp.text.empty()) {
      out.answer = resp.text;
      if (!streams_text) log("model: " + shorten(resp.text, 2000));
    }
    req.messages.push_back(llm::Message{llm::Role::kAssistant, resp.text, resp.tool_calls, {}, false});
    if (resp.tool_calls.empty()) return stop("succeeded", "final_answer", "");

    for (const auto& call : resp.tool_calls) {
      auto it = by_wire.find(call.name);
      const std::string name = it == by_wire.end() ? call.name : it->second;
      if (out.tool_calls >= config.max_tool_calls) {
        return stop("failed", "max_tool_calls",
                    "stopped: maxToolCalls (" + std::to_string(config.max_tool_calls) + ") reached");
      }
      const std::string key =
          name + "\n" +
          (call.arguments_error.empty() ? json::serialize(canonical(call.arguments)) : call.arguments_text);
      if (++seen_calls[key] >= config.loop_guard) {
        return stop("failed", "loop_guard",
                    "stopped by the loop guard: the model asked for " + name + " with the same "
                    "arguments " + std::to_string(config.loop_guard) + " times");
      }
      ++out.tool_calls;
      llm::Message result{llm::Role::kTool, "", {}, call.id, false};
      if (it == by_wire.end()) {
        result.text = "error: there is no tool named '" + call.name + "' available to you";
        result.is_error = true;
      } else if (!call.arguments_error.empty()) {
        result.text = "error: " + call.arguments_error + "; send the arguments as one JSON object";
        result.is_error = true;
      } else if (auto tool = tools.find(name); !tool) {
        result.text = "error: the tool '" + name + "' is no longer available";
        result.is_error = true;
      } else {
        ToolOutput o = tool->call(call.arguments, context);
        result.text = std::move(o.text);
        result.is_error = o.is_error;
      }
      if (result.text.size() > kMaxToolOutputBytes) {
        result.text.resize(kMaxToolOutputBytes);
        result.text += "\n[truncated]";
      }
      log("tool " + name + " " + shorten(call.arguments_text, 500) + " -> " +
          (result.is_error ? "error: " : "") + shorten(result.text, 500));
      req.messages.push_back(std::move(result));
    }
  }
}

}  // namespace dp::agents
