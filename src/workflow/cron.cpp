#include "workflow/cron.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <vector>

#include <date/tz.h>

namespace dp::workflow {
namespace {

constexpr std::size_t kMaxCronBytes = 256;

struct Field {
  std::string_view name;
  int lo;
  int hi;
  const std::array<std::string_view, 12>* names;  // names[i] is value i + names_base
  int names_base;
  int names_count;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                         "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> kDayNames = {"sun", "mon", "tue", "wed",
                                                       "thu", "fri", "sat"};

Error bad(std::string_view field, const std::string& what) {
  return Error::invalid_argument("bad_cron", std::string(field) + ": " + what);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<int> value_of(const Field& f, std::string_view tok) {
  if (tok.empty()) return bad(f.name, "an empty value");
  if (f.names != nullptr && std::isalpha(static_cast<unsigned char>(tok.front())) != 0) {
    const std::string l = lower(tok);
    for (int i = 0; i < f.names_count; ++i) {
      if ((*f.names)[static_cast<std::size_t>(i)] == l) return i + f.names_base;
    }
    return bad(f.name, "unknown name '" + std::string(tok.substr(0, 16)) + "'");
  }
  int n = 0;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), n);
  if (ec != std::errc() || p != tok.data() + tok.size()) {
    return bad(f.name, "'" + std::string(tok.substr(0, 16)) + "' is not a number");
  }
  if (n < f.lo || n > f.hi) {
    return bad(f.name, std::to_string(n) + " is outside " + std::to_string(f.lo) + ".." +
                           std::to_string(f.hi));
  }
  return n;
}

// Sets the bits of `text` (one field) in `bits`; true when the field is not `*` (or `*/1`).
Result<bool> parse_field(const Field& f, std::string_view text, std::vector<bool>& bits) {
  bool restricted = false;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string_view part =
        text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (part.empty()) return bad(f.name, "an empty list entry");
    std::string_view range = part;
    int step = 1;
    if (const auto slash = part.find('/'); slash != std::string_view::npos) {
      range = part.substr(0, slash);
      const auto s = part.substr(slash + 1);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (s.empty() || ec != std::errc() || p != s.data() + s.size() || step < 1 ||
          step > f.hi) {
        return bad(f.name, "step '" + std::string(s.substr(0, 16)) + "' must be 1.." +
                               std::to_string(f.hi));
      }
    }
    int lo = f.lo;
    int hi = f.hi;
    if (range == "*") {
      if (step != 1 || comma != std::string_view::npos || start != 0) restricted = true;
    } else {
      restricted = true;
      const auto dash = range.find('-');
      if (dash == std::string_view::npos) {
        DP_ASSIGN_OR_RETURN(lo, value_of(f, range));
        // `a/n` runs from a to the end of the field; a plain `a` is just a.
        hi = part.find('/') != std::string_view::npos ? f.hi : lo;
      } else {
        DP_ASSIGN_OR_RETURN(lo, value_of(f, range.substr(0, dash)));
        DP_ASSIGN_OR_RETURN(hi, value_of(f, range.substr(dash + 1)));
        if (hi < lo) {
          return bad(f.name, "range '" + std::string(range.substr(0, 16)) + "' runs backwards");
        }
      }
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<std::size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return restricted;
}

template <std::size_t N>
void copy_bits(const std::vector<bool>& from, std::bitset<N>& to) {
  for (std::size_t i = 0; i < N && i < from.size(); ++i) to[i] = from[i];
}

std::string_view shorthand(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return {};
}

}  // namespace

Result<CronSpec> parse_cron(std::string_view text) {
  if (text.size() > kMaxCronBytes) {
    return Error::invalid_argument("bad_cron", "a cron expression is at most 256 bytes");
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.remove_suffix(1);
  if (!text.empty() && text.front() == '@') {
    const auto expanded = shorthand(lower(text));
    if (expanded.empty()) {
      return Error::invalid_argument(
          "bad_cron", "unknown shorthand (use @yearly, @monthly, @weekly, @daily or @hourly)");
    }
    text = expanded;
  }
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
    const std::size_t b = i;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0) ++i;
    if (i > b) parts.push_back(text.substr(b, i - b));
  }
  if (parts.size() != 5) {
    return Error::invalid_argument(
        "bad_cron", "a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                    "not " + std::to_string(parts.size()));
  }
  static const std::array<Field, 5> kFields = {{
      {"minute", 0, 59, nullptr, 0, 0},
      {"hour", 0, 23, nullptr, 0, 0},
      {"day-of-month", 1, 31, nullptr, 0, 0},
      {"month", 1, 12, &kMonthNames, 1, 12},
      {"day-of-week", 0, 7, &kDayNames, 0, 7},
  }};
  CronSpec spec;
  std::array<std::vector<bool>, 5> bits;
  std::array<bool, 5> restricted{};
  for (std::size_t k = 0; k < 5; ++k) {
    bits[k].assign(static_cast<std::size_t>(kFields[k].hi + 1), false);
    DP_ASSIGN_OR_RETURN(restricted[k], parse_field(kFields[k], parts[k], bits[k]));
  }
  if (bits[4][7]) bits[4][0] = true;  // 7 is Sunday as well
  copy_bits(bits[0], spec.minutes);
  copy_bits(bits[1], spec.hours);
  copy_bits(bits[2], spec.days);
  copy_bits(bits[3], spec.months);
  copy_bits(bits[4], spec.weekdays);
  spec.days_restricted = restricted[2];
  spec.weekdays_restricted = restricted[4];
  return spec;
}

Result<const date::time_zone*> find_zone(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Error::invalid_argument("bad_timezone", "a time zone is an IANA name like Europe/Berlin");
  }
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return Error::invalid_argument("bad_timezone",
                                   "unknown time zone '" + std::string(name) + "'");
  }
}

std::optional<std::int64_t> next_fire(const CronSpec& spec, const date::time_zone* zone,
                                      std::int64_t after_ms) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  const date::sys_time<milliseconds> after{milliseconds(after_ms)};
  const auto local = zone->to_local(std::chrono::floor<minutes>(after));
  date::local_days day = std::chrono::floor<date::days>(local);
  constexpr int kSearchDays = 366 * 5 + 2;
  for (int d = 0; d < kSearchDays; ++d, day += date::days(1)) {
    const date::year_month_day ymd(day);
    if (!spec.months[static_cast<unsigned>(ymd.month())]) continue;
    const bool dom = spec.days[static_cast<unsigned>(ymd.day())];
    const bool dow = spec.weekdays[date::weekday(day).c_encoding()];
    const bool match = spec.days_restricted && spec.weekdays_restricted ? (dom || dow)
                                                                         : (dom && dow);
    if (!match) continue;
    for (int h = 0; h < 24; ++h) {
      if (!spec.hours[static_cast<std::size_t>(h)]) continue;
      for (int m = 0; m < 60; ++m) {
        if (!spec.minutes[static_cast<std::size_t>(m)]) continue;
        const date::local_time<minutes> at = day + hours(h) + minutes(m);
        // earliest: the first of two occurrences; a time in a gap maps to the gap's end.
        const auto sys = zone->to_sys(at, date::choose::earliest);
        if (sys > after) {
          return std::chrono::duration_cast<milliseconds>(sys.time_since_epoch()).count();
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace dp::workflow
