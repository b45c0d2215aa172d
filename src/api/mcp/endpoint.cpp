#include "api/mcp/endpoint.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <variant>

#include <boost/json/serialize.hpp>

#include "mcp/jsonrpc.hpp"
#include "mcp/protocol.hpp"

namespace dp::api::mcp_endpoint {
namespace {

namespace json = boost::json;
namespace jsonrpc = mcp::jsonrpc;
using http::Request;
using http::Response;

constexpr std::size_t kMaxSessionIdBytes = 128;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "Example.com:8080" -> "example.com"; "[::1]:80" -> "::1". Empty when malformed.
std::string host_name(std::string_view authority) {
  if (authority.empty() || authority.size() > 255) return {};
  if (authority.front() == '[') {
    const auto end = authority.find(']');
    if (end == std::string_view::npos) return {};
    const auto rest = authority.substr(end + 1);
    if (!rest.empty() && rest.front() != ':') return {};
    return lower(authority.substr(1, end - 1));
  }
  const auto colon = authority.find(':');
  const auto name = authority.substr(0, colon);
  if (colon != std::string_view::npos) {
    const auto port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return {};
    }
  }
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) == 0 && c != '.' && c != '-' && c != '_') return {};
  }
  return lower(name);
}

// The authority of "https://example.com:8443/x" ("example.com:8443"); empty when not a URL.
std::string_view authority_of(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  auto rest = url.substr(scheme + 3);
  return rest.substr(0, rest.find('/'));
}

Response rpc_error(unsigned status, std::int64_t code, std::string message, std::string reason,
                   const json::value& id, std::string_view request_id) {
  Response r;
  r.status = status;
  r.body = jsonrpc::encode(jsonrpc::error(
      id, code, std::move(message),
      json::object{{"reason", std::move(reason)}, {"requestId", request_id}}));
  return r;
}

Response rpc_error(const Error& e, const json::value& id, std::string_view request_id) {
  auto eo = jsonrpc::to_error_object(e);
  if (mcp::is_session_error(e)) eo.code = jsonrpc::kInvalidRequest;
  json::object data = eo.data.is_object() ? eo.data.get_object() : json::object{};
  data["requestId"] = request_id;
  Response r;
  r.status = e.reason == "message_too_large" ? 413 : http::status_for(e);
  r.body = jsonrpc::encode(jsonrpc::error(id, eo.code, std::move(eo.message), std::move(data)));
  return r;
}

// Host and Origin: the same answer for every method.
std::optional<Response> check_site(const Request& req, const Options& o) {
  const auto host = req.header("host");
  if (!host || !host_allowed(*host, o)) {
    return rpc_error(403, jsonrpc::kInvalidRequest,
                     "Host '" + std::string(host.value_or("").substr(0, 200)) +
                         "' is not this server (set allowed_origins to serve /mcp under another name)",
                     "host_not_allowed", nullptr, req.request_id);
  }
  if (const auto origin = req.header("origin"); origin && !origin_allowed(*origin, *host, o)) {
    return rpc_error(403, jsonrpc::kInvalidRequest,
                     "requests from origin '" + std::string(origin->substr(0, 200)) + "' are not allowed",
                     "origin_not_allowed", nullptr, req.request_id);
  }
  return std::nullopt;
}

// The Mcp-Session-Id header: nullopt when absent, an error response when malformed.
std::variant<std::monostate, std::string, Response> session_header(const Request& req) {
  const auto s = req.header("mcp-session-id");
  if (!s) return std::monostate{};
  const bool ok = !s->empty() && s->size() <= kMaxSessionIdBytes &&
                  std::all_of(s->begin(), s->end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (!ok) {
    return rpc_error(400, jsonrpc::kInvalidRequest, "Mcp-Session-Id must be 1..128 visible ASCII characters",
                     "invalid_session_id", nullptr, req.request_id);
  }
  return std::string(*s);
}

bool accepts_json(std::string_view accept) {
  const std::string a = lower(accept);
  return a.find("application/json") != std::string::npos || a.find("*/*") != std::string::npos ||
         a.find("application/*") != std::string::npos;
}

Response post(mcp::McpServer& server, const Options& o, Request& req) {
  if (auto r = check_site(req, o)) return std::move(*r);
  const auto ct = req.header("content-type");
  if (!ct || !lower(*ct).starts_with("application/json")) {
    return rpc_error(415, jsonrpc::kInvalidRequest, "Content-Type must be application/json",
                     "unsupported_media_type", nullptr, req.request_id);
  }
  if (const auto accept = req.header("accept"); accept && !accepts_json(*accept)) {
    return rpc_error(406, jsonrpc::kInvalidRequest,
                     "Accept must admit application/json (devplane answers in JSON)", "not_acceptable",
                     nullptr, req.request_id);
  }
  auto sid = session_header(req);
  if (auto* r = std::get_if<Response>(&sid)) return std::move(*r);
  const std::string session = std::holds_alternative<std::string>(sid) ? std::get<std::string>(sid) : "";
  const std::string caller = mcp::McpServer::caller_key(req.caller);
  if (const auto v = req.header("mcp-protocol-version")) {
    if (!mcp::is_supported_version(*v)) {
      return rpc_error(400, jsonrpc::kInvalidRequest,
                       "unsupported MCP-Protocol-Version '" + std::string(v->substr(0, 32)) +
                           "'; supported: 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05",
                       "unsupported_protocol_version", nullptr, req.request_id);
    }
    if (!session.empty()) {
      const auto negotiated = server.session_version(session, caller);
      if (!negotiated.empty() && negotiated != *v) {
        return rpc_error(400, jsonrpc::kInvalidRequest,
                         "MCP-Protocol-Version '" + std::string(*v) + "' is not the session's (" + negotiated + ")",
                         "protocol_version_mismatch", nullptr, req.request_id);
      }
    }
  }
  jsonrpc::DecodeLimits limits;
  limits.max_bytes = o.max_message_bytes;
  auto decoded = jsonrpc::decode(req.body, limits);
  if (!decoded.ok()) return rpc_error(decoded.error(), nullptr, req.request_id);
  if (decoded->size() != 1) {
    return rpc_error(400, jsonrpc::kInvalidRequest, "send one JSON-RPC message per request", "batch_refused",
                     nullptr, req.request_id);
  }
  const auto& msg = decoded->front();
  mcp::CallContext ctx;
  ctx.caller = &req.caller;
  ctx.correlation_id = req.request_id;
  ctx.remote_address = req.remote_address;
  ctx.session_id = session;
  auto out = server.handle(msg, session, ctx);
  if (!out.ok()) return rpc_error(out.error(), msg.kind == jsonrpc::Kind::kRequest ? msg.id : json::value(nullptr), req.request_id);
  Response r;
  // A message that went through is audited by what it did (a platform tool under its route, a
  // gatewayed call in tool_executions), not as one more "POST /mcp" per ping or tools/list.
  r.audited_by_handler = true;
  if (!out->reply) {
    r.status = 202;
    return r;
  }
  r.status = 200;
  r.body = jsonrpc::encode(*out->reply);
  if (!out->opened.empty()) r.set_header("Mcp-Session-Id", out->opened);
  return r;
}

Response remove(mcp::McpServer& server, const Options& o, Request& req) {
  if (auto r = check_site(req, o)) return std::move(*r);
  auto sid = session_header(req);
  if (auto* r = std::get_if<Response>(&sid)) return std::move(*r);
  if (!std::holds_alternative<std::string>(sid)) {
    return rpc_error(400, jsonrpc::kInvalidRequest, "DELETE /mcp needs the Mcp-Session-Id to end",
                     "session_required", nullptr, req.request_id);
  }
  if (auto s = server.end(std::get<std::string>(sid), mcp::McpServer::caller_key(req.caller)); !s.ok()) {
    return rpc_error(s.error(), nullptr, req.request_id);
  }
  Response r;
  r.status = 204;
  return r;
}

Response get(const Options& o, Request& req) {
  if (auto r = check_site(req, o)) return std::move(*r);
  Response r = rpc_error(405, jsonrpc::kInvalidRequest,
                         "devplane offers no server-initiated stream on GET /mcp; POST messages instead",
                         "method_not_allowed", nullptr, req.request_id);
  r.set_header("Allow", "POST, DELETE");
  return r;
}

}  // namespace

bool host_allowed(std::string_view host_header, const Options& o) {
  const std::string name = host_name(host_header);
  if (name.empty()) return false;
  if (name == "localhost" || name == "127.0.0.1" || name == "::1") return true;
  const std::string bind = lower(o.bind_host);
  if (!bind.empty() && bind != "0.0.0.0" && bind != "::" && name == bind) return true;
  for (const auto& origin : o.allowed_origins) {
    if (host_name(authority_of(origin)) == name) return true;
  }
  return false;
}

bool origin_allowed(std::string_view origin, std::string_view host_header, const Options& o) {
  // Same origin: the page came from this very server (its Host was checked already).
  if (origin == "http://" + std::string(host_header) || origin == "https://" + std::string(host_header)) {
    return true;
  }
  return std::find(o.allowed_origins.begin(), o.allowed_origins.end(), origin) != o.allowed_origins.end();
}

void register_routes(http::Router& router, mcp::McpServer& server, Options options) {
  auto opts = std::make_shared<const Options>(std::move(options));
  auto* s = &server;
  router.add("POST", "/mcp", [s, opts](Request& r) { return post(*s, *opts, r); });
  router.add("DELETE", "/mcp", [s, opts](Request& r) { return remove(*s, *opts, r); });
  router.add("GET", "/mcp", [opts](Request& r) { return get(*opts, r); });
}

}  // namespace dp::api::mcp_endpoint
