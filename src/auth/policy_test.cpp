#include "auth/policy.hpp"

#include <set>

#include <gtest/gtest.h>

namespace dp::auth {
namespace {

TEST(PolicyTest, EveryRuleIsUniqueAndGrantsSomebody) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& r : rules()) {
    EXPECT_TRUE(seen.emplace(r.method, r.route).second) << r.method << " " << r.route;
    EXPECT_TRUE(r.is_public || r.roles != 0) << r.route << " grants nobody";
    EXPECT_TRUE(r.method == "GET" || r.method == "POST" || r.method == "PUT" ||
                r.method == "PATCH" || r.method == "DELETE")
        << r.method;
    EXPECT_FALSE(r.note.empty()) << r.route;
  }
}

// Public: health, sign-in, the dashboard's files, and signed webhooks (their signature is
// their credential, checked by the workflow service).
TEST(PolicyTest, OnlyHealthSignInTheDashboardAndSignedWebhooksArePublic) {
  std::set<std::string> pub;
  for (const auto& r : rules()) {
    if (r.is_public) pub.insert(std::string(r.method) + " " + std::string(r.route));
  }
  EXPECT_EQ(pub, (std::set<std::string>{"GET /", "GET /login", "GET /dashboard", "GET /agents",
                                        "GET /workflows", "GET /admin", "GET /favicon.svg",
                                        "GET /_astro/*", "GET /api/v1/system/health",
                                        "POST /api/v1/auth/login", "POST /api/v1/auth/refresh",
                                        "GET /api/v1/auth/oidc",
                                        "GET /api/v1/auth/oidc/login",
                                        "GET /api/v1/auth/oidc/callback",
                                        "POST /api/v1/workflows/:id/hooks/:hookId"}));
}

TEST(PolicyTest, AgentsReachOnlyTheAgentProtocolAndTheToolGateway) {
  for (const auto& r : rules()) {
    if (r.is_public || (r.roles & kAgent) == 0) continue;
    const std::string route(r.route);
    const bool protocol = route == "/mcp" || route.ends_with("/messages") ||
                          route.ends_with("/connect");
    EXPECT_TRUE(protocol) << "agents may call " << r.method << " " << route;
  }
  EXPECT_FALSE(role_allows("agent", "GET", "/api/v1/users"));
  EXPECT_FALSE(role_allows("agent", "GET", "/api/v1/agents"));
  EXPECT_TRUE(role_allows("agent", "POST", "/mcp"));
}

TEST(PolicyTest, ViewersOnlyRead) {
  for (const auto& r : rules()) {
    if (r.is_public || (r.roles & kViewer) == 0) continue;
    // Logout ends the viewer's own session: the one write a viewer makes.
    if (r.route == "/api/v1/auth/logout") continue;
    // /mcp carries JSON-RPC over POST (and DELETE ends a session): each tool call is checked
    // against the rule of the route it stands for, so a viewer only reads through it too.
    if (r.route == "/mcp") continue;
    EXPECT_EQ(r.method, "GET") << "viewers may " << r.method << " " << r.route;
  }
  EXPECT_TRUE(role_allows("viewer", "GET", "/api/v1/agents"));
  EXPECT_FALSE(role_allows("viewer", "POST", "/api/v1/agents/:id/start"));
}

TEST(PolicyTest, UserManagementAndAuditAreAdminOnly) {
  for (const auto& r : rules()) {
    const std::string route(r.route);
    if (route.starts_with("/api/v1/users") || route.starts_with("/api/v1/audit")) {
      EXPECT_EQ(r.roles, kAdmin) << r.method << " " << route;
      EXPECT_FALSE(r.is_public);
    }
  }
  EXPECT_TRUE(role_allows("operator", "POST", "/api/v1/api-keys"));
  EXPECT_FALSE(role_allows("viewer", "POST", "/api/v1/api-keys"));
  EXPECT_FALSE(role_allows("operator", "POST", "/api/v1/users"));
}

TEST(PolicyTest, UnknownRoutesAndRolesAreDenied) {
  EXPECT_EQ(find_rule("GET", "/api/v1/nothing"), nullptr);
  EXPECT_FALSE(role_allows("admin", "GET", "/api/v1/nothing"));
  EXPECT_FALSE(is_public_route("GET", "/api/v1/nothing"));
  EXPECT_FALSE(role_allows("root", "GET", "/api/v1/agents"));
  EXPECT_FALSE(role_allows("", "GET", "/api/v1/agents"));
  EXPECT_FALSE(role_allows("admin", "get", "/api/v1/agents"));  // methods are exact
}

TEST(PolicyTest, RoleHelpers) {
  EXPECT_EQ(role_names(kAdmin | kAgent), (std::vector<std::string>{"admin", "agent"}));
  EXPECT_TRUE(is_user_role("viewer"));
  EXPECT_FALSE(is_user_role("agent"));
  EXPECT_GT(role_rank("admin"), role_rank("operator"));
  EXPECT_GT(role_rank("operator"), role_rank("viewer"));
  EXPECT_GT(role_rank("viewer"), role_rank("agent"));
}

}  // namespace
}  // namespace dp::auth
