// The legacy HTTP+SSE transport (MCP 2024-11-05), for servers that predate Streamable HTTP.
//
// `start` opens a GET to the configured URL (the server's SSE endpoint, e.g. /sse) and keeps
// it open on a reader thread. The server's first event, `endpoint`, names the URL to POST
// client messages to (usually relative, with a session id in its query); it is resolved
// against the SSE URL and must have the same origin, so a server cannot send devplane's
// headers elsewhere. `start` waits for it (bounded by the connect timeout). Every later
// `message` event is a server message, delivered to on_message on the reader thread. `send`
// POSTs one message and expects 2xx (202 Accepted); its reply arrives on the stream. The end
// of the stream (server gone, close) is reported once through on_closed; there is no resume:
// the registry reconnects with backoff and the client initializes again.
#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "http/client.hpp"
#include "http/sse.hpp"
#include "mcp/transport.hpp"

namespace dp::mcp {
namespace {

namespace urls = boost::urls;

// The POST URL an `endpoint` event names, resolved against the SSE URL; empty when it is
// malformed or points at another origin.
std::string resolve_endpoint(const std::string& sse_url, std::string_view data) {
  auto base = urls::parse_uri(sse_url);
  auto ref = urls::parse_uri_reference(data);
  if (!base || !ref) return {};
  urls::url out;
  if (!urls::resolve(*base, *ref, out)) return {};
  auto port_of = [](const urls::url_view& u) {
    if (u.has_port()) return std::string(u.port());
    return std::string(u.scheme() == "https" ? "443" : "80");
  };
  if (out.scheme() != base->scheme() || out.host() != base->host() || port_of(out) != port_of(*base)) return {};
  out.remove_fragment();
  return std::string(out.buffer());
}

class SseTransport final : public Transport {
 public:
  explicit SseTransport(HttpOptions o) : opt_(std::move(o)) {}
  ~SseTransport() override { close(); }

  Status start(TransportHandlers h) override {
    handlers_ = std::move(h);
    reader_ = std::thread([this] { read_stream(); });
    std::unique_lock lock(mu_);
    (void)cv_.wait_for(lock, opt_.connect_timeout + std::chrono::seconds(5),
                                    [this] { return !endpoint_.empty() || ended_; });
    if (!endpoint_.empty()) return Ok{};
    Error why = ended_ ? end_error_
                       : Error{ErrorCode::kDeadlineExceeded, "timeout",
                               "the MCP server's SSE stream sent no endpoint event in time", nullptr};
    lock.unlock();
    close();
    return why;
  }

  Status send(const std::string& text, Clock::time_point deadline) override {
    std::string endpoint;
    {
      std::lock_guard lock(mu_);
      if (closed_ || ended_) return Error::unavailable("MCP connection is closed");
      endpoint = endpoint_;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error{ErrorCode::kDeadlineExceeded, "timeout", "request timed out", nullptr};
    http::ClientRequest req;
    req.method = "POST";
    req.url = endpoint;
    req.headers = opt_.headers;
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = text;
    req.connect_timeout = std::min(opt_.connect_timeout, left);
    req.timeout = left;
    req.max_response_bytes = 64 * 1024;
    req.pool = &pool_;
    auto res = http::fetch(req);
    if (!res.ok()) {
      Error e = std::move(res).error();
      if (e.code == ErrorCode::kDeadlineExceeded) e.reason = "timeout";
      return e;
    }
    if (res->status >= 300) {
      return Error{ErrorCode::kUnavailable, "http_status",
                   "MCP server answered HTTP " + std::to_string(res->status) +
                       (res->body.empty() ? std::string() : ": " + res->body.substr(0, 300)),
                   nullptr};
    }
    return Ok{};
  }

  void close() override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    cancel_ = true;
    if (!reader_.joinable()) return;
    if (std::this_thread::get_id() == reader_.get_id()) {
      reader_.detach();  // called from a handler: the reader ends on its own
    } else {
      reader_.join();
    }
  }

  std::string describe() const override { return "sse: " + opt_.url; }

 private:
  void read_stream() {
    http::ClientRequest req;
    req.method = "GET";
    req.url = opt_.url;
    req.headers = opt_.headers;
    req.headers.emplace_back("Accept", "text/event-stream");
    req.connect_timeout = opt_.connect_timeout;
    // The stream lives as long as the connection; close() cancels it.
    req.timeout = std::chrono::hours(24 * 365);
    req.max_response_bytes = std::numeric_limits<std::size_t>::max() / 2;
    req.cancel = &cancel_;
    http::SseParser sse(http::SseLimits{opt_.max_message_bytes, opt_.max_message_bytes, "message_too_large"});
    Status stream_error = Ok{};
    req.on_body = [&](const http::ClientResponse&, std::string_view chunk) {
      std::vector<http::SseEvent> events;
      if (auto s = sse.feed(chunk, events); !s.ok()) {
        stream_error = std::move(s);
        return false;
      }
      for (const auto& e : events) {
        if (e.event == "endpoint") {
          const std::string url = resolve_endpoint(opt_.url, e.data);
          std::lock_guard lock(mu_);
          if (url.empty()) {
            stream_error = Error::unavailable("the MCP server's endpoint event names '" + e.data.substr(0, 200) +
                                              "', which is not a URL on the SSE endpoint's origin");
            return false;
          }
          if (endpoint_.empty()) endpoint_ = url;
          cv_.notify_all();
        } else if (e.event == "message" && !e.data.empty() && handlers_.on_message) {
          handlers_.on_message(e.data);
        }
      }
      return true;
    };
    auto res = http::fetch(req);
    Error why = Error::unavailable("the MCP server closed the SSE stream");
    if (!stream_error.ok()) {
      why = stream_error.error();
    } else if (!res.ok()) {
      why = std::move(res).error();
    } else if (res->status >= 300) {
      why = Error{ErrorCode::kUnavailable, "http_status",
                  "MCP server answered the SSE request with HTTP " + std::to_string(res->status), nullptr};
    }
    bool report = false;
    {
      std::lock_guard lock(mu_);
      ended_ = true;
      end_error_ = why;
      report = !closed_ && !endpoint_.empty();
      cv_.notify_all();
    }
    if (report && handlers_.on_closed) handlers_.on_closed(why);
  }

  HttpOptions opt_;
  http::ConnectionPool pool_;  // the POSTs; the GET stream has its own connection
  TransportHandlers handlers_;
  std::thread reader_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;  // guarded by mu_
  bool ended_ = false;   // guarded by mu_
  Error end_error_;      // guarded by mu_
  std::string endpoint_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Transport> make_sse_transport(HttpOptions options) {
  return std::make_unique<SseTransport>(std::move(options));
}

}  // namespace dp::mcp
