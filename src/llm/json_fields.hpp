// Lenient field reads shared by the two wire formats: a missing or mistyped field gives the
// fallback instead of an error (providers omit what they do not use).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

namespace dp::llm::wire {

inline std::int64_t int_or(const boost::json::object& o, std::string_view key,
                           std::int64_t fallback) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_int64()) return v->as_int64();
  if (auto* v = o.if_contains(key); v != nullptr && v->is_uint64()) {
    return static_cast<std::int64_t>(v->as_uint64());
  }
  return fallback;
}

inline std::string str_or(const boost::json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string(v->as_string());
  return {};
}

}  // namespace dp::llm::wire
