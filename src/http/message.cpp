#include "http/message.hpp"

#include <boost/json/stream_parser.hpp>
#include <boost/json/serialize.hpp>

namespace dp::http {

std::optional<std::string_view> Request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string_view> Request::query_param(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

void StreamWaker::wake() {
  std::lock_guard lock(mu_);
  if (fn_) {
    fn_();
  } else {
    pending_ = true;
  }
}

void StreamWaker::attach(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  fn_ = std::move(fn);
  if (pending_ && fn_) {
    pending_ = false;
    fn_();
  }
}

void StreamWaker::detach() {
  std::lock_guard lock(mu_);
  fn_ = nullptr;
}

Response data_response(unsigned status, boost::json::value data, boost::json::object meta,
                       std::string_view request_id) {
  meta["requestId"] = request_id;
  boost::json::object o;
  o["data"] = std::move(data);
  o["meta"] = std::move(meta);
  Response r;
  r.status = status;
  r.body = boost::json::serialize(o);
  return r;
}

Response data_response_text(unsigned status, std::string_view data_json, boost::json::object meta,
                            std::string_view request_id) {
  meta["requestId"] = request_id;
  const std::string meta_json = boost::json::serialize(meta);
  Response r;
  r.status = status;
  r.body.reserve(data_json.size() + meta_json.size() + 20);
  r.body += "{\"data\":";
  r.body += data_json;
  r.body += ",\"meta\":";
  r.body += meta_json;
  r.body += '}';
  return r;
}

unsigned status_for(const Error& e) noexcept {
  // Reasons that pin a status regardless of the canonical code.
  if (e.reason == "validation_failed") return 422;
  if (e.reason == "payload_too_large") return 413;
  if (e.reason == "rate_limited") return 429;
  if (e.reason == "method_not_allowed") return 405;
  if (e.reason == "headers_too_large") return 431;
  switch (e.code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists: return 409;
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kAborted: return 409;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

Response error_response(const Error& e, std::string_view request_id) {
  boost::json::object err;
  err["code"] = e.reason.empty() ? std::string(to_string(e.code)) : e.reason;
  // Internal errors keep their detail in the log, not in the response.
  const unsigned status = status_for(e);
  err["message"] = status >= 500 && e.code == ErrorCode::kInternal ? "internal error" : e.message;
  if (!e.details.is_null()) err["details"] = e.details;
  err["requestId"] = request_id;
  boost::json::object o;
  o["error"] = std::move(err);
  Response r;
  r.status = status;
  r.body = boost::json::serialize(o);
  return r;
}

Result<boost::json::value> parse_json_body(std::string_view body) {
  if (body.empty()) {
    Error e = Error::invalid_argument("invalid_json", "request body is empty; expected JSON");
    e.details = boost::json::object{{"position", 0}, {"line", 1}, {"column", 1}};
    return e;
  }
  boost::json::parse_options opts;
  opts.max_depth = 64;
  boost::json::stream_parser p({}, opts);
  boost::system::error_code ec;
  std::size_t n = p.write_some(body.data(), body.size(), ec);
  if (!ec) {
    // Whitespace may follow the value; anything else is extra data.
    while (n < body.size() && (body[n] == ' ' || body[n] == '\n' || body[n] == '\r' || body[n] == '\t')) {
      ++n;
    }
    if (n < body.size()) {
      ec = boost::json::error::extra_data;
    } else {
      p.finish(ec);
    }
  }
  if (ec) {
    const std::size_t pos = std::min(n, body.size());
    std::size_t line = 1;
    std::size_t col = 1;
    for (std::size_t i = 0; i < pos; ++i) {
      if (body[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    Error e = Error::invalid_argument(
        "invalid_json", "malformed JSON at line " + std::to_string(line) + ", column " +
                            std::to_string(col) + ": " + ec.message());
    e.details = boost::json::object{{"position", pos}, {"line", line}, {"column", col}};
    return e;
  }
  return p.release();
}

}  // namespace dp::http
