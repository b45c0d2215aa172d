#include "audit/audit_service.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "store/audit_chain.hpp"

namespace dp::audit {
namespace {

constexpr std::size_t kMaxField = 256;
constexpr std::size_t kMaxAction = 512;
constexpr std::size_t kMaxDetails = 8 * 1024;
constexpr std::size_t kMaxQueryKeys = 32;

// Length of the valid UTF-8 sequence at s[i], or 0 when invalid.
std::size_t utf8_seq(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
    n = 2;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
  } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
    n = 4;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  const auto c1 = static_cast<unsigned char>(s[i + 1]);
  if (n == 3 && ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))) return 0;  // overlong, surrogate
  if (n == 4 && ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))) return 0;
  return n;
}

// Fields come from the network (a failed login's username, a route parameter): keep them
// storable in both databases (valid UTF-8, no NUL) and readable (no control characters),
// and bounded.
std::string clean(std::string_view s, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_seq(s, i);
    std::string_view piece;
    if (n == 0) {
      piece = "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      piece = s.substr(i, n);
      i += n;
      if (n == 1 && (static_cast<unsigned char>(piece[0]) < 0x20 || piece[0] == 0x7F)) piece = "?";
    }
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
  }
  return out;
}

std::string singular(std::string_view plural) {
  std::string s(plural);
  if (s.size() > 1 && s.back() == 's' && s[s.size() - 2] != 's') s.pop_back();
  return s;
}

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const std::size_t j = path.find('/', i);
    const std::size_t end = j == std::string_view::npos ? path.size() : j;
    if (end > i) out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

// The `error.code` of an error envelope: a stable machine code, never user content.
std::string error_code(const http::Response& response) {
  if (response.body.empty() || response.body.size() > 64 * 1024) return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(response.body, ec);
  if (ec || !v.is_object()) return {};
  const auto* err = v.as_object().if_contains("error");
  if (err == nullptr || !err->is_object()) return {};
  const auto* code = err->as_object().if_contains("code");
  if (code == nullptr || !code->is_string()) return {};
  return clean(code->as_string(), 64);
}

std::string created_id(const http::Response& response) {
  if (response.status != 201 || response.body.size() > 256 * 1024) return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(response.body, ec);
  if (ec || !v.is_object()) return {};
  const auto* data = v.as_object().if_contains("data");
  if (data == nullptr || !data->is_object()) return {};
  const auto* id = data->as_object().if_contains("id");
  if (id == nullptr || !id->is_string()) return {};
  return clean(id->as_string(), 128);
}

}  // namespace

AuditService::AuditService(store::Store& store, Commit commit) : store_(store), commit_(commit) {}

void AuditService::record(Entry e) {
  try {
    model::AuditRecord r;
    r.id = ids::uuid_v7();
    r.at = e.at != 0 ? e.at : clock::now_ms();
    r.actor_id = clean(e.actor_id, kMaxField);
    r.actor_name = clean(e.actor_name, kMaxField);
    r.actor_kind = clean(e.actor_kind.empty() ? "anonymous" : e.actor_kind, 32);
    r.action = clean(e.action, kMaxAction);
    r.target = clean(e.target, kMaxField);
    r.outcome = clean(e.outcome, 32);
    r.status = e.status;
    r.correlation_id = clean(e.correlation_id, 128);
    r.source_address = clean(e.source_address, 64);
    // Serialized JSON holds no raw control characters; clean() only mends invalid UTF-8,
    // which can only sit inside strings, so the text stays valid JSON.
    r.details = clean(store::audit_chain::canonical_json(e.details), kMaxDetails * 2);
    if (r.details.size() > kMaxDetails) r.details = R"({"truncated":true})";
    const auto append = [&](store::Tx& tx) -> Status { return tx.audit().append(r); };
    Status s = commit_ == Commit::kDurable ? store_.write(append) : store_.write_relaxed(append);
    if (s.ok()) return;
    failures_.fetch_add(1);
    log::global().error("audit entry not recorded",
                        {{"error", s.error().message},
                         {"action", r.action},
                         {"correlationId", r.correlation_id}});
  } catch (const std::exception& ex) {
    failures_.fetch_add(1);
    log::global().error("audit entry not recorded", {{"error", ex.what()}});
  } catch (...) {
    failures_.fetch_add(1);
    log::global().error("audit entry not recorded", {{"error", "unknown exception"}});
  }
  if (on_failure_) {
    try {
      on_failure_();
    } catch (...) {  // a metrics hook must not break the caller either
    }
  }
}

void AuditService::on_handled(const http::Request& request, const http::Response& response) {
  Entry e;
  const http::Caller& c = request.caller;
  e.actor_id = c.id;
  e.actor_name = c.name;
  e.actor_kind = c.authenticated() ? (c.kind.empty() ? "user" : c.kind) : "anonymous";
  e.action = request.method + " " + (request.route.empty() ? request.path : request.route);
  e.target = target_for(request, response);
  e.outcome = outcome_for(response.status);
  e.status = static_cast<int>(response.status);
  e.correlation_id = request.request_id;
  e.source_address = request.remote_address;
  if (!c.role.empty()) e.details["role"] = c.role;
  if (!c.agent_id.empty()) e.details["agentId"] = c.agent_id;
  if (!request.query.empty()) {
    // Names only: a value may be a token or a search for something private.
    boost::json::array keys;
    for (const auto& [k, v] : request.query) {
      if (keys.size() >= kMaxQueryKeys) break;
      keys.emplace_back(clean(k, 64));
    }
    e.details["queryKeys"] = std::move(keys);
  }
  if (response.status >= 400) {
    if (auto code = error_code(response); !code.empty()) e.details["error"] = code;
  }
  record(std::move(e));
}

std::string AuditService::outcome_for(unsigned status) {
  if (status == 401 || status == 403) return "denied";
  if (status >= 100 && status < 400) return "success";
  return "failure";
}

std::string AuditService::target_for(const http::Request& request,
                                     const http::Response& response) {
  const auto pattern = segments(request.route);
  std::string out;
  std::string_view last_literal;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const auto seg = pattern[i];
    if (!seg.starts_with(':')) {
      last_literal = seg;
      continue;
    }
    const auto value = request.param(seg.substr(1));
    if (!out.empty()) out += '/';
    out += singular(last_literal.empty() ? seg.substr(1) : last_literal);
    out += ':';
    out += clean(value, 128);
  }
  if (!out.empty()) return out;
  if (auto id = created_id(response); !id.empty() && !last_literal.empty()) {
    return singular(last_literal) + ":" + id;
  }
  // No parameters: the path below /api/v1/ ("agents", "auth/login").
  std::string rest;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (i < 2 && (pattern[i] == "api" || pattern[i] == "v1")) continue;
    if (!rest.empty()) rest += '/';
    rest += pattern[i];
  }
  return clean(rest, kMaxField);
}

Result<store::Page<model::AuditRecord>> AuditService::list(const store::AuditFilter& filter) {
  store::Page<model::AuditRecord> page;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    DP_ASSIGN_OR_RETURN(page, tx.audit().list(filter));
    return Ok{};
  }));
  return page;
}

Result<store::ChainReport> AuditService::verify(std::int64_t window) {
  store::ChainReport report;
  DP_TRY(store_.read([&](store::Tx& tx) -> Status {
    std::int64_t from = 1;
    if (window > 0) {
      DP_ASSIGN_OR_RETURN(std::int64_t last, tx.audit().last_seq());
      from = std::max<std::int64_t>(1, last - window + 1);
    }
    DP_ASSIGN_OR_RETURN(report, tx.audit().verify(from, 0));
    return Ok{};
  }));
  return report;
}

boost::json::object to_json(const model::AuditRecord& r) {
  boost::json::object details;
  {
    boost::system::error_code ec;
    auto v = boost::json::parse(r.details, ec);
    if (!ec && v.is_object()) details = std::move(v.as_object());
  }
  return boost::json::object{
      {"seq", r.seq},
      {"id", r.id},
      {"at", clock::format_iso8601(r.at)},
      {"actor", boost::json::object{{"id", r.actor_id.empty() ? boost::json::value(nullptr)
                                                              : boost::json::value(r.actor_id)},
                                    {"name", r.actor_name},
                                    {"kind", r.actor_kind}}},
      {"action", r.action},
      {"target", r.target},
      {"outcome", r.outcome},
      {"status", r.status},
      {"correlationId", r.correlation_id},
      {"sourceAddress", r.source_address},
      {"details", std::move(details)},
      {"prevHash", r.prev_hash},
      {"hash", r.hash}};
}

boost::json::object to_json(const store::ChainReport& c) {
  boost::json::object o{{"verified", c.verified},
                        {"checked", c.checked},
                        {"firstSeq", c.first_seq},
                        {"lastSeq", c.last_seq},
                        {"headHash", c.head_hash}};
  if (c.broken_at) {
    o["brokenAt"] = *c.broken_at;
    o["reason"] = c.reason;
  }
  return o;
}

}  // namespace dp::audit
