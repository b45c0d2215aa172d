// Error: the value every fallible function in devplane returns on failure.
//
// An Error carries a canonical `code` (modelled on Abseil's status codes), a stable
// machine-readable `reason` that clients switch on (`validation_failed`, `not_found`,
// `invalid_transition`, ...), a human message, and optional JSON `details`.
// Errors are plain values: copyable, immutable by convention, safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace dp {

enum class ErrorCode {
  kInvalidArgument,     // malformed input (400) or a schema violation (422, reason validation_failed)
  kNotFound,            // 404
  kAlreadyExists,       // 409, reason conflict
  kFailedPrecondition,  // 409: a state that forbids the operation (stale version, bad transition)
  kAborted,             // serialization conflict: retry the transaction
  kUnavailable,         // a dependency is down or busy (503)
  kDeadlineExceeded,    // 504 / timeouts
  kPermissionDenied,    // 403
  kUnauthenticated,     // 401
  kResourceExhausted,   // 413 / 429 depending on reason
  kInternal,            // 500
};

std::string_view to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string reason;   // stable machine-readable code, e.g. "validation_failed"
  std::string message;  // for humans; never contains secrets
  boost::json::value details;  // null when absent

  static Error invalid_argument(std::string reason, std::string message);
  static Error validation(std::string message, boost::json::value details);
  static Error not_found(std::string message);
  static Error conflict(std::string message);
  static Error failed_precondition(std::string reason, std::string message);
  static Error aborted(std::string message);
  static Error unavailable(std::string message);
  static Error internal(std::string message);

  // Prepends context to the message: "resuming run 42: <message>".
  Error& with_context(std::string_view context);
};

}  // namespace dp
