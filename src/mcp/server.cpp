#include "mcp/server.hpp"

#include <algorithm>

#include <boost/json/array.hpp>

#include "auth/crypto.hpp"
#include "core/log.hpp"

namespace dp::mcp {
namespace {

namespace json = boost::json;

// The /mcp endpoint answers these with JSON-RPC -32600 (see is_session_error).
Error protocol_error(std::string reason, std::string message) {
  return Error::invalid_argument(std::move(reason), std::move(message));
}

Error invalid_params(std::string message) {
  return Error::invalid_argument("invalid_params", std::move(message));
}

}  // namespace

McpServer::McpServer(std::vector<ToolSource*> sources, McpServerOptions options)
    : sources_(std::move(sources)), options_(std::move(options)) {}

McpServer::~McpServer() {
  {
    std::lock_guard lock(mu_);
    for (auto& [key, flag] : in_flight_) flag->store(true);
  }
  std::unordered_map<std::thread::id, std::thread> workers;
  {
    std::lock_guard lock(workers_mu_);
    closing_ = true;
    workers.swap(workers_);
  }
  for (auto& [id, t] : workers) t.join();
}

bool McpServer::spawn(std::function<void()> work) {
  std::lock_guard lock(workers_mu_);
  if (closing_) return false;
  // Join the threads that ended; they are done, so this does not wait.
  for (const auto& id : finished_) {
    auto it = workers_.find(id);
    if (it == workers_.end()) continue;
    it->second.join();
    workers_.erase(it);
  }
  finished_.clear();
  if (workers_.size() >= options_.max_background_calls) return false;
  std::thread t([this, work = std::move(work)] {
    work();
    std::lock_guard l(workers_mu_);
    // The destructor joins what is left in workers_ (swapped out): only report the end when
    // this thread is still listed.
    if (!closing_) finished_.push_back(std::this_thread::get_id());
  });
  const auto id = t.get_id();
  workers_.emplace(id, std::move(t));
  return true;
}

std::string McpServer::caller_key(const http::Caller& caller) {
  return caller.authenticated() ? caller.kind + ":" + caller.id : std::string("anonymous");
}

void McpServer::expire_locked(std::chrono::steady_clock::time_point now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second->last_used > options_.idle_timeout) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t McpServer::sessions() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::string McpServer::session_version(std::string_view session_id, std::string_view caller_id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(std::string(session_id));
  if (it == sessions_.end() || it->second->caller_id != caller_id) return {};
  if (std::chrono::steady_clock::now() - it->second->last_used > options_.idle_timeout) return {};
  return it->second->protocol_version;
}

Status McpServer::end(std::string_view session_id, std::string_view caller_id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(std::string(session_id));
  if (it == sessions_.end() || it->second->caller_id != caller_id) {
    Error e = Error::not_found("no MCP session with this id (it ended, expired or never existed)");
    e.reason = "unknown_session";
    return e;
  }
  sessions_.erase(it);
  // Its calls still running have nobody to answer any more: cancel them.
  const std::string prefix = std::string(session_id) + "\n";
  for (auto& [key, flag] : in_flight_) {
    if (key.starts_with(prefix)) flag->store(true);
  }
  return Ok{};
}

std::uint64_t McpServer::catalog_generation() const {
  std::uint64_t g = 0;
  for (const auto* src : sources_) g += src->generation();
  return g;
}

std::size_t McpServer::calls_in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_.size();
}

bool is_session_error(const Error& e) noexcept {
  return e.reason == "session_required" || e.reason == "already_initialized" ||
         e.reason == "unknown_session" || e.reason == "too_many_sessions";
}

Result<McpServer::Outcome> McpServer::initialize(const jsonrpc::Message& m, const CallContext& ctx) {
  if (m.kind != jsonrpc::Kind::kRequest) {
    return protocol_error("session_required", "initialize must be a request");
  }
  if (!m.params.is_object()) return invalid_params("initialize needs params {protocolVersion, capabilities, clientInfo}");
  const auto& p = m.params.get_object();
  const auto* requested = p.if_contains("protocolVersion");
  if (requested == nullptr || !requested->is_string() || requested->get_string().size() > 32) {
    return invalid_params("initialize needs a protocolVersion string");
  }
  if (const auto* caps = p.if_contains("capabilities"); caps != nullptr && !caps->is_object()) {
    return invalid_params("capabilities must be an object");
  }
  const std::string_view want(requested->get_string());
  const std::string version(is_supported_version(want) ? want : kLatestProtocolVersion);

  auto s = std::make_shared<Session>();
  s->id = auth::random_alnum(32);
  s->caller_id = caller_key(*ctx.caller);
  s->protocol_version = version;
  s->last_used = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    expire_locked(s->last_used);
    // A caller that keeps opening sessions loses its own oldest one, never someone else's.
    std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> mine;
    for (const auto& [id, other] : sessions_) {
      if (other->caller_id == s->caller_id) mine.emplace_back(other->last_used, id);
    }
    if (mine.size() >= options_.max_sessions_per_caller) {
      std::sort(mine.begin(), mine.end());
      for (std::size_t i = 0; i + options_.max_sessions_per_caller <= mine.size(); ++i) {
        sessions_.erase(mine[i].second);
      }
    }
    if (sessions_.size() >= options_.max_sessions) {
      Error e = Error::unavailable("too many MCP sessions are open; try again later");
      e.reason = "too_many_sessions";
      return e;
    }
    sessions_.emplace(s->id, s);
  }
  json::object result{
      {"protocolVersion", version},
      {"capabilities", json::object{{"tools", json::object{{"listChanged", true}}}}},
      {"serverInfo", json::object{{"name", "devplane"},
                                  {"title", "devplane control plane"},
                                  {"version", options_.server_version}}}};
  if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
  Outcome out;
  out.reply = jsonrpc::result(m.id, std::move(result));
  out.opened = s->id;
  return out;
}

Result<McpServer::Outcome> McpServer::handle(const jsonrpc::Message& m, std::string_view session_id,
                                             const CallContext& ctx) {
  const bool is_initialize = m.kind == jsonrpc::Kind::kRequest && m.method == "initialize";
  if (session_id.empty()) {
    if (is_initialize) return initialize(m, ctx);
    return protocol_error("session_required",
                          "send initialize first: this request has no Mcp-Session-Id");
  }
  if (is_initialize) {
    return protocol_error("already_initialized", "this session is already initialized");
  }
  std::string version;
  bool initialized = false;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    auto it = sessions_.find(std::string(session_id));
    if (it != sessions_.end() && now - it->second->last_used > options_.idle_timeout) {
      sessions_.erase(it);
      it = sessions_.end();
    }
    if (it == sessions_.end() || it->second->caller_id != caller_key(*ctx.caller)) {
      Error e = Error::not_found("no MCP session with this id (it ended, expired or never existed)");
      e.reason = "unknown_session";
      return e;
    }
    Session& s = *it->second;
    s.last_used = now;
    if (m.kind == jsonrpc::Kind::kNotification && m.method == "notifications/initialized") {
      s.initialized = true;
    }
    version = s.protocol_version;
    initialized = s.initialized;
  }
  Outcome out;
  if (m.kind != jsonrpc::Kind::kRequest) {
    // Notifications (initialized, cancelled, progress, roots changes) and responses to requests
    // devplane never sends: nothing to answer. A cancellation raises the flag of the session's
    // call with that id, if it still runs (a late or unknown one changes nothing).
    if (m.kind == jsonrpc::Kind::kNotification && m.method == "notifications/cancelled" &&
        m.params.is_object()) {
      if (const auto* rid = m.params.get_object().if_contains("requestId");
          rid != nullptr && (rid->is_string() || rid->is_int64() || rid->is_uint64())) {
        bool found = false;
        {
          std::lock_guard lock(mu_);
          auto it = in_flight_.find(std::string(session_id) + "\n" + jsonrpc::id_key(*rid));
          if (it != in_flight_.end()) {
            it->second->store(true);
            found = true;
          }
        }
        log::Logger(ctx.correlation_id)
            .info(found ? "mcp client cancelled a tool call in flight" : "mcp client cancelled no call in flight",
                  {{"requestId", *rid}});
      }
    }
    return out;
  }
  if (!initialized && m.method != "ping") {
    out.reply = jsonrpc::error(m.id, jsonrpc::kInvalidRequest,
                               "the session is not initialized: send notifications/initialized first",
                               json::object{{"reason", "not_initialized"}});
    return out;
  }
  Session view;
  view.id = std::string(session_id);
  view.protocol_version = version;
  view.initialized = initialized;
  CallContext call_ctx = ctx;
  std::string flight_key;
  auto flag = std::make_shared<std::atomic<bool>>(false);
  if (m.method == "tools/call") {
    flight_key = std::string(session_id) + "\n" + jsonrpc::id_key(m.id);
    std::lock_guard lock(mu_);
    // A client reusing the id of a call still running: the newer call takes the key.
    in_flight_[flight_key] = flag;
    call_ctx.cancel = flag.get();
  }
  struct Unregister {
    McpServer* server;
    const std::string& key;
    const std::shared_ptr<std::atomic<bool>>& flag;
    ~Unregister() {
      if (key.empty()) return;
      std::lock_guard lock(server->mu_);
      auto it = server->in_flight_.find(key);
      if (it != server->in_flight_.end() && it->second == flag) server->in_flight_.erase(it);
    }
  } unregister{this, flight_key, flag};
  auto r = dispatch(m, view, call_ctx);
  if (r.ok()) {
    out.reply = std::move(*r);
  } else {
    auto eo = jsonrpc::to_error_object(r.error());
    out.reply = jsonrpc::error(m.id, eo.code, std::move(eo.message), std::move(eo.data));
  }
  return out;
}

Result<jsonrpc::Message> McpServer::dispatch(const jsonrpc::Message& m, Session& /*s*/,
                                             const CallContext& ctx) {
  if (m.method == "ping") return jsonrpc::result(m.id, json::object{});
  if (m.method == "tools/list") {
    DP_ASSIGN_OR_RETURN(json::value v, list_tools(m.params, ctx));
    return jsonrpc::result(m.id, std::move(v));
  }
  if (m.method == "tools/call") {
    DP_ASSIGN_OR_RETURN(json::value v, call_tool(m.params, ctx));
    return jsonrpc::result(m.id, std::move(v));
  }
  if (m.method == "resources/list" || m.method == "prompts/list" ||
      m.method == "resources/templates/list") {
    // Not offered (capabilities say so), but clients that ask anyway get an empty list.
    const std::string key = m.method == "prompts/list"               ? "prompts"
                            : m.method == "resources/templates/list" ? "resourceTemplates"
                                                                     : "resources";
    return jsonrpc::result(m.id, json::object{{key, json::array{}}});
  }
  Error e = Error::not_found("method '" + m.method.substr(0, 64) + "' is not offered by devplane");
  e.reason = "method_not_found";
  return e;
}

Result<json::value> McpServer::list_tools(const json::value& params, const CallContext& ctx) {
  if (!params.is_null() && !params.is_object()) return invalid_params("params must be an object");
  if (params.is_object()) {
    if (const auto* c = params.get_object().if_contains("cursor"); c != nullptr && !c->is_null()) {
      // One page holds every tool, so no cursor was ever handed out.
      return invalid_params("unknown cursor");
    }
  }
  std::vector<Tool> tools;
  std::size_t failed = 0;
  Error last;
  for (auto* src : sources_) {
    if (auto s = src->list(ctx, tools); !s.ok()) {
      ++failed;
      last = s.error();
      log::Logger(ctx.correlation_id).warn("MCP tool source failed to list its tools",
                                           {{"error", s.error().message}});
    }
  }
  if (failed == sources_.size() && failed > 0) return last;
  json::array arr;
  for (const auto& t : tools) arr.push_back(to_json(t));
  return json::object{{"tools", std::move(arr)}};
}

Result<json::value> McpServer::call_tool(const json::value& params, const CallContext& ctx) {
  if (!params.is_object()) return invalid_params("tools/call needs params {name, arguments}");
  const auto& p = params.get_object();
  const auto* name = p.if_contains("name");
  if (name == nullptr || !name->is_string() || name->get_string().empty() ||
      name->get_string().size() > 256) {
    return invalid_params("tools/call needs a tool name (1..256 characters)");
  }
  json::value arguments = json::object{};
  if (const auto* a = p.if_contains("arguments"); a != nullptr && !a->is_null()) {
    if (!a->is_object()) return invalid_params("arguments must be an object");
    arguments = *a;
  }
  const std::string_view n(name->get_string());
  for (auto* src : sources_) {
    if (!src->owns(n)) continue;
    DP_ASSIGN_OR_RETURN(json::object r, src->call(n, arguments, ctx));
    return json::value(std::move(r));
  }
  Error e = Error::not_found("unknown tool '" + std::string(n.substr(0, 128)) + "'");
  e.reason = "unknown_tool";
  return e;
}

}  // namespace dp::mcp
