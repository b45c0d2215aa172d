// The access policy: ONE table, (method, route pattern) -> who may call it. The server
// asks it for every matched route (http::Authenticator); docs/security.md reproduces it
// and an integration test checks both the copy and the behaviour of every route.
//
// A route without a rule is refused for everybody (fail closed). Immutable; safe from any
// thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dp::auth {

enum Role : std::uint8_t {
  kAdmin = 1 << 0,
  kOperator = 1 << 1,
  kViewer = 1 << 2,
  kAgent = 1 << 3,
};

struct Rule {
  std::string_view method;
  std::string_view route;  // the router pattern, e.g. "/api/v1/agents/:id/start"
  bool is_public;          // anyone, no credential needed
  std::uint8_t roles;      // bit set of Role; ignored when public
  std::string_view note;   // why, in a few words (reproduced in docs/security.md)
};

// Every rule, in the order docs/security.md lists them.
const std::vector<Rule>& rules();
// The rule for (method, route), or nullptr when there is none.
const Rule* find_rule(std::string_view method, std::string_view route);

bool is_public_route(std::string_view method, std::string_view route);
// False for unknown roles and for routes without a rule.
bool role_allows(std::string_view role, std::string_view method, std::string_view route);

// "admin" -> kAdmin; 0 for anything else.
std::uint8_t role_bit(std::string_view role);
bool is_role(std::string_view role);
// Roles as names in table order: admin, operator, viewer, agent.
std::vector<std::string> role_names(std::uint8_t roles);
// A user role (admin, operator, viewer; agents are API keys).
bool is_user_role(std::string_view role);
// Rank for "may not grant more than you have": admin 3, operator 2, viewer 1, agent 0.
int role_rank(std::string_view role);

}  // namespace dp::auth
