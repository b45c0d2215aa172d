#include "mcp/jsonrpc.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace dp::mcp::jsonrpc {
namespace {

namespace json = boost::json;

Error invalid(std::string message) {
  return Error::invalid_argument("invalid_message", std::move(message));
}

bool valid_id(const json::value& id) { return id.is_int64() || id.is_uint64() || id.is_string(); }

}  // namespace

Result<Message> from_value(const json::value& v) {
  if (!v.is_object()) return invalid("a JSON-RPC message must be an object");
  const json::object& o = v.get_object();
  const auto* version = o.if_contains("jsonrpc");
  if (version == nullptr || !version->is_string() || version->get_string() != "2.0") {
    return invalid("member \"jsonrpc\" must be \"2.0\"");
  }
  Message m;
  const auto* id = o.if_contains("id");
  const auto* method = o.if_contains("method");
  if (method != nullptr) {
    if (!method->is_string() || method->get_string().empty()) {
      return invalid("member \"method\" must be a non-empty string");
    }
    if (o.contains("result") || o.contains("error")) {
      return invalid("a request carries no \"result\" or \"error\"");
    }
    m.method = std::string(method->get_string());
    if (const auto* p = o.if_contains("params")) {
      if (!p->is_object() && !p->is_array()) return invalid("member \"params\" must be an object or array");
      m.params = *p;
    }
    if (id == nullptr) {
      m.kind = Kind::kNotification;
      return m;
    }
    if (!valid_id(*id)) return invalid("a request id must be a string or an integer");
    m.kind = Kind::kRequest;
    m.id = *id;
    return m;
  }
  const auto* res = o.if_contains("result");
  const auto* err = o.if_contains("error");
  if ((res == nullptr) == (err == nullptr)) {
    return invalid("a response carries exactly one of \"result\" and \"error\"");
  }
  if (id == nullptr) return invalid("a response needs an \"id\"");
  if (res != nullptr) {
    if (!valid_id(*id)) return invalid("a response id must be a string or an integer");
    m.kind = Kind::kResult;
    m.id = *id;
    m.result = *res;
    return m;
  }
  // An error answering a request whose id could not be read has a null id.
  if (!id->is_null() && !valid_id(*id)) return invalid("an error id must be a string, an integer or null");
  if (!err->is_object()) return invalid("member \"error\" must be an object");
  const json::object& e = err->get_object();
  const auto* code = e.if_contains("code");
  const auto* msg = e.if_contains("message");
  if (code == nullptr || !code->is_int64()) return invalid("error \"code\" must be an integer");
  if (msg == nullptr || !msg->is_string()) return invalid("error \"message\" must be a string");
  m.kind = Kind::kError;
  m.id = *id;
  m.error.code = code->get_int64();
  m.error.message = std::string(msg->get_string());
  if (const auto* d = e.if_contains("data")) m.error.data = *d;
  return m;
}

Result<std::vector<Message>> decode(std::string_view text, const DecodeLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Error{ErrorCode::kResourceExhausted, "message_too_large",
                 "message of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                     std::to_string(limits.max_bytes),
                 nullptr};
  }
  json::parse_options opt;
  opt.max_depth = limits.max_depth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opt);
  if (ec) return Error::invalid_argument("parse_error", "not valid JSON: " + ec.message());
  std::vector<Message> out;
  if (v.is_array()) {
    if (!limits.allow_batch) {
      return Error::invalid_argument("batch_refused",
                                     "JSON-RPC batches are not part of this protocol version");
    }
    const auto& a = v.get_array();
    if (a.empty()) return invalid("an empty batch");
    if (a.size() > limits.max_batch) {
      return Error{ErrorCode::kResourceExhausted, "message_too_large",
                   "batch of " + std::to_string(a.size()) + " messages exceeds the limit", nullptr};
    }
    for (const auto& item : a) {
      DP_ASSIGN_OR_RETURN(Message m, from_value(item));
      out.push_back(std::move(m));
    }
    return out;
  }
  DP_ASSIGN_OR_RETURN(Message m, from_value(v));
  out.push_back(std::move(m));
  return out;
}

json::value to_value(const Message& m) {
  json::object o;
  o["jsonrpc"] = "2.0";
  switch (m.kind) {
    case Kind::kRequest:
      o["id"] = m.id;
      o["method"] = m.method;
      if (!m.params.is_null()) o["params"] = m.params;
      break;
    case Kind::kNotification:
      o["method"] = m.method;
      if (!m.params.is_null()) o["params"] = m.params;
      break;
    case Kind::kResult:
      o["id"] = m.id;
      o["result"] = m.result;
      break;
    case Kind::kError: {
      o["id"] = m.id;
      json::object e{{"code", m.error.code}, {"message", m.error.message}};
      if (!m.error.data.is_null()) e["data"] = m.error.data;
      o["error"] = std::move(e);
      break;
    }
  }
  return o;
}

std::string encode(const Message& m) { return json::serialize(to_value(m)); }

Message request(json::value id, std::string method, json::value params) {
  Message m;
  m.kind = Kind::kRequest;
  m.id = std::move(id);
  m.method = std::move(method);
  m.params = std::move(params);
  return m;
}

Message notification(std::string method, json::value params) {
  Message m;
  m.kind = Kind::kNotification;
  m.method = std::move(method);
  m.params = std::move(params);
  return m;
}

Message result(json::value id, json::value r) {
  Message m;
  m.kind = Kind::kResult;
  m.id = std::move(id);
  m.result = std::move(r);
  return m;
}

Message error(json::value id, std::int64_t code, std::string message, json::value data) {
  Message m;
  m.kind = Kind::kError;
  m.id = std::move(id);
  m.error = ErrorObject{code, std::move(message), std::move(data)};
  return m;
}

std::string id_key(const json::value& id) { return json::serialize(id); }

ErrorObject to_error_object(const Error& e) {
  std::int64_t code = kInternalError;
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
      code = e.reason == "parse_error" ? kParseError
             : e.reason == "invalid_message" ? kInvalidRequest
                                             : kInvalidParams;
      break;
    case ErrorCode::kNotFound:
      code = e.reason == "method_not_found" ? kMethodNotFound : kInvalidParams;
      break;
    case ErrorCode::kDeadlineExceeded:
      code = kRequestTimeout;
      break;
    default:
      code = kInternalError;
  }
  json::object data{{"reason", e.reason}};
  if (!e.details.is_null()) data["details"] = e.details;
  return ErrorObject{code, e.message, std::move(data)};
}

Error from_error_object(const ErrorObject& e) {
  json::object details{{"code", e.code}};
  if (!e.data.is_null()) details["data"] = e.data;
  ErrorCode code = ErrorCode::kUnavailable;
  if (e.code == kInvalidParams || e.code == kInvalidRequest) code = ErrorCode::kInvalidArgument;
  if (e.code == kMethodNotFound) code = ErrorCode::kNotFound;
  if (e.code == kRequestTimeout) code = ErrorCode::kDeadlineExceeded;
  return Error{code, "rpc_error", "server answered with error " + std::to_string(e.code) + ": " + e.message,
               std::move(details)};
}

}  // namespace dp::mcp::jsonrpc
