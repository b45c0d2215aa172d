// The providers over real HTTP against a scripted server on 127.0.0.1: headers each format
// sends, whole and streamed (chunked) answers, retries on 429/5xx honouring Retry-After, no
// retry on 4xx, size limits, a stream cut mid-way, cancellation and refused connections.
#include "llm/provider.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

namespace dp::llm {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// One scripted reply: raw bytes written in pieces, with a pause between them.
struct Reply {
  std::vector<std::string> pieces;
  std::chrono::milliseconds gap{0};
};

Reply http_reply(unsigned status, std::string body, std::string extra_headers = {},
                 std::string type = "application/json") {
  return Reply{{"HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
                "Connection: close\r\n\r\n" + body},
               {}};
}

std::string chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + std::string(data) + "\r\n";
}

// A streamed reply: the head, then each event as its own chunk; `finish` adds the last chunk.
Reply sse_reply(const std::vector<std::string>& events, bool finish = true) {
  Reply r;
  r.pieces.push_back(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n");
  for (const auto& e : events) r.pieces.push_back(chunk(e));
  if (finish) r.pieces.push_back("0\r\n\r\n");
  r.gap = std::chrono::milliseconds(5);
  return r;
}

class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<Reply> replies)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        replies_(std::move(replies)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket s(io_);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::vector<beast::http::request<beast::http::string_body>> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void loop() {
    for (std::size_t i = 0; !stop_; ++i) {
      tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      beast::flat_buffer buf;
      beast::http::request<beast::http::string_body> req;
      beast::http::read(sock, buf, req, ec);
      if (ec) continue;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req);
      }
      const Reply& r = replies_[std::min(i, replies_.size() - 1)];
      for (const auto& p : r.pieces) {
        asio::write(sock, asio::buffer(p), ec);
        if (ec) break;
        if (r.gap.count() > 0) std::this_thread::sleep_for(r.gap);
      }
      sock.shutdown(tcp::socket::shutdown_both, ec);
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<Reply> replies_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<beast::http::request<beast::http::string_body>> requests_;
  std::thread thread_;
};

ProviderOptions options(Kind kind, const std::string& url) {
  ProviderOptions o;
  o.kind = kind;
  o.base_url = url;
  o.api_key = "sk-test-123";
  o.timeout = std::chrono::seconds(10);
  o.backoff_base = std::chrono::milliseconds(10);
  o.max_retries = 2;
  return o;
}

ChatRequest request(bool stream) {
  ChatRequest r;
  r.model = "m";
  r.messages.push_back(Message{Role::kUser, "hello", {}, {}, false});
  r.stream = stream;
  return r;
}

constexpr const char* kOpenAiAnswer =
    R"({"choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}})";

TEST(ProviderTest, OpenAiSendsTheKeyAsBearerAndReadsAWholeAnswer) {
  ScriptedServer server({http_reply(200, kOpenAiAnswer)});
  auto p = make_provider(options(Kind::kOpenAi, server.url() + "/v1/"));
  ASSERT_TRUE(p.ok());
  auto r = (*p)->chat(request(false));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text, "hi there");
  EXPECT_EQ(r->usage.input_tokens, 5);
  EXPECT_EQ(r->attempts, 1);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target(), "/v1/chat/completions");
  EXPECT_EQ(reqs[0][beast::http::field::authorization], "Bearer sk-test-123");
  auto body = boost::json::parse(reqs[0].body());
  EXPECT_FALSE(body.as_object().contains("stream"));
}

TEST(ProviderTest, AnthropicStreamsWithItsHeaders) {
  ScriptedServer server({sse_reply({
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" you\"}}\n\n",
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n",
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"})});
  auto p = make_provider(options(Kind::kAnthropic, server.url()));
  ASSERT_TRUE(p.ok());
  std::vector<std::string> pieces;
  auto req = request(true);
  req.on_text = [&](std::string_view t) { pieces.emplace_back(t); };
  auto r = (*p)->chat(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text, "Hi you");
  EXPECT_EQ(pieces, (std::vector<std::string>{"Hi", " you"}));
  EXPECT_EQ(r->usage.input_tokens, 9);
  EXPECT_EQ(r->usage.output_tokens, 4);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target(), "/v1/messages");
  EXPECT_EQ(reqs[0]["x-api-key"], "sk-test-123");
  EXPECT_EQ(reqs[0]["anthropic-version"], "2023-06-01");
  EXPECT_EQ(reqs[0][beast::http::field::authorization], "");
}

TEST(ProviderTest, RetriesA429HonouringRetryAfter) {
  ScriptedServer server({http_reply(429, R"({"error":{"message":"slow down"}})", "Retry-After: 1\r\n"),
                         http_reply(200, kOpenAiAnswer)});
  auto o = options(Kind::kOpenAi, server.url());
  o.backoff_base = std::chrono::milliseconds(1);  // so only Retry-After can explain the wait
  auto p = make_provider(o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*p)->chat(request(false));
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->attempts, 2);
  EXPECT_GE(waited, std::chrono::milliseconds(950));
  EXPECT_GE(r->latency_ms, 950);
}

TEST(ProviderTest, GivesUpOn5xxAfterTheRetries) {
  ScriptedServer server({http_reply(503, R"({"error":{"message":"overloaded"}})")});
  auto p = make_provider(options(Kind::kAnthropic, server.url()));
  auto r = (*p)->chat(request(true));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "provider_unavailable");
  EXPECT_NE(r.error().message.find("HTTP 503: overloaded"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("after 3 attempts"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(ProviderTest, DoesNotRetryAnAuthError) {
  ScriptedServer server({http_reply(401, R"({"error":{"message":"invalid x-api-key"}})")});
  auto p = make_provider(options(Kind::kAnthropic, server.url()));
  auto r = (*p)->chat(request(false));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "provider_auth");
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(r.error().message.find("sk-test"), std::string::npos);
}

TEST(ProviderTest, AGarbageAnswerIsABadResponse) {
  ScriptedServer server({http_reply(200, "<html>hello</html>", {}, "text/html")});
  auto p = make_provider(options(Kind::kOpenAi, server.url()));
  auto r = (*p)->chat(request(false));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "bad_provider_response");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(ProviderTest, AStreamCutMidwayFails) {
  ScriptedServer server({sse_reply({"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n",
                                    "data: {\"choices\":[{\"index\":0,\"de"},
                                   /*finish=*/false)});
  auto p = make_provider(options(Kind::kOpenAi, server.url()));
  auto r = (*p)->chat(request(true));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().message;
}

TEST(ProviderTest, AStreamThatEndsCleanlyButEarlyFails) {
  ScriptedServer server({sse_reply({"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n"})});
  auto p = make_provider(options(Kind::kOpenAi, server.url()));
  auto r = (*p)->chat(request(true));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "bad_provider_response");
  EXPECT_NE(r.error().message.find("ended before"), std::string::npos);
}

TEST(ProviderTest, AnOversizedAnswerIsRefused) {
  ScriptedServer server({http_reply(200, std::string(64 * 1024, 'x'))});
  auto o = options(Kind::kOpenAi, server.url());
  o.max_response_bytes = 1024;
  auto p = make_provider(o);
  auto r = (*p)->chat(request(false));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "response_too_large");
}

TEST(ProviderTest, CancellationEndsAStream) {
  std::vector<std::string> events(200, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n");
  auto reply = sse_reply(events);
  reply.gap = std::chrono::milliseconds(20);
  ScriptedServer server({reply});
  auto p = make_provider(options(Kind::kOpenAi, server.url()));
  std::atomic<bool> cancel{false};
  auto req = request(true);
  int seen = 0;
  req.on_text = [&](std::string_view) {
    if (++seen == 3) cancel = true;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*p)->chat(req, &cancel);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(ProviderTest, CancellationEndsAWaitForASlowAnswer) {
  Reply slow = http_reply(200, kOpenAiAnswer);
  slow.pieces.insert(slow.pieces.begin(), "");
  slow.gap = std::chrono::milliseconds(3000);  // nothing arrives for 3 s
  ScriptedServer server({slow});
  auto p = make_provider(options(Kind::kOpenAi, server.url()));
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*p)->chat(request(false), &cancel);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
}

TEST(ProviderTest, ARefusedConnectionIsRetriedThenReported) {
  std::string url;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  }  // closed: nothing listens there now
  auto p = make_provider(options(Kind::kOpenAi, url));
  auto r = (*p)->chat(request(false));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "connect_failed");
}

TEST(ProviderTest, RefusesABaseUrlThatIsNotHttp) {
  auto o = options(Kind::kOpenAi, "file:///etc/passwd");
  EXPECT_FALSE(make_provider(o).ok());
  EXPECT_EQ(parse_kind("openai"), Kind::kOpenAi);
  EXPECT_EQ(parse_kind("gemini"), std::nullopt);
}

}  // namespace
}  // namespace dp::llm
