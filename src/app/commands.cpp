#include "app/commands.hpp"

#include <csignal>
#include <filesystem>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "agents/agent_service.hpp"
#include "agents/executor.hpp"
#include "agents/remote/remote_hub.hpp"
#include "workflow/engine.hpp"
#include "workflow/hooks.hpp"
#include "workflow/scheduler.hpp"
#include "workflow/service.hpp"
#include "workflow/tool_steps.hpp"
#include "api/v1/routes.hpp"
#include "app/build_info.hpp"
#include "app/dashboard.hpp"
#include "app/metered_store.hpp"
#include "auth/auth_service.hpp"
#include "auth/oidc.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "auth/policy.hpp"
#include "audit/audit_service.hpp"
#include "auth/secrets.hpp"
#include "api/v1/tools_routes.hpp"
#include "api/mcp/endpoint.hpp"
#include "mcp/gateway.hpp"
#include "mcp/platform_tools.hpp"
#include "memory/memory_service.hpp"
#include "mcp/registry.hpp"
#include "mcp/server.hpp"
#include "mcp/tool_service.hpp"
#include "agents/mcp_tools.hpp"
#include "bus/event_bus.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "http/server.hpp"
#include "core/ids.hpp"
#include "metrics/metrics.hpp"
#include "realtime/health_reporter.hpp"
#include "realtime/hub.hpp"
#include "realtime/outbox_relay.hpp"
#include "store/store.hpp"

namespace dp::app {
namespace {

struct FlagSpec {
  const char* flag;
  const char* key;
  const char* help;
};

constexpr FlagSpec kFlags[] = {
    {"--host", "host", "Address to listen on (default 127.0.0.1)"},
    {"--port", "port", "Port to listen on (default 8080; 0 picks a free port)"},
    {"--data-dir", "data_dir", "Folder for the embedded database (default ./devplane-data)"},
    {"--database-url", "database_url", "postgres://... to use PostgreSQL instead of SQLite"},
    {"--redis-url", "redis_url", "redis://... to use Redis Streams instead of the in-process bus"},
    {"--log-level", "log_level", "debug, info, warn or error (default info)"},
    {"--log-format", "log_format", "json (default) or text"},
    {"--io-threads", "io_threads", "I/O threads (default: number of cores)"},
    {"--blocking-threads", "blocking_threads", "Threads for store and other blocking work (default 4)"},
    {"--write-threads", "write_threads",
     "Threads for POST/PUT/PATCH/DELETE requests, which mostly wait on the disk (default 32)"},
    {"--max-body-bytes", "max_body_bytes", "Largest accepted request body (default 1048576)"},
    {"--shutdown-timeout-ms", "shutdown_timeout_ms", "Grace period for in-flight requests on shutdown"},
};

// defaults < file < DEVPLANE_* < flags
Result<Config> load_config(const CommonOptions& opts) {
  Config c;
  std::string file = opts.config_file;
  if (file.empty()) {
    if (const char* f = std::getenv("DEVPLANE_CONFIG"); f != nullptr) file = f;
  }
  if (!file.empty()) {
    DP_TRY(c.apply_file(file));
    c.config_file = file;
  }
  DP_TRY(c.apply_env([](const char* name) { return std::getenv(name); }));
  for (const auto& [key, value] : opts.flags) DP_TRY(c.set(key, value, "flag"));
  DP_TRY(c.check());
  return c;
}

int fail(const Error& e) {
  std::cerr << "devplane: " << e.message << "\n";
  return e.code == ErrorCode::kInvalidArgument ? 2 : 1;
}

Result<std::unique_ptr<store::Store>> open_and_migrate(const Config& c) {
  DP_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> s, store::open_store(c));
  DP_TRY(s->migrate());
  return s;
}

}  // namespace

std::string version_string() {
  return std::string("devplane ") + kVersion + " (" + kGitCommit + ", " + kBuildType + ", " +
         kCompiler + ")";
}

void add_common_flags(CLI::App& cmd, CommonOptions& opts) {
  cmd.add_option("-c,--config", opts.config_file, "YAML config file (also DEVPLANE_CONFIG)");
  for (const auto& f : kFlags) {
    cmd.add_option_function<std::string>(
        f.flag, [&opts, key = std::string(f.key)](const std::string& v) { opts.flags[key] = v; },
        f.help);
  }
  cmd.footer(
      "Precedence: flags > DEVPLANE_* environment (e.g. DEVPLANE_PORT) > config file > defaults.");
}

int run_migrate(const CommonOptions& opts) {
  auto cfg = load_config(opts);
  if (!cfg.ok()) return fail(cfg.error());
  log::configure(*log::parse_level(cfg->log_level), *log::parse_format(cfg->log_format));
  auto s = store::open_store(*cfg);
  if (!s.ok()) return fail(s.error());
  auto v = (*s)->migrate();
  if (!v.ok()) return fail(v.error());
  std::cout << "schema at version " << *v << " (" << (*s)->info().backend << ")\n";
  (*s)->close();
  return 0;
}

int run_check(const CommonOptions& opts) {
  auto cfg = load_config(opts);
  if (!cfg.ok()) return fail(cfg.error());
  log::configure(log::Level::kWarn, *log::parse_format(cfg->log_format));
  if (!cfg->distributed()) {
    // Opening SQLite creates the file; a check must not invent the database it checks.
    const auto db = std::filesystem::path(cfg->data_dir) / "devplane.db";
    if (!std::filesystem::exists(db)) {
      return fail(Error::not_found("no database at " + db.string()));
    }
  }
  auto s = store::open_store(*cfg);
  if (!s.ok()) return fail(s.error());
  auto st = (*s)->check_integrity();
  if (!st.ok()) return fail(st.error());
  std::cout << "ok: " << (*s)->info().backend
            << " database passes its integrity check and its schema is known to this binary\n";
  (*s)->close();
  return 0;
}

namespace {

// Opens the configured store for an offline audit command, without migrating it (a check
// must not change what it checks) and without inventing an SQLite file.
Result<std::unique_ptr<store::Store>> open_for_audit(const CommonOptions& opts) {
  DP_ASSIGN_OR_RETURN(Config cfg, load_config(opts));
  log::configure(log::Level::kWarn, *log::parse_format(cfg.log_format));
  if (!cfg.distributed()) {
    const auto db = std::filesystem::path(cfg.data_dir) / "devplane.db";
    if (!std::filesystem::exists(db)) return Error::not_found("no database at " + db.string());
  }
  return store::open_store(cfg);
}

}  // namespace

int run_audit_verify(const CommonOptions& opts) {
  auto s = open_for_audit(opts);
  if (!s.ok()) {
    std::cerr << "devplane: " << s.error().message << "\n";
    return 1;
  }
  audit::AuditService audit(**s);
  auto report = audit.verify(0);
  (*s)->close();
  if (!report.ok()) {
    std::cerr << "devplane: cannot read the audit log: " << report.error().message
              << " (is the schema migrated? `devplane migrate`)\n";
    return 1;
  }
  if (!report->verified) {
    std::cout << "audit chain BROKEN at seq " << *report->broken_at << ": " << report->reason
              << " (" << report->checked << " entries verified before it)\n";
    return 1;
  }
  if (report->checked == 0) {
    std::cout << "ok: the audit log is empty\n";
  } else {
    std::cout << "ok: audit chain verifies: " << report->checked << " entries (seq "
              << report->first_seq << ".." << report->last_seq << "), head hash "
              << report->head_hash << "\n";
  }
  return 0;
}

int run_audit_list(const AuditListOptions& opts) {
  auto s = open_for_audit(opts.common);
  if (!s.ok()) {
    std::cerr << "devplane: " << s.error().message << "\n";
    return 1;
  }
  audit::AuditService audit(**s);
  store::AuditFilter f;
  f.limit = opts.limit;
  auto page = audit.list(f);
  (*s)->close();
  if (!page.ok()) {
    std::cerr << "devplane: cannot read the audit log: " << page.error().message << "\n";
    return 1;
  }
  for (const auto& r : page->items) std::cout << boost::json::serialize(audit::to_json(r)) << "\n";
  return 0;
}

int run_serve(const ServeOptions& opts) {
  auto cfg_r = load_config(opts.common);
  if (!cfg_r.ok()) return fail(cfg_r.error());
  const Config cfg = std::move(*cfg_r);
  if (opts.print_config) {
    std::cout << boost::json::serialize(cfg.to_json_masked()) << "\n";
    return 0;
  }
  log::configure(*log::parse_level(cfg.log_level), *log::parse_format(cfg.log_format));
  const auto& logger = log::global();

  metrics::Metrics metrics;
  auto raw_store = open_and_migrate(cfg);
  if (!raw_store.ok()) return fail(raw_store.error());
  MeteredStore store(std::move(*raw_store), metrics);

  // Identity: the HS256 key (config or the 0600 file in the data dir), then the first admin.
  auto jwt_secret = auth::load_or_create_jwt_secret(cfg);
  if (!jwt_secret.ok()) return fail(jwt_secret.error());
  auth::AuthService auth_service(store, auth::auth_options_from(cfg, std::move(*jwt_secret)));
  std::optional<std::string> first_admin;
  {
    std::optional<std::string> given;
    if (const char* p = std::getenv("DEVPLANE_ADMIN_PASSWORD"); p != nullptr && *p != '\0') given = p;
    auto created = auth_service.ensure_admin(given);
    if (!created.ok()) return fail(created.error());
    first_admin = *created;
  }
  auth::Authenticator authenticator(auth_service);

  // Secrets at rest (MCP adapter headers and environment, LLM provider keys) are sealed with
  // `secrets`; a key file readable by group or others stops the start here.
  auto secrets_r = auth::Secrets::from_config(cfg);
  if (!secrets_r.ok()) return fail(secrets_r.error());
  const auth::Secrets& secrets = *secrets_r;
  if (cfg.distributed() && cfg.master_key.empty()) {
    logger.warn("secrets at rest use this node's key file; give every node the same "
                "DEVPLANE_MASTER_KEY so that any node can open what another sealed",
                {{"masterKeyFile", cfg.master_key_file.empty() ? cfg.data_dir + "/master.key"
                                                               : cfg.master_key_file}});
  }
  // The audit log: every mutating or refused request (set_auditor below) and every security
  // fact the auth module reports through `audit_recorder`.
  audit::AuditService audit_service(store, cfg.audit_records == "durable"
                                               ? audit::AuditService::Commit::kDurable
                                               : audit::AuditService::Commit::kRelaxed);
  audit::Recorder& audit_recorder = audit_service;

  const std::string node_id = ids::uuid_v7();
  bus::BusOptions bus_opts;
  bus_opts.redis_url = cfg.redis_url;
  bus_opts.key_prefix = cfg.redis_key_prefix;
  auto bus_r = bus::open_bus(bus_opts);
  if (!bus_r.ok()) return fail(bus_r.error());
  std::unique_ptr<bus::EventBus> bus = std::move(*bus_r);

  realtime::RelayOptions relay_opts;
  relay_opts.node_id = node_id;
  relay_opts.retention = std::chrono::hours(cfg.event_retention_hours);
  realtime::OutboxRelay relay(store, *bus, relay_opts);
  store.set_on_commit([&relay] { relay.notify(); });

  // MCP adapters: one live client per registered server, health-checked periodically. Their
  // tools also reach llm agents (mcp_tool_source) and workflow tool steps.
  mcp::RegistryOptions mcp_opts;
  mcp_opts.work_dir = cfg.data_dir + "/mcp";
  mcp::Registry mcp_registry(mcp_opts);
  mcp::ToolService tool_service(store, mcp_registry, secrets);
  tool_service.set_records(cfg.mcp_tool_records == "deferred"  ? mcp::ToolService::Records::kDeferred
                           : cfg.mcp_tool_records == "relaxed" ? mcp::ToolService::Records::kRelaxed
                                                               : mcp::ToolService::Records::kDurable);
  agents::McpToolSource mcp_tool_source(tool_service);

  agents::AgentService agent_service(store);
  agent_service.set_tool_source(&mcp_tool_source);
  http::Router router;
  api::v1::register_agent_routes(router, agent_service);
  agents::MessageService message_service(store);
  api::v1::register_message_routes(router, message_service);
  agents::ExecutorOptions exec_opts;
  exec_opts.node_id = node_id;
  exec_opts.data_dir = cfg.data_dir;
  exec_opts.secrets = &secrets;           // llm agents' provider keys
  exec_opts.recorder = &audit_recorder;   // guard stops of llm tasks
  exec_opts.lease = std::chrono::milliseconds(cfg.task_lease_ms);
  exec_opts.workspace_retention = std::chrono::hours(cfg.workspace_retention_hours);
  exec_opts.prices = cfg.llm_prices;
  exec_opts.docker_socket = cfg.docker_socket;
  exec_opts.tool_source = &mcp_tool_source;  // MCP tools named in llm agents' config.tools
  // Each agent's output, kept per agent on this node (GET /api/v1/agents/:id/logs).
  agents::AgentLogs agent_logs(agents::AgentLogOptions{
      cfg.data_dir + "/logs", cfg.agent_log_max_bytes, cfg.agent_log_files,
      static_cast<std::size_t>(cfg.agent_log_max_followers)});
  exec_opts.logs = &agent_logs;
  // Vector memory (docs/memory.md): the index is rebuilt from the store now; finished tasks'
  // outcomes are remembered by the service's own worker, off the task's path.
  std::unique_ptr<memory::Embedder> embedder;
  if (cfg.memory_embedder == "openai") {
    memory::OpenAiEmbedderOptions eo;
    eo.base_url = cfg.memory_embedding_url;
    eo.model = cfg.memory_embedding_model;
    if (!cfg.memory_embedding_key_secret.empty()) {
      eo.key_provider = [&store, &secrets, name = cfg.memory_embedding_key_secret]() -> Result<std::string> {
        std::string sealed;
        DP_TRY(store.read([&](store::Tx& tx) -> Status {
          DP_ASSIGN_OR_RETURN(auto rec, tx.secrets().get(name));
          sealed = std::move(rec.value);
          return Ok{};
        }));
        return secrets.open(sealed);
      };
    }
    embedder = std::make_unique<memory::OpenAiEmbedder>(std::move(eo));
  } else {
    embedder = std::make_unique<memory::HashingEmbedder>(cfg.memory_dims);
  }
  memory::MemoryOptions memory_opts;
  memory_opts.remember_outcomes = cfg.memory_outcomes == "on";
  memory::MemoryService memory_service(store, std::move(embedder), memory_opts);
  if (auto loaded = memory_service.load(); !loaded.ok()) return fail(loaded.error());
  memory_service.start();
  api::v1::register_memory_routes(router, memory_service);
  exec_opts.resource_interval = std::chrono::milliseconds(cfg.agent_resources_interval_ms);
  exec_opts.resource_retention = std::chrono::minutes(cfg.agent_resources_retention_minutes);
  // Set below: a workflow step's task that ends moves its execution on at once, with a pass
  // on the task's own thread (no wake-up of the engine's thread, no scan for executions).
  workflow::Engine* engine_ptr = nullptr;
  exec_opts.on_finished = [&engine_ptr, &memory_service](const model::Task& t) {
    memory_service.remember_task(t);
    constexpr std::string_view kPrefix = "execution:";
    if (engine_ptr == nullptr || t.created_by.rfind(kPrefix, 0) != 0) return;
    engine_ptr->drive_now(t.created_by.substr(kPrefix.size()));
  };
  agents::Executor executor(store, exec_opts);
  // Set below, before the server starts: remote agents are offered new tasks at once.
  agents::remote::RemoteHub* remote_ptr = nullptr;
  agents::TaskService task_service(store, [&executor, &remote_ptr] {
    executor.notify();
    if (remote_ptr != nullptr) remote_ptr->notify();
  });
  task_service.set_starter(&executor);  // a task for a running agent starts in its own commit
  api::v1::register_task_routes(router, task_service);
  api::v1::register_log_routes(router, agent_service, agent_logs);
  // Workflows: the engine drives executions on this node; in embedded mode it takes over the
  // executions a previous process left unfinished at once (one process owns the SQLite file).
  workflow::EngineOptions engine_opts;
  engine_opts.node_id = node_id;
  engine_opts.lease = std::chrono::milliseconds(cfg.workflow_lease_ms);
  engine_opts.tick = std::chrono::milliseconds(cfg.workflow_tick_ms);
  engine_opts.take_over_on_start = !cfg.distributed();
  engine_opts.call_tool = workflow::mcp_tool_caller(tool_service);  // tool steps, audited
  workflow::Engine engine(store, task_service, engine_opts);
  engine_ptr = &engine;
  workflow::WorkflowService workflow_service(
      store, [&engine] { engine.notify(); },
      [&engine](const std::string& id) { engine.drive_now(id); });
  api::v1::register_workflow_routes(router, workflow_service);
  // Cron triggers: every node runs a scheduler; the one holding the store lease fires.
  workflow::SchedulerOptions scheduler_opts;
  scheduler_opts.node_id = node_id;
  scheduler_opts.late_tolerance = std::chrono::seconds(cfg.cron_late_tolerance_s);
  scheduler_opts.delivery_retention = std::chrono::seconds(cfg.webhook_delivery_retention_s);
  workflow::Scheduler scheduler(store, scheduler_opts, [&engine](const std::string&) { engine.notify(); });
  api::v1::register_auth_routes(router, auth_service);
  // Single sign-on (OpenID Connect) when oidc_issuer is set; the provider is contacted on the
  // first sign-in, so devplane starts while it is down.
  auto oidc_settings = auth::oidc_settings_from(cfg);
  if (!oidc_settings.ok()) return fail(oidc_settings.error());
  std::unique_ptr<auth::OidcService> oidc;
  if (oidc_settings->has_value()) {
    oidc = std::make_unique<auth::OidcService>(
        std::move(**oidc_settings),
        [&auth_service](const auth::ExternalIdentity& id, const http::Request& req) {
          return auth_service.sign_in_external(
              id, auth::RequestContext{req.remote_address, req.request_id});
        });
  }
  auth::register_oidc_routes(router, oidc.get());
  api::v1::register_user_routes(router, auth_service);
  api::v1::register_api_key_routes(router, auth_service);
  auth::SecretService secret_service(store, secrets);
  api::v1::register_secret_routes(router, secret_service);
  // Webhook triggers: public routes whose deliveries are checked against the hook's secret.
  workflow::HookOptions hook_opts;
  hook_opts.tolerance = std::chrono::seconds(cfg.webhook_timestamp_tolerance_s);
  workflow::HookService hook_service(store, secrets, std::move(hook_opts),
                                     [&engine](const std::string& id) { engine.drive_now(id); });
  api::v1::register_workflow_hook_routes(router, hook_service);
  api::v1::register_audit_routes(router, audit_service);
  auth_service.set_recorder(&audit_recorder);
  api::v1::register_tool_routes(router, tool_service);
  // devplane as an MCP server at /mcp: platform tools (each one /api/v1 route, dispatched
  // through this router with that route's access rule) and the adapters' tools (gateway).
  mcp::PlatformTools mcp_platform_tools(router, authenticator, &audit_service);
  mcp::GatewayTools mcp_gateway_tools(tool_service, authenticator);
  mcp::McpServerOptions mcp_server_opts;
  mcp_server_opts.server_version = kVersion;
  mcp_server_opts.instructions =
      "devplane runs AI agents and workflows. Platform tools (list_agents, create_task, "
      "execute_workflow, approve_step, search_memory, ...) act on devplane itself; tools named "
      "<adapter>__<tool> are those of the MCP servers registered in devplane, called through "
      "it and audited.";
  mcp::McpServer mcp_server({&mcp_platform_tools, &mcp_gateway_tools}, mcp_server_opts);
  api::mcp_endpoint::Options mcp_endpoint_opts;
  mcp_endpoint_opts.bind_host = cfg.host;
  mcp_endpoint_opts.allowed_origins = cfg.allowed_origins;
  mcp_endpoint_opts.max_message_bytes = static_cast<std::size_t>(cfg.max_body_bytes);
  api::mcp_endpoint::register_routes(router, mcp_server, mcp_endpoint_opts);

  const auto started_at = std::chrono::steady_clock::now();
  http::Server* server_ptr = nullptr;
  api::v1::SystemDeps sys;
  sys.store = &store;
  sys.config = &cfg;
  sys.started_at = started_at;
  sys.bus_backend = std::string(bus->backend());
  sys.bus_ping = [&bus] { return bus->ping(); };
  sys.connections = [&server_ptr] { return server_ptr ? server_ptr->active_connections() : 0; };
  api::v1::register_system_routes(router, sys);
  router.add("GET", "/metrics", [&metrics](http::Request&) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics.scrape();
    return r;
  });
  auto dashboard = register_dashboard_routes(router, cfg.web_dir);
  if (!dashboard.ok()) return fail(dashboard.error());

  const int io_threads =
      cfg.io_threads > 0 ? cfg.io_threads
                         : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  boost::asio::io_context io(io_threads);
  boost::asio::thread_pool blocking(static_cast<std::size_t>(cfg.blocking_threads));
  // Mutating requests wait for their commit's disk sync; with their own threads, one sync
  // batches many of them (group commit) and reads keep the blocking pool.
  // PostgreSQL commits concurrently (and groups its own WAL flushes), but a write thread
  // beyond the connection pool would only wait for a connection, under that wait's deadline.
  const int write_threads =
      cfg.distributed() ? std::min(cfg.write_threads, cfg.db_pool_size) : cfg.write_threads;
  boost::asio::thread_pool writes(static_cast<std::size_t>(write_threads));
  // Remote agents connect at /api/v1/agents/:id/connect (registered with the server below).
  agents::remote::RemoteOptions remote_opts;
  remote_opts.node_id = node_id;
  remote_opts.heartbeat_timeout = std::chrono::milliseconds(cfg.remote_heartbeat_timeout_ms);
  // A lost agent's tasks go back to the queue once it has been silent as long as it may be.
  remote_opts.lease = remote_opts.heartbeat_timeout;
  remote_opts.logs = &agent_logs;
  // A workflow step's task that a remote agent ended moves its execution on at once, with a
  // pass on the engine's thread (the result arrives on a connection's thread).
  remote_opts.on_finished = [&engine_ptr, &memory_service](const model::Task& t) {
    memory_service.remember_task(t);
    constexpr std::string_view kPrefix = "execution:";
    if (engine_ptr == nullptr || t.created_by.rfind(kPrefix, 0) != 0) return;
    engine_ptr->drive_soon(t.created_by.substr(kPrefix.size()));
  };
  agents::remote::RemoteHub remote_hub(store, agent_service, blocking, remote_opts);
  remote_ptr = &remote_hub;
  http::ServerOptions sopts;
  sopts.host = cfg.host;
  sopts.port = cfg.port;
  sopts.max_body_bytes = cfg.max_body_bytes;
  sopts.header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
  sopts.idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
  sopts.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  sopts.ws_shards = static_cast<std::size_t>(io_threads);
  http::Server server(io, blocking, router, sopts, &metrics);
  server_ptr = &server;
  server.set_authenticator(authenticator);
  server.set_auditor(audit_service);
  server.set_write_pool(writes);

  realtime::HubOptions hub_opts;
  hub_opts.allowed_origins = cfg.allowed_origins;
  realtime::Hub hub(store, *bus, blocking, hub_opts);
  if (auto s = hub.start(); !s.ok()) return fail(s.error());
  server.add_websocket("/ws", hub);
  server.add_websocket("/api/v1/agents/:id/connect", remote_hub,
                       agents::remote::remote_ws_options(remote_opts));
  if (opts.print_routes) {
    // Every route this server answers with its access rule, and the whole access table, for
    // docs/security.md and the route-walking integration test.
    auto routes = router.routes();
    routes.emplace_back("GET", "/ws");
    auto roles_of = [](const auth::Rule* rule) {
      boost::json::array roles;
      if (rule != nullptr) {
        for (const auto& r : auth::role_names(rule->roles)) roles.emplace_back(r);
      }
      return roles;
    };
    boost::json::array served;
    for (const auto& [method, pattern] : routes) {
      const auth::Rule* rule = auth::find_rule(method, pattern);
      served.push_back(boost::json::object{{"method", method},
                                           {"route", pattern},
                                           {"rule", rule != nullptr},
                                           {"public", rule != nullptr && rule->is_public},
                                           {"roles", roles_of(rule)}});
    }
    boost::json::array table;
    for (const auto& rule : auth::rules()) {
      table.push_back(boost::json::object{{"method", rule.method},
                                          {"route", rule.route},
                                          {"public", rule.is_public},
                                          {"roles", roles_of(&rule)}});
    }
    std::cout << boost::json::serialize(boost::json::object{{"routes", std::move(served)},
                                                            {"rules", std::move(table)}})
              << std::endl;
    hub.stop();
    return 0;
  }
  if (auto s = server.listen(); !s.ok()) return fail(s.error());
  relay.start();
  executor.start();
  remote_hub.start();
  engine.start();
  scheduler.start();
  tool_service.start_health_checker(std::chrono::milliseconds(cfg.mcp_health_interval_ms));

  realtime::HealthSources health_src;
  health_src.node_id = node_id;
  health_src.http_connections = [&server] { return server.active_connections(); };
  health_src.websocket_connections = [&server] { return server.websocket_connections(); };
  realtime::HealthReporter health(store, *bus, health_src,
                                  std::chrono::milliseconds(cfg.health_interval_ms));
  health.start();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    logger.info("shutting down", {{"signal", sig}, {"connections", server.active_connections()}});
    server.shutdown(std::chrono::milliseconds(cfg.shutdown_timeout_ms), [&io] { io.stop(); });
  });
  server.start();

  const auto info = store.info();
  logger.info("devplane started",
              {{"version", kVersion},
               {"address", cfg.host + ":" + std::to_string(server.port())},
               {"mode", cfg.distributed() ? "distributed" : "embedded"},
               {"store", info.backend},
               {"storeLocation", info.location},
               {"schemaVersion", info.schema_version},
               {"bus", sys.bus_backend},
               {"nodeId", node_id},
               {"ioThreads", io_threads}});
  // One plain line on stdout for people and scripts (tests read the port from it).
  std::cout << "devplane listening on http://" << cfg.host << ":" << server.port() << "/"
            << std::endl;
  if (dashboard->web_dir.empty()) {
    std::cout << "note: the dashboard is not built (cd web && npm ci && npm run build); "
                 "serving a placeholder page at /"
              << std::endl;
  } else {
    logger.info("serving the dashboard", {{"webDir", dashboard->web_dir}});
  }
  if (first_admin) {
    // Shown once: only its hash is stored.
    if (first_admin->empty()) {
      std::cout << "devplane admin user created with the password from DEVPLANE_ADMIN_PASSWORD"
                << std::endl;
    } else {
      std::cout << "devplane admin password: " << *first_admin
                << "  (user 'admin'; shown once, change it with `devplane user passwd admin`)"
                << std::endl;
    }
  }

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(io_threads - 1));
  for (int i = 1; i < io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  remote_hub.stop();
  scheduler.stop();
  engine.stop(std::chrono::milliseconds(cfg.shutdown_timeout_ms));
  executor.stop();  // running tasks are stopped and their results recorded
  memory_service.stop();  // writes the outcomes still queued
  tool_service.stop_health_checker();
  mcp_registry.close_all();  // MCP servers end (stdio processes, HTTP sessions)
  health.stop();
  hub.stop();
  relay.stop();  // announces what was committed before the stop
  bus->close();
  writes.join();
  blocking.join();
  store.close();
  logger.info("devplane stopped");
  return 0;
}

}  // namespace dp::app
