#include "core/log.hpp"

#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "core/clock.hpp"

namespace dp::log {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    const auto nl = s.find('\n', start);
    if (nl == std::string::npos) {
      out.push_back(s.substr(start));
      break;
    }
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// The logger writes to stderr; gtest's capture redirects fd 2 for the duration of a test.
// The global level and format are restored after each test.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { configure(Level::kInfo, Format::kJson); }
  void TearDown() override { configure(Level::kInfo, Format::kJson); }

  template <class Fn>
  std::string capture(Fn&& fn) {
    ::testing::internal::CaptureStderr();
    fn();
    return ::testing::internal::GetCapturedStderr();
  }
};

TEST(LogParseTest, Levels) {
  EXPECT_EQ(*parse_level("debug"), Level::kDebug);
  EXPECT_EQ(*parse_level("info"), Level::kInfo);
  EXPECT_EQ(*parse_level("warn"), Level::kWarn);
  EXPECT_EQ(*parse_level("warning"), Level::kWarn);
  EXPECT_EQ(*parse_level("error"), Level::kError);
  for (const char* bad : {"", "INFO", "trace", "fatal", "info "}) {
    auto r = parse_level(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().reason, "bad_config");
  }
}

TEST(LogParseTest, Formats) {
  EXPECT_EQ(*parse_format("json"), Format::kJson);
  EXPECT_EQ(*parse_format("text"), Format::kText);
  auto r = parse_format("yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "bad_config");
}

TEST(LogParseTest, LevelNamesRoundTrip) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    auto back = parse_level(to_string(l));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, l);
  }
}

TEST_F(LogTest, EnabledFollowsConfiguredLevel) {
  configure(Level::kWarn, Format::kJson);
  EXPECT_FALSE(enabled(Level::kDebug));
  EXPECT_FALSE(enabled(Level::kInfo));
  EXPECT_TRUE(enabled(Level::kWarn));
  EXPECT_TRUE(enabled(Level::kError));
  configure(Level::kDebug, Format::kJson);
  EXPECT_TRUE(enabled(Level::kDebug));
}

TEST_F(LogTest, JsonLineHasTheSeedShape) {
  Logger logger("req-123", "agent-9");
  const auto before = clock::now_ms();
  const std::string out = capture([&] { logger.warn("disk almost full", {{"freeBytes", 42}}); });
  const auto after = clock::now_ms();
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  ASSERT_EQ(out.back(), '\n');
  const auto v = boost::json::parse(lines[0]);
  const auto& o = v.as_object();
  EXPECT_EQ(o.size(), 6u) << lines[0];
  EXPECT_EQ(o.at("level").as_string(), "warn");
  EXPECT_EQ(o.at("message").as_string(), "disk almost full");
  EXPECT_EQ(o.at("correlationId").as_string(), "req-123");
  EXPECT_EQ(o.at("agentId").as_string(), "agent-9");
  EXPECT_EQ(o.at("context").as_object().at("freeBytes").as_int64(), 42);
  const auto ts = clock::parse_timestamp(o.at("timestamp").as_string());
  ASSERT_TRUE(ts.has_value()) << o.at("timestamp");
  EXPECT_GE(*ts, before);
  EXPECT_LE(*ts, after);
}

TEST_F(LogTest, MissingIdsAreNullAndContextIsAnObject) {
  const std::string out = capture([] { global().error("boom"); });
  const auto v = boost::json::parse(out);
  const auto& o = v.as_object();
  EXPECT_TRUE(o.at("correlationId").is_null());
  EXPECT_TRUE(o.at("agentId").is_null());
  EXPECT_TRUE(o.at("context").as_object().empty());
  EXPECT_EQ(o.at("level").as_string(), "error");
}

TEST_F(LogTest, MessageWithNewlinesAndQuotesStaysOneLine) {
  Logger logger("c\"1");
  const std::string out = capture([&] { logger.info("line one\nline \"two\"\r\n\ttab"); });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const auto v = boost::json::parse(lines[0]);
  EXPECT_EQ(v.at("message").as_string(), "line one\nline \"two\"\r\n\ttab");
  EXPECT_EQ(v.at("correlationId").as_string(), "c\"1");
}

TEST_F(LogTest, BelowLevelIsNotWritten) {
  configure(Level::kWarn, Format::kJson);
  const std::string out = capture([] {
    global().debug("d");
    global().info("i");
    global().warn("w");
    global().write(Level::kError, "e", {});
  });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(boost::json::parse(lines[0]).at("message").as_string(), "w");
  EXPECT_EQ(boost::json::parse(lines[1]).at("message").as_string(), "e");
}

TEST_F(LogTest, DebugWrittenWhenEnabled) {
  configure(Level::kDebug, Format::kJson);
  const std::string out = capture([] { global().debug("details"); });
  ASSERT_EQ(lines_of(out).size(), 1u);
  EXPECT_EQ(boost::json::parse(out).at("level").as_string(), "debug");
}

TEST_F(LogTest, TextFormatIsOneHumanLine) {
  configure(Level::kInfo, Format::kText);
  Logger logger("req-7", "agent-3");
  const std::string out = capture([&] { logger.info("started", {{"port", 8080}}); });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const std::string& l = lines[0];
  // "<timestamp> info started [req-7] agent=agent-3 {"port":8080}"
  const auto sp = l.find(' ');
  ASSERT_NE(sp, std::string::npos);
  EXPECT_TRUE(clock::parse_timestamp(l.substr(0, sp)).has_value()) << l;
  EXPECT_EQ(l.substr(sp + 1), "info started [req-7] agent=agent-3 {\"port\":8080}");
}

TEST_F(LogTest, TextFormatOmitsAbsentParts) {
  configure(Level::kInfo, Format::kText);
  const std::string out = capture([] { global().warn("plain"); });
  const auto sp = out.find(' ');
  ASSERT_NE(sp, std::string::npos);
  EXPECT_EQ(out.substr(sp + 1), "warn plain\n");
}

TEST_F(LogTest, LoggerKeepsCorrelationId) {
  Logger a("abc");
  Logger b = a;
  EXPECT_EQ(b.correlation_id(), "abc");
  EXPECT_TRUE(Logger().correlation_id().empty());
}

}  // namespace
}  // namespace dp::log
