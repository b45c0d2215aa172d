// /mcp: the HTTP side of devplane's MCP server (Streamable HTTP, protocol 2025-11-25 down to
// 2024-11-05). The JSON-RPC side and the sessions are mcp::McpServer.
//
//   POST   one JSON-RPC message -> 200 application/json with the response (requests), or
//          202 with no body (notifications, responses). `initialize` answers with the new
//          session's `Mcp-Session-Id`; every other message must carry it (400 without, 404
//          for an unknown, expired or another caller's session). A `tools/call` with
//          `params._meta.progressToken` whose Accept admits text/event-stream is answered
//          with an SSE stream instead: each notifications/progress of the call (the adapter's,
//          with the client's token), then the response, then the stream ends.
//   DELETE ends the session named by `Mcp-Session-Id` (204; 404 when unknown).
//   GET    with Accept text/event-stream and the session id: the session's server-to-client
//          SSE stream, which carries notifications/tools/list_changed whenever the tools on
//          offer may have changed (McpServer::catalog_generation), a comment every
//          `heartbeat` (so a client that left is noticed) and ends with the session. At most
//          `max_get_streams_per_session` at once (409 beyond), `max_get_streams` in all (503).
//
// Checked before anything else, on every method: `Host` (DNS-rebinding defence) must name this
// server (localhost, 127.0.0.1, [::1], the configured bind host, or the host of an allowed
// origin), and an `Origin`, when sent, must be the server's own or an allowed origin: else
// 403. Then `MCP-Protocol-Version`, when sent, must be a supported version and, on a session,
// the negotiated one (400); Content-Type must be application/json (415); Accept, when sent,
// must admit application/json (406); a message is at most `max_message_bytes` (413).
// Authentication and the caller's role come from the server's Authenticator (the /mcp rows of
// the access table); each tool checks its own route's rule.
//
// HTTP-level errors carry a JSON-RPC error object as the body (id null unless the message
// was parsed), so MCP clients can show them.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "http/router.hpp"
#include "mcp/server.hpp"

namespace dp::api::mcp_endpoint {

struct Options {
  std::string bind_host;                     // the configured host (Config::host)
  std::vector<std::string> allowed_origins;  // Config::allowed_origins
  std::size_t max_message_bytes = 1024 * 1024;
  std::chrono::milliseconds heartbeat{15'000};
  std::size_t max_get_streams_per_session = 4;
  std::size_t max_get_streams = 256;
};

void register_routes(http::Router& router, mcp::McpServer& server, Options options);

// Exposed for unit tests.
bool host_allowed(std::string_view host_header, const Options& options);
bool origin_allowed(std::string_view origin, std::string_view host_header, const Options& options);

}  // namespace dp::api::mcp_endpoint
