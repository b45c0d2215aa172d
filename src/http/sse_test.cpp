// SseParser (WHATWG event-stream rules): framing across any piece boundaries, every line
// ending, BOM, comments, multi-line data, the default event type, data-less events, ids and
// retry, limits with the caller's error reason, the sink's error, and the sticky failure.
// The cases of the former llm and mcp parsers' suites, reconciled.
#include "http/sse.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace dp::http {
namespace {

std::vector<SseEvent> parse_all(std::string_view text, std::size_t step) {
  SseParser p;
  std::vector<SseEvent> out;
  for (std::size_t i = 0; i < text.size(); i += step) {
    EXPECT_TRUE(p.feed(text.substr(i, step), out).ok());
  }
  return out;
}

TEST(SseParserTest, ParsesEventsWithTypesDataAndIds) {
  SseParser p;
  std::vector<SseEvent> ev;
  ASSERT_TRUE(p.feed("event: a\ndata: one\nid: 7\n\ndata:two\ndata: three\n\n", ev).ok());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].event, "a");
  EXPECT_EQ(ev[0].data, "one");
  EXPECT_EQ(ev[0].id, "7");
  EXPECT_EQ(ev[1].event, "message");  // the default type; the earlier name was reset
  EXPECT_EQ(ev[1].data, "two\nthree");
  EXPECT_EQ(ev[1].id, "7");  // the last id persists
  EXPECT_FALSE(p.in_event());
}

TEST(SseParserTest, ParsesEventsWhateverTheChunking) {
  const std::string stream =
      "\xEF\xBB\xBF: comment\r\n"
      "id: 1\r\n"
      "data:\r\n\r\n"  // priming event: empty data is still data
      "event: message\n"
      "id: 2\n"
      "data: {\"a\":1}\n\n"
      "data: line1\rdata: line2\r\r"
      "event: other\ndata:x\n\n"
      "data: unterminated";
  for (std::size_t step : {1u, 2u, 3u, 7u, 1000u}) {
    auto ev = parse_all(stream, step);
    ASSERT_EQ(ev.size(), 4u) << "step " << step;
    EXPECT_EQ(ev[0].data, "");
    EXPECT_EQ(ev[0].id, "1");
    EXPECT_EQ(ev[1].event, "message");
    EXPECT_EQ(ev[1].data, "{\"a\":1}");
    EXPECT_EQ(ev[1].id, "2");
    EXPECT_EQ(ev[2].data, "line1\nline2");
    EXPECT_EQ(ev[2].id, "2");
    EXPECT_EQ(ev[3].event, "other");
    EXPECT_EQ(ev[3].data, "x");
  }
}

TEST(SseParserTest, AnyTwoCutsGiveTheSameEvents) {
  const std::string text =
      ": comment\r\nevent: content_block_delta\r\ndata: {\"a\":1}\r\n\r\ndata: x\rdata: y\r\r"
      "data: [DONE]\n\n";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= text.size(); cut2 += 7) {
      SseParser p;
      std::vector<SseEvent> ev;
      ASSERT_TRUE(p.feed(text.substr(0, cut), ev).ok());
      ASSERT_TRUE(p.feed(text.substr(cut, cut2 - cut), ev).ok());
      ASSERT_TRUE(p.feed(text.substr(cut2), ev).ok());
      ASSERT_EQ(ev.size(), 3u) << "cut at " << cut << "," << cut2;
      EXPECT_EQ(ev[0].event, "content_block_delta");
      EXPECT_EQ(ev[0].data, "{\"a\":1}");
      EXPECT_EQ(ev[1].data, "x\ny");
      EXPECT_EQ(ev[2].data, "[DONE]");
    }
  }
}

TEST(SseParserTest, SkipsOneLeadingBomOnly) {
  // Split byte by byte.
  SseParser p;
  std::vector<SseEvent> ev;
  for (char c : std::string("\xEF\xBB\xBF" "data: a\n\n")) ASSERT_TRUE(p.feed(std::string_view(&c, 1), ev).ok());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "a");
  // A second BOM is part of the field name ("\uFEFFdata" is an unknown field).
  SseParser q;
  ev.clear();
  ASSERT_TRUE(q.feed("\xEF\xBB\xBF\xEF\xBB\xBF" "data: b\n\ndata: c\n\n", ev).ok());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "c");
  // Bytes that begin like a BOM but are not one are text.
  SseParser r;
  ev.clear();
  ASSERT_TRUE(r.feed("\xEF", ev).ok());
  ASSERT_TRUE(r.feed("data: d\n\n", ev).ok());
  EXPECT_TRUE(ev.empty());  // "\xEF" + "data" is an unknown field
  ASSERT_TRUE(r.feed("data: e\n\n", ev).ok());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "e");
}

TEST(SseParserTest, EventsWithoutDataAreNotDispatchedWhateverTheirType) {
  SseParser p;
  std::vector<SseEvent> ev;
  ASSERT_TRUE(p.feed(": keep-alive\n\n\n\nretry: 10\n\n", ev).ok());
  EXPECT_TRUE(ev.empty());
  ASSERT_TRUE(p.feed("id: 9\nretry: 1500\nfoo: bar\nevent: x\n\n", ev).ok());
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(p.last_event_id(), "9");
  EXPECT_EQ(p.retry_ms(), 1500);
  ASSERT_TRUE(p.feed("retry: soon\nretry: -5\ndata\n\n", ev).ok());  // "data" alone: an empty value
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "");
  EXPECT_EQ(ev[0].event, "message");  // the name of the data-less event was dropped with it
  EXPECT_EQ(ev[0].id, "9");
  EXPECT_EQ(p.retry_ms(), 1500);
}

TEST(SseParserTest, AnIdWithNulIsIgnored) {
  SseParser p;
  std::vector<SseEvent> ev;
  ASSERT_TRUE(p.feed("id: 1\ndata: a\n\n", ev).ok());
  ASSERT_TRUE(p.feed(std::string("id: 2\0x\ndata: b\n\n", 17), ev).ok());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].id, "1");
  ASSERT_TRUE(p.feed("id\ndata: c\n\n", ev).ok());  // an empty id resets it
  EXPECT_EQ(ev[2].id, "");
}

TEST(SseParserTest, ReportsAnUnfinishedEvent) {
  SseParser p;
  std::vector<SseEvent> ev;
  ASSERT_TRUE(p.feed("data: {\"par", ev).ok());
  EXPECT_TRUE(p.in_event());
  SseParser q;
  ASSERT_TRUE(q.feed("data: whole\n", ev).ok());
  EXPECT_TRUE(q.in_event());  // no blank line yet
  EXPECT_TRUE(ev.empty());
  ASSERT_TRUE(q.feed("\n", ev).ok());
  EXPECT_FALSE(q.in_event());
  ASSERT_EQ(ev.size(), 1u);
}

TEST(SseParserTest, ALineOverTheLimitFailsWithTheCallersReasonAndStaysFailed) {
  SseParser p(SseLimits{16, 64, "response_too_large"});
  std::vector<SseEvent> ev;
  Status s = p.feed("data: 0123456789abcdef\n\n", ev);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(s.error().reason, "response_too_large");
  EXPECT_FALSE(p.feed("data: ok\n\n", ev).ok());
  EXPECT_TRUE(ev.empty());
  // No line end yet: the limit holds for a line still arriving.
  SseParser q(SseLimits{32, 32, "message_too_large"});
  EXPECT_FALSE(q.feed("data: " + std::string(40, 'a'), ev).ok());
  EXPECT_FALSE(q.feed("\n\n", ev).ok());
  EXPECT_TRUE(ev.empty());
}

TEST(SseParserTest, AnEventOverTheLimitFails) {
  SseParser p(SseLimits{64, 20, "response_too_large"});
  std::vector<SseEvent> ev;
  Status s = p.feed("data: 0123456789\ndata: 0123456789\n\n", ev);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "response_too_large");
  SseParser q(SseLimits{32, 32, "message_too_large"});
  ASSERT_TRUE(q.feed("data: " + std::string(20, 'a') + "\n", ev).ok());
  s = q.feed("data: " + std::string(20, 'b') + "\n\n", ev);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "message_too_large");
  EXPECT_TRUE(ev.empty());
}

TEST(SseParserTest, TheSinksErrorStopsParsing) {
  SseParser p;
  int n = 0;
  Status s = p.feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) -> Status {
    ++n;
    return Error::invalid_argument("stop", "stop here");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "stop");
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(p.feed("data: 3\n\n", [&](const SseEvent&) -> Status { return Ok{}; }).ok());
}

}  // namespace
}  // namespace dp::http
