#include "core/result.hpp"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace dp {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Error::invalid_argument("not_positive", "value must be positive");
  return v;
}

Status check_positive(int v) {
  DP_TRY(parse_positive(v));
  return Ok{};
}

// Counts how far the function got, to prove DP_TRY returns early.
Result<int> doubled(int v, int& reached) {
  reached = 0;
  DP_ASSIGN_OR_RETURN(int x, parse_positive(v));
  reached = 1;
  return x * 2;
}

Status with_status_try(Status inner, bool& after) {
  after = false;
  DP_TRY(inner);
  after = true;
  return Ok{};
}

TEST(ResultTest, HoldsValue) {
  Result<std::string> r = std::string("abc");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), "abc");
  EXPECT_EQ(*r, "abc");
  EXPECT_EQ(r->size(), 3u);
}

TEST(ResultTest, HoldsError) {
  Result<int> r = Error::not_found("agent x not found");
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().reason, "not_found");
  EXPECT_EQ(r.error().message, "agent x not found");
}

TEST(ResultTest, ConvertsFromConstructibleValue) {
  Result<std::string> r = "literal";  // const char* -> std::string
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "literal");
  Result<std::int64_t> n = 7;  // int -> int64
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 7);
}

TEST(ResultTest, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(42);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 42);
}

TEST(ResultTest, ErrorCanBeMovedOut) {
  Result<int> r = Error::unavailable("db down");
  Error e = std::move(r).error();
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.message, "db down");
}

TEST(StatusTest, DefaultAndOkAreOk) {
  Status a;
  Status b = Ok{};
  EXPECT_TRUE(a.ok());
  EXPECT_TRUE(b.ok());
  EXPECT_TRUE(static_cast<bool>(b));
}

TEST(StatusTest, FromErrorIsNotOk) {
  Status s = Error::internal("boom");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_EQ(s.error().message, "boom");
}

TEST(StatusTest, FromResultKeepsErrorDropsValue) {
  Status ok = Result<int>(3);
  EXPECT_TRUE(ok.ok());
  Status bad = Result<int>(Error::aborted("retry"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kAborted);
  EXPECT_EQ(bad.error().message, "retry");
}

TEST(MacroTest, TryPropagatesErrorAndReturnsEarly) {
  EXPECT_TRUE(check_positive(1).ok());
  Status s = check_positive(-1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "not_positive");

  bool after = false;
  EXPECT_FALSE(with_status_try(Error::not_found("x"), after).ok());
  EXPECT_FALSE(after);
  EXPECT_TRUE(with_status_try(Ok{}, after).ok());
  EXPECT_TRUE(after);
}

TEST(MacroTest, AssignOrReturn) {
  int reached = -1;
  Result<int> good = doubled(21, reached);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  EXPECT_EQ(reached, 1);

  Result<int> bad = doubled(0, reached);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(reached, 0);
}

TEST(ErrorTest, FactoriesSetCodeAndReason) {
  struct Case {
    Error e;
    ErrorCode code;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {Error::invalid_argument("bad_thing", "m"), ErrorCode::kInvalidArgument, "bad_thing"},
      {Error::validation("m", boost::json::array{1}), ErrorCode::kInvalidArgument,
       "validation_failed"},
      {Error::not_found("m"), ErrorCode::kNotFound, "not_found"},
      {Error::conflict("m"), ErrorCode::kAlreadyExists, "conflict"},
      {Error::failed_precondition("version_conflict", "m"), ErrorCode::kFailedPrecondition,
       "version_conflict"},
      {Error::aborted("m"), ErrorCode::kAborted, "aborted"},
      {Error::unavailable("m"), ErrorCode::kUnavailable, "unavailable"},
      {Error::internal("m"), ErrorCode::kInternal, "internal"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.e.code, c.code) << c.reason;
    EXPECT_EQ(c.e.reason, c.reason);
    EXPECT_EQ(c.e.message, "m");
  }
  EXPECT_TRUE(Error::validation("m", boost::json::array{1}).details.is_array());
  EXPECT_TRUE(Error::not_found("m").details.is_null());
}

TEST(ErrorTest, WithContextPrepends) {
  Error e = Error::not_found("agent 7 not found");
  e.with_context("resuming run 42").with_context("scheduler");
  EXPECT_EQ(e.message, "scheduler: resuming run 42: agent 7 not found");
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
}

TEST(ErrorTest, EveryCodeHasADistinctName) {
  const std::vector<std::pair<ErrorCode, std::string>> names = {
      {ErrorCode::kInvalidArgument, "invalid_argument"},
      {ErrorCode::kNotFound, "not_found"},
      {ErrorCode::kAlreadyExists, "already_exists"},
      {ErrorCode::kFailedPrecondition, "failed_precondition"},
      {ErrorCode::kAborted, "aborted"},
      {ErrorCode::kUnavailable, "unavailable"},
      {ErrorCode::kDeadlineExceeded, "deadline_exceeded"},
      {ErrorCode::kPermissionDenied, "permission_denied"},
      {ErrorCode::kUnauthenticated, "unauthenticated"},
      {ErrorCode::kResourceExhausted, "resource_exhausted"},
      {ErrorCode::kInternal, "internal"},
  };
  for (const auto& [code, name] : names) EXPECT_EQ(to_string(code), name);
}

}  // namespace
}  // namespace dp
