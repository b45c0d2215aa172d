#include "mcp/schema.hpp"

#include <optional>
#include <string>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

namespace dp::mcp {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxProblems = 20;
constexpr int kMaxDepth = 32;

class Checker {
 public:
  void check(const json::value& v, const json::value& schema, const std::string& path, int depth) {
    if (problems_.size() >= kMaxProblems || depth > kMaxDepth) return;
    if (schema.is_bool()) {
      if (!schema.get_bool()) fail(path, "not_allowed", "no value is allowed here");
      return;
    }
    if (!schema.is_object()) return;
    const auto& s = schema.get_object();
    if (const auto* t = s.if_contains("type")) {
      if (!type_matches(v, *t)) {
        fail(path, "wrong_type", "must be of type " + type_text(*t) + ", not " + kind(v));
        return;
      }
    }
    if (const auto* e = s.if_contains("enum"); e != nullptr && e->is_array()) {
      bool found = false;
      for (const auto& option : e->get_array()) found = found || equal(option, v);
      if (!found) fail(path, "not_allowed", "must be one of " + json::serialize(*e));
    }
    if (const auto* c = s.if_contains("const"); c != nullptr && !equal(*c, v)) {
      fail(path, "not_allowed", "must be " + json::serialize(*c));
    }
    if (v.is_number()) check_number(v.to_number<double>(), s, path);
    if (v.is_string()) check_string(v.get_string(), s, path);
    if (v.is_array()) check_array(v.get_array(), s, path, depth);
    if (v.is_object()) check_object(v.get_object(), s, path, depth);
    if (const auto* all = s.if_contains("allOf"); all != nullptr && all->is_array()) {
      for (const auto& sub : all->get_array()) check(v, sub, path, depth + 1);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      const auto* list = s.if_contains(key);
      if (list == nullptr || !list->is_array() || list->get_array().empty()) continue;
      std::size_t matches = 0;
      for (const auto& sub : list->get_array()) {
        Checker c;
        c.check(v, sub, path, depth + 1);
        if (c.problems_.empty()) ++matches;
      }
      const bool one = std::string_view(key) == "oneOf";
      if (matches == 0 || (one && matches > 1)) {
        fail(path, "no_match", one ? "must match exactly one of the allowed shapes"
                                   : "must match at least one of the allowed shapes");
      }
    }
  }

  json::array problems_;

 private:
  void fail(const std::string& path, std::string code, std::string message) {
    if (problems_.size() >= kMaxProblems) return;
    problems_.push_back(json::object{{"field", path}, {"code", std::move(code)}, {"message", std::move(message)}});
  }

  static bool equal(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
    return a == b;
  }

  static std::string kind(const json::value& v) {
    switch (v.kind()) {
      case json::kind::null: return "null";
      case json::kind::bool_: return "boolean";
      case json::kind::int64:
      case json::kind::uint64: return "integer";
      case json::kind::double_: return "number";
      case json::kind::string: return "string";
      case json::kind::array: return "array";
      case json::kind::object: return "object";
    }
    return "unknown";
  }

  static bool one_type(const json::value& v, std::string_view t) {
    if (t == "null") return v.is_null();
    if (t == "boolean") return v.is_bool();
    if (t == "string") return v.is_string();
    if (t == "array") return v.is_array();
    if (t == "object") return v.is_object();
    if (t == "number") return v.is_number();
    if (t == "integer") {
      if (v.is_int64() || v.is_uint64()) return true;
      if (v.is_double()) {
        const double d = v.get_double();
        return d == static_cast<double>(static_cast<long long>(d));
      }
      return false;
    }
    return true;  // an unknown type name restricts nothing
  }

  static bool type_matches(const json::value& v, const json::value& t) {
    if (t.is_string()) return one_type(v, t.get_string());
    if (t.is_array()) {
      for (const auto& x : t.get_array()) {
        if (x.is_string() && one_type(v, x.get_string())) return true;
      }
      return t.get_array().empty();
    }
    return true;
  }

  static std::string type_text(const json::value& t) {
    if (t.is_string()) return std::string(t.get_string());
    std::string out;
    if (t.is_array()) {
      for (const auto& x : t.get_array()) {
        if (!x.is_string()) continue;
        if (!out.empty()) out += " or ";
        out += x.get_string();
      }
    }
    return out;
  }

  static std::optional<double> num(const json::object& s, std::string_view key) {
    const auto* v = s.if_contains(key);
    if (v == nullptr || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
  }

  static std::optional<std::size_t> count(const json::object& s, std::string_view key) {
    auto n = num(s, key);
    if (!n || *n < 0) return std::nullopt;
    return static_cast<std::size_t>(*n);
  }

  static std::string fmt(double d) {
    return json::serialize(json::value(d == static_cast<double>(static_cast<long long>(d))
                                           ? json::value(static_cast<long long>(d))
                                           : json::value(d)));
  }

  void check_number(double d, const json::object& s, const std::string& path) {
    if (auto m = num(s, "minimum"); m && d < *m) fail(path, "out_of_range", "must be at least " + fmt(*m));
    if (auto m = num(s, "maximum"); m && d > *m) fail(path, "out_of_range", "must be at most " + fmt(*m));
    if (auto m = num(s, "exclusiveMinimum"); m && d <= *m) fail(path, "out_of_range", "must be more than " + fmt(*m));
    if (auto m = num(s, "exclusiveMaximum"); m && d >= *m) fail(path, "out_of_range", "must be less than " + fmt(*m));
  }

  void check_string(json::string_view str, const json::object& s, const std::string& path) {
    std::size_t cps = 0;
    for (char ch : str) cps += (static_cast<unsigned char>(ch) & 0xC0) != 0x80 ? 1 : 0;
    if (auto m = count(s, "minLength"); m && cps < *m) {
      fail(path, "too_short", "must be at least " + std::to_string(*m) + " characters");
    }
    if (auto m = count(s, "maxLength"); m && cps > *m) {
      fail(path, "too_long", "must be at most " + std::to_string(*m) + " characters");
    }
  }

  void check_array(const json::array& a, const json::object& s, const std::string& path, int depth) {
    if (auto m = count(s, "minItems"); m && a.size() < *m) {
      fail(path, "too_few", "needs at least " + std::to_string(*m) + " items");
    }
    if (auto m = count(s, "maxItems"); m && a.size() > *m) {
      fail(path, "too_many", "takes at most " + std::to_string(*m) + " items");
    }
    if (const auto* items = s.if_contains("items"); items != nullptr && (items->is_object() || items->is_bool())) {
      for (std::size_t i = 0; i < a.size(); ++i) {
        check(a[i], *items, path + "[" + std::to_string(i) + "]", depth + 1);
      }
    }
  }

  void check_object(const json::object& o, const json::object& s, const std::string& path, int depth) {
    const json::object* props = nullptr;
    if (const auto* p = s.if_contains("properties"); p != nullptr && p->is_object()) props = &p->get_object();
    if (const auto* req = s.if_contains("required"); req != nullptr && req->is_array()) {
      for (const auto& r : req->get_array()) {
        if (r.is_string() && !o.contains(r.get_string())) {
          fail(path + "." + std::string(r.get_string()), "required", "is required");
        }
      }
    }
    const auto* additional = s.if_contains("additionalProperties");
    for (const auto& kv : o) {
      const std::string child = path + "." + std::string(kv.key());
      const json::value* sub = props != nullptr ? props->if_contains(kv.key()) : nullptr;
      if (sub != nullptr) {
        check(kv.value(), *sub, child, depth + 1);
      } else if (additional != nullptr) {
        if (additional->is_bool() && !additional->get_bool()) {
          fail(child, "unknown_field", "is not a parameter of this tool");
        } else if (additional->is_object()) {
          check(kv.value(), *additional, child, depth + 1);
        }
      }
    }
  }
};

}  // namespace

Status validate_arguments(const json::value& arguments, const json::object& schema) {
  Checker c;
  c.check(arguments, schema, "arguments", 0);
  if (c.problems_.empty()) return Ok{};
  const std::size_t n = c.problems_.size();
  return Error::validation("arguments do not match the tool's input schema: " + std::to_string(n) +
                               (n == 1 ? " problem" : " problems"),
                           std::move(c.problems_));
}

}  // namespace dp::mcp
