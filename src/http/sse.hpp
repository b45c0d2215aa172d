// SseParser: an incremental parser for text/event-stream, following the WHATWG HTML standard's
// "Server-sent events" interpretation rules. The one parser of devplane: LLM providers'
// streamed answers (llm/provider.cpp) and MCP's Streamable HTTP and legacy SSE transports
// (mcp/http_transport.cpp, mcp/sse_transport.cpp).
//
// Bytes are fed as they arrive, in pieces of any size; complete events come out, in order.
// - One UTF-8 BOM at the very start of the stream is skipped (also when split across pieces).
// - Lines end in CRLF, LF or CR; a CR ending one piece and an LF starting the next count once.
// - A line starting with ':' is a comment. Otherwise the field name runs to the first ':'
//   (the whole line when there is none) and one space after the colon is dropped.
// - `data` appends its value (lines joined with LF); `event` sets the event type; `id` sets
//   the last event id unless the value holds NUL (it persists across events); `retry` sets the
//   reconnection time when the value is all ASCII digits; other fields are ignored.
// - An empty line dispatches: an event whose data buffer is empty (no `data` line at all) is
//   not dispatched, whatever its type; the type defaults to "message". The type and data are
//   then reset, the last event id is not.
// - At the end of a stream a partial event (no empty line yet) is not dispatched; callers that
//   want it anyway may feed "\n\n" when `in_event()`.
//
// Bounded: a line longer than `max_line_bytes` or an event's data longer than
// `max_event_bytes` fails the stream with kResourceExhausted and the reason the caller chose
// (LLM: `response_too_large`, MCP: `message_too_large`); a sink's error stops parsing too.
// After an error every later `feed` returns it again.
//
// Not thread-safe: one parser per stream.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dp::http {

struct SseEvent {
  std::string event = "message";  // the event type
  std::string data;
  std::string id;  // the last event id in force when the event was dispatched
};

struct SseLimits {
  std::size_t max_line_bytes = 4 * 1024 * 1024;
  std::size_t max_event_bytes = 4 * 1024 * 1024;
  std::string too_large_reason = "message_too_large";
};

class SseParser {
 public:
  using Sink = std::function<Status(const SseEvent&)>;

  explicit SseParser(SseLimits limits = {}) : limits_(std::move(limits)) {}

  // Parses `piece`, calling `sink` for every event it completes. The first error (a limit or
  // the sink's) stops parsing and is returned, now and on every later call.
  Status feed(std::string_view piece, const Sink& sink);
  // The same, appending the events to `out`.
  Status feed(std::string_view piece, std::vector<SseEvent>& out);

  // True when a field or part of a line of an event not yet dispatched is buffered.
  bool in_event() const noexcept { return !line_.empty() || has_fields_; }
  const std::string& last_event_id() const noexcept { return last_id_; }
  std::optional<long> retry_ms() const noexcept { return retry_; }

 private:
  Status feed_lines(std::string_view piece, const Sink& sink);
  Status line(std::string_view l, const Sink& sink);
  Error too_large(std::string_view what, std::size_t limit) const;

  SseLimits limits_;
  std::size_t bom_matched_ = 0;  // bytes of a leading BOM seen so far
  bool started_ = false;         // past the place where a BOM may be
  bool after_cr_ = false;
  std::string line_;  // the unfinished line
  bool has_fields_ = false;
  bool has_data_ = false;
  std::string data_;
  std::string type_;
  std::string last_id_;
  std::optional<long> retry_;
  std::optional<Error> failed_;
};

}  // namespace dp::http
