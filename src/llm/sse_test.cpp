// SseParser: framing across arbitrary piece boundaries, line endings, comments, multi-line
// data, limits and the sticky failure.
#include "llm/sse.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace dp::llm {
namespace {

struct Collect {
  std::vector<SseEvent> events;
  SseParser::Sink sink() {
    return [this](const SseEvent& e) -> Status {
      events.push_back(e);
      return Ok{};
    };
  }
};

TEST(SseParserTest, ParsesEventsWithNamesDataAndIds) {
  SseParser p;
  Collect c;
  ASSERT_TRUE(p.feed("event: a\ndata: one\nid: 7\n\ndata:two\ndata: three\n\n", c.sink()).ok());
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].event, "a");
  EXPECT_EQ(c.events[0].data, "one");
  EXPECT_EQ(c.events[0].id, "7");
  EXPECT_EQ(c.events[1].event, "");
  EXPECT_EQ(c.events[1].data, "two\nthree");
  EXPECT_EQ(c.events[1].id, "7");  // the last id persists
  EXPECT_FALSE(p.in_event());
}

TEST(SseParserTest, AnySplitOfTheBytesGivesTheSameEvents) {
  const std::string text =
      ": comment\r\nevent: content_block_delta\r\ndata: {\"a\":1}\r\n\r\ndata: x\rdata: y\r\r"
      "data: [DONE]\n\n";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= text.size(); cut2 += 7) {
      SseParser p;
      Collect c;
      ASSERT_TRUE(p.feed(text.substr(0, cut), c.sink()).ok());
      ASSERT_TRUE(p.feed(text.substr(cut, cut2 - cut), c.sink()).ok());
      ASSERT_TRUE(p.feed(text.substr(cut2), c.sink()).ok());
      ASSERT_EQ(c.events.size(), 3u) << "cut at " << cut << "," << cut2;
      EXPECT_EQ(c.events[0].event, "content_block_delta");
      EXPECT_EQ(c.events[0].data, "{\"a\":1}");
      EXPECT_EQ(c.events[1].data, "x\ny");
      EXPECT_EQ(c.events[2].data, "[DONE]");
    }
  }
}

TEST(SseParserTest, CommentsAndEmptyEventsAreNotDispatched) {
  SseParser p;
  Collect c;
  ASSERT_TRUE(p.feed(": keep-alive\n\n\n\nretry: 10\n\n", c.sink()).ok());
  EXPECT_TRUE(c.events.empty());
}

TEST(SseParserTest, ReportsAnUnfinishedEvent) {
  SseParser p;
  Collect c;
  ASSERT_TRUE(p.feed("data: {\"par", c.sink()).ok());
  EXPECT_TRUE(p.in_event());
  SseParser q;
  ASSERT_TRUE(q.feed("data: whole\n", c.sink()).ok());
  EXPECT_TRUE(q.in_event());  // no blank line yet
  EXPECT_TRUE(c.events.empty());
}

TEST(SseParserTest, ALineOverTheLimitFailsAndStaysFailed) {
  SseParser p(16, 64);
  Collect c;
  Status s = p.feed("data: 0123456789abcdef\n\n", c.sink());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(s.error().reason, "response_too_large");
  EXPECT_FALSE(p.feed("data: ok\n\n", c.sink()).ok());
  EXPECT_TRUE(c.events.empty());
}

TEST(SseParserTest, AnEventOverTheLimitFails) {
  SseParser p(64, 20);
  Collect c;
  Status s = p.feed("data: 0123456789\ndata: 0123456789\n\n", c.sink());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "response_too_large");
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
}

}  // namespace
}  // namespace dp::llm
