#include "store/audit_chain.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <vector>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace dp::store::audit_chain {
namespace {

void text_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += '=';
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += '\n';
}

void int_field(std::string& out, std::string_view name, std::int64_t value) {
  out += name;
  out += '=';
  out += std::to_string(value);
  out += '\n';
}

void write_canonical(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      const auto& o = v.get_object();
      std::vector<std::string_view> keys;
      keys.reserve(o.size());
      for (const auto& kv : o) keys.push_back(kv.key());
      std::sort(keys.begin(), keys.end());
      out += '{';
      bool first = true;
      for (auto k : keys) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::value(k));
        out += ':';
        write_canonical(out, o.at(k));
      }
      out += '}';
      break;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_canonical(out, e);
      }
      out += ']';
      break;
    }
    default:
      out += boost::json::serialize(v);
  }
}

}  // namespace

std::string canonical_form(const model::AuditRecord& r) {
  std::string out = "devplane-audit-v1\n";
  int_field(out, "seq", r.seq);
  text_field(out, "id", r.id);
  int_field(out, "at", r.at);
  text_field(out, "actor_id", r.actor_id);
  text_field(out, "actor_name", r.actor_name);
  text_field(out, "actor_kind", r.actor_kind);
  text_field(out, "action", r.action);
  text_field(out, "target", r.target);
  text_field(out, "outcome", r.outcome);
  int_field(out, "status", r.status);
  text_field(out, "correlation_id", r.correlation_id);
  text_field(out, "source_address", r.source_address);
  text_field(out, "details", r.details);
  text_field(out, "prev_hash", r.prev_hash);
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  // sodium_init is idempotent and thread-safe; it picks the fastest implementation.
  static const int kSodiumReady = sodium_init();
  (void)kSodiumReady;
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

std::string compute_hash(const model::AuditRecord& record) {
  return sha256_hex(canonical_form(record));
}

std::string canonical_json(const boost::json::value& value) {
  std::string out;
  write_canonical(out, value);
  return out;
}

}  // namespace dp::store::audit_chain
