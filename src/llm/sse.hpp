// SseParser: the text/event-stream format (WHATWG HTML, "Server-sent events"), fed in pieces
// as they arrive from the network and handing over each complete event.
//
// Lines end in CRLF, LF or CR (also split across pieces); `event:` names the event, `data:`
// lines are joined with LF, `id:` and `retry:` are kept, lines starting with `:` are comments,
// an empty line dispatches. An event with no data and no name is not dispatched (as a
// browser does). Bounded: a line longer than `max_line_bytes` or an event whose data exceeds
// `max_event_bytes` is an error (kResourceExhausted, reason `response_too_large`) and the
// parser stays failed.
// Not thread-safe: one parser per stream.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace dp::llm {

struct SseEvent {
  std::string event;  // empty: the default type ("message")
  std::string data;
  std::string id;
};

class SseParser {
 public:
  using Sink = std::function<Status(const SseEvent&)>;

  explicit SseParser(std::size_t max_line_bytes = 1024 * 1024,
                     std::size_t max_event_bytes = 4 * 1024 * 1024)
      : max_line_(max_line_bytes), max_event_(max_event_bytes) {}

  // Parses `piece`, calling `sink` for every event it completes; the first error (the sink's
  // or a limit) stops parsing and is returned, now and on every later call.
  Status feed(std::string_view piece, const Sink& sink);
  // True when bytes of an unfinished event are buffered (the stream ended mid-event).
  bool in_event() const noexcept { return !line_.empty() || has_fields_; }

 private:
  Status line(const Sink& sink);

  std::size_t max_line_;
  std::size_t max_event_;
  std::string line_;
  bool after_cr_ = false;
  bool has_fields_ = false;
  bool has_data_ = false;
  SseEvent current_;
  std::optional<Error> failed_;
};

}  // namespace dp::llm
