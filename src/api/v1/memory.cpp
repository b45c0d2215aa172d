// /api/v1/memory: add a note, search by meaning, read and delete one memory (docs/memory.md).

#include <charconv>
#include <cmath>
#include <string>

#include <boost/json/array.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/ids.hpp"
#include "memory/memory_service.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

constexpr std::size_t kMaxTextBytes = 16 * 1024;
constexpr std::size_t kMaxQueryBytes = 2048;
constexpr int kMaxK = 50;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

// Kinds are short snake_case words: note, task_outcome, decision, ...
bool valid_kind(std::string_view k) {
  if (k.empty() || k.size() > 32) return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return k.front() >= 'a' && k.front() <= 'z';
}

// Text may hold newlines and tabs, no other control characters, and must be UTF-8.
bool valid_text(std::string_view s) {
  if (!utf8_length(s)) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t' && c != '\r') || u == 0x7f) return false;
  }
  return true;
}

boost::json::object check_metadata(Validator& v, const boost::json::object& m) {
  boost::json::object out;
  v.only_keys(m, {"agentId", "taskId", "executionId", "status", "labels"}, "metadata.");
  for (const char* key : {"agentId", "taskId", "executionId"}) {
    const std::string field = std::string("metadata.") + key;
    if (auto id = v.string(m, key, field, false, 1, 64)) {
      if (!ids::is_uuid(*id)) {
        v.fail(field, "bad_format", field + " must be a UUID");
      } else {
        out[key] = *id;
      }
    }
  }
  if (auto s = v.string(m, "status", "metadata.status", false, 1, 32)) {
    if (!valid_kind(*s)) {
      v.fail("metadata.status", "bad_format", "metadata.status must be a lower-case word ([a-z0-9_])");
    } else {
      out["status"] = *s;
    }
  }
  if (const auto* labels = v.array(m, "labels", "metadata.labels", false, 20)) {
    boost::json::array kept;
    for (const auto& l : *labels) {
      if (!l.is_string() || l.as_string().empty() || l.as_string().size() > 64 ||
          has_control_chars(l.as_string())) {
        v.fail("metadata.labels", "bad_format", "metadata.labels must be strings of 1..64 printable characters");
        break;
      }
      kept.push_back(l);
    }
    out["labels"] = std::move(kept);
  }
  return out;
}

std::optional<Error> check_id(const Request& req) { return check_uuid(req.param("id"), "memory"); }

Response create(memory::MemoryService& svc, Request& req) {
  auto body = parse_object_body(req.body);
  if (!body.ok()) return fail(body.error(), req);
  const auto& o = *body;
  Validator v;
  v.only_keys(o, {"text", "kind", "metadata"});
  memory::NewMemory m;
  if (auto t = v.string(o, "text", "text", true, 1, kMaxTextBytes)) {
    if (!valid_text(*t)) {
      v.fail("text", "bad_format", "text must be UTF-8 without control characters other than newlines and tabs");
    } else {
      m.text = std::move(*t);
    }
  }
  if (auto k = v.string(o, "kind", "kind", false, 1, 32)) {
    if (!valid_kind(*k)) {
      v.fail("kind", "bad_format", "kind must be a lower-case word of 1..32 characters ([a-z0-9_])");
    } else {
      m.kind = std::move(*k);
    }
  }
  if (const auto* meta = v.object(o, "metadata", "metadata", false)) m.metadata = check_metadata(v, *meta);
  if (auto s = v.status("invalid memory"); !s.ok()) return fail(s.error(), req);
  m.created_by = req.caller.authenticated() ? req.caller.kind + ":" + req.caller.id : "";
  auto r = svc.add(std::move(m), req.request_id);
  if (!r.ok()) {
    if (r.error().reason == "empty_text") {
      Validator e;
      e.fail("text", "no_words", r.error().message);
      return fail(e.status("invalid memory").error(), req);
    }
    return fail(r.error(), req);
  }
  Response resp = http::data_response(201, memory::to_json(*r), {}, req.request_id);
  resp.set_header("Location", "/api/v1/memory/" + r->id);
  return resp;
}

Response search(memory::MemoryService& svc, Request& req) {
  memory::SearchQuery q;
  bool have_q = false;
  Validator v;
  for (const auto& [k, val] : req.query) {
    if (k == "q") {
      if (val.empty() || val.size() > kMaxQueryBytes || !valid_text(val)) {
        v.fail("q", "out_of_range", "q must be 1..2048 bytes of UTF-8 text");
      } else {
        q.text = val;
        have_q = true;
      }
    } else if (k == "k") {
      int n = 0;
      auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), n);
      if (ec != std::errc() || p != val.data() + val.size() || n < 1 || n > kMaxK) {
        v.fail("k", "out_of_range", "k must be an integer in 1..50");
      } else {
        q.k = static_cast<std::size_t>(n);
      }
    } else if (k == "kind") {
      if (!valid_kind(val)) {
        v.fail("kind", "bad_format", "kind must be a lower-case word of 1..32 characters ([a-z0-9_])");
      } else {
        q.kind = val;
      }
    } else if (k == "agentId") {
      if (!ids::is_uuid(val)) {
        v.fail("agentId", "bad_format", "agentId must be an agent id (a UUID)");
      } else {
        q.agent_id = val;
      }
    } else if (k == "minScore") {
      char* end = nullptr;
      const std::string s(val);
      const double d = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d) || d < -1 || d > 1) {
        v.fail("minScore", "out_of_range", "minScore must be a number in -1..1");
      } else {
        q.min_score = static_cast<float>(d);
      }
    } else {
      v.unknown_query(k);
    }
  }
  if (!have_q && v.ok()) v.fail("q", "required", "q (the text to search for) is required");
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto hits = svc.search(q);
  if (!hits.ok()) {
    if (hits.error().reason == "empty_text") {
      Validator e;
      e.fail("q", "no_words", hits.error().message);
      return fail(e.status("invalid query").error(), req);
    }
    return fail(hits.error(), req);
  }
  boost::json::array items;
  for (const auto& h : *hits) {
    auto o = memory::to_json(h.memory);
    o["score"] = std::round(static_cast<double>(h.score) * 1e4) / 1e4;
    items.push_back(std::move(o));
  }
  const auto count = static_cast<std::int64_t>(items.size());
  return http::data_response(200, std::move(items),
                             boost::json::object{{"count", count}, {"k", q.k}}, req.request_id);
}

Response get_one(memory::MemoryService& svc, Request& req) {
  if (auto e = check_id(req)) return fail(*e, req);
  auto m = svc.get(std::string(req.param("id")));
  if (!m.ok()) return fail(m.error(), req);
  return http::data_response(200, memory::to_json(*m), {}, req.request_id);
}

Response remove(memory::MemoryService& svc, Request& req) {
  if (auto e = check_id(req)) return fail(*e, req);
  if (auto s = svc.remove(std::string(req.param("id")), req.request_id); !s.ok()) return fail(s.error(), req);
  Response r;
  r.status = 204;
  return r;
}

}  // namespace

void register_memory_routes(http::Router& router, memory::MemoryService& svc) {
  auto* s = &svc;
  router.add("POST", "/api/v1/memory", [s](Request& r) { return create(*s, r); });
  router.add("GET", "/api/v1/memory/search", [s](Request& r) { return search(*s, r); });
  router.add("GET", "/api/v1/memory/:id", [s](Request& r) { return get_one(*s, r); });
  router.add("DELETE", "/api/v1/memory/:id", [s](Request& r) { return remove(*s, r); });
}

}  // namespace dp::api::v1
