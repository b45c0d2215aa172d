// Result<T> and Status: errors as values at every module boundary.
//
// A Result holds either a T or an Error. It is [[nodiscard]]; to drop an error on
// purpose, call `ignore_error()`. Thread safety: like any value type.
#pragma once

#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/error.hpp"

namespace dp {

template <class T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, Error>, "Result<Error> is ambiguous");

  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT implicit
  template <class U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, Error> &&
             !std::is_same_v<std::remove_cvref_t<U>, Result>)
  Result(U&& value) : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  void ignore_error() const noexcept {}

 private:
  std::variant<T, Error> v_;
};

struct Ok {};

// Status is a Result without a value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Ok) {}                          // NOLINT implicit
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT implicit
  template <class T>
  Status(Result<T>&& r) {  // NOLINT implicit: drops the value, keeps the error
    if (!r.ok()) {
      error_ = std::move(r).error();
      ok_ = false;
    }
  }

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }
  void ignore_error() const noexcept {}

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace dp

#define DP_CONCAT_INNER_(a, b) a##b
#define DP_CONCAT_(a, b) DP_CONCAT_INNER_(a, b)

// DP_TRY(expr): evaluates a Status or Result; on error returns the error from the caller.
#define DP_TRY(expr) DP_TRY_IMPL_(DP_CONCAT_(dp_try_, __LINE__), expr, return)
// DP_CO_TRY(expr): the same for coroutines (co_return).
#define DP_CO_TRY(expr) DP_TRY_IMPL_(DP_CONCAT_(dp_try_, __LINE__), expr, co_return)
#define DP_TRY_IMPL_(tmp, expr, ret) \
  do {                               \
    auto&& tmp = (expr);             \
    if (!tmp.ok()) {                 \
      ret std::move(tmp).error();    \
    }                                \
  } while (false)

// DP_ASSIGN_OR_RETURN(lhs, expr): `lhs = *expr` or returns its error.
#define DP_ASSIGN_OR_RETURN(lhs, expr) DP_ASSIGN_OR_RETURN_IMPL_(DP_CONCAT_(dp_r_, __LINE__), lhs, expr, return)
#define DP_CO_ASSIGN_OR_RETURN(lhs, expr) \
  DP_ASSIGN_OR_RETURN_IMPL_(DP_CONCAT_(dp_r_, __LINE__), lhs, expr, co_return)
#define DP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr, ret) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) {                                     \
    ret std::move(tmp).error();                        \
  }                                                    \
  lhs = std::move(tmp).value()
