// Cron schedules for workflow triggers (docs/workflows.md, "Triggers").
//
// Five fields, `minute hour day-of-month month day-of-week`, each `*`, a number, a range
// `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma-separated list of those; months and
// weekdays also by name (`jan`..`dec`, `sun`..`sat`, case-insensitive; weekday 7 is Sunday too).
// As in Vixie cron, when both day fields are restricted a day matches if either does. The
// shorthands `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and
// `@hourly` stand for their five-field forms.
//
// Times are evaluated in an IANA time zone (the system's tzdata through Howard Hinnant's date
// library; libstdc++ 12 lacks C++20's std::chrono::locate_zone). Across daylight-saving changes:
// a local time that does not exist (skipped forward) fires at the first instant after the gap,
// once; a local time that happens twice (set back) fires once, at its first occurrence.
//
// Plain value types and pure functions; safe from any thread.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace date {
class time_zone;
}

namespace dp::workflow {

struct CronSpec {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;      // 1..31
  std::bitset<13> months;    // 1..12
  std::bitset<7> weekdays;   // 0 = Sunday
  bool days_restricted = false;
  bool weekdays_restricted = false;
};

// kInvalidArgument (reason `bad_cron`) naming the field and what is wrong with it.
Result<CronSpec> parse_cron(std::string_view text);

// The zone by IANA name ("Europe/Berlin", "UTC"). kInvalidArgument (`bad_timezone`) when the
// tz database does not know it.
Result<const date::time_zone*> find_zone(std::string_view name);

// The first scheduled instant (epoch ms, a whole minute) strictly after `after_ms`, or nullopt
// when none comes within five years (e.g. `0 0 30 2 *`).
std::optional<std::int64_t> next_fire(const CronSpec& spec, const date::time_zone* zone,
                                      std::int64_t after_ms);

}  // namespace dp::workflow
