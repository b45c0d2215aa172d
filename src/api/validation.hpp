// Validation helpers for request bodies: collect one problem per bad field, then turn
// them into a single 422 `validation_failed` error whose details list every problem.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "core/result.hpp"

namespace dp::api {

class Validator {
 public:
  void fail(std::string field, std::string code, std::string message);
  bool ok() const noexcept { return problems_.empty(); }
  // Ok, or the 422 error listing every problem.
  Status status(std::string_view what) const;

  // Query parameters shared by the list routes. A bad value records a problem under the
  // parameter's name and leaves `out` as it was.
  // `limit`: an integer in 1..max ("out_of_range").
  void query_limit(std::string_view value, int max, int& out);
  // `cursor`: the `next` value of a previous page, a UUID ("bad_format").
  void query_cursor(std::string_view value, std::optional<std::string>& out);
  // A parameter the route does not know ("unknown_parameter"; the name is cut to 64 bytes).
  void unknown_query(std::string_view key);

  // Reports keys of `o` not in `allowed` ("unknown_field"). `prefix` names the parent ("config.").
  void only_keys(const boost::json::object& o, std::initializer_list<std::string_view> allowed,
                 std::string_view prefix = "");

  // Typed getters: absent -> nullopt (and "required" if `required`); wrong type -> problem.
  std::optional<std::string> string(const boost::json::object& o, std::string_view key,
                                    std::string_view field, bool required, std::size_t min_len,
                                    std::size_t max_len);
  std::optional<std::int64_t> integer(const boost::json::object& o, std::string_view key,
                                      std::string_view field, bool required, std::int64_t min,
                                      std::int64_t max);
  std::optional<double> number(const boost::json::object& o, std::string_view key,
                               std::string_view field, bool required, double min, double max);
  std::optional<bool> boolean(const boost::json::object& o, std::string_view key,
                              std::string_view field, bool required);
  std::optional<std::string> one_of(const boost::json::object& o, std::string_view key,
                                    std::string_view field, bool required,
                                    std::initializer_list<std::string_view> allowed);
  const boost::json::object* object(const boost::json::object& o, std::string_view key,
                                    std::string_view field, bool required);
  const boost::json::array* array(const boost::json::object& o, std::string_view key,
                                  std::string_view field, bool required, std::size_t max_items);
  // An object whose values are all strings, with bounded sizes.
  std::optional<boost::json::object> string_map(const boost::json::object& o, std::string_view key,
                                                std::string_view field, std::size_t max_entries,
                                                std::size_t max_key, std::size_t max_value);
  // An array of strings (or, when `allow_string`, a single string).
  void string_list(const boost::json::object& o, std::string_view key, std::string_view field,
                   bool required, std::size_t max_items, std::size_t max_len,
                   bool allow_string = false);

 private:
  boost::json::array problems_;
};

// A request body that must be a JSON object: kInvalidArgument `invalid_json` when it does
// not parse, 422 `validation_failed` (field "", code wrong_type) when it is not an object.
Result<boost::json::object> parse_object_body(std::string_view body);

// kInvalidArgument `invalid_id` ("'x' is not a valid <what> id (a UUID)") unless `id` is a UUID.
std::optional<Error> check_uuid(std::string_view id, std::string_view what);

// UTF-8 length in code points; nullopt when the bytes are not valid UTF-8.
std::optional<std::size_t> utf8_length(std::string_view s) noexcept;
bool has_control_chars(std::string_view s) noexcept;

}  // namespace dp::api
