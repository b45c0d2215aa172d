// /api/v1/audit: page through the audit log (newest first) with filters, and verify its chain.
#include <charconv>

#include <boost/json/array.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "audit/audit_service.hpp"
#include "core/clock.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;
constexpr std::size_t kMaxFilter = 256;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }

bool parse_int(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Response list(audit::AuditService& svc, Request& req) {
  Validator v;
  store::AuditFilter f;
  f.limit = kDefaultLimit;
  auto text = [&](const std::string& key, const std::string& value,
                  std::optional<std::string>& out) {
    if (value.empty() || value.size() > kMaxFilter || has_control_chars(value)) {
      v.fail(key, "bad_format", key + " must be 1..256 characters without control characters");
    } else {
      out = value;
    }
  };
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      std::int64_t n = 0;
      if (!parse_int(val, n) || n < 1 || n > kMaxLimit) {
        v.fail("limit", "out_of_range", "limit must be an integer in 1..500");
      } else {
        f.limit = static_cast<int>(n);
      }
    } else if (k == "cursor") {
      std::int64_t n = 0;
      if (!parse_int(val, n) || n < 1) {
        v.fail("cursor", "bad_format", "cursor must be the `next` value of a previous page");
      } else {
        f.before_seq = n;
      }
    } else if (k == "actor") {
      text(k, val, f.actor);
    } else if (k == "action") {
      text(k, val, f.action_prefix);
    } else if (k == "target") {
      text(k, val, f.target);
    } else if (k == "outcome") {
      if (val != "success" && val != "failure" && val != "denied") {
        v.fail("outcome", "not_allowed", "outcome must be one of: success, failure, denied");
      } else {
        f.outcome = val;
      }
    } else if (k == "from" || k == "to") {
      auto t = clock::parse_timestamp(val);
      if (!t) {
        v.fail(k, "bad_format", k + " must be an ISO-8601 time such as 2026-01-31T12:00:00Z");
      } else {
        (k == "from" ? f.from_ms : f.to_ms) = *t;
      }
    } else {
      v.fail(k.substr(0, 64), "unknown_parameter",
             "unknown query parameter '" + k.substr(0, 64) + "'");
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto page = svc.list(f);
  if (!page.ok()) return fail(page.error(), req);
  auto chain = svc.verify(audit::kListVerifyWindow);
  if (!chain.ok()) return fail(chain.error(), req);
  boost::json::array items;
  for (const auto& r : page->items) items.push_back(audit::to_json(r));
  boost::json::object meta{{"total", page->total},
                           {"limit", f.limit},
                           {"next", page->next_cursor ? boost::json::value(*page->next_cursor)
                                                      : boost::json::value(nullptr)},
                           {"chain", audit::to_json(*chain)}};
  return http::data_response(200, std::move(items), std::move(meta), req.request_id);
}

Response verify(audit::AuditService& svc, Request& req) {
  if (!req.query.empty()) {
    Validator v;
    for (const auto& [k, val] : req.query) {
      v.fail(k.substr(0, 64), "unknown_parameter",
             "unknown query parameter '" + k.substr(0, 64) + "'");
    }
    return fail(v.status("invalid query").error(), req);
  }
  auto chain = svc.verify(0);
  if (!chain.ok()) return fail(chain.error(), req);
  return http::data_response(200, audit::to_json(*chain), {}, req.request_id);
}

}  // namespace

void register_audit_routes(http::Router& router, audit::AuditService& svc) {
  auto* s = &svc;
  router.add("GET", "/api/v1/audit", [s](Request& r) { return list(*s, r); });
  router.add("GET", "/api/v1/audit/verify", [s](Request& r) { return verify(*s, r); });
}

}  // namespace dp::api::v1
