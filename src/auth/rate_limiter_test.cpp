#include "auth/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace dp::auth {
namespace {

TEST(RateLimiterTest, AllowsUpToTheLimitThenSaysHowLongToWait) {
  SlidingWindowLimiter l(3, 10'000);
  EXPECT_EQ(l.retry_after_ms("a", 0), 0);
  l.add("a", 1000);
  l.add("a", 2000);
  EXPECT_EQ(l.retry_after_ms("a", 2500), 0);
  l.add("a", 3000);
  // The oldest event (1000) leaves the window at 11000.
  EXPECT_EQ(l.retry_after_ms("a", 3000), 8000);
  EXPECT_EQ(l.retry_after_ms("a", 10'999), 1);
  EXPECT_EQ(l.retry_after_ms("a", 11'000), 0);
  EXPECT_EQ(l.retry_after_ms("b", 3000), 0);  // keys are independent
}

TEST(RateLimiterTest, WindowSlidesAndClearForgets) {
  SlidingWindowLimiter l(2, 1000);
  l.add("k", 0);
  l.add("k", 900);
  EXPECT_GT(l.retry_after_ms("k", 950), 0);
  l.add("k", 1500);  // 0 has left; 900 and 1500 remain
  EXPECT_EQ(l.retry_after_ms("k", 1500), 400);
  l.clear("k");
  EXPECT_EQ(l.retry_after_ms("k", 1500), 0);
}

TEST(RateLimiterTest, MemoryIsBounded) {
  SlidingWindowLimiter l(5, 1000, 100);
  for (int i = 0; i < 1000; ++i) l.add("key" + std::to_string(i), 0);
  EXPECT_LE(l.keys(), 100u);
  for (int i = 0; i < 1000; ++i) l.add("late" + std::to_string(i), 5000);  // old ones expire
  EXPECT_LE(l.keys(), 100u);
}

}  // namespace
}  // namespace dp::auth
