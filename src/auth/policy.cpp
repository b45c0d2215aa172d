#include "auth/policy.hpp"

namespace dp::auth {
namespace {

constexpr std::uint8_t A = kAdmin;
constexpr std::uint8_t O = kOperator;
constexpr std::uint8_t V = kViewer;
constexpr std::uint8_t G = kAgent;

constexpr Rule open(std::string_view method, std::string_view route, std::string_view note) {
  return Rule{method, route, true, 0, note};
}
constexpr Rule only(std::string_view method, std::string_view route, std::uint8_t roles,
                    std::string_view note) {
  return Rule{method, route, false, roles, note};
}

// THE access table. Adding a route? Add its rule here and the same row to the table in
// docs/security.md; the integration suite (tests/integration/auth_test.cpp) walks every
// registered route with every role and fails on a route without a rule or a docs mismatch.
// Principles: viewers read; operators act on agents, workflows and tools; admins manage
// users, keys, settings and audit; agents reach only the agent protocol and the tool gateway.
const std::vector<Rule> kRules = {
    // Public: health, sign-in, the dashboard page.
    open("GET", "/", "dashboard page"),
    // The rest of the built dashboard (app/static_files.cpp): its pages ask for a sign-in
    // themselves, and hold no data; everything they show comes from the API.
    open("GET", "/login", "dashboard page"),
    open("GET", "/dashboard", "dashboard page"),
    open("GET", "/agents", "dashboard page"),
    open("GET", "/workflows", "dashboard page"),
    open("GET", "/admin", "dashboard page"),
    open("GET", "/favicon.svg", "dashboard icon"),
    open("GET", "/_astro/*", "dashboard scripts and styles (hashed, immutable)"),
    open("GET", "/api/v1/system/health", "liveness for load balancers"),
    open("POST", "/api/v1/auth/login", "password sign-in"),
    open("POST", "/api/v1/auth/refresh", "the refresh token is the credential"),
    open("GET", "/api/v1/auth/oidc/login", "starts single sign-on"),
    open("GET", "/api/v1/auth/oidc/callback", "single sign-on return (state checked)"),
    open("GET", "/api/v1/auth/oidc", "whether single sign-on is configured"),

    // Sessions of people.
    only("GET", "/api/v1/auth/me", A | O | V, "who am I"),
    only("POST", "/api/v1/auth/logout", A | O | V, "ends the caller's own session"),

    // System.
    only("GET", "/api/v1/system/info", A | O | V, "mode, backends, build"),
    only("GET", "/metrics", A | O | V, "Prometheus scrape (use a viewer API key)"),
    only("GET", "/ws", A | O | V, "live events for the dashboard"),

    // Agents.
    only("GET", "/api/v1/agents", A | O | V, "read"),
    only("POST", "/api/v1/agents", A | O, "act on agents"),
    only("GET", "/api/v1/agents/counts", A | O | V, "read"),
    only("GET", "/api/v1/agents/activity", A | O | V, "read"),
    only("GET", "/api/v1/agents/:id", A | O | V, "read"),
    only("PUT", "/api/v1/agents/:id", A | O, "act on agents"),
    only("DELETE", "/api/v1/agents/:id", A | O, "decommission; ?purge=true is admin only"),
    only("POST", "/api/v1/agents/:id/start", A | O, "act on agents"),
    only("POST", "/api/v1/agents/:id/stop", A | O, "act on agents"),
    only("GET", "/api/v1/agents/:id/states", A | O | V, "read"),
    // Tasks given to agents.
    only("GET", "/api/v1/agents/:id/tasks", A | O | V, "read"),
    only("POST", "/api/v1/agents/:id/tasks", A | O, "act on agents"),
    only("GET", "/api/v1/agents/:id/tasks/:taskId", A | O | V, "read"),
    only("POST", "/api/v1/agents/:id/tasks/:taskId/cancel", A | O, "act on agents"),
    only("GET", "/api/v1/agents/:id/metrics", A | O | V, "read"),
    only("GET", "/api/v1/agents/:id/logs", A | O | V, "read (follow=true: a Server-Sent Events stream)"),
    // Agent protocol: an agent key reads its own inbox and messages other agents.
    only("GET", "/api/v1/agents/:id/messages", A | O | V | G, "agent protocol: own inbox"),
    only("POST", "/api/v1/agents/:id/messages", A | O | G, "agent protocol: send"),
    // The remote-agent WebSocket (agents/remote/): an agent key, as its own agent only.
    only("GET", "/api/v1/agents/:id/connect", G, "agent protocol: remote agent link (own agent only)"),

    // Workflows and their executions (src/workflow/).
    only("GET", "/api/v1/workflows", A | O | V, "read"),
    only("POST", "/api/v1/workflows", A | O, "act on workflows"),
    only("GET", "/api/v1/workflows/:id", A | O | V, "read"),
    only("PUT", "/api/v1/workflows/:id", A | O, "act on workflows (a new version)"),
    only("DELETE", "/api/v1/workflows/:id", A | O, "act on workflows (archive)"),
    only("GET", "/api/v1/workflows/:id/versions/:n", A | O | V, "read"),
    only("POST", "/api/v1/workflows/:id/execute", A | O, "act on workflows"),
    open("POST", "/api/v1/workflows/:id/hooks/:hookId", "webhook trigger: the HMAC signature is the credential"),
    only("GET", "/api/v1/executions", A | O | V, "read"),
    only("GET", "/api/v1/executions/:id", A | O | V, "read"),
    only("POST", "/api/v1/executions/:id/cancel", A | O, "act on workflows"),
    only("POST", "/api/v1/executions/:id/retry", A | O, "act on workflows"),
    only("POST", "/api/v1/executions/:id/steps/:step/approve", A | O,
         "act on workflows; the step's approvers (roles) decide"),
    only("POST", "/api/v1/executions/:id/steps/:step/reject", A | O,
         "act on workflows; the step's approvers (roles) decide"),
    // MCP adapters and tool calls (src/mcp/, api/v1/tools.cpp). Registering or changing an
    // adapter starts programs on the server, and approving a changed tool vouches for it:
    // admins only. Operators call tools; every call is recorded.
    only("GET", "/api/v1/tools", A | O | V, "read"),
    only("POST", "/api/v1/tools", A, "register an MCP server (runs a program)"),
    only("GET", "/api/v1/tools/:id", A | O | V, "read"),
    only("PUT", "/api/v1/tools/:id", A, "change an MCP server (runs a program)"),
    only("DELETE", "/api/v1/tools/:id", A, "remove an MCP server"),
    only("GET", "/api/v1/tools/:id/health", A | O | V, "live ping"),
    only("GET", "/api/v1/tools/:id/tools", A | O | V, "read the catalog"),
    only("POST", "/api/v1/tools/:id/approve", A, "re-approve changed tools"),
    only("POST", "/api/v1/tools/:id/execute", A | O, "call a tool (audited)"),
    only("GET", "/api/v1/tools/:id/executions", A | O | V, "read tool calls"),

    // Vector memory (src/memory/): viewers search and read; operators add and delete.
    only("POST", "/api/v1/memory", A | O, "add to memory"),
    only("GET", "/api/v1/memory/search", A | O | V, "read"),
    only("GET", "/api/v1/memory/:id", A | O | V, "read"),
    only("DELETE", "/api/v1/memory/:id", A | O, "forget a memory"),

    // devplane as an MCP server and tool gateway (src/mcp/server.hpp, api/mcp/endpoint.cpp).
    // Anyone with a role may hold a session; each tool then checks the rule of the route it
    // stands for (a viewer lists and reads, an operator acts), and gatewayed tools take the
    // roles of POST /api/v1/tools/:id/execute plus agent keys.
    only("POST", "/mcp", A | O | V | G, "MCP session; each tool checks its own route's rule"),
    only("GET", "/mcp", A | O | V | G, "MCP: the session's event stream"),
    only("DELETE", "/mcp", A | O | V | G, "MCP session end"),

    // Users: admins only.
    only("GET", "/api/v1/users", A, "manage users"),
    only("POST", "/api/v1/users", A, "manage users"),
    only("GET", "/api/v1/users/:id", A, "manage users"),
    only("PATCH", "/api/v1/users/:id", A, "manage users"),
    only("POST", "/api/v1/users/:id/password", A, "manage users"),

    // API keys: admins and operators (an operator cannot grant admin).
    only("GET", "/api/v1/api-keys", A | O, "manage keys (no secrets)"),
    only("POST", "/api/v1/api-keys", A | O, "manage keys (role at most the caller's)"),
    only("DELETE", "/api/v1/api-keys/:id", A | O, "manage keys"),

    // Named secrets (LLM provider keys): admins only; values are never returned.
    only("GET", "/api/v1/secrets", A, "manage secrets (names only)"),
    only("PUT", "/api/v1/secrets/:name", A, "manage secrets"),
    only("DELETE", "/api/v1/secrets/:name", A, "manage secrets"),

    // Audit log: admins only (src/audit/).
    only("GET", "/api/v1/audit", A, "audit trail"),
    only("GET", "/api/v1/audit/verify", A, "audit chain check"),
};

}  // namespace

const std::vector<Rule>& rules() { return kRules; }

const Rule* find_rule(std::string_view method, std::string_view route) {
  for (const auto& r : kRules) {
    if (r.method == method && r.route == route) return &r;
  }
  return nullptr;
}

bool is_public_route(std::string_view method, std::string_view route) {
  const Rule* r = find_rule(method, route);
  return r != nullptr && r->is_public;
}

bool role_allows(std::string_view role, std::string_view method, std::string_view route) {
  const Rule* r = find_rule(method, route);
  if (r == nullptr) return false;
  if (r->is_public) return true;
  const std::uint8_t bit = role_bit(role);
  return bit != 0 && (r->roles & bit) != 0;
}

std::uint8_t role_bit(std::string_view role) {
  if (role == "admin") return A;
  if (role == "operator") return O;
  if (role == "viewer") return V;
  if (role == "agent") return G;
  return 0;
}

bool is_role(std::string_view role) { return role_bit(role) != 0; }

bool is_user_role(std::string_view role) {
  return role == "admin" || role == "operator" || role == "viewer";
}

std::vector<std::string> role_names(std::uint8_t roles) {
  std::vector<std::string> out;
  if ((roles & A) != 0) out.emplace_back("admin");
  if ((roles & O) != 0) out.emplace_back("operator");
  if ((roles & V) != 0) out.emplace_back("viewer");
  if ((roles & G) != 0) out.emplace_back("agent");
  return out;
}

int role_rank(std::string_view role) {
  if (role == "admin") return 3;
  if (role == "operator") return 2;
  if (role == "viewer") return 1;
  return 0;
}

}  // namespace dp::auth
