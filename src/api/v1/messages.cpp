// /api/v1/agents/:id/messages: send a message to an agent, page through its messages.

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"
#include "core/ids.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

constexpr std::size_t kMaxPayloadBytes = 64 * 1024;
constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;

Response fail(const Error& e, const Request& req) { return http::error_response(e, req.request_id); }


bool valid_type(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

// Agent keys speak only for the agent they are bound to (docs/security.md).
std::optional<Error> agent_scope(const Request& req, std::string_view agent_id) {
  if (req.caller.role != "agent") return std::nullopt;
  if (!req.caller.agent_id.empty() && req.caller.agent_id == agent_id) return std::nullopt;
  return Error{ErrorCode::kPermissionDenied, "permission_denied",
               "this agent key is not bound to agent " + std::string(agent_id.substr(0, 64)), {}};
}

Response send(agents::MessageService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "agent")) return fail(*e, req);
  auto body = parse_object_body(req.body);
  if (!body.ok()) return fail(body.error(), req);
  const auto& o = *body;
  Validator v;
  v.only_keys(o, {"type", "payload", "fromAgentId"});
  auto type = v.string(o, "type", "type", false, 1, 64);
  if (type && !valid_type(*type)) {
    v.fail("type", "bad_format", "type must be 1..64 of a-z, 0-9, '.', '_', '-' (e.g. task.handoff)");
  }
  const auto* payload = v.object(o, "payload", "payload", true);
  if (payload != nullptr && boost::json::serialize(*payload).size() > kMaxPayloadBytes) {
    v.fail("payload", "too_large", "payload must serialize to at most 65536 bytes");
  }
  auto from = v.string(o, "fromAgentId", "fromAgentId", false, 36, 36);
  if (from && !ids::is_uuid(*from)) v.fail("fromAgentId", "bad_format", "fromAgentId must be an agent id");
  if (req.caller.role == "agent") {
    // An agent sends as itself.
    if (req.caller.agent_id.empty()) {
      return fail(Error{ErrorCode::kPermissionDenied, "permission_denied",
                        "this agent key is not bound to an agent", {}},
                  req);
    }
    if (from && *from != req.caller.agent_id) {
      v.fail("fromAgentId", "not_allowed", "an agent key sends only as its own agent");
    }
    from = req.caller.agent_id;
  }
  if (auto s = v.status("invalid message"); !s.ok()) return fail(s.error(), req);
  agents::NewMessage m;
  m.to_agent_id = id;
  m.from_agent_id = from.value_or("");
  m.type = type.value_or("text");
  m.payload = *payload;
  auto sent = svc.send(std::move(m), req.request_id);
  if (!sent.ok()) return fail(sent.error(), req);
  Response r = http::data_response(201, model::to_json(*sent), {}, req.request_id);
  r.set_header("Location", "/api/v1/agents/" + id + "/messages/" + sent->id);
  return r;
}

Response list(agents::MessageService& svc, Request& req) {
  const std::string id(req.param("id"));
  if (auto e = check_uuid(id, "agent")) return fail(*e, req);
  if (auto e = agent_scope(req, id)) return fail(*e, req);
  Validator v;
  int limit = kDefaultLimit;
  std::optional<std::string> cursor;
  bool undelivered = false;
  for (const auto& [k, val] : req.query) {
    if (k == "limit") {
      v.query_limit(val, kMaxLimit, limit);
    } else if (k == "cursor") {
      v.query_cursor(val, cursor);
    } else if (k == "undelivered") {
      if (val != "true" && val != "false") {
        v.fail("undelivered", "wrong_type", "undelivered must be true or false");
      }
      undelivered = val == "true";
    } else {
      v.unknown_query(k);
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return fail(s.error(), req);
  auto page = svc.list(id, cursor, limit, undelivered);
  if (!page.ok()) return fail(page.error(), req);
  boost::json::array items;
  for (const auto& m : page->items) items.push_back(model::to_json(m));
  boost::json::object meta{{"total", page->total},
                           {"limit", limit},
                           {"next", page->next_cursor ? boost::json::value(*page->next_cursor)
                                                      : boost::json::value(nullptr)}};
  return http::data_response(200, std::move(items), std::move(meta), req.request_id);
}

}  // namespace

void register_message_routes(http::Router& router, agents::MessageService& svc) {
  auto* s = &svc;
  router.add("POST", "/api/v1/agents/:id/messages", [s](Request& r) { return send(*s, r); });
  router.add("GET", "/api/v1/agents/:id/messages", [s](Request& r) { return list(*s, r); });
}

}  // namespace dp::api::v1
