#include "http/sse.hpp"

#include <algorithm>
#include <utility>

namespace dp::http {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

}  // namespace

Error SseParser::too_large(std::string_view what, std::size_t limit) const {
  return Error{ErrorCode::kResourceExhausted, limits_.too_large_reason,
               "event stream " + std::string(what) + " exceeds the limit of " + std::to_string(limit) + " bytes",
               nullptr};
}

Status SseParser::feed(std::string_view piece, std::vector<SseEvent>& out) {
  return feed(piece, [&out](const SseEvent& e) -> Status {
    out.push_back(e);
    return Ok{};
  });
}

Status SseParser::feed(std::string_view piece, const Sink& sink) {
  if (failed_) return *failed_;
  if (!started_) {
    // Match a leading BOM byte by byte: it may be split across pieces.
    while (!piece.empty() && bom_matched_ < kBom.size() && piece.front() == kBom[bom_matched_]) {
      ++bom_matched_;
      piece.remove_prefix(1);
    }
    if (bom_matched_ == kBom.size()) {
      started_ = true;
    } else if (!piece.empty()) {
      // Not a BOM after all: the bytes matched so far are ordinary text.
      started_ = true;
      if (bom_matched_ > 0) {
        if (Status s = feed_lines(kBom.substr(0, bom_matched_), sink); !s.ok()) return s;
      }
    }
  }
  return feed_lines(piece, sink);
}

Status SseParser::feed_lines(std::string_view piece, const Sink& sink) {
  std::size_t i = 0;
  while (i < piece.size()) {
    if (after_cr_) {
      after_cr_ = false;
      if (piece[i] == '\n') {  // the LF of a CRLF whose CR ended the line
        ++i;
        continue;
      }
    }
    const std::size_t end = piece.find_first_of("\r\n", i);
    const std::size_t stop = end == std::string_view::npos ? piece.size() : end;
    if (line_.size() + (stop - i) > limits_.max_line_bytes) {
      failed_ = too_large("line", limits_.max_line_bytes);
      return *failed_;
    }
    if (end == std::string_view::npos) {
      line_.append(piece.substr(i));
      break;
    }
    after_cr_ = piece[end] == '\r';
    Status s = Ok{};
    if (line_.empty()) {
      s = line(piece.substr(i, end - i), sink);  // the whole line is in this piece: no copy
    } else {
      line_.append(piece.substr(i, end - i));
      const std::string whole = std::exchange(line_, std::string());
      s = line(whole, sink);
    }
    if (!s.ok()) {
      failed_ = s.error();
      return s;
    }
    i = end + 1;
  }
  return Ok{};
}

Status SseParser::line(std::string_view l, const Sink& sink) {
  if (l.empty()) {
    const bool dispatch = has_data_;
    has_fields_ = false;
    has_data_ = false;
    if (!dispatch) {
      // No data: nothing to dispatch (an `event` or `id` alone only updates the state).
      type_.clear();
      data_.clear();
      return Ok{};
    }
    SseEvent ev;
    ev.event = type_.empty() ? std::string("message") : std::exchange(type_, std::string());
    ev.data = std::exchange(data_, std::string());
    ev.id = last_id_;
    type_.clear();
    return sink(ev);
  }
  if (l.front() == ':') return Ok{};
  std::string_view field = l;
  std::string_view value;
  if (const auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  has_fields_ = true;
  if (field == "data") {
    if (data_.size() + value.size() + (has_data_ ? 1 : 0) > limits_.max_event_bytes) {
      return too_large("event", limits_.max_event_bytes);
    }
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    type_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = std::string(value);
  } else if (field == "retry") {
    const bool digits = !value.empty() && value.size() <= 12 &&
                        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) retry_ = std::stol(std::string(value));
  }
  return Ok{};
}

}  // namespace dp::http
