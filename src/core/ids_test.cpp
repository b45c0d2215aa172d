#include "core/ids.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace dp::ids {
namespace {

std::uint64_t hex_value(std::string_view s) {
  std::uint64_t v = 0;
  for (char c : s) {
    if (c == '-') continue;
    v = v * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return v;
}

TEST(IdsTest, UuidV7HasCanonicalShapeVersionAndVariant) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = uuid_v7();
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[18], '-');
    EXPECT_EQ(id[23], '-');
    EXPECT_EQ(id[14], '7') << "version nibble: " << id;
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b')
        << "variant 10xx: " << id;
    EXPECT_EQ(id.find_first_of("ABCDEF"), std::string::npos) << "lower case: " << id;
  }
}

TEST(IdsTest, TimestampIsNow) {
  using namespace std::chrono;
  const auto before = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const std::string id = uuid_v7();
  const auto after = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const auto ms = static_cast<std::int64_t>(hex_value(id.substr(0, 13)));
  EXPECT_GE(ms, before);
  // The generator may borrow a following millisecond when its counter runs out.
  EXPECT_LE(ms, after + 1000);
}

TEST(IdsTest, StrictlyIncreasingWithinOneThread) {
  std::vector<std::string> ids;
  ids.reserve(20000);
  for (int i = 0; i < 20000; ++i) ids.push_back(uuid_v7());
  for (std::size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i;
  }
}

TEST(IdsTest, UniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<std::string>> out(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&out, t] {
      for (int i = 0; i < kPerThread; ++i) out[static_cast<std::size_t>(t)].push_back(uuid_v7());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : out) {
    // Each thread sees its own ids increasing too.
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(IdsTest, IsUuidAcceptsCanonicalFormsOfAnyVersionAndCase) {
  EXPECT_TRUE(is_uuid("00000000-0000-0000-0000-000000000000"));
  EXPECT_TRUE(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
  EXPECT_TRUE(is_uuid("123E4567-E89B-12D3-A456-426614174000"));
  EXPECT_TRUE(is_uuid("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"));
}

TEST(IdsTest, IsUuidRejectsEverythingElse) {
  EXPECT_FALSE(is_uuid(""));
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400"));    // 35
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-4266141740000"));  // 37
  EXPECT_FALSE(is_uuid("123e4567e89b12d3a456426614174000"));       // no hyphens
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456_426614174000"));   // wrong separator
  EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a4560426614174000"));   // hyphen missing
  EXPECT_FALSE(is_uuid("g23e4567-e89b-12d3-a456-426614174000"));   // not hex
  EXPECT_FALSE(is_uuid("{23e4567-e89b-12d3-a456-42661417400}"));
  EXPECT_FALSE(is_uuid("../../../../etc/passwd-000000000000000"));
  EXPECT_FALSE(is_uuid(std::string_view("123e4567-e89b-12d3-a456-42661417400\0", 36)));
}

}  // namespace
}  // namespace dp::ids
