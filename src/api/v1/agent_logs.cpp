// GET /api/v1/agents/:id/logs: the agent's kept output (this node's), the last `tail` entries;
// with follow=true a Server-Sent Events stream of those entries and every one appended after,
// until the client leaves.
#include <charconv>
#include <chrono>
#include <memory>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "api/v1/routes.hpp"
#include "api/validation.hpp"

namespace dp::api::v1 {
namespace {

using http::Request;
using http::Response;

constexpr int kMaxTail = 10'000;

std::string sse(const std::string& line) { return "event: log\ndata: " + line + "\n\n"; }

Response get_logs(agents::AgentService& svc, agents::AgentLogs& logs, std::chrono::milliseconds heartbeat,
                  Request& req) {
  if (auto e = check_uuid(req.param("id"), "agent")) return http::error_response(*e, req.request_id);
  Validator v;
  bool follow = false;
  int tail = 100;
  for (const auto& [k, val] : req.query) {
    if (k == "follow") {
      if (val == "true") {
        follow = true;
      } else if (val != "false") {
        v.fail("follow", "wrong_type", "follow must be true or false");
      }
    } else if (k == "tail") {
      int n = -1;
      auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), n);
      if (ec != std::errc() || p != val.data() + val.size() || n < 0 || n > kMaxTail) {
        v.fail("tail", "out_of_range", "tail must be an integer in 0..10000");
      } else {
        tail = n;
      }
    } else {
      v.fail(k.substr(0, 64), "unknown_parameter", "unknown query parameter '" + k.substr(0, 64) + "'");
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return http::error_response(s.error(), req.request_id);
  const std::string id(req.param("id"));
  if (auto a = svc.get(id); !a.ok()) return http::error_response(a.error(), req.request_id);
  // Start following before reading the tail, so nothing written in between is lost (a line
  // may then come twice, never not at all).
  auto follower = std::make_shared<agents::AgentLogs::Follower>(logs.follow(id));
  const auto lines = logs.tail(id, static_cast<std::size_t>(tail));
  if (!follow) {
    boost::json::array items;
    for (const auto& l : lines) {
      boost::system::error_code ec;
      auto j = boost::json::parse(l, ec);
      if (!ec) items.push_back(std::move(j));
    }
    const auto count = items.size();
    return http::data_response(200, std::move(items), boost::json::object{{"count", count}, {"tail", tail}},
                               req.request_id);
  }
  Response r;
  r.content_type = "text/event-stream";
  r.body = ": following the logs of agent " + id + "\n\n";
  for (const auto& l : lines) r.body += sse(l);
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  r.stream = [follower, last, heartbeat]() -> std::optional<std::string> {
    std::string out;
    for (const auto& l : follower->poll()) out += sse(l);
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - *last >= heartbeat) out = ": keep-alive\n\n";
    if (!out.empty()) *last = now;
    return out;
  };
  r.stream_poll = std::chrono::milliseconds(100);
  return r;
}

}  // namespace

void register_log_routes(http::Router& router, agents::AgentService& agents, agents::AgentLogs& logs,
                         std::chrono::milliseconds heartbeat) {
  auto* a = &agents;
  auto* l = &logs;
  router.add("GET", "/api/v1/agents/:id/logs",
             [a, l, heartbeat](Request& r) { return get_logs(*a, *l, heartbeat, r); });
}

}  // namespace dp::api::v1
