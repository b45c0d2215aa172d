#include "api/validation.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/ids.hpp"
#include "http/message.hpp"

namespace dp::api {
namespace {

std::string join(std::string_view a, std::string_view b) {
  std::string s(a);
  s += b;
  return s;
}

}  // namespace

std::optional<std::size_t> utf8_length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (c < 0x80) len = 1;
    else if ((c >> 5) == 0x6) len = 2;
    else if ((c >> 4) == 0xE) len = 3;
    else if ((c >> 3) == 0x1E) len = 4;
    else return std::nullopt;
    if (i + len > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return std::nullopt;
    }
    // Well-formed means shortest form, no UTF-16 surrogates, nothing past U+10FFFF
    // (Unicode 15, table 3-7).
    const auto c1 = len > 1 ? static_cast<unsigned char>(s[i + 1]) : 0;
    if ((len == 2 && c < 0xC2) || (len == 3 && c == 0xE0 && c1 < 0xA0) ||
        (len == 3 && c == 0xED && c1 >= 0xA0) || (len == 4 && c == 0xF0 && c1 < 0x90) ||
        (len == 4 && (c > 0xF4 || (c == 0xF4 && c1 >= 0x90)))) {
      return std::nullopt;
    }
    i += len;
    ++n;
  }
  return n;
}

bool has_control_chars(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

void Validator::query_limit(std::string_view value, int max, int& out) {
  int n = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || p != value.data() + value.size() || n < 1 || n > max) {
    fail("limit", "out_of_range", "limit must be an integer in 1.." + std::to_string(max));
    return;
  }
  out = n;
}

void Validator::query_cursor(std::string_view value, std::optional<std::string>& out) {
  if (!ids::is_uuid(value)) {
    fail("cursor", "bad_format", "cursor must be the `next` value of a previous page");
    return;
  }
  out = std::string(value);
}

void Validator::unknown_query(std::string_view key) {
  const std::string name(key.substr(0, 64));
  fail(name, "unknown_parameter", "unknown query parameter '" + name + "'");
}

void Validator::fail(std::string field, std::string code, std::string message) {
  problems_.push_back(boost::json::object{
      {"field", std::move(field)}, {"code", std::move(code)}, {"message", std::move(message)}});
}

Status Validator::status(std::string_view what) const {
  if (ok()) return Ok{};
  std::string msg = std::string(what) + ": " + std::to_string(problems_.size()) +
                    (problems_.size() == 1 ? " problem" : " problems");
  return Error::validation(std::move(msg), problems_);
}

void Validator::only_keys(const boost::json::object& o,
                          std::initializer_list<std::string_view> allowed, std::string_view prefix) {
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      fail(join(prefix, k), "unknown_field", "unknown field '" + join(prefix, k) + "'");
    }
  }
}

std::optional<std::string> Validator::string(const boost::json::object& o, std::string_view key,
                                             std::string_view field, bool required,
                                             std::size_t min_len, std::size_t max_len) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return std::nullopt;
  }
  if (!v->is_string()) {
    fail(std::string(field), "wrong_type", std::string(field) + " must be a string");
    return std::nullopt;
  }
  const auto& s = v->get_string();
  const auto len = utf8_length(s);
  if (!len) {
    fail(std::string(field), "invalid_utf8", std::string(field) + " is not valid UTF-8");
    return std::nullopt;
  }
  if (*len < min_len || *len > max_len) {
    fail(std::string(field), *len < min_len ? "too_short" : "too_long",
         std::string(field) + " must be " + std::to_string(min_len) + ".." +
             std::to_string(max_len) + " characters, got " + std::to_string(*len));
    return std::nullopt;
  }
  return std::string(s);
}

std::optional<std::int64_t> Validator::integer(const boost::json::object& o, std::string_view key,
                                               std::string_view field, bool required,
                                               std::int64_t min, std::int64_t max) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return std::nullopt;
  }
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    n = static_cast<std::int64_t>(v->get_uint64());
  } else if (v->is_double() && std::nearbyint(v->get_double()) == v->get_double() &&
             std::fabs(v->get_double()) < 9.0e15) {
    n = static_cast<std::int64_t>(v->get_double());
  } else {
    fail(std::string(field), "wrong_type", std::string(field) + " must be an integer");
    return std::nullopt;
  }
  if (n < min || n > max) {
    fail(std::string(field), "out_of_range",
         std::string(field) + " must be in " + std::to_string(min) + ".." + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<double> Validator::number(const boost::json::object& o, std::string_view key,
                                        std::string_view field, bool required, double min,
                                        double max) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return std::nullopt;
  }
  if (!v->is_number()) {
    fail(std::string(field), "wrong_type", std::string(field) + " must be a number");
    return std::nullopt;
  }
  const double d = v->to_number<double>();
  if (!(d >= min && d <= max)) {
    fail(std::string(field), "out_of_range",
         std::string(field) + " must be in " + std::to_string(min) + ".." + std::to_string(max));
    return std::nullopt;
  }
  return d;
}

std::optional<bool> Validator::boolean(const boost::json::object& o, std::string_view key,
                                       std::string_view field, bool required) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return std::nullopt;
  }
  if (!v->is_bool()) {
    fail(std::string(field), "wrong_type", std::string(field) + " must be true or false");
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<std::string> Validator::one_of(const boost::json::object& o, std::string_view key,
                                             std::string_view field, bool required,
                                             std::initializer_list<std::string_view> allowed) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return std::nullopt;
  }
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  if (!v->is_string() ||
      std::find(allowed.begin(), allowed.end(), std::string_view(v->get_string())) ==
          allowed.end()) {
    fail(std::string(field), "not_allowed", std::string(field) + " must be one of: " + list);
    return std::nullopt;
  }
  return std::string(v->get_string());
}

const boost::json::object* Validator::object(const boost::json::object& o, std::string_view key,
                                             std::string_view field, bool required) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return nullptr;
  }
  if (!v->is_object()) {
    fail(std::string(field), "wrong_type", std::string(field) + " must be an object");
    return nullptr;
  }
  return &v->get_object();
}

const boost::json::array* Validator::array(const boost::json::object& o, std::string_view key,
                                           std::string_view field, bool required,
                                           std::size_t max_items) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return nullptr;
  }
  if (!v->is_array()) {
    fail(std::string(field), "wrong_type", std::string(field) + " must be an array");
    return nullptr;
  }
  if (v->get_array().size() > max_items) {
    fail(std::string(field), "too_many",
         std::string(field) + " has more than " + std::to_string(max_items) + " items");
    return nullptr;
  }
  return &v->get_array();
}

std::optional<boost::json::object> Validator::string_map(const boost::json::object& o,
                                                         std::string_view key,
                                                         std::string_view field,
                                                         std::size_t max_entries,
                                                         std::size_t max_key,
                                                         std::size_t max_value) {
  const auto* m = object(o, key, field, false);
  if (m == nullptr) return std::nullopt;
  if (m->size() > max_entries) {
    fail(std::string(field), "too_many",
         std::string(field) + " has more than " + std::to_string(max_entries) + " entries");
    return std::nullopt;
  }
  bool good = true;
  for (const auto& kv : *m) {
    const std::string f = std::string(field) + "." + std::string(kv.key());
    if (kv.key().empty() || kv.key().size() > max_key || has_control_chars(kv.key())) {
      fail(f, "bad_key", "keys of " + std::string(field) + " must be 1.." +
                             std::to_string(max_key) + " printable characters");
      good = false;
    } else if (!kv.value().is_string()) {
      fail(f, "wrong_type", f + " must be a string");
      good = false;
    } else if (kv.value().get_string().size() > max_value) {
      fail(f, "too_long", f + " must be at most " + std::to_string(max_value) + " bytes");
      good = false;
    }
  }
  if (!good) return std::nullopt;
  return *m;
}

void Validator::string_list(const boost::json::object& o, std::string_view key,
                            std::string_view field, bool required, std::size_t max_items,
                            std::size_t max_len, bool allow_string) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) fail(std::string(field), "required", std::string(field) + " is required");
    return;
  }
  if (allow_string && v->is_string()) {
    if (v->get_string().empty() || v->get_string().size() > max_len) {
      fail(std::string(field), "bad_length",
           std::string(field) + " must be 1.." + std::to_string(max_len) + " bytes");
    }
    return;
  }
  const auto* a = array(o, key, field, required, max_items);
  if (a == nullptr) return;
  if (required && a->empty()) {
    fail(std::string(field), "required", std::string(field) + " must not be empty");
  }
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto& item = (*a)[i];
    if (!item.is_string() || item.get_string().size() > max_len) {
      fail(std::string(field) + "[" + std::to_string(i) + "]", "wrong_type",
           std::string(field) + " items must be strings of at most " + std::to_string(max_len) +
               " bytes");
    }
  }
}

Result<boost::json::object> parse_object_body(std::string_view body) {
  DP_ASSIGN_OR_RETURN(boost::json::value v, http::parse_json_body(body));
  if (!v.is_object()) {
    return Error::validation("request body must be a JSON object",
                             boost::json::array{boost::json::object{
                                 {"field", ""}, {"code", "wrong_type"},
                                 {"message", "request body must be a JSON object"}}});
  }
  return std::move(v.as_object());
}

std::optional<Error> check_uuid(std::string_view id, std::string_view what) {
  if (ids::is_uuid(id)) return std::nullopt;
  return Error::invalid_argument("invalid_id", "'" + std::string(id.substr(0, 64)) +
                                                   "' is not a valid " + std::string(what) +
                                                   " id (a UUID)");
}

}  // namespace dp::api
