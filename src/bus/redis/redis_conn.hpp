// A blocking Redis connection and the plain values its replies become.
//
// hiredis stays inside redis_conn.cpp: callers see `Value`, a tree of owned strings, so the
// stream parsers (stream_reply.hpp) are pure functions that tests and fuzzers can feed with
// any shape. A `Connection` runs one command at a time with a deadline on every read and
// write; after an I/O error it is broken for good and the owner opens a new one.
//
// Thread safety: a Connection is confined to one thread at a time, except `interrupt()`,
// which another thread may call while the object is alive (the owner guarantees that).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dp::bus::redis {

// redis://[[user]:password@]host[:port][/db]
struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
};
// kInvalidArgument (reason bad_config) for anything but the form above.
Result<Endpoint> parse_redis_url(std::string_view url);

struct Value {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  std::int64_t integer = 0;
  std::vector<Value> elements;  // kArray

  bool is_error() const noexcept { return type == Type::kError; }
  bool is_nil() const noexcept { return type == Type::kNil; }
  bool is_array() const noexcept { return type == Type::kArray; }
  bool is_string() const noexcept { return type == Type::kString || type == Type::kStatus; }

  static Value nil() { return Value{}; }
  static Value string(std::string s) { return Value{Type::kString, std::move(s), 0, {}}; }
  static Value status(std::string s) { return Value{Type::kStatus, std::move(s), 0, {}}; }
  static Value error(std::string s) { return Value{Type::kError, std::move(s), 0, {}}; }
  static Value integer_value(std::int64_t i) { return Value{Type::kInteger, {}, i, {}}; }
  static Value array(std::vector<Value> v) { return Value{Type::kArray, {}, 0, std::move(v)}; }
};

// Decodes one RESP2 reply from raw bytes (with hiredis's reader): kInvalidArgument when the
// bytes are not a complete, well-formed reply. The seam for fuzzing the reply parsers.
Result<Value> parse_resp(std::string_view bytes);

using Command = std::vector<std::string>;

class Connection {
 public:
  // Connects, authenticates and selects the database, each within `timeout`; every later
  // read or write is bounded by `timeout` plus the extra time `command` is given.
  // kUnavailable when Redis cannot be reached or refuses the credentials.
  static Result<std::unique_ptr<Connection>> open(const Endpoint& endpoint,
                                                  std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One round trip. A Redis error reply is a Value of type kError, not an Error: callers
  // decide which ones matter (BUSYGROUP, "equal or smaller"). kUnavailable on an I/O error
  // or timeout, after which the connection is broken. `extra` lengthens the read deadline
  // for commands that block on the server (XREAD BLOCK).
  Result<Value> command(const Command& argv,
                        std::chrono::milliseconds extra = std::chrono::milliseconds(0));
  // Sends every command, then reads every reply: one round trip for a batch.
  Result<std::vector<Value>> pipeline(const std::vector<Command>& commands);

  bool broken() const noexcept { return broken_; }
  // Wakes a command blocked in another thread (shuts the socket down); the connection is
  // then broken. Safe from any thread while the object lives.
  void interrupt() noexcept;

 private:
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> impl, std::chrono::milliseconds timeout);
  void set_read_deadline(std::chrono::milliseconds d);
  std::unique_ptr<Impl> impl_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds current_deadline_{0};
  bool broken_ = false;
};

}  // namespace dp::bus::redis
