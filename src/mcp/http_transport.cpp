// The Streamable HTTP transport (MCP 2025-03-26 and later): every client message is a POST to
// the endpoint; the server answers 202 (notification or response accepted), a JSON body, or a
// text/event-stream carrying requests, notifications and finally the response. The session id
// the server gives at initialize (`Mcp-Session-Id`) goes with every later request, as does
// `MCP-Protocol-Version`; close sends DELETE. Built on the blocking http::fetch, so `send`
// runs the whole exchange on the caller's thread and delivers the messages of the reply to
// the handler before returning. The POSTs reuse kept-alive connections (http::ConnectionPool).
//
// Server-initiated messages: once a session is set up (the first send after initialize
// negotiated a version), a GET with `Accept: text/event-stream` opens the server's standalone
// stream on a thread of its own; its messages (notifications, requests such as ping) go to
// on_message on that thread. A server that offers none answers 405 and is not asked again in
// this session; a stream that ends is reopened on a later send, at most every 5 s. A new
// session (reset_session) or close ends it.
#include <algorithm>
#include <cctype>
#include <limits>
#include <mutex>
#include <thread>

#include "core/log.hpp"
#include "http/client.hpp"
#include "http/sse.hpp"
#include "mcp/transport.hpp"

namespace dp::mcp {
namespace {

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

bool contains_ci(std::string_view text, std::string_view needle) {
  auto it = std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  return it != text.end();
}

class HttpTransport final : public Transport {
 public:
  explicit HttpTransport(HttpOptions o) : opt_(std::move(o)) {}
  ~HttpTransport() override {
    close();
    stop_stream();
  }

  Status start(TransportHandlers h) override {
    handlers_ = std::move(h);
    started_ = true;
    return Ok{};
  }

  Status send(const std::string& text, Clock::time_point deadline) override {
    return send_cancellable(text, deadline, nullptr);
  }

  Status send_cancellable(const std::string& text, Clock::time_point deadline,
                          const std::atomic<bool>* cancel) override {
    if (closed_) return Error::unavailable("MCP connection is closed");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error{ErrorCode::kDeadlineExceeded, "timeout", "request timed out", nullptr};
    http::ClientRequest req;
    req.method = "POST";
    req.url = opt_.url;
    req.headers = opt_.headers;
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Accept", "application/json, text/event-stream");
    std::string session;
    {
      std::lock_guard lock(mu_);
      session = session_id_;
      if (!session.empty()) req.headers.emplace_back("Mcp-Session-Id", session);
      if (!version_.empty()) req.headers.emplace_back("MCP-Protocol-Version", version_);
    }
    req.body = text;
    req.connect_timeout = std::min(opt_.connect_timeout, left);
    req.timeout = left;
    req.max_response_bytes = opt_.max_response_bytes;
    req.pool = &pool_;
    req.cancel = cancel;  // the connection is dropped: the server sees the POST go away

    // Only a successful reply is streamed to the handler; the client keeps an error status's
    // body whole in the response.
    http::SseParser sse(http::SseLimits{opt_.max_message_bytes, opt_.max_message_bytes, "message_too_large"});
    std::string json_body;
    Status stream_error = Ok{};
    enum class Mode { kUnknown, kSse, kJson } mode = Mode::kUnknown;
    req.on_body = [&](const http::ClientResponse& head, std::string_view chunk) {
      if (mode == Mode::kUnknown) {
        const auto ct = head.header("content-type").value_or("");
        mode = starts_with_ci(ct, "text/event-stream") ? Mode::kSse : Mode::kJson;
        remember_session(head);
      }
      if (mode == Mode::kJson) {
        if (json_body.size() + chunk.size() > opt_.max_message_bytes) {
          stream_error = Error{ErrorCode::kResourceExhausted, "message_too_large",
                               "MCP server reply exceeds " + std::to_string(opt_.max_message_bytes) + " bytes",
                               nullptr};
          return false;
        }
        json_body.append(chunk);
        return true;
      }
      std::vector<http::SseEvent> events;
      if (auto s = sse.feed(chunk, events); !s.ok()) {
        stream_error = std::move(s);
        return false;
      }
      for (const auto& e : events) {
        // Priming events carry an id and empty data; they are not messages.
        if (e.event == "message" && !e.data.empty() && handlers_.on_message) handlers_.on_message(e.data);
      }
      return true;
    };
    auto res = http::fetch(req);
    if (!stream_error.ok()) return stream_error;
    if (!res.ok()) {
      Error e = std::move(res).error();
      if (e.code == ErrorCode::kDeadlineExceeded) e.reason = "timeout";
      if (e.code == ErrorCode::kAborted) e.reason = "cancelled";
      return e;
    }
    if (mode == Mode::kUnknown) remember_session(*res);
    const unsigned status = res->status;
    const std::string error_body = status >= 300 ? res->body.substr(0, 4096) : std::string();
    if (status == 404 && !session.empty()) return session_expired(status);
    if (status == 400 && !session.empty() && contains_ci(error_body, "session")) {
      return session_expired(status);
    }
    if (status >= 300) {
      return Error{ErrorCode::kUnavailable, "http_status",
                   "MCP server answered HTTP " + std::to_string(status) +
                       (error_body.empty() ? std::string() : ": " + error_body.substr(0, 300)),
                   nullptr};
    }
    if (mode == Mode::kJson && !json_body.empty() && handlers_.on_message) handlers_.on_message(json_body);
    maybe_open_stream();
    return Ok{};
  }

  void set_protocol_version(std::string version) override {
    std::lock_guard lock(mu_);
    version_ = std::move(version);
  }

  void reset_session() override {
    std::lock_guard lock(mu_);
    session_id_.clear();
    version_.clear();
    stream_cancel_ = true;  // the old session's stream ends; the next session opens its own
    stream_refused_ = false;
  }

  void close() override {
    stream_cancel_ = true;
    if (closed_.exchange(true)) return;
    stop_stream();
    std::string session;
    {
      std::lock_guard lock(mu_);
      session = session_id_;
    }
    if (session.empty()) return;
    // Ending the session is a courtesy; a server that refuses (405) or is gone is fine.
    http::ClientRequest req;
    req.method = "DELETE";
    req.url = opt_.url;
    req.headers = opt_.headers;
    req.headers.emplace_back("Mcp-Session-Id", session);
    req.timeout = std::chrono::milliseconds(2'000);
    req.connect_timeout = std::chrono::milliseconds(1'000);
    req.pool = &pool_;
    (void)http::fetch(req);
    pool_.clear();
  }

  std::string describe() const override { return "http: " + opt_.url; }
  bool replies_inline() const override { return true; }

 private:
  void remember_session(const http::ClientResponse& head) {
    if (auto id = head.header("mcp-session-id"); id && !id->empty() && id->size() <= 256) {
      std::lock_guard lock(mu_);
      session_id_ = std::string(*id);
    }
  }

  // Opens the standalone GET stream when a session exists and none runs.
  void maybe_open_stream() {
    std::lock_guard lock(stream_mu_);
    if (closed_ || stream_running_) return;
    std::string session;
    std::string version;
    {
      std::lock_guard l(mu_);
      session = session_id_;
      version = version_;
      if (session.empty() || version.empty() || stream_refused_) return;
    }
    if (Clock::now() < next_stream_at_) return;
    if (stream_.joinable()) {
      if (std::this_thread::get_id() == stream_.get_id()) return;  // its last message's handler
      stream_.join();
    }
    stream_cancel_ = false;
    stream_running_ = true;
    next_stream_at_ = Clock::now() + std::chrono::seconds(5);
    stream_ = std::thread([this, session, version] { read_stream(session, version); });
  }

  void stop_stream() {
    stream_cancel_ = true;
    std::thread t;
    {
      // Joined outside the lock: the stream's thread takes it as it ends.
      std::lock_guard lock(stream_mu_);
      t = std::move(stream_);
    }
    if (!t.joinable()) return;
    if (std::this_thread::get_id() == t.get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }

  void read_stream(const std::string& session, const std::string& version) {
    http::ClientRequest req;
    req.method = "GET";
    req.url = opt_.url;
    req.headers = opt_.headers;
    req.headers.emplace_back("Accept", "text/event-stream");
    req.headers.emplace_back("Mcp-Session-Id", session);
    req.headers.emplace_back("MCP-Protocol-Version", version);
    req.connect_timeout = opt_.connect_timeout;
    req.timeout = std::chrono::hours(24 * 365);  // as long as the session; cancelled on close
    req.max_response_bytes = std::numeric_limits<std::size_t>::max() / 2;
    req.cancel = &stream_cancel_;
    http::SseParser sse(http::SseLimits{opt_.max_message_bytes, opt_.max_message_bytes, "message_too_large"});
    req.on_body = [&](const http::ClientResponse&, std::string_view chunk) {
      std::vector<http::SseEvent> events;
      if (!sse.feed(chunk, events).ok()) return false;
      for (const auto& e : events) {
        if (e.event == "message" && !e.data.empty() && handlers_.on_message) handlers_.on_message(e.data);
      }
      return true;
    };
    auto res = http::fetch(req);
    if (res.ok() && (res->status == 405 || res->status == 404 || res->status == 400)) {
      // 405: the server offers no such stream; 404/400: the session is gone (the next POST
      // finds out and the client initializes again).
      std::lock_guard l(mu_);
      if (session_id_ == session) stream_refused_ = true;
    }
    std::lock_guard lock(stream_mu_);
    stream_running_ = false;
  }

  Error session_expired(unsigned status) {
    reset_session();
    return Error{ErrorCode::kFailedPrecondition, "session_expired",
                 "the MCP server no longer knows the session (HTTP " + std::to_string(status) + ")",
                 nullptr};
  }

  HttpOptions opt_;
  http::ConnectionPool pool_;  // the POSTs and the DELETE; the GET stream has its own connection
  TransportHandlers handlers_;
  bool started_ = false;
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::string session_id_;
  std::string version_;
  bool stream_refused_ = false;  // guarded by mu_
  // The standalone GET stream.
  std::mutex stream_mu_;
  std::thread stream_;                  // guarded by stream_mu_
  bool stream_running_ = false;         // guarded by stream_mu_
  Clock::time_point next_stream_at_{};  // guarded by stream_mu_
  std::atomic<bool> stream_cancel_{false};
};

}  // namespace

std::unique_ptr<Transport> make_http_transport(HttpOptions options) {
  return std::make_unique<HttpTransport>(std::move(options));
}

}  // namespace dp::mcp
