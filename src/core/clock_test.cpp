#include "core/clock.hpp"

#include <cstdint>
#include <random>

#include <gtest/gtest.h>

namespace dp::clock {
namespace {

TEST(ClockTest, FormatsKnownInstants) {
  EXPECT_EQ(format_iso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(format_iso8601(951'782'400'000), "2000-02-29T00:00:00.000Z");  // leap day
  EXPECT_EQ(format_iso8601(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_iso8601(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
}

TEST(ClockTest, FormatThenParseGivesTheSameInstant) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> dist(0, 253'402'300'799'999);
  for (int i = 0; i < 10'000; ++i) {
    const std::int64_t ms = dist(rng);
    const std::string s = format_iso8601(ms);
    ASSERT_EQ(s.size(), 24u) << s;
    auto back = parse_timestamp(s);
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, ms) << s;
  }
}

}  // namespace
}  // namespace dp::clock
