#include "llm/sse.hpp"

namespace dp::llm {
namespace {

Error too_large(std::string_view what) {
  return Error{ErrorCode::kResourceExhausted, "response_too_large",
               std::string("event stream ") + std::string(what) + " exceeds the size limit",
               nullptr};
}

}  // namespace

Status SseParser::feed(std::string_view piece, const Sink& sink) {
  if (failed_) return *failed_;
  for (const char c : piece) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the LF of a CRLF already ended the line
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      if (Status s = line(sink); !s.ok()) {
        failed_ = s.error();
        return s;
      }
      continue;
    }
    if (line_.size() >= max_line_) {
      failed_ = too_large("line");
      return *failed_;
    }
    line_.push_back(c);
  }
  return Ok{};
}

Status SseParser::line(const Sink& sink) {
  if (line_.empty()) {
    // Dispatch. Events without data are dropped, as the spec says, unless named (Anthropic's
    // events always carry data, so this only matters for odd servers).
    if (has_data_ || !current_.event.empty()) {
      SseEvent ev = std::move(current_);
      current_ = SseEvent{};
      current_.id = ev.id;  // the last event id persists
      has_fields_ = false;
      has_data_ = false;
      return sink(ev);
    }
    current_.event.clear();
    current_.data.clear();
    has_fields_ = false;
    return Ok{};
  }
  std::string_view l(line_);
  if (l.front() == ':') {
    line_.clear();
    return Ok{};
  }
  std::string_view field = l;
  std::string_view value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  has_fields_ = true;
  if (field == "data") {
    if (current_.data.size() + value.size() + 1 > max_event_) {
      line_.clear();
      return too_large("event");
    }
    if (has_data_) current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) current_.id = std::string(value);
  }
  // `retry` and unknown fields are ignored.
  line_.clear();
  return Ok{};
}

}  // namespace dp::llm
