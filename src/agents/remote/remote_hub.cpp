#include "agents/remote/remote_hub.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <boost/asio/post.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "agents/task_service.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace dp::agents::remote {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;

// Application close codes (docs/agent-protocol.md).
constexpr std::uint16_t kCloseHeartbeat = 4000;
constexpr std::uint16_t kCloseReplaced = 4001;
constexpr std::uint16_t kCloseProtocol = 4002;
constexpr std::uint16_t kCloseStopped = 4003;
constexpr std::uint16_t kClosePolicy = 1008;

constexpr std::size_t kMaxLogText = 64 * 1024;
constexpr std::size_t kMaxErrorText = 4 * 1024;
constexpr std::size_t kMaxAckIds = 500;
constexpr std::size_t kMaxUnackedMessages = 1000;

std::string str_field(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string(v->as_string());
  return {};
}

// The frame's own "id", echoed in replies so an agent can match them; only short strings
// and integers are echoed.
json::value frame_ref(const json::object& o) {
  const auto* v = o.if_contains("id");
  if (v == nullptr) return nullptr;
  if (v->is_int64() || v->is_uint64()) return *v;
  if (v->is_string() && v->as_string().size() <= 64) return *v;
  return nullptr;
}

std::optional<std::int64_t> int_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->as_uint64());
  }
  return std::nullopt;
}

std::string now_iso() { return clock::format_iso8601(clock::now_ms()); }

Error permission_denied(std::string message) {
  return Error{ErrorCode::kPermissionDenied, "permission_denied", std::move(message), nullptr};
}

json::object assign_frame(const model::Task& t) {
  return json::object{{"type", "task.assign"},
                      {"taskId", t.id},
                      {"attempt", t.attempts},
                      {"idempotencyKey", t.idempotency_key},
                      {"input", t.input},
                      {"correlationId", t.correlation_id},
                      {"createdAt", clock::format_iso8601(t.created_at)}};
}

json::object message_frame(const model::Message& m) {
  return json::object{{"type", "message"},
                      {"messageId", m.id},
                      {"fromAgentId", m.from_agent_id.empty() ? json::value(nullptr)
                                                              : json::value(m.from_agent_id)},
                      {"messageType", m.message_type},
                      {"payload", m.payload},
                      {"createdAt", clock::format_iso8601(m.created_at)}};
}

struct Offer {
  std::int64_t attempt = 0;
  bool cancel_sent = false;
  std::size_t log_bytes = 0;
};

// One connection. `mu` guards the fields below it. Lock order: Impl::mu before Link::mu.
struct Link {
  std::shared_ptr<http::WsConnection> conn;
  std::string agent_id;
  std::string holder;          // the node id its tasks are claimed under
  std::string correlation_id;  // the upgrade request's id
  std::mutex mu;
  std::deque<std::string> inbox;
  bool draining = false;        // a drain job is queued or running on the blocking pool
  bool pump_requested = false;  // the ticker asked for a sweep of this connection's work
  bool hello = false;           // welcome sent; work flows
  bool closing = false;         // close() asked for
  bool closed = false;          // on_close ran
  std::string close_reason;
  std::int64_t last_seen_ms = 0;
  std::int64_t last_renew_ms = 0;
  int errors = 0;
  std::int64_t concurrency = 1;
  std::map<std::string, Offer> offered;  // task id -> what this connection was offered
  std::set<std::string> sent_messages;   // sent on this connection, not acknowledged yet

  void send(const json::object& frame) const { conn->send(json::serialize(frame)); }
  RemotePresence presence(std::chrono::milliseconds ttl) const {
    return {"remote-agent:" + agent_id, holder, ttl.count()};
  }
  // REQUIRES: mu held.
  void close_locked(std::uint16_t code, std::string reason) {
    if (closing || closed) return;
    closing = true;
    close_reason = reason;
    conn->close(code, std::move(reason));
  }
};

}  // namespace

http::WsOptions remote_ws_options(const RemoteOptions& options) {
  http::WsOptions o;
  o.max_message_bytes = std::max<std::size_t>(1024 * 1024, options.max_frame_bytes * 2);
  o.idle_timeout = options.heartbeat_timeout;
  return o;
}

struct RemoteHub::Impl : std::enable_shared_from_this<RemoteHub::Impl> {
  Impl(store::Store& s, AgentService& a, asio::thread_pool& b, RemoteOptions o)
      : store(s), agents(a), blocking(b), options(std::move(o)) {}

  store::Store& store;
  AgentService& agents;
  asio::thread_pool& blocking;
  const RemoteOptions options;

  mutable std::mutex mu;
  std::unordered_map<const http::WsConnection*, std::shared_ptr<Link>> links;  // guarded by mu
  std::unordered_map<std::string, std::shared_ptr<Link>> active;  // agent id -> link; guarded by mu
  // Held across an agent's connect/lost status change so the two never interleave.
  std::mutex status_mu;

  std::mutex tick_mu;
  std::condition_variable cv;
  bool stop_ = false;  // guarded by tick_mu
  bool wake_ = false;  // guarded by tick_mu
  std::thread ticker;
  std::int64_t next_orphan_scan_ms = 0;  // ticker thread only

  std::shared_ptr<Link> find(const http::WsConnection* c) const {
    std::lock_guard lock(mu);
    auto it = links.find(c);
    return it == links.end() ? nullptr : it->second;
  }

  // Queues a drain of `l` on the blocking pool unless one is pending. REQUIRES: l->mu held.
  void schedule_locked(const std::shared_ptr<Link>& l) {
    if (l->draining) return;
    l->draining = true;
    asio::post(blocking, [self = shared_from_this(), l] { self->drain(l); });
  }

  void request_pump(const std::shared_ptr<Link>& l) {
    std::lock_guard lock(l->mu);
    if (!l->hello || l->closing || l->closed) return;
    l->pump_requested = true;
    schedule_locked(l);
  }

  // Handles the link's frames in order, one at a time, then a requested sweep.
  void drain(const std::shared_ptr<Link>& l) {
    for (;;) {
      std::string frame;
      bool pump = false;
      {
        std::lock_guard lock(l->mu);
        if (l->closed) {
          l->inbox.clear();
          l->draining = false;
          return;
        }
        if (!l->inbox.empty()) {
          frame = std::move(l->inbox.front());
          l->inbox.pop_front();
        } else if (l->pump_requested) {
          l->pump_requested = false;
          pump = true;
        } else {
          l->draining = false;
          return;
        }
      }
      try {
        if (pump) {
          sweep(l);
        } else {
          handle(l, frame);
        }
      } catch (const std::exception& e) {
        log::Logger(l->correlation_id, l->agent_id)
            .error("remote agent frame failed", {{"connection", l->conn->id()}, {"error", e.what()}});
      }
    }
  }

  void protocol_error(const std::shared_ptr<Link>& l, std::string_view code, std::string_view message,
                      const json::value& ref, json::object details = {}) {
    json::object f{{"type", "error"}, {"code", code}, {"message", message}};
    if (!ref.is_null()) f["id"] = ref;
    if (!details.empty()) f["details"] = std::move(details);
    l->send(f);
    std::lock_guard lock(l->mu);
    if (++l->errors > options.max_errors) {
      l->close_locked(kClosePolicy, "too many protocol errors");
    }
  }

  void handle(const std::shared_ptr<Link>& l, const std::string& text) {
    if (text.size() > options.max_frame_bytes) {
      protocol_error(l, "too_large",
                     "frame of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                         std::to_string(options.max_frame_bytes),
                     nullptr);
      return;
    }
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) {
      protocol_error(l, "malformed", "a frame is one JSON object with a \"type\"", nullptr);
      return;
    }
    const auto& o = v.as_object();
    const json::value ref = frame_ref(o);
    const std::string type = str_field(o, "type");
    if (type.empty()) {
      protocol_error(l, "malformed", "the frame has no \"type\"", ref);
      return;
    }
    bool hello = false;
    {
      std::lock_guard lock(l->mu);
      hello = l->hello;
    }
    if (type == "hello") {
      if (hello) {
        protocol_error(l, "out_of_order", "hello was already received on this connection", ref);
      } else {
        on_hello(l, o, ref);
      }
      return;
    }
    if (!hello) {
      protocol_error(l, "out_of_order", "the first frame must be hello", ref);
      return;
    }
    if (type == "heartbeat") {
      json::object f{{"type", "heartbeat.ack"}, {"serverTime", now_iso()}};
      if (!ref.is_null()) f["id"] = ref;
      l->send(f);
    } else if (type == "task.log") {
      on_log(l, o, ref);
    } else if (type == "task.result") {
      on_result(l, o, ref);
    } else if (type == "message.ack") {
      on_ack(l, o, ref);
    } else {
      protocol_error(l, "unknown_type", "unknown frame type '" + type.substr(0, 64) + "'", ref);
    }
  }

  void on_hello(const std::shared_ptr<Link>& l, const json::object& o, const json::value& ref) {
    const auto protocol = int_field(o, "protocol");
    if (!protocol) {
      protocol_error(l, "malformed", "hello needs \"protocol\" (an integer; this server speaks 1)", ref);
      return;
    }
    if (*protocol != kProtocolVersion) {
      protocol_error(l, "unsupported_protocol",
                     "protocol " + std::to_string(*protocol) + " is not supported; this server speaks " +
                         std::to_string(kProtocolVersion),
                     ref, json::object{{"supported", json::array{kProtocolVersion}}});
      std::lock_guard lock(l->mu);
      l->close_locked(kCloseProtocol, "unsupported protocol version");
      return;
    }
    const log::Logger logger(l->correlation_id, l->agent_id);
    std::int64_t concurrency = 1;
    std::shared_ptr<Link> replaced;
    {
      std::lock_guard status_lock(status_mu);
      auto agent = agents.remote_connected(l->agent_id, l->correlation_id, l->presence(options.lease));
      if (!agent.ok()) {
        protocol_error(l, agent.error().reason, agent.error().message, ref);
        std::lock_guard lock(l->mu);
        l->close_locked(kCloseStopped, "agent is not startable: " + agent.error().reason);
        return;
      }
      if (auto c = int_field(agent->config, "concurrency")) {
        concurrency = std::clamp<std::int64_t>(*c, 1, options.max_concurrency);
      }
      bool gone = false;
      bool held_by_other = false;
      {
        std::lock_guard lock(mu);
        std::lock_guard link_lock(l->mu);
        gone = l->closing || l->closed;
        if (gone) {
          held_by_other = active.contains(l->agent_id);
        } else {
          if (auto it = active.find(l->agent_id); it != active.end() && it->second != l) {
            replaced = it->second;
          }
          active[l->agent_id] = l;
          l->concurrency = concurrency;
        }
      }
      if (gone) {
        // Gone while saying hello (the store call is made outside the hub's locks, which the
        // I/O threads take).
        if (!held_by_other) {
          agents.remote_lost(l->agent_id, "remote agent disconnected during hello", l->correlation_id,
                             l->presence(options.lease))
              .ignore_error();  // best effort: the next connection moves it again
        }
        return;
      }
    }
    if (replaced) {
      std::lock_guard lock(replaced->mu);
      replaced->close_locked(kCloseReplaced, "replaced by a newer connection of this agent");
    }
    // Take over what this agent was doing (its previous connection, here or on a node that
    // restarted): same task, same attempt, offered again.
    std::vector<model::Task> resumed;
    std::int64_t undelivered = 0;
    const std::int64_t now = clock::now_ms();
    Status s = store.write([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(resumed, tx.tasks().take_over(l->agent_id, l->holder,
                                                        now + options.lease.count()));
      DP_ASSIGN_OR_RETURN(auto page, tx.messages().list(l->agent_id, std::nullopt, 1, true));
      undelivered = page.total;
      return Ok{};
    });
    if (!s.ok()) {
      logger.warn("remote agent hello failed", {{"error", s.error().message}});
      protocol_error(l, "unavailable", "the server cannot read this agent's work now; reconnect later", ref);
      std::lock_guard lock(l->mu);
      l->close_locked(1011, "store unavailable");
      return;
    }
    json::array resumed_ids;
    for (const auto& t : resumed) resumed_ids.emplace_back(t.id);
    json::object welcome{
        {"type", "welcome"},
        {"protocol", kProtocolVersion},
        {"agentId", l->agent_id},
        {"connectionId", l->conn->id()},
        {"heartbeatIntervalMs", heartbeat_interval_ms()},
        {"heartbeatTimeoutMs", options.heartbeat_timeout.count()},
        {"maxFrameBytes", options.max_frame_bytes},
        {"concurrency", concurrency},
        {"resumedTasks", std::move(resumed_ids)},
        {"undeliveredMessages", undelivered}};
    if (!ref.is_null()) welcome["id"] = ref;
    l->send(welcome);
    {
      std::lock_guard lock(l->mu);
      for (const auto& t : resumed) l->offered[t.id] = Offer{t.attempts, false, 0};
      l->hello = true;
      l->last_seen_ms = now;
      l->last_renew_ms = now;
    }
    for (const auto& t : resumed) l->send(assign_frame(t));
    logger.info("remote agent connected", {{"connection", l->conn->id()},
                                           {"resumedTasks", resumed.size()},
                                           {"undeliveredMessages", undelivered},
                                           {"replacedConnection", replaced ? replaced->conn->id() : ""}});
    sweep(l);
  }

  std::int64_t heartbeat_interval_ms() const {
    return std::max<std::int64_t>(500, options.heartbeat_timeout.count() / 3);
  }

  // An offered task with this attempt, or an error frame saying why not.
  bool check_offer(const std::shared_ptr<Link>& l, const std::string& task_id, std::int64_t attempt,
                   const json::value& ref) {
    std::int64_t current = -1;
    {
      std::lock_guard lock(l->mu);
      if (auto it = l->offered.find(task_id); it != l->offered.end()) current = it->second.attempt;
    }
    if (current < 0) {
      protocol_error(l, "unknown_task", "task " + task_id.substr(0, 64) + " is not assigned to this connection", ref);
      return false;
    }
    if (current != attempt) {
      protocol_error(l, "stale_attempt",
                     "attempt " + std::to_string(attempt) + " of task " + task_id +
                         " is superseded by attempt " + std::to_string(current),
                     ref, json::object{{"taskId", task_id}, {"currentAttempt", current}});
      return false;
    }
    return true;
  }

  // taskId and attempt of a task frame, or an error frame.
  std::optional<std::pair<std::string, std::int64_t>> task_ref(const std::shared_ptr<Link>& l,
                                                                const json::object& o,
                                                                const json::value& ref) {
    const std::string task_id = str_field(o, "taskId");
    const auto attempt = int_field(o, "attempt");
    if (!ids::is_uuid(task_id) || !attempt || *attempt < 1) {
      protocol_error(l, "malformed", "the frame needs \"taskId\" (a task id) and \"attempt\" (>= 1)", ref);
      return std::nullopt;
    }
    return std::pair<std::string, std::int64_t>{task_id, *attempt};
  }

  void on_log(const std::shared_ptr<Link>& l, const json::object& o, const json::value& ref) {
    auto tr = task_ref(l, o, ref);
    if (!tr) return;
    const auto* text = o.if_contains("text");
    std::string stream = "stdout";
    if (auto* s = o.if_contains("stream")) {
      stream = s->is_string() ? std::string(s->as_string()) : std::string();
    }
    if (text == nullptr || !text->is_string() || text->as_string().size() > kMaxLogText ||
        (stream != "stdout" && stream != "stderr")) {
      protocol_error(l, "malformed",
                     "task.log needs \"text\" (a string of at most 65536 bytes) and \"stream\" "
                     "(stdout or stderr)",
                     ref);
      return;
    }
    if (!check_offer(l, tr->first, tr->second, ref)) return;
    {
      std::lock_guard lock(l->mu);
      auto& offer = l->offered[tr->first];
      // Beyond the cap a line is dropped (the agent keeps its own output for the result).
      if (offer.log_bytes >= options.max_log_bytes_per_task) return;
      offer.log_bytes += text->as_string().size();
    }
    const std::string at = now_iso();
    if (options.logs != nullptr) {
      options.logs->append(l->agent_id, tr->first, stream, text->as_string(), at);
    }
    json::object payload{{"agentId", l->agent_id},   {"taskId", tr->first},
                         {"attempt", tr->second},    {"stream", stream},
                         {"text", text->as_string()}, {"timestamp", at}};
    const std::string body = json::serialize(payload);
    store.write([&](store::Tx& tx) {
           return tx.outbox().append(store::OutboxEvent{0, "agent.log", body, l->correlation_id,
                                                        clock::now_ms(), std::nullopt});
         })
        .ignore_error();  // logs are best effort, like a command agent's
  }

  void on_result(const std::shared_ptr<Link>& l, const json::object& o, const json::value& ref) {
    auto tr = task_ref(l, o, ref);
    if (!tr) return;
    const auto& [task_id, attempt] = *tr;
    const std::string status = str_field(o, "status");
    if (status != "succeeded" && status != "failed" && status != "cancelled") {
      protocol_error(l, "malformed", "task.result needs \"status\": succeeded, failed or cancelled", ref);
      return;
    }
    std::string error;
    if (auto* e = o.if_contains("error")) {
      if (!e->is_string() || e->as_string().size() > kMaxErrorText) {
        protocol_error(l, "malformed", "\"error\" must be a string of at most 4096 bytes", ref);
        return;
      }
      error = std::string(e->as_string());
    }
    json::value result = nullptr;
    if (auto* r = o.if_contains("result")) result = *r;
    const std::string result_text = json::serialize(result);
    // Fencing: only the connection holding the task, for its current attempt, ends it. A
    // result repeated after a lost acknowledgement is acknowledged again, changing nothing.
    enum class Verdict { kAccepted, kDuplicate, kUnknown, kStale } verdict = Verdict::kUnknown;
    model::Task task;
    Status s = store.write([&](store::Tx& tx) -> Status {
      auto got = tx.tasks().get(task_id);
      if (!got.ok()) {
        if (got.error().code == ErrorCode::kNotFound) return Ok{};
        return got.error();
      }
      task = std::move(*got);
      if (task.agent_id != l->agent_id) return Ok{};
      if (task.finished() && task.attempts == attempt && task.status == status) {
        verdict = Verdict::kDuplicate;
        return Ok{};
      }
      if (task.status != "running" || task.node_id != l->holder || task.attempts != attempt) {
        verdict = Verdict::kStale;
        return Ok{};
      }
      const std::int64_t now = clock::now_ms();
      DP_TRY(tx.tasks().finish(task_id, l->holder, status, result_text, error, now));
      task.status = status;
      task.error = error;
      task.result = result;
      verdict = Verdict::kAccepted;
      return tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(task),
                                                   task.correlation_id, now, std::nullopt});
    });
    if (!s.ok()) {
      protocol_error(l, "unavailable", "the result could not be recorded now; send it again", ref,
                     json::object{{"taskId", task_id}});
      return;
    }
    switch (verdict) {
      case Verdict::kUnknown:
        protocol_error(l, "unknown_task", "no task " + task_id + " for this agent", ref);
        return;
      case Verdict::kStale:
        protocol_error(l, "stale_result",
                       "task " + task_id + " attempt " + std::to_string(attempt) +
                           " is no longer held by this connection (task is " + task.status +
                           ", attempt " + std::to_string(task.attempts) + ")",
                       ref,
                       json::object{{"taskId", task_id},
                                    {"currentStatus", task.status},
                                    {"currentAttempt", task.attempts}});
        return;
      case Verdict::kAccepted:
        if (options.on_finished) options.on_finished(task);
        break;
      case Verdict::kDuplicate:
        break;
    }
    {
      std::lock_guard lock(l->mu);
      l->offered.erase(task_id);
    }
    json::object ack{{"type", "task.result.ack"},
                     {"taskId", task_id},
                     {"attempt", attempt},
                     {"status", status},
                     {"duplicate", verdict == Verdict::kDuplicate}};
    if (!ref.is_null()) ack["id"] = ref;
    l->send(ack);
    log::Logger(task.correlation_id, l->agent_id)
        .info("remote task finished", {{"taskId", task_id}, {"status", status}, {"attempt", attempt}});
    sweep(l);
  }

  void on_ack(const std::shared_ptr<Link>& l, const json::object& o, const json::value& ref) {
    const auto* list = o.if_contains("messageIds");
    std::vector<std::string> ids_in;
    bool ok = list != nullptr && list->is_array() && !list->as_array().empty() &&
              list->as_array().size() <= kMaxAckIds;
    if (ok) {
      for (const auto& x : list->as_array()) {
        if (!x.is_string() || !ids::is_uuid(x.as_string())) {
          ok = false;
          break;
        }
        ids_in.emplace_back(x.as_string());
      }
    }
    if (!ok) {
      protocol_error(l, "malformed", "message.ack needs \"messageIds\": 1..500 message ids", ref);
      return;
    }
    std::int64_t n = 0;
    Status s = store.write([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(n, tx.messages().mark_delivered(l->agent_id, ids_in, clock::now_ms()));
      return Ok{};
    });
    if (!s.ok()) {
      protocol_error(l, "unavailable", "the acknowledgement could not be recorded now; send it again", ref);
      return;
    }
    {
      std::lock_guard lock(l->mu);
      for (const auto& id : ids_in) l->sent_messages.erase(id);
    }
    json::array echoed;
    for (auto& id : ids_in) echoed.emplace_back(id);
    json::object f{{"type", "message.ack.ok"}, {"messageIds", std::move(echoed)}, {"delivered", n}};
    if (!ref.is_null()) f["id"] = ref;
    l->send(f);
  }

  // The connection's periodic work: lease renewal, the agent's status, cancel requests, new
  // tasks up to the agent's concurrency, undelivered messages.
  void sweep(const std::shared_ptr<Link>& l) {
    std::vector<std::string> offered;
    std::int64_t room = 0;
    bool renew = false;
    const std::int64_t now = clock::now_ms();
    {
      std::lock_guard lock(l->mu);
      if (!l->hello || l->closing || l->closed) return;
      for (const auto& [id, offer] : l->offered) {
        if (!offer.cancel_sent) offered.push_back(id);
      }
      room = l->concurrency - static_cast<std::int64_t>(l->offered.size());
      renew = now - l->last_renew_ms >= options.lease.count() / 4;
      if (renew) l->last_renew_ms = now;
    }
    std::optional<model::AgentStatus> status;
    std::vector<std::string> cancel;
    std::vector<model::Task> claimed;
    // Most sweeps find nothing to do: look first with a read, so that an idle connection does
    // not cost a write transaction every tick.
    bool queued = false;
    Status s = store.read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(model::Agent a, tx.agents().get(l->agent_id));
      status = a.status;
      if (a.status != model::AgentStatus::kRunning) return Ok{};
      for (const auto& id : offered) {
        DP_ASSIGN_OR_RETURN(bool c, tx.tasks().cancel_requested(id));
        if (c) cancel.push_back(id);
      }
      if (room > 0) {
        store::TaskFilter f;
        f.agent_id = l->agent_id;
        f.status = "queued";
        f.limit = 1;
        DP_ASSIGN_OR_RETURN(auto page, tx.tasks().list(f));
        queued = page.total > 0;
      }
      return Ok{};
    });
    const bool running = s.ok() && status == model::AgentStatus::kRunning;
    bool displaced = false;
    if (s.ok() && (renew || (running && queued))) {
      s = store.write([&](store::Tx& tx) -> Status {
        if (renew) {
          // The presence first: a newer connection of this agent on another node took it.
          const RemotePresence p = l->presence(options.lease);
          DP_ASSIGN_OR_RETURN(const bool held, tx.leases().acquire(p.lease, p.holder, now, p.ttl_ms));
          if (!held) {
            displaced = true;
            return Ok{};
          }
          DP_TRY(tx.tasks().renew(l->holder, now + options.lease.count()));
        }
        if (!running || !queued) return Ok{};
        for (std::int64_t i = 0; i < room; ++i) {
          DP_ASSIGN_OR_RETURN(auto t, tx.tasks().claim(l->agent_id, l->holder, now,
                                                       now + options.lease.count()));
          if (!t) break;
          DP_TRY(tx.outbox().append(store::OutboxEvent{0, "agent.task.update", task_event(*t),
                                                       t->correlation_id, now, std::nullopt}));
          claimed.push_back(std::move(*t));
        }
        return Ok{};
      });
    }
    if (!s.ok()) {
      log::Logger(l->correlation_id, l->agent_id)
          .warn("remote agent sweep failed", {{"error", s.error().message}});
      return;
    }
    if (displaced) {
      std::lock_guard lock(l->mu);
      l->close_locked(kCloseReplaced, "replaced by a newer connection of this agent on another node");
      return;
    }
    using S = model::AgentStatus;
    if (status && *status == S::kError) {
      // Marked lost while this connection lived (its presence lapsed: the store was out of
      // reach longer than the lease): it is connected, so it is running again.
      std::lock_guard status_lock(status_mu);
      agents.remote_connected(l->agent_id, l->correlation_id, l->presence(options.lease)).ignore_error();
      return;
    }
    if (status && *status != S::kRunning) {
      if (*status != S::kStopping && *status != S::kStopped && *status != S::kDecommissioned) return;
      std::lock_guard lock(l->mu);
      // Stopped by an operator (or decommissioned): the agent must not keep working.
      l->close_locked(kCloseStopped, "agent is " + std::string(model::to_string(*status)));
      return;
    }
    {
      std::lock_guard lock(l->mu);
      for (const auto& t : claimed) l->offered[t.id] = Offer{t.attempts, false, 0};
      for (const auto& id : cancel) {
        if (auto it = l->offered.find(id); it != l->offered.end()) it->second.cancel_sent = true;
      }
    }
    for (const auto& t : claimed) l->send(assign_frame(t));
    for (const auto& id : cancel) {
      std::int64_t attempt = 0;
      {
        std::lock_guard lock(l->mu);
        if (auto it = l->offered.find(id); it != l->offered.end()) attempt = it->second.attempt;
      }
      l->send(json::object{{"type", "task.cancel"}, {"taskId", id}, {"attempt", attempt}});
    }
    deliver_messages(l);
  }

  void deliver_messages(const std::shared_ptr<Link>& l) {
    std::optional<std::string> after;
    for (int pages = 0; pages < 5; ++pages) {
      std::optional<store::Page<model::Message>> page;
      Status s = store.read([&](store::Tx& tx) -> Status {
        DP_ASSIGN_OR_RETURN(page, tx.messages().list(l->agent_id, after, 100, true));
        return Ok{};
      });
      if (!s.ok() || !page) return;
      std::vector<const model::Message*> fresh;
      {
        std::lock_guard lock(l->mu);
        for (const auto& m : page->items) {
          if (l->sent_messages.size() >= kMaxUnackedMessages) break;
          if (l->sent_messages.insert(m.id).second) fresh.push_back(&m);
        }
      }
      for (const auto* m : fresh) l->send(message_frame(*m));
      if (!page->next_cursor) return;
      after = page->next_cursor;
    }
  }

  void tick() {
    std::vector<std::shared_ptr<Link>> all;
    {
      std::lock_guard lock(mu);
      all.reserve(links.size());
      for (const auto& [c, l] : links) all.push_back(l);
    }
    const std::int64_t now = clock::now_ms();
    for (const auto& l : all) {
      bool pump = false;
      {
        std::lock_guard lock(l->mu);
        if (l->closing || l->closed) continue;
        if (now - l->last_seen_ms > options.heartbeat_timeout.count()) {
          l->close_locked(kCloseHeartbeat,
                          l->hello ? "no heartbeat for " + std::to_string(options.heartbeat_timeout.count()) + " ms"
                                   : "no hello within " + std::to_string(options.heartbeat_timeout.count()) + " ms");
          continue;
        }
        pump = l->hello;
      }
      if (pump) request_pump(l);
    }
  }

  // Remote agents shown running that no node has a connection for (their node died and they
  // never came back) move to error. Runs on the ticker every lease; the first scan waits a
  // whole lease after start, so that agents of a restarted node can reconnect and
  // connections on other nodes renew their presence first.
  void scan_orphans() {
    const std::int64_t now = clock::now_ms();
    if (now < next_orphan_scan_ms) return;
    next_orphan_scan_ms = now + options.lease.count();
    store::AgentFilter f;
    f.type = "remote";
    f.status = "running";
    f.limit = 200;
    const RemotePresence sweeper_base{"", "sweeper/" + options.node_id, 1};
    for (int pages = 0; pages < 50; ++pages) {
      auto page = agents.list(f);
      if (!page.ok()) {
        log::global().warn("remote agent orphan scan failed", {{"error", page.error().message}});
        return;
      }
      for (const auto& a : page->items) {
        {
          std::lock_guard lock(mu);
          if (active.contains(a.id)) continue;
        }
        RemotePresence sweeper = sweeper_base;
        sweeper.lease = "remote-agent:" + a.id;
        std::lock_guard status_lock(status_mu);
        {
          std::lock_guard lock(mu);
          if (active.contains(a.id)) continue;  // connected meanwhile
        }
        auto r = agents.remote_orphaned(
            a.id, "remote agent is not connected to any node (its connection ended with its node)",
            sweeper);
        if (r.ok() && *r) {
          log::Logger("", a.id).info("remote agent marked lost: no node has its connection");
        }
      }
      if (!page->next_cursor) return;
      f.after = page->next_cursor;
    }
  }

  void loop() {
    next_orphan_scan_ms = clock::now_ms() + options.lease.count();
    for (;;) {
      tick();
      scan_orphans();
      std::unique_lock lock(tick_mu);
      cv.wait_for(lock, options.tick, [&] { return stop_ || wake_; });
      wake_ = false;
      if (stop_) return;
    }
  }
};

RemoteHub::RemoteHub(store::Store& store, AgentService& agents, asio::thread_pool& blocking,
                     RemoteOptions options)
    : impl_(std::make_shared<Impl>(store, agents, blocking, std::move(options))) {}

RemoteHub::~RemoteHub() { stop(); }

void RemoteHub::start() {
  std::lock_guard lock(impl_->tick_mu);
  if (impl_->ticker.joinable()) return;
  impl_->stop_ = false;
  impl_->ticker = std::thread([impl = impl_] { impl->loop(); });
}

void RemoteHub::stop() {
  {
    std::lock_guard lock(impl_->tick_mu);
    if (!impl_->ticker.joinable()) return;
    impl_->stop_ = true;
  }
  impl_->cv.notify_all();
  impl_->ticker.join();
}

void RemoteHub::notify() {
  {
    std::lock_guard lock(impl_->tick_mu);
    impl_->wake_ = true;
  }
  impl_->cv.notify_one();
}

std::size_t RemoteHub::connected() const {
  std::lock_guard lock(impl_->mu);
  return impl_->active.size();
}

Status RemoteHub::accept(const http::Request& request) {
  const std::string id(request.param("id"));
  if (!ids::is_uuid(id)) {
    return Error::invalid_argument("invalid_id", "'" + id.substr(0, 64) + "' is not a valid agent id (a UUID)");
  }
  const http::Caller& c = request.caller;
  if (c.role != "agent") {
    return permission_denied("only an API key of role agent, bound to this agent, may connect as it");
  }
  if (c.agent_id != id) {
    return permission_denied(c.agent_id.empty() ? "this agent key is not bound to an agent"
                                                : "this agent key is bound to another agent");
  }
  std::optional<model::Agent> agent;
  DP_TRY(impl_->store.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(agent, tx.agents().get(id));
    return Ok{};
  }));
  if (agent->type != "remote") {
    Error e = Error::failed_precondition(
        "not_remote", "agent " + id + " is a " + agent->type + " agent; only remote agents connect");
    e.details = boost::json::object{{"type", agent->type}};
    return e;
  }
  using S = model::AgentStatus;
  if (agent->status == S::kStopping || agent->status == S::kStopped ||
      agent->status == S::kDecommissioned) {
    Error e = Error::failed_precondition(
        "agent_stopped", "agent " + id + " is " + std::string(model::to_string(agent->status)) +
                             "; start it before it connects");
    e.details = boost::json::object{{"currentStatus", model::to_string(agent->status)}};
    return e;
  }
  return Ok{};
}

void RemoteHub::on_open(const std::shared_ptr<http::WsConnection>& connection,
                        const http::Request& request) {
  auto l = std::make_shared<Link>();
  l->conn = connection;
  l->agent_id = std::string(request.param("id"));
  l->holder = "remote/" + connection->id();
  l->correlation_id = request.request_id;
  l->last_seen_ms = clock::now_ms();
  std::lock_guard lock(impl_->mu);
  impl_->links.emplace(connection.get(), std::move(l));
}

void RemoteHub::on_message(const std::shared_ptr<http::WsConnection>& connection,
                           std::string_view text) {
  auto l = impl_->find(connection.get());
  if (!l) return;
  std::lock_guard lock(l->mu);
  l->last_seen_ms = clock::now_ms();
  if (l->closing || l->closed) return;
  if (l->inbox.size() >= impl_->options.max_inbox) {
    l->close_locked(kClosePolicy, "too many frames waiting to be handled");
    return;
  }
  l->inbox.emplace_back(text);
  impl_->schedule_locked(l);
}

void RemoteHub::on_close(const std::shared_ptr<http::WsConnection>& connection) {
  std::shared_ptr<Link> l;
  bool was_active = false;
  std::string reason;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->links.find(connection.get());
    if (it == impl_->links.end()) return;
    l = it->second;
    impl_->links.erase(it);
    if (auto a = impl_->active.find(l->agent_id); a != impl_->active.end() && a->second == l) {
      impl_->active.erase(a);
      was_active = true;
    }
    std::lock_guard link_lock(l->mu);
    l->closed = true;
    reason = l->close_reason.empty() ? "connection closed" : l->close_reason;
  }
  if (!was_active) return;
  // The status change needs the store: off the I/O thread.
  asio::post(impl_->blocking, [impl = impl_, l, reason] {
    std::lock_guard status_lock(impl->status_mu);
    {
      std::lock_guard lock(impl->mu);
      if (impl->active.contains(l->agent_id)) return;  // it reconnected meanwhile
    }
    Status s = impl->agents.remote_lost(l->agent_id, "remote agent disconnected: " + reason,
                                        l->correlation_id, l->presence(impl->options.lease));
    const log::Logger logger(l->correlation_id, l->agent_id);
    if (!s.ok()) {
      logger.warn("remote agent status not recorded", {{"error", s.error().message}});
    } else {
      logger.info("remote agent disconnected", {{"connection", l->conn->id()}, {"reason", reason}});
    }
  });
}

}  // namespace dp::agents::remote
