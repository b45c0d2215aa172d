// Error responses of the identity routes, with the headers their status calls for:
// WWW-Authenticate on 401, Retry-After on 429.
#pragma once

#include <string>

#include <boost/json/array.hpp>

#include "http/message.hpp"

namespace dp::api::v1 {

inline http::Response auth_error_response(const Error& e, const http::Request& req) {
  http::Response r = http::error_response(e, req.request_id);
  if (r.status == 401) r.set_header("WWW-Authenticate", "Bearer realm=\"devplane\"");
  if (r.status == 429 && e.details.is_object()) {
    if (const auto* s = e.details.as_object().if_contains("retryAfterSeconds");
        s != nullptr && s->is_int64()) {
      r.set_header("Retry-After", std::to_string(s->as_int64()));
    }
  }
  return r;
}

// A service's kInvalidArgument about one field becomes the usual 422 listing that field.
inline Error as_field_error(Error e, const char* field) {
  if (e.code != ErrorCode::kInvalidArgument) return e;
  boost::json::array details{
      boost::json::object{{"field", field}, {"code", e.reason}, {"message", e.message}}};
  return Error::validation(e.message, std::move(details));
}

}  // namespace dp::api::v1
