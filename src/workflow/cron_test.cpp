// The cron parser and next-time computation, in UTC and across daylight-saving changes.
#include "workflow/cron.hpp"

#include <gtest/gtest.h>

#include "core/clock.hpp"

namespace dp::workflow {
namespace {

std::int64_t at(const char* iso) {
  auto t = clock::parse_timestamp(iso);
  EXPECT_TRUE(t.has_value()) << iso;
  return t.value_or(0);
}

std::string next(const char* cron, const char* tz, const char* after) {
  auto spec = parse_cron(cron);
  EXPECT_TRUE(spec.ok()) << cron << ": " << (spec.ok() ? "" : spec.error().message);
  auto zone = find_zone(tz);
  EXPECT_TRUE(zone.ok()) << tz;
  if (!spec.ok() || !zone.ok()) return "";
  auto n = next_fire(*spec, *zone, at(after));
  return n ? clock::format_iso8601(*n) : "never";
}

TEST(CronTest, FieldsRangesStepsListsNames) {
  EXPECT_EQ(next("*/5 * * * *", "UTC", "2026-03-01T10:02:30Z"), "2026-03-01T10:05:00.000Z");
  EXPECT_EQ(next("*/5 * * * *", "UTC", "2026-03-01T10:05:00Z"), "2026-03-01T10:10:00.000Z");
  EXPECT_EQ(next("0 9-17/4 * * *", "UTC", "2026-03-01T10:00:00Z"), "2026-03-01T13:00:00.000Z");
  EXPECT_EQ(next("15,45 2 * * *", "UTC", "2026-03-01T02:20:00Z"), "2026-03-01T02:45:00.000Z");
  EXPECT_EQ(next("0 0 1 jan,JUL *", "UTC", "2026-03-01T00:00:00Z"), "2026-07-01T00:00:00.000Z");
  // 2026-03-01 is a Sunday.
  EXPECT_EQ(next("30 8 * * mon-fri", "UTC", "2026-03-01T00:00:00Z"), "2026-03-02T08:30:00.000Z");
  EXPECT_EQ(next("0 12 * * 7", "UTC", "2026-03-02T00:00:00Z"), "2026-03-08T12:00:00.000Z");
  EXPECT_EQ(next("0 12 * * sun", "UTC", "2026-03-02T00:00:00Z"), "2026-03-08T12:00:00.000Z");
  EXPECT_EQ(next("5/20 * * * *", "UTC", "2026-03-01T10:26:00Z"), "2026-03-01T10:45:00.000Z");
  EXPECT_EQ(next("@daily", "UTC", "2026-03-01T10:00:00Z"), "2026-03-02T00:00:00.000Z");
  EXPECT_EQ(next("@hourly", "UTC", "2026-03-01T10:00:00Z"), "2026-03-01T11:00:00.000Z");
  EXPECT_EQ(next("0 0 29 2 *", "UTC", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00.000Z");
  EXPECT_EQ(next("0 0 30 2 *", "UTC", "2026-03-01T00:00:00Z"), "never");
}

TEST(CronTest, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // The 13th, or any Friday: 2026-03-06 is a Friday, before the 13th.
  EXPECT_EQ(next("0 0 13 * fri", "UTC", "2026-03-01T00:00:00Z"), "2026-03-06T00:00:00.000Z");
  // Only the day of month restricted: the 13th.
  EXPECT_EQ(next("0 0 13 * *", "UTC", "2026-03-01T00:00:00Z"), "2026-03-13T00:00:00.000Z");
}

TEST(CronTest, TimeZones) {
  // 09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer.
  EXPECT_EQ(next("0 9 * * *", "Europe/Berlin", "2026-01-15T12:00:00Z"), "2026-01-16T08:00:00.000Z");
  EXPECT_EQ(next("0 9 * * *", "Europe/Berlin", "2026-07-15T12:00:00Z"), "2026-07-16T07:00:00.000Z");
  EXPECT_EQ(next("0 9 * * *", "America/New_York", "2026-01-15T12:00:00Z"), "2026-01-15T14:00:00.000Z");
  EXPECT_EQ(next("30 0 * * *", "Asia/Kolkata", "2026-01-15T00:00:00Z"), "2026-01-15T19:00:00.000Z");
}

TEST(CronTest, DaylightSavingGapFiresOnceAfterTheGap) {
  // Berlin skips 02:00-03:00 on 2026-03-29 (01:00 UTC). 02:30 does not exist that day: it
  // fires at 03:00 local (01:00 UTC), once, then on the next day at 02:30 (00:30 UTC).
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00.000Z");
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00.000Z");
  // Every 15 minutes of hour 2: the four non-existent times collapse into one run.
  EXPECT_EQ(next("*/15 2 * * *", "Europe/Berlin", "2026-03-29T00:50:00Z"), "2026-03-29T01:00:00.000Z");
  EXPECT_EQ(next("*/15 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z"), "2026-03-30T00:00:00.000Z");
}

TEST(CronTest, DaylightSavingOverlapFiresOnce) {
  // Berlin repeats 02:00-03:00 on 2026-10-25 (01:00 UTC back to 00:00 UTC local 02:00).
  // 02:30 happens at 00:30 UTC and again at 01:30 UTC: it fires at the first only.
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00.000Z");
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00.000Z");
}

TEST(CronTest, RejectsMalformed) {
  for (const char* bad : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                          "* * 32 * *", "* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *",
                          "*/61 * * * *", "a * * * *", "* * * foo *", "1,,2 * * * *", "1- * * * *",
                          "-1 * * * *", "@often", "*/ * * * *", "1/x * * * *"}) {
    auto r = parse_cron(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.error().reason, "bad_cron") << bad;
    }
  }
  EXPECT_FALSE(parse_cron(std::string(300, '*')).ok());
  EXPECT_FALSE(find_zone("Mars/Olympus").ok());
  EXPECT_FALSE(find_zone("").ok());
  EXPECT_TRUE(find_zone("UTC").ok());
}

}  // namespace
}  // namespace dp::workflow
