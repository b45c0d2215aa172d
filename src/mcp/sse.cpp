#include "mcp/sse.hpp"

#include <charconv>

namespace dp::mcp {
namespace {

Error too_large(std::size_t max) {
  return Error{ErrorCode::kResourceExhausted, "message_too_large",
               "server-sent event exceeds the limit of " + std::to_string(max) + " bytes", nullptr};
}

}  // namespace

Status SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {
    if (has_data_) {
      SseEvent e;
      e.event = event_.empty() ? "message" : event_;
      e.data = std::move(data_);
      e.id = last_id_;
      out.push_back(std::move(e));
    }
    data_.clear();
    has_data_ = false;
    event_.clear();
    return Ok{};
  }
  if (l.front() == ':') return Ok{};
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > max_) return too_large(max_);
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = std::string(value);
  } else if (field == "retry") {
    long ms = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc{} && p == value.data() + value.size() && !value.empty()) retry_ = ms;
  }
  return Ok{};
}

Status SseParser::feed(std::string_view chunk, std::vector<SseEvent>& out) {
  if (failed_) return too_large(max_);
  if (!started_ && !chunk.empty()) {
    // The BOM may itself be split across chunks; wait for three bytes.
    buf_.append(chunk);
    if (buf_.size() < 3 && std::string_view("\xEF\xBB\xBF").starts_with(buf_)) return Ok{};
    started_ = true;
    if (buf_.starts_with("\xEF\xBB\xBF")) buf_.erase(0, 3);
    chunk = {};
    std::string pending = std::move(buf_);
    buf_.clear();
    return feed(pending, out);
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i < chunk.size(); ++i) {
    const char c = chunk[i];
    if (c != '\n' && c != '\r') {
      after_cr_ = false;
      continue;
    }
    if (c == '\n' && after_cr_ && i == start && buf_.empty()) {
      // The LF of a CRLF whose CR ended the previous line.
      after_cr_ = false;
      start = i + 1;
      continue;
    }
    after_cr_ = c == '\r';
    std::string_view piece = chunk.substr(start, i - start);
    Status s = Ok{};
    if (buf_.empty()) {
      s = line(piece, out);
    } else {
      buf_.append(piece);
      s = line(buf_, out);
      buf_.clear();
    }
    if (!s.ok()) {
      failed_ = true;
      return s;
    }
    start = i + 1;
  }
  if (start < chunk.size()) {
    if (buf_.size() + (chunk.size() - start) > max_) {
      failed_ = true;
      return too_large(max_);
    }
    buf_.append(chunk.substr(start));
  }
  return Ok{};
}

}  // namespace dp::mcp
