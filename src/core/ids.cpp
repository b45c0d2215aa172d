#include "core/ids.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace dp::ids {
namespace {

struct Generator {
  std::mutex mu;
  std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t last_ms = 0;
  std::uint16_t counter = 0;  // 12 bits: rand_a is used as a monotonic counter within one ms
};

Generator& generator() {
  static Generator g;
  return g;
}

}  // namespace

std::string uuid_v7() {
  auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  std::uint64_t ms = 0;
  std::uint16_t seq = 0;
  std::uint64_t rand_b = 0;
  {
    Generator& g = generator();
    std::lock_guard lock(g.mu);
    if (now > g.last_ms) {
      g.last_ms = now;
      g.counter = static_cast<std::uint16_t>(g.rng() & 0x3FF);  // leave headroom for increments
    } else if (++g.counter > 0xFFF) {
      // Counter exhausted within this millisecond (or the clock stepped back): borrow the
      // next millisecond so ids stay strictly increasing.
      ++g.last_ms;
      g.counter = 0;
    }
    ms = g.last_ms;
    seq = g.counter;
    rand_b = g.rng();
  }
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  }
  b[6] = static_cast<std::uint8_t>(0x70 | ((seq >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(seq & 0xFF);
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(rand_b >> (56 - 8 * i));
  }
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0F]);
  }
  return out;
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace dp::ids
