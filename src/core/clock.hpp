// Wall-clock helpers. Times cross module boundaries as milliseconds since the Unix
// epoch (UTC) and are rendered as ISO-8601 with millisecond precision ("...T18:26:06.123Z").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dp::clock {

std::int64_t now_ms() noexcept;
// Microseconds since the epoch: for measurements recorded beside a result (a task's start and
// end), not for stored timestamps.
std::int64_t now_us() noexcept;

// "2026-11-25T18:26:06.123Z"
std::string format_iso8601(std::int64_t epoch_ms);

// Accepts "YYYY-MM-DD[T| ]hh:mm:ss[.fff...][Z|+hh[:mm]|-hh[:mm]]", the forms that clients
// send and that PostgreSQL prints for timestamptz. Returns nullopt on anything else.
std::optional<std::int64_t> parse_timestamp(std::string_view text) noexcept;

}  // namespace dp::clock
