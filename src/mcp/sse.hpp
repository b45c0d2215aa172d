// An incremental parser for text/event-stream (the WHATWG "server-sent events" format), used
// by the Streamable HTTP and legacy SSE transports.
//
// Bytes are fed as they arrive, in chunks of any size; complete events come out. Lines end in
// LF, CRLF or CR (a CR at the end of one chunk followed by LF at the start of the next counts
// once). `data` lines are joined with LF; comment lines (starting with ':') and unknown fields
// are ignored; an event with no data is not dispatched (MCP servers send such "priming" events
// only to set the last event id). A UTF-8 BOM at the start of the stream is skipped.
//
// Bounded: a line or an event's data longer than `max_event_bytes` fails the stream
// (kResourceExhausted `message_too_large`); after an error `feed` keeps failing.
// Not thread-safe: one parser per stream.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dp::mcp {

struct SseEvent {
  std::string event = "message";
  std::string data;
  std::string id;  // the last event id in force when the event was dispatched
};

class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = 4 * 1024 * 1024)
      : max_(max_event_bytes) {}

  // Appends the complete events found in `chunk` to `out`.
  Status feed(std::string_view chunk, std::vector<SseEvent>& out);
  // End of stream: a partial event without its blank line is dropped, as the format says.
  const std::string& last_event_id() const noexcept { return last_id_; }
  std::optional<long> retry_ms() const noexcept { return retry_; }

 private:
  Status line(std::string_view l, std::vector<SseEvent>& out);

  std::size_t max_;
  std::string buf_;
  bool started_ = false;
  bool after_cr_ = false;
  bool failed_ = false;
  std::string data_;
  bool has_data_ = false;
  std::string event_;
  std::string last_id_;
  std::optional<long> retry_;
};

}  // namespace dp::mcp
