// Config: the effective settings of a devplane process.
//
// Precedence, lowest to highest: built-in defaults < config file (YAML, snake_case keys)
// < DEVPLANE_* environment variables < command-line flags. Every source goes through
// `Config::set`, so each key is parsed and validated in one place.
// Immutable after start-up; safe to read from any thread then.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.hpp"

namespace dp {

// "model=in/out,..." (USD per million tokens); nullopt when malformed.
std::optional<std::map<std::string, std::pair<double, double>>> parse_prices(std::string_view text);

struct Config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string data_dir = "./devplane-data";
  std::string database_url;  // empty: SQLite in data_dir; postgres://... : PostgreSQL
  std::string redis_url;     // empty: in-process bus
  std::string log_level = "info";
  std::string log_format = "json";
  std::string config_file;
  int io_threads = 0;        // 0: number of cores
  int blocking_threads = 4;  // store and other blocking work
  int write_threads = 32;    // mutating HTTP requests (they mostly wait on the commit's sync)
  int db_pool_size = 8;      // PostgreSQL connections
  std::uint64_t max_body_bytes = 1024 * 1024;
  std::uint32_t header_timeout_ms = 10'000;
  std::uint32_t idle_timeout_ms = 60'000;
  std::uint32_t request_timeout_ms = 30'000;
  std::uint32_t shutdown_timeout_ms = 10'000;
  std::string sqlite_synchronous = "full";  // full | normal
  // How audit entries are committed (audit::AuditService): relaxed (the commit does not wait
  // for the disk; a crash of devplane loses none, a power loss may lose the newest) | durable.
  std::string audit_records = "relaxed";
  std::uint32_t event_retention_hours = 24;   // how long clients can resume from
  std::uint32_t health_interval_ms = 5'000;   // system.health.status period
  // A remote agent that sends nothing for this long is dropped (docs/agent-protocol.md).
  std::uint32_t remote_heartbeat_timeout_ms = 30'000;
  std::uint32_t mcp_health_interval_ms = 30'000;  // MCP adapter health checks (ping) period
  std::string mcp_tool_records = "relaxed";  // deferred | relaxed | durable (mcp::ToolService)
  std::vector<std::string> allowed_origins;   // WebSocket Origins besides the server's own
  std::string master_key_file;  // secrets at rest; empty: <data_dir>/master.key (0600)
  std::string master_key;       // base64 of 32 bytes (DEVPLANE_MASTER_KEY); wins over the file
  // Identity (docs/security.md). jwt_secret: the HS256 key (>= 32 chars); empty: the
  // 0600 file <data_dir>/jwt.key, made on first run. Masked by to_json_masked().
  std::string jwt_secret;
  std::uint32_t access_token_ttl_s = 900;          // access tokens (JWT)
  std::uint32_t refresh_token_ttl_s = 7 * 86'400;  // refresh tokens
  std::string password_hash_cost = "moderate";     // moderate | interactive (Argon2id limits)
  // Single sign-on (OpenID Connect; docs/security.md). Off while oidc_issuer is empty.
  std::string oidc_issuer;
  std::string oidc_client_id;
  std::string oidc_client_secret;  // masked by to_json_masked()
  std::string oidc_redirect_url;   // https://<devplane>/api/v1/auth/oidc/callback
  std::string oidc_role_claim = "groups";
  std::string oidc_role_map;       // "devplane-admins=admin,devplane-ops=operator[,*=viewer]"
  std::string oidc_scopes = "openid profile email";
  std::string oidc_display_name;   // the dashboard's sign-in button
  std::uint32_t oidc_jwks_min_refresh_ms = 10'000;  // unknown kid: one JWKS refetch per this
  // The built dashboard (web/dist). Empty: <binary dir>/../../web/dist or ./web/dist, the
  // first that exists; the built-in placeholder page when neither holds a build.
  std::string web_dir;
  // How long a node's claim on a workflow execution lasts without renewal (distributed mode:
  // another node resumes the execution after it lapses).
  std::uint32_t workflow_lease_ms = 15'000;
  // How often the workflow engine looks over every execution it may drive (new ones, lapsed
  // leases elsewhere); timers and task ends do not wait for it.
  std::uint32_t workflow_tick_ms = 200;
  // How long a node's claim on a running agent task lasts without renewal; a task whose node
  // died runs again (same idempotency key) after it lapses.
  std::uint32_t task_lease_ms = 30'000;
  // Agent task workspaces (and their git worktrees) older than this are removed; 0 keeps them.
  std::uint32_t workspace_retention_hours = 7 * 24;
  // The cgroups of the tasks this node runs are sampled this often (agent.resources events,
  // agent.cpu_percent / agent.memory_bytes metrics); 0: off.
  std::uint32_t agent_resources_interval_ms = 5'000;
  std::uint32_t agent_resources_retention_minutes = 60;  // those metrics are kept this long
  // Price table for cost budgets: model -> {input, output} USD per million tokens. Text form
  // "gpt-4o=2.5/10,claude-sonnet-4=3/15".
  std::map<std::string, std::pair<double, double>> llm_prices;
  std::string docker_socket = "/var/run/docker.sock";  // the docker runtime's Engine API
  std::string redis_key_prefix = "devplane";  // Redis keys: <prefix>:events, <prefix>:queue:<name>
  // Agent logs kept per agent on each node (GET /api/v1/agents/:id/logs): a file's size before
  // it is rotated, the rotated files kept besides it, and the followers (?follow=true) per node.
  std::uint64_t agent_log_max_bytes = 4 * 1024 * 1024;
  int agent_log_files = 2;
  std::uint32_t agent_log_max_followers = 64;
  // Triggers (docs/workflows.md): how far a webhook's signed timestamp may be from now, how late
  // a cron time may start before it counts as missed, how long webhook delivery ids are kept
  // for replay protection (at least twice the timestamp window: check()).
  std::uint32_t webhook_timestamp_tolerance_s = 300;
  std::uint32_t cron_late_tolerance_s = 60;
  std::uint32_t webhook_delivery_retention_s = 86'400;
  // Vector memory (docs/memory.md): whether finished tasks' outcomes are remembered (on | off);
  // the embedder (hashing: built in; openai: an OpenAI-compatible /embeddings server at
  // memory_embedding_url with memory_embedding_model, its key in the named secret); the
  // built-in embedder's dimensions.
  std::string memory_outcomes = "on";
  std::string memory_embedder = "hashing";
  std::string memory_embedding_url;
  std::string memory_embedding_model;
  std::string memory_embedding_key_secret;
  std::uint32_t memory_dims = 384;

  // Sets one key from its text form. Unknown keys and bad values are kInvalidArgument
  // naming the key and the source ("flag", "env DEVPLANE_PORT", "file x.yaml").
  Status set(std::string_view key, std::string_view value, std::string_view source);

  // Applies a YAML mapping of snake_case keys. Missing file: kNotFound.
  Status apply_file(const std::string& path);
  // Applies every DEVPLANE_<KEY> variable that `getenv` returns.
  Status apply_env(const std::function<const char*(const char*)>& getenv);

  // Rules across keys, checked once every source is applied (load_config). kInvalidArgument
  // naming the keys.
  Status check() const;

  bool distributed() const noexcept { return !database_url.empty(); }

  // The effective config as JSON, with passwords in URLs masked.
  boost::json::object to_json_masked() const;

  static const std::vector<std::string>& keys();
};

// "postgres://user:secret@h/db" -> "postgres://user:***@h/db"; other strings unchanged.
std::string mask_url_password(std::string_view url);

}  // namespace dp
