// GET /api/v1/agents/:id/logs: the agent's kept output on this node (agents::AgentLogs), the
// last `tail` lines; with follow=true a Server-Sent Events stream of those lines and every one
// written after them, until the client leaves or the server shuts down (docs/api.md).
#include <charconv>
#include <limits>
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

constexpr std::size_t kDefaultTail = 200;
constexpr std::size_t kMaxTail = 10'000;
// What one write to a follower carries at most.
constexpr std::size_t kMaxChunkBytes = 64 * 1024;

void append_event(std::string& out, const agents::AgentLogLine& l) {
  out += "id: ";
  out += std::to_string(l.id);
  out += "\nevent: log\ndata: ";
  out += l.json;
  out += "\n\n";
}

// A non-negative decimal integer up to `max`; nullopt otherwise.
std::optional<std::uint64_t> parse_count(std::string_view v, std::uint64_t max) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n > max) return std::nullopt;
  return n;
}

Response get_logs(agents::AgentService& svc, agents::AgentLogs& logs,
                  std::chrono::milliseconds heartbeat, Request& req) {
  if (auto e = check_uuid(req.param("id"), "agent")) return http::error_response(*e, req.request_id);
  Validator v;
  bool follow = false;
  std::size_t tail = kDefaultTail;
  std::optional<std::uint64_t> since;
  for (const auto& [k, val] : req.query) {
    if (k == "follow") {
      if (val == "true" || val == "false") {
        follow = val == "true";
      } else {
        v.fail("follow", "wrong_type", "follow must be true or false");
      }
    } else if (k == "tail") {
      if (auto n = parse_count(val, kMaxTail)) {
        tail = static_cast<std::size_t>(*n);
      } else {
        v.fail("tail", "out_of_range", "tail must be an integer in 0..10000");
      }
    } else if (k == "since") {
      if (auto n = parse_count(val, std::numeric_limits<std::int64_t>::max())) {
        since = *n;
      } else {
        v.fail("since", "out_of_range", "since must be a line id (a non-negative integer)");
      }
    } else {
      v.unknown_query(k);
    }
  }
  // An EventSource that reconnects sends the id of the last event it got.
  if (auto h = req.header("last-event-id"); h && !h->empty()) {
    if (auto n = parse_count(*h, std::numeric_limits<std::int64_t>::max())) {
      since = *n;
    } else {
      v.fail("Last-Event-ID", "out_of_range", "Last-Event-ID must be a line id");
    }
  }
  if (auto s = v.status("invalid query"); !s.ok()) return http::error_response(s.error(), req.request_id);
  const std::string id(req.param("id"));
  if (auto a = svc.get(id); !a.ok()) return http::error_response(a.error(), req.request_id);
  // Resuming: every kept line after the resume point (up to the cap), not only `tail`.
  const std::size_t limit = since ? kMaxTail : tail;
  auto opened = logs.open(id, limit, since.value_or(0), follow);
  if (!opened.ok()) return http::error_response(opened.error(), req.request_id);

  if (!follow) {
    boost::json::array items;
    for (const auto& l : opened->lines) {
      boost::system::error_code ec;
      auto j = boost::json::parse(l.json, ec);
      if (!ec) items.push_back(std::move(j));
    }
    boost::json::object meta{{"count", items.size()}, {"tail", limit}};
    if (since) {
      meta["since"] = *since;
      meta["skipped"] = opened->skipped;
    }
    return http::data_response(200, std::move(items), std::move(meta), req.request_id);
  }

  Response r;
  r.content_type = "text/event-stream";
  r.body = ": following the logs of agent " + id + "\n\n";
  if (since && opened->skipped > 0) {
    r.body += "event: gap\ndata: {\"skipped\":" + std::to_string(opened->skipped) + "}\n\n";
  }
  for (const auto& l : opened->lines) append_event(r.body, l);
  std::shared_ptr<agents::AgentLogs::Follower> follower = std::move(opened->follower);
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  auto ended = std::make_shared<bool>(false);
  r.stream = [follower, last, ended, heartbeat]() -> std::optional<std::string> {
    if (*ended) return std::nullopt;
    std::vector<agents::AgentLogLine> lines;
    std::string out;
    if (!follower->poll(lines, kMaxChunkBytes)) {
      // Too slow: lines it had not read left the buffer. It may resume from its last id.
      *ended = true;
      return "event: dropped\ndata: {\"reason\":\"lagged\",\"lastId\":" +
             std::to_string(follower->last_id()) + "}\n\n";
    }
    for (const auto& l : lines) append_event(out, l);
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - *last >= heartbeat) out = ": keep-alive\n\n";
    if (!out.empty()) *last = now;
    return out;
  };
  // A new line wakes the stream at once; the poll only notices a client that left and paces
  // the heartbeats.
  r.stream_waker = std::make_shared<http::StreamWaker>();
  follower->set_on_append([waker = r.stream_waker] { waker->wake(); });
  r.stream_poll = std::chrono::milliseconds(500);
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
