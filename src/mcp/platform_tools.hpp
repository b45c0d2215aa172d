// PlatformTools: devplane's own use cases as MCP tools on /mcp (list and inspect agents, start
// and stop them, give them tasks, run and watch workflows, approve or reject steps, search
// memory).
//
// Each tool is one REST route of /api/v1: its arguments become the route's path parameters,
// query and body, and the call goes through the same router handler a REST client reaches,
// after the same access check (http::Authenticator::authorize on the route's pattern). So a
// tool validates, refuses and answers exactly as its route does, and no tool has a rule or a
// check of its own to drift. Mutating calls are handed to the RequestAuditor like a REST
// request, with the route and the caller, so the audit trail shows them.
//
// The result is the route's JSON envelope, as text content and as structuredContent; a route
// that answers with an error gives a result with isError true and that error envelope.
//
// Immutable after construction; safe from any thread. Calls block (store): run them on the
// blocking pool, as /mcp requests are.
#pragma once

#include <string_view>
#include <vector>

#include "http/router.hpp"
#include "http/security.hpp"
#include "mcp/server.hpp"

namespace dp::mcp {

class PlatformTools final : public ToolSource {
 public:
  // `router` holds the /api/v1 routes (and may hold /mcp itself); `auditor` may be null.
  PlatformTools(const http::Router& router, const http::Authenticator& authenticator,
                http::RequestAuditor* auditor);

  // ToolSource
  Status list(const CallContext& ctx, std::vector<Tool>& out) override;
  bool owns(std::string_view name) const override;
  Result<boost::json::object> call(std::string_view name, const boost::json::value& arguments,
                                   const CallContext& ctx) override;

  // Every platform tool, whatever the caller (for docs and tests).
  static std::vector<Tool> all();

 private:
  const http::Router& router_;
  const http::Authenticator& authenticator_;
  http::RequestAuditor* auditor_;
};

}  // namespace dp::mcp
