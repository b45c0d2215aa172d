#include "core/error.hpp"

#include <utility>

namespace dp {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

Error Error::invalid_argument(std::string reason, std::string message) {
  return Error{ErrorCode::kInvalidArgument, std::move(reason), std::move(message), nullptr};
}
Error Error::validation(std::string message, boost::json::value details) {
  return Error{ErrorCode::kInvalidArgument, "validation_failed", std::move(message),
               std::move(details)};
}
Error Error::not_found(std::string message) {
  return Error{ErrorCode::kNotFound, "not_found", std::move(message), nullptr};
}
Error Error::conflict(std::string message) {
  return Error{ErrorCode::kAlreadyExists, "conflict", std::move(message), nullptr};
}
Error Error::failed_precondition(std::string reason, std::string message) {
  return Error{ErrorCode::kFailedPrecondition, std::move(reason), std::move(message), nullptr};
}
Error Error::aborted(std::string message) {
  return Error{ErrorCode::kAborted, "aborted", std::move(message), nullptr};
}
Error Error::unavailable(std::string message) {
  return Error{ErrorCode::kUnavailable, "unavailable", std::move(message), nullptr};
}
Error Error::internal(std::string message) {
  return Error{ErrorCode::kInternal, "internal", std::move(message), nullptr};
}

Error& Error::with_context(std::string_view context) {
  message = std::string(context) + ": " + message;
  return *this;
}

}  // namespace dp
