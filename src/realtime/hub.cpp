#include "realtime/hub.hpp"

#include <charconv>

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace dp::realtime {

namespace json = boost::json;

// An event as the hub fans it out: the frame is built once and shared by every client.
struct Hub::HubEvent {
  std::int64_t seq = 0;
  std::string topic;
  std::string agent_id;
  std::string execution_id;
  std::string workflow_id;
  std::shared_ptr<const std::string> frame;
};

namespace {

struct Sub {
  std::string id;
  std::vector<std::string> topics;  // exact names, "prefix.*" or "*"
  std::string agent_id;             // empty: any
  std::string execution_id;
  std::string workflow_id;
};

bool topic_matches(std::string_view pattern, std::string_view topic) {
  if (pattern == "*") return true;
  if (pattern.size() >= 2 && pattern.ends_with(".*")) {
    return topic.size() > pattern.size() - 1 && topic.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == topic;
}

bool valid_pattern(std::string_view p) {
  if (p.empty() || p.size() > 128) return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '-' || (c == '*' && i == p.size() - 1);
    if (!ok) return false;
  }
  return true;
}

std::string field(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string(v->as_string());
  return {};
}

std::shared_ptr<const Hub::HubEvent> make_event(std::int64_t seq, std::string topic,
                                                std::string_view payload,
                                                std::string_view correlation_id,
                                                std::int64_t created_at) {
  auto e = std::make_shared<Hub::HubEvent>();
  e->seq = seq;
  boost::system::error_code ec;
  json::value data = json::parse(payload, ec);
  if (ec || !data.is_object()) {
    // Payloads are written by our services; a bad one is a bug, but the order must hold.
    log::global().warn("event payload is not a JSON object", {{"seq", seq}, {"topic", topic}});
    data = json::object{};
  }
  const auto& o = data.as_object();
  e->agent_id = field(o, "agentId");
  e->execution_id = field(o, "executionId");
  e->workflow_id = field(o, "workflowId");
  json::object frame{{"type", "event"},
                     {"id", seq},
                     {"topic", topic},
                     {"timestamp", clock::format_iso8601(created_at)},
                     {"correlationId", correlation_id},
                     {"data", std::move(data)}};
  e->frame = std::make_shared<const std::string>(json::serialize(frame));
  e->topic = std::move(topic);
  return e;
}

std::string error_frame(const json::value& id, std::string_view code, std::string_view message) {
  return json::serialize(json::object{
      {"type", "error"}, {"id", id}, {"code", code}, {"message", message}});
}

}  // namespace

// Per-connection state. `mu` guards everything below it; never held while taking Hub::mu_.
struct Hub::Client {
  std::shared_ptr<http::WsConnection> conn;
  std::mutex mu;
  std::vector<Sub> subs;
  std::int64_t cursor = 0;     // last seq dealt with (sent or not matching)
  bool live = false;           // cursor is set and events flow
  bool catching_up = false;    // replay running; live events go to `held`
  bool closed = false;
  std::int64_t resume_from = -1;  // from ?lastEventId=, used by the first subscribe
  // A vector, not a deque: most clients never hold anything, and an empty deque is not free.
  std::vector<std::shared_ptr<const HubEvent>> held;
  std::uint64_t next_sub = 1;

  bool matches(const HubEvent& e) const {
    for (const auto& s : subs) {
      if (!s.agent_id.empty() && s.agent_id != e.agent_id) continue;
      if (!s.execution_id.empty() && s.execution_id != e.execution_id) continue;
      if (!s.workflow_id.empty() && s.workflow_id != e.workflow_id) continue;
      for (const auto& t : s.topics) {
        if (topic_matches(t, e.topic)) return true;
      }
    }
    return false;
  }
};

Hub::Hub(store::Store& store, bus::EventBus& bus, boost::asio::thread_pool& blocking,
         HubOptions options)
    : store_(store), bus_(bus), blocking_(blocking), options_(std::move(options)) {}

Hub::~Hub() { stop(); }

Status Hub::start() {
  std::pair<std::int64_t, std::int64_t> range{0, 0};
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(range, tx.outbox().seq_range());
    return Ok{};
  }));
  {
    std::lock_guard lock(mu_);
    latest_seq_ = range.second;
  }
  subscription_ = bus_.subscribe([this](const bus::Event& e) { on_event(e); });
  return Ok{};
}

void Hub::stop() { subscription_.reset(); }

std::size_t Hub::clients() const {
  std::lock_guard lock(mu_);
  return clients_.size();
}

std::int64_t Hub::latest_seq() const {
  std::lock_guard lock(mu_);
  return latest_seq_;
}

Status Hub::accept(const http::Request& request) {
  // Browsers send Origin; a page from another site must not ride on the user's session.
  if (auto origin = request.header("origin")) {
    bool allowed = false;
    if (auto host = request.header("host")) {
      allowed = *origin == "http://" + std::string(*host) || *origin == "https://" + std::string(*host);
    }
    for (const auto& o : options_.allowed_origins) allowed = allowed || *origin == o;
    if (!allowed) {
      Error e{ErrorCode::kPermissionDenied, "origin_not_allowed",
              "WebSocket connections from origin '" + std::string(origin->substr(0, 200)) +
                  "' are not allowed",
              nullptr};
      return e;
    }
  }
  if (auto last = request.query_param("lastEventId")) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(last->data(), last->data() + last->size(), n);
    if (ec != std::errc() || p != last->data() + last->size() || n < 0) {
      return Error::invalid_argument("invalid_request", "lastEventId must be a non-negative integer");
    }
  }
  return Ok{};
}

void Hub::on_open(const std::shared_ptr<http::WsConnection>& connection,
                  const http::Request& request) {
  auto c = std::make_shared<Client>();
  c->conn = connection;
  if (auto last = request.query_param("lastEventId")) {
    std::int64_t n = 0;
    std::from_chars(last->data(), last->data() + last->size(), n);
    c->resume_from = n;
  }
  std::int64_t latest = 0;
  {
    std::lock_guard lock(mu_);
    clients_.emplace(connection.get(), c);
    latest = latest_seq_;
  }
  connection->send(json::serialize(json::object{
      {"type", "hello"}, {"connection", connection->id()}, {"latestEventId", latest}}));
}

void Hub::on_close(const std::shared_ptr<http::WsConnection>& connection) {
  std::shared_ptr<Client> c;
  {
    std::lock_guard lock(mu_);
    auto it = clients_.find(connection.get());
    if (it == clients_.end()) return;
    c = std::move(it->second);
    clients_.erase(it);
  }
  std::lock_guard lock(c->mu);
  c->closed = true;
  c->held.clear();
}

void Hub::on_message(const std::shared_ptr<http::WsConnection>& connection,
                     std::string_view text) {
  std::shared_ptr<Client> c;
  {
    std::lock_guard lock(mu_);
    auto it = clients_.find(connection.get());
    if (it == clients_.end()) return;
    c = it->second;
  }
  handle(c, text);
}

void Hub::handle(const std::shared_ptr<Client>& c, std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    c->conn->send(error_frame(nullptr, "invalid_json", "message is not JSON: " + ec.message()));
    return;
  }
  if (!v.is_object()) {
    c->conn->send(error_frame(nullptr, "invalid_request", "message must be a JSON object"));
    return;
  }
  const auto& o = v.as_object();
  json::value id = nullptr;
  if (auto* i = o.if_contains("id")) {
    if (!i->is_string() && !i->is_int64() && !i->is_uint64()) {
      c->conn->send(error_frame(nullptr, "invalid_request", "id must be a string or an integer"));
      return;
    }
    if (i->is_string() && i->as_string().size() > 128) {
      c->conn->send(error_frame(nullptr, "invalid_request", "id must be at most 128 characters"));
      return;
    }
    id = *i;
  }
  auto* op_v = o.if_contains("op");
  if (op_v == nullptr || !op_v->is_string()) {
    c->conn->send(error_frame(id, "invalid_request", "op (a string) is required"));
    return;
  }
  const std::string op(op_v->as_string());
  auto reject = [&](std::string_view code, std::string_view msg) {
    c->conn->send(error_frame(id, code, msg));
  };
  auto only_keys = [&](std::initializer_list<std::string_view> keys) -> bool {
    for (const auto& kv : o) {
      if (std::find(keys.begin(), keys.end(), kv.key()) == keys.end()) {
        reject("invalid_request", "unknown field '" + std::string(kv.key().substr(0, 64)) + "'");
        return false;
      }
    }
    return true;
  };

  if (op == "ping") {
    if (!only_keys({"op", "id"})) return;
    c->conn->send(json::serialize(json::object{{"type", "pong"}, {"id", id}}));
    return;
  }
  if (op == "unsubscribe") {
    if (!only_keys({"op", "id", "topics", "subscription"})) return;
    std::vector<std::string> topics;
    if (auto* t = o.if_contains("topics")) {
      if (!t->is_array()) return reject("invalid_request", "topics must be an array of strings");
      for (const auto& x : t->as_array()) {
        if (!x.is_string()) return reject("invalid_request", "topics must be an array of strings");
        topics.emplace_back(x.as_string());
      }
    }
    std::string sub_id;
    if (auto* s = o.if_contains("subscription")) {
      if (!s->is_string()) return reject("invalid_request", "subscription must be a string");
      sub_id = std::string(s->as_string());
    }
    std::size_t removed = 0;
    {
      std::lock_guard lock(c->mu);
      auto& subs = c->subs;
      for (auto& s : subs) {
        if (!sub_id.empty() && s.id != sub_id) continue;
        if (topics.empty()) {
          removed += s.topics.size();
          s.topics.clear();
        } else {
          std::erase_if(s.topics, [&](const std::string& t) {
            const bool hit = std::find(topics.begin(), topics.end(), t) != topics.end();
            removed += hit ? 1 : 0;
            return hit;
          });
        }
      }
      std::erase_if(subs, [](const Sub& s) { return s.topics.empty(); });
    }
    c->conn->send(json::serialize(json::object{
        {"type", "ack"}, {"id", id}, {"op", "unsubscribe"}, {"removedTopics", removed}}));
    return;
  }
  if (op != "subscribe") {
    reject("unknown_op", "op must be subscribe, unsubscribe or ping");
    return;
  }
  if (!only_keys({"op", "id", "topics", "agentId", "executionId", "workflowId", "lastEventId"})) {
    return;
  }
  Sub sub;
  auto* t = o.if_contains("topics");
  if (t == nullptr || !t->is_array() || t->as_array().empty()) {
    return reject("invalid_request", "topics must be a non-empty array of topic patterns");
  }
  if (t->as_array().size() > options_.max_topics) {
    return reject("invalid_request", "at most " + std::to_string(options_.max_topics) + " topics");
  }
  for (const auto& x : t->as_array()) {
    if (!x.is_string() || !valid_pattern(x.as_string())) {
      return reject("invalid_request",
                    "each topic must be a name like agent.status.update, a prefix like agent.* or *");
    }
    sub.topics.emplace_back(x.as_string());
  }
  for (auto [key, dest] : {std::pair<std::string_view, std::string*>{"agentId", &sub.agent_id},
                           {"executionId", &sub.execution_id},
                           {"workflowId", &sub.workflow_id}}) {
    if (auto* f = o.if_contains(key)) {
      if (!f->is_string() || f->as_string().empty() || f->as_string().size() > 128) {
        return reject("invalid_request", std::string(key) + " must be a non-empty string");
      }
      *dest = std::string(f->as_string());
    }
  }
  std::int64_t resume = -1;
  if (auto* l = o.if_contains("lastEventId")) {
    if (l->is_int64() && l->as_int64() >= 0) {
      resume = l->as_int64();
    } else if (l->is_uint64() && l->as_uint64() <= INT64_MAX) {
      resume = static_cast<std::int64_t>(l->as_uint64());
    } else {
      return reject("invalid_request", "lastEventId must be a non-negative integer");
    }
  }

  std::int64_t latest = 0;
  {
    std::lock_guard lock(mu_);
    latest = latest_seq_;
  }
  bool start_catch_up = false;
  {
    std::lock_guard lock(c->mu);
    if (c->subs.size() >= options_.max_subscriptions) {
      return reject("too_many_subscriptions",
                    "at most " + std::to_string(options_.max_subscriptions) +
                        " subscriptions per connection");
    }
    if (resume >= 0 && c->live) {
      return reject("invalid_request",
                    "lastEventId is only accepted before the first event flows on a connection");
    }
    sub.id = "s" + std::to_string(c->next_sub++);
    c->subs.push_back(sub);
    if (!c->live) {
      if (resume < 0) resume = c->resume_from;
      c->live = true;
      if (resume >= 0 && resume < latest) {
        c->cursor = resume;
        c->catching_up = true;
        start_catch_up = true;
      } else {
        c->cursor = std::max<std::int64_t>(latest, resume);
      }
    }
    // The ack goes out before any replayed event: both are queued on the connection in order.
    c->conn->send(json::serialize(json::object{{"type", "ack"},
                                               {"id", id},
                                               {"op", "subscribe"},
                                               {"subscription", sub.id},
                                               {"lastEventId", c->cursor}}));
  }
  if (start_catch_up) begin_catch_up(c);
}

void Hub::begin_catch_up(const std::shared_ptr<Client>& c) {
  boost::asio::post(blocking_, [this, c] { catch_up(c); });
}

// Runs on the blocking pool. While it runs, on_event holds live events in `c->held`.
void Hub::catch_up(const std::shared_ptr<Client>& c) {
  std::int64_t cursor = 0;
  {
    std::lock_guard lock(c->mu);
    if (c->closed) return;
    cursor = c->cursor;
  }
  std::pair<std::int64_t, std::int64_t> range{0, 0};
  Status s = store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(range, tx.outbox().seq_range());
    return Ok{};
  });
  if (s.ok() && range.first > cursor + 1) {
    // The outbox no longer holds what this client missed.
    std::lock_guard lock(c->mu);
    c->conn->send(json::serialize(json::object{{"type", "resync_required"},
                                               {"lastEventId", cursor},
                                               {"oldestEventId", range.first},
                                               {"latestEventId", range.second}}));
    // Continue live from what is held (or the store's newest).
    c->cursor = c->held.empty() ? range.second : c->held.front()->seq - 1;
    cursor = c->cursor;
  }
  while (s.ok()) {
    std::vector<store::OutboxEvent> page;
    s = store_.read([&](store::Tx& tx) -> Status {
      DP_ASSIGN_OR_RETURN(page, tx.outbox().since(cursor, options_.replay_page));
      return Ok{};
    });
    if (!s.ok()) break;
    std::lock_guard lock(c->mu);
    if (c->closed) return;
    if (page.empty() && !c->held.empty() && c->held.front()->seq > cursor + 1) {
      // What lies between is gone from the outbox (pruned): say so and go on from the held.
      c->conn->send(json::serialize(json::object{{"type", "resync_required"},
                                                 {"lastEventId", cursor},
                                                 {"oldestEventId", c->held.front()->seq},
                                                 {"latestEventId", c->held.back()->seq}}));
      cursor = c->held.front()->seq - 1;
    }
    for (auto& row : page) {
      if (row.seq != cursor + 1) break;  // an uncommitted gap: take it from the held events
      auto e = make_event(row.seq, std::move(row.topic), row.payload, row.correlation_id,
                          row.created_at);
      if (c->matches(*e)) c->conn->send(e->frame);
      cursor = row.seq;
    }
    c->cursor = cursor;
    // Drain held events that continue the sequence; finish when nothing is missing.
    std::size_t used = 0;
    for (; used < c->held.size() && c->held[used]->seq <= cursor + 1; ++used) {
      const auto& e = c->held[used];
      if (e->seq <= cursor) continue;
      if (c->matches(*e)) c->conn->send(e->frame);
      cursor = c->cursor = e->seq;
    }
    c->held.erase(c->held.begin(), c->held.begin() + static_cast<std::ptrdiff_t>(used));
    const bool page_full = static_cast<int>(page.size()) >= options_.replay_page;
    if (c->held.empty() && !page_full) {
      c->catching_up = false;
      return;
    }
  }
  // The store is down: tell the client rather than leave it waiting in silence.
  log::global().warn("websocket catch-up failed", {{"error", s.error().message}});
  std::lock_guard lock(c->mu);
  c->conn->close(1011, "cannot replay missed events: store unavailable");
}

void Hub::on_event(const bus::Event& event) {
  auto e = make_event(event.seq, event.topic, event.payload, event.correlation_id,
                      event.created_at);
  std::vector<std::shared_ptr<Client>> clients;
  {
    std::lock_guard lock(mu_);
    if (e->seq <= latest_seq_) return;  // already seen (a republished batch)
    latest_seq_ = e->seq;
    clients.reserve(clients_.size());
    for (auto& [k, c] : clients_) clients.push_back(c);
  }
  for (auto& c : clients) {
    bool gap = false;
    {
      std::lock_guard lock(c->mu);
      if (!c->live || c->closed) continue;
      if (c->catching_up) {
        if (c->held.size() >= options_.max_held) {
          c->held.clear();
          c->closed = true;
          c->conn->close(1008, "slow consumer: too far behind");
          continue;
        }
        c->held.push_back(e);
        continue;
      }
      if (e->seq <= c->cursor) continue;
      if (e->seq > c->cursor + 1) {
        // Something between the bus and us was lost: fetch it from the outbox.
        c->catching_up = true;
        c->held.push_back(e);
        gap = true;
      } else {
        if (c->matches(*e)) c->conn->send(e->frame);
        c->cursor = e->seq;
      }
    }
    if (gap) begin_catch_up(c);
  }
}

}  // namespace dp::realtime
