#include "mcp/client.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace dp::mcp {
namespace {

namespace json = boost::json;

constexpr std::uint64_t kMaxStrayLogs = 10;

}  // namespace

Client::Client(std::unique_ptr<Transport> transport, ClientOptions options)
    : transport_(std::move(transport)), opt_(std::move(options)) {}

Client::~Client() { close(); }

Status Client::connect() {
  TransportHandlers h;
  h.on_message = [this](std::string_view text) { on_message(text); };
  h.on_closed = [this](const Error& why) { fail(why); };
  DP_TRY(transport_->start(std::move(h)));
  return initialize();
}

Status Client::initialize() {
  json::object params{
      {"protocolVersion", kLatestProtocolVersion},
      {"capabilities", json::object{}},
      {"clientInfo", json::object{{"name", opt_.client_name}, {"version", opt_.client_version}}}};
  CallOptions o;
  o.timeout = opt_.initialize_timeout;
  std::uint64_t gen = 0;
  DP_ASSIGN_OR_RETURN(json::value r,
                      request_once("initialize", params, o, Clock::now() + opt_.initialize_timeout, gen));
  auto parsed = parse_initialize_result(r);
  if (!parsed.ok()) {
    fail(Error{ErrorCode::kUnavailable, "protocol_error",
               "invalid initialize result: " + parsed.error().message, nullptr});
    return std::move(parsed).error();
  }
  InitializeResult ir = std::move(parsed).value();
  if (!is_supported_version(ir.protocol_version)) {
    Error e = Error::failed_precondition(
        "unsupported_protocol_version",
        "the MCP server speaks protocol version '" + ir.protocol_version +
            "', which devplane does not support (2024-11-05 to 2025-11-25)");
    fail(e);
    return e;
  }
  transport_->set_protocol_version(ir.protocol_version);
  {
    std::lock_guard lock(mu_);
    allow_batch_ = version_allows_batch(ir.protocol_version);
    init_ = std::move(ir);
    ++session_gen_;
    tools_.reset();
  }
  return notify("notifications/initialized");
}

Result<json::value> Client::request(const std::string& method, json::value params,
                                    const CallOptions& options) {
  const auto deadline = Clock::now() + options.timeout.value_or(opt_.request_timeout);
  std::uint64_t gen = 0;
  {
    std::lock_guard lock(mu_);
    gen = session_gen_;
  }
  auto r = request_once(method, params, options, deadline, gen);
  if (!r.ok() && r.error().reason == "session_expired") {
    {
      std::lock_guard init_lock(init_mu_);
      bool stale = false;
      {
        std::lock_guard lock(mu_);
        stale = session_gen_ == gen;
      }
      // Another thread may have re-initialized already; then just retry.
      if (stale) {
        log::global().info("mcp session expired; initializing again", {{"adapter", opt_.log_name}});
        transport_->reset_session();
        DP_TRY(initialize());
      }
    }
    r = request_once(method, params, options, deadline, gen);
  }
  return r;
}

Result<json::value> Client::request_once(const std::string& method, const json::value& params,
                                         const CallOptions& options, Clock::time_point deadline,
                                         std::uint64_t& session_gen) {
  auto p = std::make_shared<Pending>();
  p->on_progress = options.on_progress;
  json::value id;
  std::string key;
  {
    std::unique_lock lock(mu_);
    if (failed_) return *failed_;
    const bool slot = cv_.wait_until(lock, deadline, [&] {
      return failed_.has_value() || in_flight_ < opt_.max_concurrent;
    });
    if (failed_) return *failed_;
    if (!slot) {
      return Error{ErrorCode::kResourceExhausted, "too_many_requests",
                   "no free request slot on MCP server '" + opt_.log_name + "' before the deadline (" +
                       std::to_string(opt_.max_concurrent) + " in flight)",
                   nullptr};
    }
    ++in_flight_;
    id = next_id_++;
    key = jsonrpc::id_key(id);
    pending_[key] = p;
    session_gen = session_gen_;
  }
  struct Release {
    Client* c;
    const std::string& key;
    ~Release() {
      std::lock_guard lock(c->mu_);
      c->pending_.erase(key);
      --c->in_flight_;
      c->cv_.notify_all();
    }
  } release{this, key};

  if (options.cancel != nullptr && options.cancel->load()) {
    return Error{ErrorCode::kAborted, "cancelled", method + " was cancelled before it was sent", nullptr};
  }
  json::value ps = params;
  if (options.on_progress) {
    if (!ps.is_object()) ps = json::object{};
    auto& meta = ps.get_object()["_meta"];
    if (!meta.is_object()) meta = json::object{};
    meta.get_object()["progressToken"] = id;
  }
  // The caller gave up: the server is told to stop, the caller gets kAborted `cancelled`.
  auto give_up = [&]() -> Error {
    (void)transport_->send(
        jsonrpc::encode(jsonrpc::notification(
            "notifications/cancelled", json::object{{"requestId", id}, {"reason", "cancelled by the caller"}})),
        Clock::now() + std::chrono::seconds(1));
    return Error{ErrorCode::kAborted, "cancelled",
                 method + " to MCP server '" + opt_.log_name + "' was cancelled", nullptr};
  };
  if (Status sent = transport_->send_cancellable(
          jsonrpc::encode(jsonrpc::request(id, method, std::move(ps))), deadline, options.cancel);
      !sent.ok()) {
    // Given up while the server was answering within the send (Streamable HTTP).
    if (sent.error().code == ErrorCode::kAborted && options.cancel != nullptr && options.cancel->load()) {
      return give_up();
    }
    return std::move(sent).error();
  }

  jsonrpc::Message reply;
  {
    std::unique_lock lock(mu_);
    if (transport_->replies_inline() && !p->done && !failed_) {
      return Error{ErrorCode::kUnavailable, "no_reply",
                   "the MCP server's reply to " + method + " carried no response", nullptr};
    }
    auto stopped = [&] { return options.cancel != nullptr && options.cancel->load(); };
    // The cancel flag is a plain atomic (the agents' and the HTTP client's token): it is looked
    // at every kCancelPoll while waiting.
    const auto slice = options.cancel == nullptr ? kPumpSlice : kCancelPoll;
    while (!p->done && !failed_ && !stopped() && Clock::now() < deadline) {
      const auto until = std::min(deadline, Clock::now() + slice);
      // A transport that reads on the caller's thread (stdio) delivers the reply here, saving
      // the wake-up of its reader; the others wake this thread through on_message.
      lock.unlock();
      const bool pumped = transport_->pump(until);
      lock.lock();
      if (!pumped) cv_.wait_until(lock, until, [&] { return p->done || failed_.has_value(); });
    }
    if (p->done) {
      reply = std::move(p->reply);
    } else if (failed_) {
      return *failed_;
    } else if (stopped()) {
      lock.unlock();
      return give_up();
    }
  }
  if (reply.kind != jsonrpc::Kind::kResult && reply.kind != jsonrpc::Kind::kError) {
    // Timed out: tell the server to stop working on it (never for initialize).
    if (method != "initialize") {
      (void)transport_->send(
          jsonrpc::encode(jsonrpc::notification(
              "notifications/cancelled",
              json::object{{"requestId", id}, {"reason", "timed out in devplane"}})),
          Clock::now() + std::chrono::seconds(1));
    }
    return Error{ErrorCode::kDeadlineExceeded, "timeout",
                 method + " to MCP server '" + opt_.log_name + "' got no answer in time", nullptr};
  }
  if (reply.kind == jsonrpc::Kind::kError) return jsonrpc::from_error_object(reply.error);
  return std::move(reply.result);
}

Status Client::notify(const std::string& method, json::value params) {
  {
    std::lock_guard lock(mu_);
    if (failed_) return *failed_;
  }
  return transport_->send(jsonrpc::encode(jsonrpc::notification(method, std::move(params))),
                          Clock::now() + opt_.request_timeout);
}

void Client::on_message(std::string_view text) {
  jsonrpc::DecodeLimits limits;
  limits.max_bytes = opt_.max_message_bytes;
  {
    std::lock_guard lock(mu_);
    limits.allow_batch = allow_batch_;
  }
  auto decoded = jsonrpc::decode(text, limits);
  if (!decoded.ok()) {
    const Error& e = decoded.error();
    fail(Error{e.code == ErrorCode::kResourceExhausted ? ErrorCode::kResourceExhausted
                                                       : ErrorCode::kUnavailable,
               e.reason == "message_too_large" ? e.reason : std::string("protocol_error"),
               "the MCP server sent an invalid message (" + e.reason + "): " + e.message, nullptr});
    transport_->close();
    return;
  }
  for (auto& m : *decoded) handle(std::move(m));
}

void Client::handle(jsonrpc::Message m) {
  using jsonrpc::Kind;
  if (m.kind == Kind::kResult || m.kind == Kind::kError) {
    std::uint64_t stray = 0;
    {
      std::unique_lock lock(mu_);
      auto it = m.id.is_null() ? pending_.end() : pending_.find(jsonrpc::id_key(m.id));
      if (it != pending_.end() && !it->second->done) {
        it->second->done = true;
        it->second->reply = std::move(m);
        // Woken after the unlock, the caller does not wake only to wait for this mutex.
        lock.unlock();
        cv_.notify_all();
        return;
      }
      stray = ++stray_;
    }
    if (stray <= kMaxStrayLogs) {
      log::global().warn("mcp server sent a response to no pending request",
                         {{"adapter", opt_.log_name}, {"id", m.id},
                          {"error", m.kind == Kind::kError ? json::value(m.error.message) : json::value()}});
    }
    return;
  }
  if (m.kind == Kind::kRequest) {
    // devplane declares no client capabilities, so a server may only ping it.
    jsonrpc::Message reply =
        m.method == "ping"
            ? jsonrpc::result(m.id, json::object{})
            : jsonrpc::error(m.id, jsonrpc::kMethodNotFound, "devplane does not offer " + m.method);
    (void)transport_->send(jsonrpc::encode(reply), Clock::now() + std::chrono::seconds(5));
    return;
  }
  ProgressFn progress;
  {
    std::lock_guard lock(mu_);
    ++notifications_;
    if (m.method == "notifications/tools/list_changed") {
      ++catalog_gen_;
      tools_.reset();
    } else if (m.method == "notifications/progress" && m.params.is_object()) {
      if (const auto* token = m.params.get_object().if_contains("progressToken")) {
        auto it = pending_.find(jsonrpc::id_key(*token));
        if (it != pending_.end()) progress = it->second->on_progress;
      }
    }
  }
  if (progress) progress(m.params.get_object());
  if (m.method == "notifications/message" && log::enabled(log::Level::kDebug)) {
    log::global().debug("mcp server log", {{"adapter", opt_.log_name}, {"params", m.params}});
  }
  if (opt_.on_notification) opt_.on_notification(m.method, m.params);
}

void Client::fail(Error why) {
  bool report = false;
  {
    std::lock_guard lock(mu_);
    if (!failed_) {
      failed_ = why;
      report = !closed_;
    }
    cv_.notify_all();
  }
  if (report) {
    log::global().warn("mcp connection failed", {{"adapter", opt_.log_name},
                                                 {"reason", why.reason},
                                                 {"error", why.message}});
  }
}

Result<std::vector<Tool>> Client::list_tools(bool refresh) {
  DP_ASSIGN_OR_RETURN(auto c, catalog(refresh));
  return c->tools;
}

Result<std::shared_ptr<const ToolCatalog>> Client::catalog(bool refresh) {
  std::uint64_t gen = 0;
  {
    std::lock_guard lock(mu_);
    if (!refresh && tools_) return tools_;
    gen = catalog_gen_;
  }
  std::vector<Tool> all;
  json::value cursor;
  for (std::size_t page = 0;; ++page) {
    if (page >= opt_.max_pages) {
      return Error{ErrorCode::kResourceExhausted, "catalog_too_large",
                   "tools/list did not end within " + std::to_string(opt_.max_pages) + " pages", nullptr};
    }
    json::object params;
    if (!cursor.is_null()) params["cursor"] = cursor;
    DP_ASSIGN_OR_RETURN(json::value r, request("tools/list", std::move(params)));
    const auto* tools = r.is_object() ? r.get_object().if_contains("tools") : nullptr;
    if (tools == nullptr || !tools->is_array()) {
      return Error::invalid_argument("invalid_message", "tools/list result has no tools array");
    }
    for (const auto& t : tools->get_array()) {
      DP_ASSIGN_OR_RETURN(Tool tool, parse_tool(t));
      all.push_back(std::move(tool));
      if (all.size() > opt_.max_tools) {
        return Error{ErrorCode::kResourceExhausted, "catalog_too_large",
                     "the server lists more than " + std::to_string(opt_.max_tools) + " tools", nullptr};
      }
    }
    const auto* next = r.get_object().if_contains("nextCursor");
    if (next == nullptr || !next->is_string() || next->get_string().empty()) break;
    if (!cursor.is_null() && cursor == *next) {
      return Error::invalid_argument("invalid_message", "tools/list returned the same cursor twice");
    }
    cursor = *next;
  }
  ToolCatalog fetched;
  fetched.pin_hashes.reserve(all.size());
  for (const auto& t : all) fetched.pin_hashes.push_back(t.pin_hash());
  fetched.tools = std::move(all);
  auto shared = std::make_shared<const ToolCatalog>(std::move(fetched));
  std::lock_guard lock(mu_);
  if (catalog_gen_ == gen) tools_ = shared;
  return shared;
}

Result<json::array> Client::list_all(const std::string& method, const std::string& key) {
  json::array all;
  json::value cursor;
  for (std::size_t page = 0;; ++page) {
    if (page >= opt_.max_pages) {
      return Error{ErrorCode::kResourceExhausted, "catalog_too_large",
                   method + " did not end within " + std::to_string(opt_.max_pages) + " pages", nullptr};
    }
    json::object params;
    if (!cursor.is_null()) params["cursor"] = cursor;
    DP_ASSIGN_OR_RETURN(json::value r, request(method, std::move(params)));
    const auto* items = r.is_object() ? r.get_object().if_contains(key) : nullptr;
    if (items == nullptr || !items->is_array()) {
      return Error::invalid_argument("invalid_message", method + " result has no " + key + " array");
    }
    for (const auto& item : items->get_array()) {
      all.push_back(item);
      if (all.size() > opt_.max_tools) {
        return Error{ErrorCode::kResourceExhausted, "catalog_too_large",
                     method + " lists more than " + std::to_string(opt_.max_tools) + " items", nullptr};
      }
    }
    const auto* next = r.get_object().if_contains("nextCursor");
    if (next == nullptr || !next->is_string() || next->get_string().empty()) break;
    if (!cursor.is_null() && cursor == *next) {
      return Error::invalid_argument("invalid_message", method + " returned the same cursor twice");
    }
    cursor = *next;
  }
  return all;
}

Result<json::array> Client::list_resources() { return list_all("resources/list", "resources"); }
Result<json::array> Client::list_prompts() { return list_all("prompts/list", "prompts"); }

Result<json::value> Client::read_resource(const std::string& uri) {
  return request("resources/read", json::object{{"uri", uri}});
}

Result<json::value> Client::get_prompt(const std::string& name, json::object arguments) {
  json::object params{{"name", name}};
  if (!arguments.empty()) params["arguments"] = std::move(arguments);
  return request("prompts/get", std::move(params));
}

Result<CallToolResult> Client::call_tool(const std::string& name, json::value arguments,
                                         const CallOptions& options) {
  json::object params{{"name", name}};
  params["arguments"] = arguments.is_null() ? json::value(json::object{}) : std::move(arguments);
  DP_ASSIGN_OR_RETURN(json::value r, request("tools/call", std::move(params), options));
  return parse_call_tool_result(r);
}

Result<std::chrono::microseconds> Client::ping(std::optional<std::chrono::milliseconds> timeout) {
  CallOptions o;
  o.timeout = timeout;
  const auto t0 = Clock::now();
  DP_TRY(request("ping", nullptr, o));
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
}

bool Client::healthy() const {
  std::lock_guard lock(mu_);
  return !failed_.has_value();
}

std::optional<Error> Client::failure() const {
  std::lock_guard lock(mu_);
  return failed_;
}

InitializeResult Client::server() const {
  std::lock_guard lock(mu_);
  return init_;
}

std::uint64_t Client::catalog_generation() const {
  std::lock_guard lock(mu_);
  return catalog_gen_;
}

std::uint64_t Client::stray_responses() const {
  std::lock_guard lock(mu_);
  return stray_;
}

std::uint64_t Client::notifications_received() const {
  std::lock_guard lock(mu_);
  return notifications_;
}

void Client::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    if (!failed_) failed_ = Error{ErrorCode::kUnavailable, "closed", "the MCP connection is closed", nullptr};
    cv_.notify_all();
  }
  transport_->close();
}

}  // namespace dp::mcp
