// Registration of the /api/v1 routes. Handlers parse and validate, call a service and
// write the envelope; they never touch SQL.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <boost/json/object.hpp>

#include "agents/agent_logs.hpp"
#include "agents/agent_service.hpp"
#include "agents/message_service.hpp"
#include "agents/task_service.hpp"
#include "auth/auth_service.hpp"
#include "auth/secret_service.hpp"
#include "core/config.hpp"
#include "http/router.hpp"
#include "store/store.hpp"

namespace dp::audit {
class AuditService;
}  // namespace dp::audit

namespace dp::memory {
class MemoryService;
}  // namespace dp::memory

namespace dp::workflow {
class WorkflowService;
class HookService;
}  // namespace dp::workflow

namespace dp::api::v1 {

void register_agent_routes(http::Router& router, agents::AgentService& service);
void register_message_routes(http::Router& router, agents::MessageService& service);
void register_task_routes(http::Router& router, agents::TaskService& service);
// GET /api/v1/agents/:id/logs[?follow=true] (Server-Sent Events when following).
// `heartbeat`: how often a following client gets a keep-alive comment.
void register_log_routes(http::Router& router, agents::AgentService& agents, agents::AgentLogs& logs,
                         std::chrono::milliseconds heartbeat = std::chrono::seconds(15));
// /api/v1/auth (login, refresh, logout, me), /api/v1/users, /api/v1/api-keys.
void register_auth_routes(http::Router& router, auth::AuthService& service);
void register_user_routes(http::Router& router, auth::AuthService& service);
void register_api_key_routes(http::Router& router, auth::AuthService& service);
// /api/v1/secrets: named secrets, sealed at rest; values are never returned.
void register_secret_routes(http::Router& router, auth::SecretService& service);
// GET /api/v1/audit (filters, paging, meta.chain) and GET /api/v1/audit/verify (full check).
// Built in the dp_api_audit library.
void register_audit_routes(http::Router& router, audit::AuditService& service);
// /api/v1/workflows (versioned definitions, execute) and /api/v1/executions (read, cancel,
// retry, approve/reject gates). Built in the dp_api_workflows library.
void register_workflow_routes(http::Router& router, workflow::WorkflowService& service);
// POST /api/v1/workflows/:id/hooks/:hookId (public: the HMAC signature is the credential).
void register_workflow_hook_routes(http::Router& router, workflow::HookService& service);

// /api/v1/memory (add a note, search, read, delete). Built in the dp_api_memory library.
void register_memory_routes(http::Router& router, memory::MemoryService& service);

struct SystemDeps {
  store::Store* store = nullptr;
  const Config* config = nullptr;
  std::chrono::steady_clock::time_point started_at;
  // Bus reachability: Ok, or the reason it is down.
  std::function<Status()> bus_ping;
  std::string bus_backend;
  std::function<std::size_t()> connections;
};
void register_system_routes(http::Router& router, SystemDeps deps);

}  // namespace dp::api::v1
