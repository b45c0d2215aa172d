#include "llm/provider.hpp"

#include <time.h>

#include <charconv>
#include <cmath>
#include <random>
#include <thread>

#include "core/clock.hpp"
#include "http/client.hpp"
#include "llm/wire.hpp"

namespace dp::llm {
namespace {

using SteadyClock = std::chrono::steady_clock;

Error cancelled() {
  return Error{ErrorCode::kAborted, "cancelled", "the model call was cancelled", nullptr};
}

bool retryable_status(unsigned s) {
  return s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 529;
}

Error status_error(unsigned s, std::string_view provider, std::string_view body) {
  const std::string detail = "the " + std::string(provider) + " provider answered HTTP " +
                             std::to_string(s) + ": " + wire::error_message(body);
  if (s == 401 || s == 403) return Error{ErrorCode::kPermissionDenied, "provider_auth", detail, nullptr};
  if (s == 429) return Error{ErrorCode::kResourceExhausted, "provider_rate_limited", detail, nullptr};
  if (s >= 500) return Error{ErrorCode::kUnavailable, "provider_unavailable", detail, nullptr};
  return Error{ErrorCode::kInvalidArgument, "provider_rejected", detail, nullptr};
}

std::chrono::milliseconds backoff(const ProviderOptions& o, int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const double base = static_cast<double>(o.backoff_base.count()) * std::pow(2.0, attempt - 1);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const auto ms = static_cast<std::int64_t>(base * jitter(rng));
  return std::min(std::chrono::milliseconds(ms), o.max_backoff);
}

// Sleeps `d` unless cancelled first; false when cancelled.
bool pause(std::chrono::milliseconds d, const std::atomic<bool>* cancel) {
  const auto until = SteadyClock::now() + d;
  while (SteadyClock::now() < until) {
    if (cancel != nullptr && cancel->load()) return false;
    std::this_thread::sleep_for(std::min<SteadyClock::duration>(std::chrono::milliseconds(25),
                                                               until - SteadyClock::now()));
  }
  return cancel == nullptr || !cancel->load();
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

class HttpProvider final : public Provider {
 public:
  explicit HttpProvider(ProviderOptions o) : o_(std::move(o)) {
    if (o_.kind == Kind::kOpenAi) {
      url_ = trim_slash(o_.base_url.empty() ? "https://api.openai.com/v1" : o_.base_url) +
             "/chat/completions";
    } else {
      url_ = trim_slash(o_.base_url.empty() ? "https://api.anthropic.com" : o_.base_url) +
             "/v1/messages";
    }
  }

  const std::string& url() const { return url_; }

  // llm::Provider
  Result<ChatResponse> chat(const ChatRequest& request,
                            const std::atomic<bool>* cancel) const override;
  std::string_view name() const noexcept override {
    return o_.kind == Kind::kOpenAi ? "openai" : "anthropic";
  }

 private:
  Result<ChatResponse> attempt(const ChatRequest& request, const std::string& body,
                               const std::atomic<bool>* cancel, unsigned& status,
                               http::ClientResponse& response) const;

  ProviderOptions o_;
  std::string url_;
  // Kept-alive connections to the provider: a TLS handshake saved per call after the first.
  mutable http::ConnectionPool pool_;
};

Result<ChatResponse> HttpProvider::attempt(const ChatRequest& request, const std::string& body,
                                           const std::atomic<bool>* cancel, unsigned& status,
                                           http::ClientResponse& response) const {
  http::ClientRequest req;
  req.method = "POST";
  req.url = url_;
  req.body = body;
  req.connect_timeout = o_.connect_timeout;
  req.timeout = request.timeout ? std::min(*request.timeout, o_.timeout) : o_.timeout;
  req.max_response_bytes = o_.max_response_bytes;
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("Accept", request.stream ? "text/event-stream" : "application/json");
  if (o_.kind == Kind::kOpenAi) {
    if (!o_.api_key.empty()) req.headers.emplace_back("Authorization", "Bearer " + o_.api_key);
  } else {
    if (!o_.api_key.empty()) req.headers.emplace_back("x-api-key", o_.api_key);
    req.headers.emplace_back("anthropic-version", o_.anthropic_version);
  }

  SseParser parser(http::SseLimits{1024 * 1024, 4 * 1024 * 1024, "response_too_large"});
  wire::OpenAiStream openai(request.on_text);
  wire::AnthropicStream anthropic(request.on_text);
  std::optional<Error> stream_error;
  bool was_cancelled = false;
  const SseParser::Sink sink = [&](const SseEvent& ev) -> Status {
    return o_.kind == Kind::kOpenAi ? openai.on_event(ev) : anthropic.on_event(ev);
  };
  if (request.stream) {
    req.on_body = [&](const http::ClientResponse&, std::string_view piece) {
      if (cancel != nullptr && cancel->load()) {
        was_cancelled = true;
        return false;
      }
      Status s = parser.feed(piece, sink);
      if (!s.ok()) {
        stream_error = s.error();
        return false;
      }
      return true;
    };
  }
  bool got_bytes = false;
  if (request.stream) {
    req.on_body = [inner = std::move(req.on_body), &got_bytes](const http::ClientResponse& head,
                                                                std::string_view piece) {
      got_bytes = true;
      return inner(head, piece);
    };
  }
  req.cancel = cancel;
  req.pool = &pool_;
  auto r = http::fetch(req);
  if (was_cancelled || (cancel != nullptr && cancel->load())) return cancelled();
  if (stream_error) return *stream_error;
  if (!r.ok() && got_bytes) {
    // The answer had begun: the connection broke or timed out mid-stream.
    Error e = wire::bad_response("the stream broke off before its end: " + r.error().message);
    if (r.error().reason == "timeout") e = r.error();
    return e;
  }
  if (!r.ok()) return r.error();
  status = r->status;
  response = std::move(*r);
  if (status / 100 != 2) return Error::internal("not a success");  // the caller maps it
  if (!request.stream) {
    return o_.kind == Kind::kOpenAi ? wire::openai_parse(response.body)
                                    : wire::anthropic_parse(response.body);
  }
  // A final event without its blank line still counts (some servers end that way).
  if (parser.in_event()) {
    Status s = parser.feed("\n\n", sink);
    if (!s.ok()) return s.error();
  }
  return o_.kind == Kind::kOpenAi ? openai.finish() : anthropic.finish();
}

Result<ChatResponse> HttpProvider::chat(const ChatRequest& request,
                                        const std::atomic<bool>* cancel) const {
  const auto started = SteadyClock::now();
  const std::string body =
      o_.kind == Kind::kOpenAi ? wire::openai_body(request) : wire::anthropic_body(request);
  const int attempts = std::max(0, o_.max_retries) + 1;
  for (int n = 1;; ++n) {
    if (cancel != nullptr && cancel->load()) return cancelled();
    unsigned status = 0;
    http::ClientResponse response;
    auto r = attempt(request, body, cancel, status, response);
    if (r.ok()) {
      r->attempts = n;
      r->latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          SteadyClock::now() - started)
                          .count();
      return r;
    }
    const bool last = n >= attempts;
    if (status == 0) {
      // No HTTP answer: only a refused connection is worth another try (nothing was sent).
      if (r.error().reason == "connect_failed" && !last) {
        if (!pause(backoff(o_, n), cancel)) return cancelled();
        continue;
      }
      Error e = r.error();
      if (e.reason == "timeout") e.message = "the model call timed out: " + e.message;
      return e;
    }
    if (status / 100 == 2) return r.error();  // a 2xx that is not the wire format
    if (retryable_status(status) && !last) {
      auto wait = wire::retry_after(response.header("retry-after-ms"),
                                    response.header("retry-after"), clock::now_ms() / 1000);
      const auto d = wait ? std::min(*wait, o_.max_backoff) : backoff(o_, n);
      if (!pause(d, cancel)) return cancelled();
      continue;
    }
    Error e = status_error(status, name(), response.body);
    if (n > 1) e.message += " (after " + std::to_string(n) + " attempts)";
    return e;
  }
}

}  // namespace

namespace wire {

std::optional<std::chrono::milliseconds> retry_after(std::optional<std::string_view> ms,
                                                     std::optional<std::string_view> value,
                                                     std::int64_t now_epoch_s) {
  if (ms) {
    double v = 0;
    auto [p, ec] = std::from_chars(ms->data(), ms->data() + ms->size(), v);
    if (ec == std::errc() && p == ms->data() + ms->size() && v >= 0 && v < 1e9) {
      return std::chrono::milliseconds(static_cast<std::int64_t>(v));
    }
  }
  if (!value) return std::nullopt;
  std::int64_t secs = 0;
  auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), secs);
  if (ec == std::errc() && p == value->data() + value->size()) {
    if (secs < 0 || secs > 86'400) return std::nullopt;
    return std::chrono::milliseconds(secs * 1000);
  }
  // An HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::string text(*value);
  struct tm tm{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::int64_t at = ::timegm(&tm);
  return std::chrono::milliseconds(std::max<std::int64_t>(0, at - now_epoch_s) * 1000);
}

}  // namespace wire

std::optional<Kind> parse_kind(std::string_view text) noexcept {
  if (text == "openai") return Kind::kOpenAi;
  if (text == "anthropic") return Kind::kAnthropic;
  return std::nullopt;
}

Result<std::unique_ptr<Provider>> make_provider(ProviderOptions options) {
  if (!options.base_url.empty() && options.base_url.rfind("http://", 0) != 0 &&
      options.base_url.rfind("https://", 0) != 0) {
    return Error::invalid_argument("bad_url", "the provider's baseUrl must be an http(s) URL");
  }
  return std::unique_ptr<Provider>(std::make_unique<HttpProvider>(std::move(options)));
}

}  // namespace dp::llm
