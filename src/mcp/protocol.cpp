#include "mcp/protocol.hpp"

#include <algorithm>

#include <sodium.h>

#include <boost/json/serialize.hpp>

namespace dp::mcp {
namespace {

namespace json = boost::json;

Error malformed(std::string message) {
  return Error::invalid_argument("invalid_message", std::move(message));
}

std::string str_or(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

void canonical(const json::value& v, std::string& out) {
  if (v.is_object()) {
    const auto& o = v.get_object();
    std::vector<std::pair<std::string_view, const json::value*>> members;
    members.reserve(o.size());
    for (const auto& kv : o) members.emplace_back(kv.key(), &kv.value());
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    out.push_back('{');
    bool first = true;
    for (const auto& [k, val] : members) {
      if (!first) out.push_back(',');
      first = false;
      out += json::serialize(json::value(json::string(k)));
      out.push_back(':');
      canonical(*val, out);
    }
    out.push_back('}');
  } else if (v.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const auto& item : v.get_array()) {
      if (!first) out.push_back(',');
      first = false;
      canonical(item, out);
    }
    out.push_back(']');
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

bool is_supported_version(std::string_view version) noexcept {
  return std::find(kSupportedProtocolVersions.begin(), kSupportedProtocolVersions.end(), version) !=
         kSupportedProtocolVersions.end();
}

bool version_allows_batch(std::string_view version) noexcept { return version == "2025-03-26"; }

std::string canonical_json(const json::value& v) {
  std::string out;
  canonical(v, out);
  return out;
}

std::string Tool::pin_hash() const {
  json::object o = to_json(*this);
  const std::string text = canonical_json(o);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : digest) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

json::object to_json(const Tool& t) {
  json::object o{{"name", t.name}, {"inputSchema", t.input_schema}};
  if (!t.title.empty()) o["title"] = t.title;
  if (!t.description.empty()) o["description"] = t.description;
  if (!t.output_schema.is_null()) o["outputSchema"] = t.output_schema;
  if (!t.annotations.is_null()) o["annotations"] = t.annotations;
  return o;
}

Result<InitializeResult> parse_initialize_result(const json::value& v) {
  if (!v.is_object()) return malformed("initialize result is not an object");
  const auto& o = v.get_object();
  InitializeResult r;
  r.protocol_version = str_or(o, "protocolVersion");
  if (r.protocol_version.empty()) return malformed("initialize result has no protocolVersion");
  if (const auto* c = o.if_contains("capabilities"); c != nullptr && c->is_object()) {
    r.capabilities = c->get_object();
  }
  if (const auto* s = o.if_contains("serverInfo"); s != nullptr && s->is_object()) {
    r.server_info.name = str_or(s->get_object(), "name");
    r.server_info.version = str_or(s->get_object(), "version");
    r.server_info.title = str_or(s->get_object(), "title");
  }
  r.instructions = str_or(o, "instructions");
  return r;
}

Result<Tool> parse_tool(const json::value& v) {
  if (!v.is_object()) return malformed("a tool is not an object");
  const auto& o = v.get_object();
  Tool t;
  t.name = str_or(o, "name");
  if (t.name.empty() || t.name.size() > 128) return malformed("a tool needs a name of 1 to 128 characters");
  t.title = str_or(o, "title");
  t.description = str_or(o, "description");
  const auto* schema = o.if_contains("inputSchema");
  if (schema == nullptr || !schema->is_object()) {
    return malformed("tool '" + t.name + "' has no inputSchema object");
  }
  t.input_schema = schema->get_object();
  if (const auto* os = o.if_contains("outputSchema"); os != nullptr && os->is_object()) {
    t.output_schema = *os;
  }
  if (const auto* a = o.if_contains("annotations"); a != nullptr && a->is_object()) {
    t.annotations = *a;
  }
  return t;
}

Result<CallToolResult> parse_call_tool_result(const json::value& v) {
  if (!v.is_object()) return malformed("tools/call result is not an object");
  const auto& o = v.get_object();
  CallToolResult r;
  r.raw = v;
  if (const auto* c = o.if_contains("content")) {
    if (!c->is_array()) return malformed("tools/call result content is not an array");
    r.content = c->get_array();
  }
  if (const auto* s = o.if_contains("structuredContent"); s != nullptr && !s->is_null()) {
    r.structured_content = *s;
  }
  if (const auto* e = o.if_contains("isError"); e != nullptr && e->is_bool()) {
    r.is_error = e->get_bool();
  }
  return r;
}

}  // namespace dp::mcp
