#include "api/mcp/endpoint.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
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

bool accepts_sse(std::string_view accept) {
  const std::string a = lower(accept);
  return a.find("text/event-stream") != std::string::npos || a.find("*/*") != std::string::npos ||
         a.find("text/*") != std::string::npos;
}

// One SSE event carrying a JSON-RPC message (JSON is written on one line, so one data line).
std::string sse_message(const jsonrpc::Message& m) {
  return "event: message\ndata: " + jsonrpc::encode(m) + "\n\n";
}

// The client's progress token of a tools/call (a string or an integer), or null.
json::value progress_token(const jsonrpc::Message& m) {
  if (m.kind != jsonrpc::Kind::kRequest || m.method != "tools/call" || !m.params.is_object()) return nullptr;
  const auto* meta = m.params.get_object().if_contains("_meta");
  if (meta == nullptr || !meta->is_object()) return nullptr;
  const auto* t = meta->get_object().if_contains("progressToken");
  if (t == nullptr) return nullptr;
  if ((t->is_string() && !t->get_string().empty() && t->get_string().size() <= 256) || t->is_int64() ||
      t->is_uint64()) {
    return *t;
  }
  return nullptr;
}

// A tools/call answered over SSE: the call runs on a McpServer thread and fills `pending`;
// the HTTP server polls it out. Shared by both.
struct StreamedCall {
  std::mutex mu;
  std::string pending;  // SSE text not sent yet
  bool done = false;
  http::Caller caller;  // the request's, which ends before the call does

  void push(std::string text, bool last) {
    std::lock_guard lock(mu);
    pending += text;
    done = done || last;
  }
  std::optional<std::string> poll() {
    std::lock_guard lock(mu);
    if (!pending.empty()) return std::exchange(pending, std::string());
    if (done) return std::nullopt;
    return std::string();
  }
};

// Counts the open GET streams, per session and in all.
struct GetStreams {
  std::mutex mu;
  std::map<std::string, std::size_t> per_session;
  std::size_t total = 0;
};

std::optional<Response> streamed_call(mcp::McpServer& server, Request& req, const jsonrpc::Message& msg,
                                      const std::string& session, const json::value& token) {
  auto call = std::make_shared<StreamedCall>();
  call->caller = req.caller;
  mcp::CallContext ctx;
  ctx.caller = &call->caller;
  ctx.correlation_id = req.request_id;
  ctx.remote_address = req.remote_address;
  ctx.session_id = session;
  ctx.on_progress = [call, token](const json::object& p) {
    json::object params;
    params["progressToken"] = token;
    for (const char* k : {"progress", "total", "message"}) {
      if (const auto* v = p.if_contains(k)) params[k] = *v;
    }
    call->push(sse_message(jsonrpc::notification("notifications/progress", std::move(params))), false);
  };
  const std::string request_id = req.request_id;
  const bool spawned = server.spawn([call, &server, msg, session, ctx = std::move(ctx), request_id]() mutable {
    ctx.caller = &call->caller;
    auto out = server.handle(msg, session, ctx);
    jsonrpc::Message reply;
    if (out.ok() && out->reply) {
      reply = std::move(*out->reply);
    } else {
      const Error e = out.ok() ? Error::internal("no answer") : out.error();
      auto eo = jsonrpc::to_error_object(e);
      json::object data = eo.data.is_object() ? eo.data.get_object() : json::object{};
      data["requestId"] = request_id;
      reply = jsonrpc::error(msg.id, eo.code, std::move(eo.message), std::move(data));
    }
    call->push(sse_message(reply), true);
  });
  if (!spawned) return std::nullopt;  // every background slot busy: answer inline, without progress
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream";
  r.audited_by_handler = true;
  r.stream = [call]() { return call->poll(); };
  r.stream_poll = std::chrono::milliseconds(10);
  return r;
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
  // A call that can report progress, from a client that reads SSE, on a live session: stream.
  if (const auto accept = req.header("accept"); accept && accepts_sse(*accept) && !session.empty()) {
    if (json::value token = progress_token(msg); !token.is_null() && !server.session_version(session, caller).empty()) {
      if (auto r = streamed_call(server, req, msg, session, token)) return std::move(*r);
    }
  }
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

Response get(mcp::McpServer& server, const Options& o, const std::shared_ptr<GetStreams>& streams, Request& req) {
  if (auto r = check_site(req, o)) return std::move(*r);
  if (const auto accept = req.header("accept"); !accept || !accepts_sse(*accept)) {
    return rpc_error(406, jsonrpc::kInvalidRequest, "GET /mcp is the server's event stream: Accept text/event-stream",
                     "not_acceptable", nullptr, req.request_id);
  }
  auto sid = session_header(req);
  if (auto* r = std::get_if<Response>(&sid)) return std::move(*r);
  if (!std::holds_alternative<std::string>(sid)) {
    return rpc_error(400, jsonrpc::kInvalidRequest, "GET /mcp needs the Mcp-Session-Id of an initialized session",
                     "session_required", nullptr, req.request_id);
  }
  const std::string session = std::get<std::string>(sid);
  const std::string caller = mcp::McpServer::caller_key(req.caller);
  if (server.session_version(session, caller).empty()) {
    Error e = Error::not_found("no MCP session with this id (it ended, expired or never existed)");
    e.reason = "unknown_session";
    return rpc_error(e, nullptr, req.request_id);
  }
  {
    std::lock_guard lock(streams->mu);
    if (streams->total >= o.max_get_streams) {
      Error e = Error::unavailable("too many MCP event streams are open; try again later");
      e.reason = "too_many_streams";
      return rpc_error(e, nullptr, req.request_id);
    }
    auto& n = streams->per_session[session];
    if (n >= o.max_get_streams_per_session) {
      return rpc_error(409, jsonrpc::kInvalidRequest,
                       "this session already has " + std::to_string(n) + " event streams open",
                       "too_many_streams", nullptr, req.request_id);
    }
    ++n;
    ++streams->total;
  }
  // Counted until the HTTP server drops the stream (the client left, the session ended, shutdown).
  struct State {
    std::shared_ptr<GetStreams> streams;
    std::string session;
    std::string caller;
    std::uint64_t generation = 0;
    std::chrono::steady_clock::time_point last_sent;
    ~State() {
      std::lock_guard lock(streams->mu);
      --streams->total;
      auto it = streams->per_session.find(session);
      if (it != streams->per_session.end() && --it->second == 0) streams->per_session.erase(it);
    }
  };
  auto st = std::make_shared<State>();
  st->streams = streams;
  st->session = session;
  st->caller = caller;
  st->generation = server.catalog_generation();
  st->last_sent = std::chrono::steady_clock::now();
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream";
  r.audited_by_handler = true;
  r.body = ": devplane MCP event stream\n\n";
  const auto heartbeat = o.heartbeat;
  r.stream = [st, &server, heartbeat]() -> std::optional<std::string> {
    if (server.session_version(st->session, st->caller).empty()) return std::nullopt;
    std::string out;
    if (const auto g = server.catalog_generation(); g != st->generation) {
      st->generation = g;
      out = sse_message(jsonrpc::notification("notifications/tools/list_changed", nullptr));
    }
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - st->last_sent >= heartbeat) out = ": keep-alive\n\n";
    if (!out.empty()) st->last_sent = now;
    return out;
  };
  r.stream_poll = std::chrono::milliseconds(100);
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
  auto streams = std::make_shared<GetStreams>();
  router.add("GET", "/mcp", [s, opts, streams](Request& r) { return get(*s, *opts, streams, r); });
}

}  // namespace dp::api::mcp_endpoint
