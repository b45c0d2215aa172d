#include "api/v1/agent_config.hpp"

#include <string>

#include "agents/tools.hpp"
#include "auth/secret_service.hpp"

namespace dp::api::v1 {
namespace {

constexpr std::size_t kMaxString = 4096;

void common_limits(const boost::json::object& c, Validator& v) {
  v.integer(c, "timeoutSeconds", "config.timeoutSeconds", false, 1, 7 * 24 * 3600);
  v.integer(c, "concurrency", "config.concurrency", false, 1, 64);
}

// Development work: the commit of what the agent left in its git worktree, and the agent's
// budget (totals over all its tasks; a task that would start past one fails at once).
void dev_options(const boost::json::object& c, Validator& v) {
  v.boolean(c, "gitCommit", "config.gitCommit", false);
  v.number(c, "maxCostUsd", "config.maxCostUsd", false, 0.000001, 1'000'000);
  if (const auto* b = v.object(c, "budget", "config.budget", false)) {
    v.only_keys(*b, {"maxTokens", "maxCostUsd", "maxToolCalls", "maxWallSeconds", "maxOutputBytes"},
                "config.budget.");
    v.integer(*b, "maxTokens", "config.budget.maxTokens", false, 1, 1LL << 40);
    v.number(*b, "maxCostUsd", "config.budget.maxCostUsd", false, 0.000001, 1e9);
    v.integer(*b, "maxToolCalls", "config.budget.maxToolCalls", false, 0, 1LL << 40);
    v.integer(*b, "maxWallSeconds", "config.budget.maxWallSeconds", false, 1, 1LL << 40);
    v.integer(*b, "maxOutputBytes", "config.budget.maxOutputBytes", false, 1, 1LL << 50);
  }
}

void command_config(const boost::json::object& c, Validator& v) {
  v.only_keys(c,
              {"command", "args", "env", "workdir", "input", "mode", "isolation", "network",
               "memoryMb", "pids", "cpus", "timeoutSeconds", "concurrency", "restart",
               "maxRestarts", "outputLimitBytes", "maxOutputBytes", "gitCommit", "maxCostUsd",
               "budget", "image"},
              "config.");
  v.string_list(c, "command", "config.command", true, 64, kMaxString, /*allow_string=*/true);
  v.string_list(c, "args", "config.args", false, 256, kMaxString);
  v.string_map(c, "env", "config.env", 128, 128, kMaxString);
  v.string(c, "workdir", "config.workdir", false, 1, 1024);
  v.one_of(c, "input", "config.input", false, {"stdin", "arg", "file"});
  v.one_of(c, "mode", "config.mode", false, {"oneshot", "long-running"});
  auto iso = v.one_of(c, "isolation", "config.isolation", false, {"sandbox", "none", "docker"});
  auto image = v.string(c, "image", "config.image", false, 1, 512);
  if (iso && *iso == "docker" && !image && !c.contains("image")) {
    v.fail("config.image", "required", "config.image is required with isolation: docker");
  }
  v.boolean(c, "network", "config.network", false);
  v.integer(c, "memoryMb", "config.memoryMb", false, 16, 1024 * 1024);
  v.integer(c, "pids", "config.pids", false, 1, 65536);
  v.number(c, "cpus", "config.cpus", false, 0.01, 1024);
  v.one_of(c, "restart", "config.restart", false, {"never", "on-failure"});
  v.integer(c, "maxRestarts", "config.maxRestarts", false, 0, 1000);
  v.integer(c, "outputLimitBytes", "config.outputLimitBytes", false, 1024, 1LL << 30);
  v.integer(c, "maxOutputBytes", "config.maxOutputBytes", false, 1, 1LL << 40);
  dev_options(c, v);
  common_limits(c, v);
}

void llm_config(const boost::json::object& c, Validator& v) {
  v.only_keys(c,
              {"provider", "model", "baseUrl", "apiKeySecret", "systemPrompt", "tools",
               "maxTurns", "maxTokens", "maxOutputTokens", "temperature", "timeoutSeconds",
               "concurrency", "maxToolCalls", "loopGuard", "stream", "maxRetries", "gitCommit",
               "maxCostUsd", "budget"},
              "config.");
  v.one_of(c, "provider", "config.provider", true, {"openai", "anthropic"});
  v.string(c, "model", "config.model", true, 1, 256);
  if (auto url = v.string(c, "baseUrl", "config.baseUrl", false, 1, 2048)) {
    if (!url->starts_with("http://") && !url->starts_with("https://")) {
      v.fail("config.baseUrl", "bad_format", "config.baseUrl must be an http:// or https:// URL");
    }
  }
  if (auto name = v.string(c, "apiKeySecret", "config.apiKeySecret", false, 1, 128)) {
    if (!auth::SecretService::valid_name(*name)) {
      v.fail("config.apiKeySecret", "bad_format",
             "config.apiKeySecret is the name of a secret (A-Z a-z 0-9 _ . -), not the key");
    }
  }
  v.string(c, "systemPrompt", "config.systemPrompt", false, 0, 64 * 1024);
  v.string_list(c, "tools", "config.tools", false, 256, 256);
  if (auto* t = c.if_contains("tools"); t != nullptr && t->is_array()) {
    for (const auto& x : t->as_array()) {
      if (!x.is_string()) continue;
      const std::string_view name = x.as_string();
      // Built-in namespaces are known in full; other names come from tool sources (MCP).
      if (agents::is_builtin_namespace(name) && !agents::builtin_tools().find(name)) {
        v.fail("config.tools", "unknown_tool",
               "config.tools names '" + std::string(name) + "', which is not a built-in tool (" +
                   [] {
                     std::string all;
                     for (const auto& n : agents::builtin_tools().names()) {
                       all += (all.empty() ? "" : ", ") + n;
                     }
                     return all;
                   }() +
                   ")");
      }
    }
  }
  v.integer(c, "maxTurns", "config.maxTurns", false, 1, 1000);
  v.integer(c, "maxTokens", "config.maxTokens", false, 1, 10'000'000);
  v.integer(c, "maxOutputTokens", "config.maxOutputTokens", false, 1, 1'000'000);
  v.number(c, "temperature", "config.temperature", false, 0.0, 2.0);
  v.integer(c, "maxToolCalls", "config.maxToolCalls", false, 0, 100'000);
  v.integer(c, "loopGuard", "config.loopGuard", false, 2, 1000);
  v.boolean(c, "stream", "config.stream", false);
  v.integer(c, "maxRetries", "config.maxRetries", false, 0, 10);
  dev_options(c, v);
  common_limits(c, v);
}

void remote_config(const boost::json::object& c, Validator& v) {
  v.only_keys(c, {"heartbeatSeconds", "capabilities", "timeoutSeconds", "concurrency"}, "config.");
  v.integer(c, "heartbeatSeconds", "config.heartbeatSeconds", false, 1, 600);
  v.string_list(c, "capabilities", "config.capabilities", false, 128, 128);
  common_limits(c, v);
}

}  // namespace

void validate_agent_config(std::string_view type, const boost::json::object& config,
                           Validator& v) {
  if (type == "command") {
    command_config(config, v);
  } else if (type == "llm") {
    llm_config(config, v);
  } else if (type == "remote") {
    remote_config(config, v);
  }
}

}  // namespace dp::api::v1
