// JSON-RPC 2.0 as MCP uses it: the message shapes, their validation and their encoding.
//
// MCP narrows JSON-RPC: an id is a string or an integer and never null in a request; a
// response carries exactly one of `result` and `error`. Batches (a JSON array of messages)
// exist only in protocol version 2025-03-26; later versions removed them, so `decode` refuses
// an array unless `allow_batch` is set.
//
// Every function here is pure and safe from any thread.
//
// Errors from `decode`: kResourceExhausted `message_too_large` (before parsing),
// kInvalidArgument `parse_error` (not JSON, or nested deeper than the limit),
// `invalid_message` (JSON that is not a valid JSON-RPC 2.0 message) and `batch_refused`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace dp::mcp::jsonrpc {

// Standard JSON-RPC error codes, plus the ones MCP servers use.
inline constexpr std::int64_t kParseError = -32700;
inline constexpr std::int64_t kInvalidRequest = -32600;
inline constexpr std::int64_t kMethodNotFound = -32601;
inline constexpr std::int64_t kInvalidParams = -32602;
inline constexpr std::int64_t kInternalError = -32603;
inline constexpr std::int64_t kRequestTimeout = -32001;

enum class Kind { kRequest, kNotification, kResult, kError };

struct ErrorObject {
  std::int64_t code = kInternalError;
  std::string message;
  boost::json::value data;  // null when absent
};

struct Message {
  Kind kind = Kind::kNotification;
  boost::json::value id;      // int64 or string; null for notifications (and errors without id)
  std::string method;         // requests and notifications
  boost::json::value params;  // null when absent
  boost::json::value result;  // kResult
  ErrorObject error;          // kError
};

struct DecodeLimits {
  std::size_t max_bytes = 4 * 1024 * 1024;
  std::size_t max_depth = 64;
  bool allow_batch = false;
  std::size_t max_batch = 64;
};

// One message, or the members of a batch (when allowed), in order.
Result<std::vector<Message>> decode(std::string_view text, const DecodeLimits& limits = {});
// Validates one already-parsed message.
Result<Message> from_value(const boost::json::value& v);

std::string encode(const Message& m);
boost::json::value to_value(const Message& m);

Message request(boost::json::value id, std::string method, boost::json::value params = nullptr);
Message notification(std::string method, boost::json::value params = nullptr);
Message result(boost::json::value id, boost::json::value result);
Message error(boost::json::value id, std::int64_t code, std::string message,
              boost::json::value data = nullptr);

// "42" for 42, "\"a\"" for "a": a map key that keeps integer and string ids apart.
std::string id_key(const boost::json::value& id);

// The one mapping between devplane errors and JSON-RPC error objects.
ErrorObject to_error_object(const Error& e);
// A JSON-RPC error received from a server, as a devplane error (reason `rpc_error`, the code
// and data in details).
Error from_error_object(const ErrorObject& e);

}  // namespace dp::mcp::jsonrpc
