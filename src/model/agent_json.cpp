#include "model/agent_json.hpp"

#include <charconv>
#include <string_view>
#include <utility>

#include <boost/json/serializer.hpp>

#include "core/clock.hpp"

namespace dp::model {

namespace {

// The API's shape of an agent as a JSON tree (append_json below writes the same as text).
boost::json::object agent_json(const Agent& a, boost::json::value labels,
                               boost::json::value config) {
  boost::json::object o;
  o.reserve(11);
  o.emplace("id", a.id);
  o.emplace("name", a.name);
  o.emplace("type", a.type);
  o.emplace("status", to_string(a.status));
  o.emplace("statusReason", a.status_reason.empty() ? boost::json::value(nullptr)
                                                    : boost::json::value(a.status_reason));
  o.emplace("description", a.description);
  o.emplace("labels", std::move(labels));
  o.emplace("config", std::move(config));
  o.emplace("version", a.version);
  o.emplace("createdAt", clock::format_iso8601(a.created_at));
  o.emplace("updatedAt", clock::format_iso8601(a.updated_at));
  return o;
}

// A JSON string literal, escaped as boost::json's serializer does: quote, backslash and
// control characters; everything else (UTF-8 included) as it is.
void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the stretch that needs no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void append_object(std::string& out, const boost::json::object& o) {
  if (o.empty()) {
    out += "{}";
    return;
  }
  boost::json::serializer sr;
  sr.reset(&o);
  char buf[1024];
  while (!sr.done()) out += sr.read(buf, sizeof buf);
}

}  // namespace

void append_json(std::string& out, const Agent& a) {
  out += "{\"id\":";
  append_string(out, a.id);
  out += ",\"name\":";
  append_string(out, a.name);
  out += ",\"type\":";
  append_string(out, a.type);
  out += ",\"status\":";
  append_string(out, to_string(a.status));
  out += ",\"statusReason\":";
  if (a.status_reason.empty()) {
    out += "null";
  } else {
    append_string(out, a.status_reason);
  }
  out += ",\"description\":";
  append_string(out, a.description);
  out += ",\"labels\":";
  append_object(out, a.labels);
  out += ",\"config\":";
  append_object(out, a.config);
  out += ",\"version\":";
  char num[24];
  const auto [end, ec] = std::to_chars(num, num + sizeof num, a.version);
  out.append(num, ec == std::errc() ? static_cast<std::size_t>(end - num) : 0);
  out += ",\"createdAt\":";
  append_string(out, clock::format_iso8601(a.created_at));
  out += ",\"updatedAt\":";
  append_string(out, clock::format_iso8601(a.updated_at));
  out += '}';
}

boost::json::object to_json(const Agent& a) { return agent_json(a, a.labels, a.config); }

boost::json::object to_json(const AgentStateEntry& e) {
  boost::json::object o;
  o["id"] = e.id;
  o["agentId"] = e.agent_id;
  o["from"] = e.from_status.empty() ? boost::json::value(nullptr) : boost::json::value(e.from_status);
  o["status"] = e.status;
  o["reason"] = e.reason;
  o["version"] = e.version;
  o["timestamp"] = clock::format_iso8601(e.created_at);
  return o;
}

}  // namespace dp::model
