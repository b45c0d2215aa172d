#include "bus/redis/stream_reply.hpp"

#include <charconv>
#include <limits>

namespace dp::bus::redis {
namespace {

Error bad_shape(std::string_view what) {
  return Error::internal("redis: unexpected reply shape: " + std::string(what));
}

template <class Int>
std::optional<Int> parse_int(std::string_view s) {
  Int v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Integers arrive as RESP integers, but tolerate them as strings (as some proxies send).
std::optional<std::int64_t> as_int(const Value& v) {
  if (v.type == Value::Type::kInteger) return v.integer;
  if (v.type == Value::Type::kString) return parse_int<std::int64_t>(v.str);
  return std::nullopt;
}

}  // namespace

std::string StreamId::to_string() const {
  return std::to_string(ms) + "-" + std::to_string(seq);
}

std::optional<StreamId> parse_stream_id(std::string_view text) {
  const auto dash = text.find('-');
  StreamId id;
  auto ms = parse_int<std::uint64_t>(text.substr(0, dash));
  if (!ms) return std::nullopt;
  id.ms = *ms;
  if (dash != std::string_view::npos) {
    auto seq = parse_int<std::uint64_t>(text.substr(dash + 1));
    if (!seq) return std::nullopt;
    id.seq = *seq;
  }
  return id;
}

const std::string* StreamEntry::field(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

ParsedEntries parse_entries(const Value& entries) {
  ParsedEntries out;
  if (!entries.is_array()) {
    ++out.malformed;
    return out;
  }
  for (const Value& e : entries.elements) {
    if (!e.is_array() || e.elements.empty() || !e.elements[0].is_string() ||
        !parse_stream_id(e.elements[0].str)) {
      ++out.malformed;
      continue;
    }
    const std::string& id = e.elements[0].str;
    if (e.elements.size() != 2 || !e.elements[1].is_array() ||
        e.elements[1].elements.size() % 2 != 0) {
      out.skipped_ids.push_back(id);  // nil fields: an entry deleted while pending
      continue;
    }
    StreamEntry entry;
    entry.id = id;
    bool ok = true;
    const auto& kv = e.elements[1].elements;
    for (std::size_t i = 0; i + 1 < kv.size() && ok; i += 2) {
      ok = kv[i].is_string() && kv[i + 1].is_string();
      if (ok) entry.fields.emplace_back(kv[i].str, kv[i + 1].str);
    }
    if (ok) {
      out.entries.push_back(std::move(entry));
    } else {
      out.skipped_ids.push_back(id);
    }
  }
  return out;
}

Result<ParsedEntries> parse_read_reply(const Value& reply, std::string_view key) {
  if (reply.is_nil()) return ParsedEntries{};  // BLOCK timed out
  if (reply.is_error()) return Error::internal("redis: " + reply.str);
  if (!reply.is_array()) return bad_shape("XREAD reply is not an array");
  ParsedEntries out;
  for (const Value& stream : reply.elements) {
    if (!stream.is_array() || stream.elements.size() != 2 || !stream.elements[0].is_string()) {
      return bad_shape("XREAD stream element is not [key, entries]");
    }
    if (stream.elements[0].str != key) continue;
    ParsedEntries part = parse_entries(stream.elements[1]);
    for (auto& e : part.entries) out.entries.push_back(std::move(e));
    for (auto& id : part.skipped_ids) out.skipped_ids.push_back(std::move(id));
    out.malformed += part.malformed;
  }
  return out;
}

Result<AutoclaimReply> parse_autoclaim_reply(const Value& reply) {
  if (reply.is_error()) return Error::internal("redis: " + reply.str);
  if (!reply.is_array() || reply.elements.size() < 2 || !reply.elements[0].is_string() ||
      !parse_stream_id(reply.elements[0].str)) {
    return bad_shape("XAUTOCLAIM reply is not [cursor, entries, ...]");
  }
  AutoclaimReply out;
  out.next_cursor = reply.elements[0].str;
  out.claimed = parse_entries(reply.elements[1]);
  if (reply.elements.size() >= 3 && reply.elements[2].is_array()) {
    for (const Value& id : reply.elements[2].elements) {
      if (id.is_string() && parse_stream_id(id.str)) out.deleted_ids.push_back(id.str);
    }
  }
  return out;
}

Result<std::vector<PendingInfo>> parse_pending_reply(const Value& reply) {
  if (reply.is_error()) return Error::internal("redis: " + reply.str);
  if (!reply.is_array()) return bad_shape("XPENDING reply is not an array");
  std::vector<PendingInfo> out;
  for (const Value& e : reply.elements) {
    if (!e.is_array() || e.elements.size() < 4 || !e.elements[0].is_string() ||
        !e.elements[1].is_string()) {
      continue;  // one odd row does not spoil the others
    }
    auto idle = as_int(e.elements[2]);
    auto deliveries = as_int(e.elements[3]);
    if (!idle || !deliveries) continue;
    out.push_back(PendingInfo{e.elements[0].str, e.elements[1].str, *idle, *deliveries});
  }
  return out;
}

Result<std::vector<GroupInfo>> parse_groups_reply(const Value& reply) {
  if (reply.is_error()) return Error::internal("redis: " + reply.str);
  if (!reply.is_array()) return bad_shape("XINFO GROUPS reply is not an array");
  std::vector<GroupInfo> out;
  for (const Value& g : reply.elements) {
    if (!g.is_array() || g.elements.size() % 2 != 0) continue;
    GroupInfo info;
    bool has_name = false;
    for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      if (!g.elements[i].is_string()) continue;
      const std::string& k = g.elements[i].str;
      const Value& v = g.elements[i + 1];
      if (k == "name" && v.is_string()) {
        info.name = v.str;
        has_name = true;
      } else if (k == "pending") {
        info.pending = as_int(v).value_or(0);
      } else if (k == "lag") {
        info.lag = as_int(v);  // nil: unknown
      } else if (k == "last-delivered-id" && v.is_string()) {
        info.last_delivered_id = v.str;
      }
    }
    if (has_name) out.push_back(std::move(info));
  }
  return out;
}

std::string event_entry_id(std::int64_t seq) { return std::to_string(seq) + "-1"; }

Command event_xadd(std::string_view key, std::int64_t max_events, const Event& event) {
  return Command{"XADD",
                 std::string(key),
                 "MAXLEN",
                 "~",
                 std::to_string(max_events),
                 event_entry_id(event.seq),
                 "topic",
                 event.topic,
                 "payload",
                 event.payload,
                 "cid",
                 event.correlation_id,
                 "at",
                 std::to_string(event.created_at)};
}

Result<Event> event_from_entry(const StreamEntry& entry) {
  auto id = parse_stream_id(entry.id);
  if (!id || id->ms == 0 ||
      id->ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return Error::invalid_argument("bad_entry", "entry id does not carry a seq: " + entry.id);
  }
  const std::string* topic = entry.field("topic");
  const std::string* payload = entry.field("payload");
  if (topic == nullptr || topic->empty() || payload == nullptr) {
    return Error::invalid_argument("bad_entry", "entry " + entry.id + " lacks topic or payload");
  }
  Event e;
  e.seq = static_cast<std::int64_t>(id->ms);
  e.topic = *topic;
  e.payload = *payload;
  if (const std::string* cid = entry.field("cid")) e.correlation_id = *cid;
  if (const std::string* at = entry.field("at")) e.created_at = parse_int<std::int64_t>(*at).value_or(0);
  return e;
}

}  // namespace dp::bus::redis
