#include "mcp/sse.hpp"

#include <gtest/gtest.h>

namespace dp::mcp {
namespace {

std::vector<SseEvent> parse_all(std::string_view text, std::size_t step) {
  SseParser p;
  std::vector<SseEvent> out;
  for (std::size_t i = 0; i < text.size(); i += step) {
    EXPECT_TRUE(p.feed(text.substr(i, step), out).ok());
  }
  return out;
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

TEST(SseParserTest, IgnoresEventsWithoutDataAndUnknownFields) {
  SseParser p;
  std::vector<SseEvent> out;
  ASSERT_TRUE(p.feed("id: 9\nretry: 1500\nfoo: bar\nevent: x\n\n", out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(p.last_event_id(), "9");
  EXPECT_EQ(p.retry_ms(), 1500);
  ASSERT_TRUE(p.feed("retry: soon\ndata\n\n", out).ok());  // "data" without colon: empty value
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "");
  EXPECT_EQ(out[0].event, "message");  // the event name was reset after the earlier dispatch
  EXPECT_EQ(p.retry_ms(), 1500);
}

TEST(SseParserTest, RefusesOversizedLinesAndEvents) {
  SseParser p(32);
  std::vector<SseEvent> out;
  EXPECT_FALSE(p.feed("data: " + std::string(40, 'a'), out).ok());  // no line end yet
  EXPECT_FALSE(p.feed("\n\n", out).ok());  // stays failed
  SseParser q(32);
  ASSERT_TRUE(q.feed("data: " + std::string(20, 'a') + "\n", out).ok());
  auto s = q.feed("data: " + std::string(20, 'b') + "\n\n", out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "message_too_large");
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace dp::mcp
