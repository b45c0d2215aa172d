#include "workflow/definition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>
#include <unordered_map>

#include <yaml-cpp/yaml.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "workflow/cron.hpp"
#include "workflow/expr.hpp"

namespace dp::workflow {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxYamlNodes = 100'000;  // bounds alias expansion ("billion laughs")
constexpr std::size_t kMaxDepth = 64;
constexpr std::size_t kMaxIdLength = 64;
constexpr std::int64_t kMaxDurationMs = 366LL * 24 * 3600 * 1000;

struct Pos {
  int line = 0;
  int column = 0;
};
using Positions = std::unordered_map<std::string, Pos>;

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}
std::string index_path(const std::string& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

// --- YAML -> JSON ---------------------------------------------------------------------

class YamlConverter {
 public:
  explicit YamlConverter(Positions& pos) : pos_(pos) {}

  Result<json::value> convert(const YAML::Node& n, const std::string& path, std::size_t depth) {
    if (++nodes_ > kMaxYamlNodes) {
      return Error::invalid_argument("invalid_definition",
                                     "the document expands to more than 100000 nodes");
    }
    if (depth > kMaxDepth) {
      return Error::invalid_argument("invalid_definition", "the document is nested too deeply");
    }
    const YAML::Mark m = n.Mark();
    if (m.line >= 0 && !pos_.contains(path)) pos_[path] = Pos{m.line + 1, m.column + 1};
    switch (n.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json::value(nullptr);
      case YAML::NodeType::Scalar:
        return scalar(n);
      case YAML::NodeType::Sequence: {
        json::array a;
        std::size_t i = 0;
        for (const auto& e : n) {
          DP_ASSIGN_OR_RETURN(json::value v, convert(e, index_path(path, i), depth + 1));
          a.push_back(std::move(v));
          ++i;
        }
        return json::value(std::move(a));
      }
      case YAML::NodeType::Map: {
        json::object o;
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) {
            return Error::invalid_argument("invalid_definition",
                                           "mapping keys must be scalars (at " +
                                               (path.empty() ? std::string("the top") : path) + ")");
          }
          const std::string key = kv.first.Scalar();
          const std::string p = child_path(path, key);
          const YAML::Mark km = kv.first.Mark();
          if (km.line >= 0) pos_[p] = Pos{km.line + 1, km.column + 1};
          DP_ASSIGN_OR_RETURN(json::value v, convert(kv.second, p, depth + 1));
          o[key] = std::move(v);
        }
        return json::value(std::move(o));
      }
    }
    return json::value(nullptr);
  }

 private:
  // Plain scalars are typed by the YAML 1.2 core schema; quoted ones stay strings.
  static json::value scalar(const YAML::Node& n) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return json::value(json::string(s));
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    {
      std::int64_t i = 0;
      const char* b = s.data();
      const char* e = s.data() + s.size();
      if (*b == '+') ++b;
      auto [p, ec] = std::from_chars(b, e, i);
      if (ec == std::errc() && p == e && b != e) return json::value(i);
    }
    {
      // Decimal with a point or exponent; no inf/nan (JSON has neither).
      bool numeric = s.find_first_not_of("0123456789.eE+-") == std::string::npos &&
                     s.find_first_of("0123456789") != std::string::npos;
      if (numeric) {
        double d = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(d)) return json::value(d);
      }
    }
    return json::value(json::string(s));
  }

  Positions& pos_;
  std::size_t nodes_ = 0;
};

Result<json::value> load(std::string_view text, Positions& pos) {
  if (text.size() > kMaxDefinitionBytes) {
    Error e;
    e.code = ErrorCode::kResourceExhausted;
    e.reason = "payload_too_large";
    e.message = "a definition is at most " + std::to_string(kMaxDefinitionBytes) + " bytes";
    return e;
  }
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return Error::invalid_argument("invalid_definition", "the definition is empty");
  }
  if (text[first] == '{' || text[first] == '[') {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = kMaxDepth;
    json::value v = json::parse(text, ec, {}, opts);
    if (ec) {
      return Error::invalid_argument("invalid_definition", "the definition is not valid JSON: " +
                                                               ec.message());
    }
    return v;
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    YamlConverter conv(pos);
    return conv.convert(root, "", 0);
  } catch (const YAML::Exception& ex) {
    Error e = Error::invalid_argument("invalid_definition",
                                      "the definition is not valid YAML: " + ex.msg);
    e.details = json::array{json::object{{"path", ""},
                                         {"code", "syntax"},
                                         {"message", ex.msg},
                                         {"line", ex.mark.line + 1},
                                         {"column", ex.mark.column + 1}}};
    return e;
  }
}

// --- validation -----------------------------------------------------------------------

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdLength) return false;
  const char c = s[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char x) {
    return (x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z') || (x >= '0' && x <= '9') ||
           x == '_' || x == '-';
  });
}

const std::vector<std::string_view>& builtin_outputs(std::string_view type) {
  static const std::vector<std::string_view> agent = {"exitCode", "outcome", "stdout", "stderr",
                                                      "json",     "files",   "wallMs"};
  static const std::vector<std::string_view> approval = {"approved", "by", "comment", "decidedAt"};
  static const std::vector<std::string_view> wait = {"waitedMs"};
  static const std::vector<std::string_view> workflow = {"executionId"};
  static const std::vector<std::string_view> none;
  if (type == "agent") return agent;
  if (type == "approval") return approval;
  if (type == "wait") return wait;
  if (type == "workflow") return workflow;
  return none;
}

class Checker {
 public:
  explicit Checker(const Positions& pos) : pos_(pos) {}

  void fail(const std::string& path, std::string code, std::string message) {
    Problem p;
    p.path = path;
    p.code = std::move(code);
    p.message = std::move(message);
    // The node itself, else the nearest ancestor that has a position.
    std::string at = path;
    for (;;) {
      auto it = pos_.find(at);
      if (it != pos_.end()) {
        p.line = it->second.line;
        p.column = it->second.column;
        break;
      }
      if (at.empty()) break;
      const auto cut = at.find_last_of(".[");
      at = cut == std::string::npos ? std::string() : at.substr(0, cut);
    }
    problems.push_back(std::move(p));
  }

  void only_keys(const json::object& o, const std::string& path,
                 const std::vector<std::string_view>& allowed, std::string_view hint = {}) {
    for (const auto& kv : o) {
      if (std::find(allowed.begin(), allowed.end(), std::string_view(kv.key())) == allowed.end()) {
        std::string msg = "unknown key '" + std::string(kv.key().substr(0, 64)) + "'";
        if (!hint.empty()) msg += " " + std::string(hint);
        fail(child_path(path, kv.key().substr(0, 64)), "unknown_key", std::move(msg));
      }
    }
  }

  std::optional<std::string> string(const json::object& o, std::string_view key,
                                    const std::string& path, bool required, std::size_t max_len) {
    const auto* v = o.if_contains(key);
    const std::string p = child_path(path, key);
    if (v == nullptr || v->is_null()) {
      if (required) fail(p, "required", std::string(key) + " is required");
      return std::nullopt;
    }
    if (!v->is_string()) {
      fail(p, "wrong_type", std::string(key) + " must be a string");
      return std::nullopt;
    }
    if (v->get_string().size() > max_len) {
      fail(p, "too_long", std::string(key) + " must be at most " + std::to_string(max_len) + " bytes");
      return std::nullopt;
    }
    return std::string(v->get_string());
  }

  std::optional<std::int64_t> duration(const json::object& o, std::string_view key,
                                       const std::string& path) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    auto d = parse_duration_ms(*v);
    if (!d || *d <= 0 || *d > kMaxDurationMs) {
      fail(child_path(path, key), "bad_duration",
           std::string(key) + " must be a duration like '250ms', '30s', '5m', '2h' (up to 366d)");
      return std::nullopt;
    }
    return d;
  }

  std::optional<std::int64_t> integer(const json::object& o, std::string_view key,
                                      const std::string& path, std::int64_t lo, std::int64_t hi) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    std::optional<std::int64_t> n;
    if (v->is_int64()) n = v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      n = static_cast<std::int64_t>(v->get_uint64());
    }
    if (!n || *n < lo || *n > hi) {
      fail(child_path(path, key), "out_of_range",
           std::string(key) + " must be an integer in " + std::to_string(lo) + ".." +
               std::to_string(hi));
      return std::nullopt;
    }
    return n;
  }

  std::vector<std::string> string_list(const json::object& o, std::string_view key,
                                       const std::string& path) {
    std::vector<std::string> out;
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return out;
    const std::string p = child_path(path, key);
    if (v->is_string()) {
      out.emplace_back(v->get_string());
      return out;
    }
    if (!v->is_array()) {
      fail(p, "wrong_type", std::string(key) + " must be a string or a list of strings");
      return out;
    }
    std::size_t i = 0;
    for (const auto& e : v->get_array()) {
      if (!e.is_string()) {
        fail(index_path(p, i), "wrong_type", std::string(key) + " entries must be strings");
      } else {
        out.emplace_back(e.get_string());
      }
      ++i;
    }
    return out;
  }

  std::vector<Problem> problems;

 private:
  const Positions& pos_;
};

bool valid_adapter_ref(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char ch : n) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

const std::vector<std::string_view> kTopKeys = {"name",  "description", "inputs",  "outputs",
                                                "steps", "triggers",    "version", "$schema"};
const std::vector<std::string_view> kStepTypes = {"agent", "tool", "approval", "workflow", "wait"};
const std::vector<std::string_view> kCommonStepKeys = {
    "id",      "name",        "type",   "needs",           "if",      "inputs", "retry",
    "timeout", "continueOnError", "forEach", "concurrency", "outputs"};

std::vector<std::string_view> step_keys(std::string_view type) {
  std::vector<std::string_view> keys = kCommonStepKeys;
  if (type == "agent") keys.push_back("agent");
  if (type == "tool") {
    keys.push_back("tool");
    keys.push_back("adapter");
    keys.push_back("arguments");
  }
  if (type == "approval") {
    keys.push_back("message");
    keys.push_back("approvers");
  }
  if (type == "workflow") keys.push_back("workflow");
  if (type == "wait") keys.push_back("duration");
  return keys;
}

// triggers: [{cron, timezone?, missed?, id?, inputs?} | {webhook, secret, payloadInput?, inputs?}]
void parse_triggers(Checker& c, const json::value& v, Definition& def) {
  if (v.is_null()) return;
  if (!v.is_array()) {
    c.fail("triggers", "wrong_type", "triggers must be a list");
    return;
  }
  if (v.get_array().size() > kMaxTriggers) {
    c.fail("triggers", "too_many", "a workflow has at most 32 triggers");
    return;
  }
  std::set<std::string> seen;
  std::size_t i = 0;
  for (const auto& t : v.get_array()) {
    const std::string p = index_path("triggers", i++);
    if (!t.is_object()) {
      c.fail(p, "wrong_type", "a trigger is a mapping with `cron` or `webhook`");
      continue;
    }
    const auto& o = t.get_object();
    Trigger tr;
    if (o.contains("cron")) {
      tr.kind = "schedule";
      c.only_keys(o, p, {"cron", "timezone", "missed", "id", "inputs"}, "for a cron trigger");
      if (auto cron = c.string(o, "cron", p, true, 256)) {
        tr.cron = *cron;
        if (auto spec = parse_cron(*cron); !spec.ok()) {
          c.fail(child_path(p, "cron"), "bad_value", spec.error().message);
        }
      }
      if (auto tz = c.string(o, "timezone", p, false, 64)) {
        tr.timezone = *tz;
        if (auto z = find_zone(*tz); !z.ok()) c.fail(child_path(p, "timezone"), "bad_value", z.error().message);
      }
      if (auto m = c.string(o, "missed", p, false, 16)) {
        if (*m != "once" && *m != "skip") {
          c.fail(child_path(p, "missed"), "not_allowed", "missed must be `once` or `skip`");
        } else {
          tr.missed = *m;
        }
      }
      if (auto id = c.string(o, "id", p, false, 64)) {
        if (!valid_id(*id)) {
          c.fail(child_path(p, "id"), "bad_id",
                 "a trigger id has letters, digits, `_` and `-`, does not start with a digit, "
                 "and is at most 64 long");
        }
        tr.id = *id;
      } else {
        tr.id = "cron-" + std::to_string(i - 1);
      }
    } else if (o.contains("webhook")) {
      tr.kind = "webhook";
      c.only_keys(o, p, {"webhook", "secret", "payloadInput", "inputs"}, "for a webhook trigger");
      if (auto id = c.string(o, "webhook", p, true, 64)) {
        if (!valid_id(*id)) {
          c.fail(child_path(p, "webhook"), "bad_id",
                 "a hook id has letters, digits, `_` and `-`, does not start with a digit, and "
                 "is at most 64 long");
        }
        tr.id = *id;
      }
      if (auto secret = c.string(o, "secret", p, true, 200)) tr.secret = *secret;
      if (auto in = c.string(o, "payloadInput", p, false, 64)) {
        if (!def.inputs.contains(*in)) {
          c.fail(child_path(p, "payloadInput"), "unknown_input",
                 "payloadInput names '" + *in + "', which is not a declared input");
        }
        tr.payload_input = *in;
      }
    } else {
      c.fail(p, "required", "a trigger has `cron` (a schedule) or `webhook` (a hook id)");
      continue;
    }
    if (const auto* in = o.if_contains("inputs"); in != nullptr && !in->is_null()) {
      if (!in->is_object()) {
        c.fail(child_path(p, "inputs"), "wrong_type", "inputs must be a mapping of input names to values");
      } else {
        for (const auto& kv : in->get_object()) {
          if (!def.inputs.contains(kv.key())) {
            c.fail(child_path(child_path(p, "inputs"), kv.key().substr(0, 64)), "unknown_input",
                   "'" + std::string(kv.key().substr(0, 64)) + "' is not a declared input");
          }
        }
        tr.inputs = in->get_object();
      }
    }
    if (!tr.id.empty() && !seen.insert(tr.id).second) {
      c.fail(p, "duplicate_id", "trigger id '" + tr.id + "' is used twice");
    }
    def.triggers.push_back(std::move(tr));
  }
}

void parse_inputs(Checker& c, const json::value& v, Definition& def) {
  if (v.is_null()) return;
  if (!v.is_object()) {
    c.fail("inputs", "wrong_type", "inputs must be a mapping of input names to declarations");
    return;
  }
  static const std::vector<std::string_view> types = {"string", "number", "integer",
                                                      "boolean", "object", "array"};
  for (const auto& kv : v.get_object()) {
    const std::string name(kv.key());
    const std::string p = child_path("inputs", name);
    if (!valid_id(name)) {
      c.fail(p, "bad_name", "input names are 1..64 letters, digits, '_' or '-', not starting with a digit");
      continue;
    }
    InputSpec spec;
    if (kv.value().is_string()) {
      spec.type = std::string(kv.value().get_string());
    } else if (kv.value().is_object()) {
      const auto& o = kv.value().get_object();
      c.only_keys(o, p, {"type", "required", "default", "description", "enum"});
      if (auto t = c.string(o, "type", p, false, 16)) spec.type = *t;
      if (const auto* r = o.if_contains("required")) {
        if (!r->is_bool()) {
          c.fail(child_path(p, "required"), "wrong_type", "required must be true or false");
        } else {
          spec.required = r->get_bool();
        }
      }
      if (const auto* d = o.if_contains("default")) spec.default_value = *d;
      if (auto d = c.string(o, "description", p, false, 2000)) spec.description = *d;
      if (const auto* e = o.if_contains("enum")) {
        if (!e->is_array() || e->get_array().empty()) {
          c.fail(child_path(p, "enum"), "wrong_type", "enum must be a non-empty list");
        } else {
          spec.enum_values.assign(e->get_array().begin(), e->get_array().end());
        }
      }
    } else {
      c.fail(p, "wrong_type", "an input is declared by a type name or a mapping");
      continue;
    }
    if (std::find(types.begin(), types.end(), spec.type) == types.end()) {
      c.fail(child_path(p, "type"), "not_allowed",
             "type must be one of: string, number, integer, boolean, object, array");
    }
    def.inputs[name] = std::move(spec);
  }
}

void parse_retry(Checker& c, const json::value& v, const std::string& path, RetryPolicy& r) {
  if (v.is_null()) return;
  if (!v.is_object()) {
    c.fail(path, "wrong_type", "retry must be a mapping");
    return;
  }
  const auto& o = v.get_object();
  c.only_keys(o, path, {"maxAttempts", "backoff", "maxBackoff", "factor", "retryOn"});
  if (auto n = c.integer(o, "maxAttempts", path, 1, 100)) r.max_attempts = static_cast<int>(*n);
  if (const auto* b = o.if_contains("backoff"); b != nullptr && !b->is_null()) {
    auto d = parse_duration_ms(*b);
    if (!d || *d < 0 || *d > kMaxDurationMs) {
      c.fail(child_path(path, "backoff"), "bad_duration", "backoff must be a duration like '2s'");
    } else {
      r.backoff_ms = *d;
    }
  }
  if (auto d = c.duration(o, "maxBackoff", path)) r.max_backoff_ms = *d;
  if (const auto* f = o.if_contains("factor"); f != nullptr && !f->is_null()) {
    const double x = f->is_double() ? f->get_double()
                     : f->is_int64() ? static_cast<double>(f->get_int64())
                                     : -1.0;
    if (x < 1.0 || x > 10.0) {
      c.fail(child_path(path, "factor"), "out_of_range", "factor must be a number in 1..10");
    } else {
      r.factor = x;
    }
  }
  r.retry_on = c.string_list(o, "retryOn", path);
  std::size_t i = 0;
  for (const auto& k : r.retry_on) {
    const bool exit_code = k.rfind("exit:", 0) == 0 && k.size() > 5 &&
                           k.find_first_not_of("0123456789", 5) == std::string::npos;
    if (k != "failed" && k != "timeout" && k != "unavailable" && !exit_code) {
      c.fail(index_path(child_path(path, "retryOn"), i), "not_allowed",
             "retryOn entries are failed, timeout, unavailable or exit:<code>");
    }
    ++i;
  }
}

void parse_step(Checker& c, const json::value& v, std::size_t index, Definition& def) {
  const std::string path = index_path("steps", index);
  if (!v.is_object()) {
    c.fail(path, "wrong_type", "a step must be a mapping");
    return;
  }
  const auto& o = v.get_object();
  Step s;
  if (auto id = c.string(o, "id", path, true, 256)) {
    if (!valid_id(*id)) {
      c.fail(child_path(path, "id"), "bad_id",
             "step ids are 1..64 letters, digits, '_' or '-', not starting with a digit");
    }
    s.id = *id;
  }
  if (auto t = c.string(o, "type", path, true, 32)) {
    if (std::find(kStepTypes.begin(), kStepTypes.end(), *t) == kStepTypes.end()) {
      c.fail(child_path(path, "type"), "not_allowed",
             "type must be one of: agent, tool, approval, workflow, wait");
    } else {
      s.type = *t;
    }
  }
  if (!s.type.empty()) {
    c.only_keys(o, path, step_keys(s.type), "for a step of type " + s.type);
  } else {
    std::vector<std::string_view> all = kCommonStepKeys;
    for (auto k : {"agent", "tool", "adapter", "arguments", "message", "approvers", "workflow", "duration"}) {
      all.push_back(k);
    }
    c.only_keys(o, path, all);
  }
  if (auto n = c.string(o, "name", path, false, 200)) s.name = *n;
  s.needs = c.string_list(o, "needs", path);
  if (auto e = c.string(o, "if", path, false, 4096)) s.if_expr = *e;
  if (const auto* in = o.if_contains("inputs")) s.inputs = *in;
  if (const auto* r = o.if_contains("retry")) parse_retry(c, *r, child_path(path, "retry"), s.retry);
  if (auto d = c.duration(o, "timeout", path)) s.timeout_ms = *d;
  if (const auto* b = o.if_contains("continueOnError"); b != nullptr && !b->is_null()) {
    if (!b->is_bool()) {
      c.fail(child_path(path, "continueOnError"), "wrong_type", "continueOnError must be true or false");
    } else {
      s.continue_on_error = b->get_bool();
    }
  }
  if (const auto* f = o.if_contains("forEach"); f != nullptr && !f->is_null()) {
    if (!f->is_array() && !f->is_string()) {
      c.fail(child_path(path, "forEach"), "wrong_type",
             "forEach must be a list or a '${{ ... }}' expression yielding one");
    } else if (f->is_array() && f->get_array().size() > kMaxSteps) {
      c.fail(child_path(path, "forEach"), "too_many", "forEach takes at most 1000 items");
    } else {
      s.for_each = *f;
    }
  }
  if (auto n = c.integer(o, "concurrency", path, 1, 1000)) s.concurrency = static_cast<int>(*n);
  if (o.contains("concurrency") && s.for_each.is_null()) {
    c.fail(child_path(path, "concurrency"), "not_allowed", "concurrency applies to forEach steps only");
  }
  s.outputs = c.string_list(o, "outputs", path);
  if (s.type == "agent") {
    const auto* a = o.if_contains("agent");
    if (a == nullptr || a->is_null()) {
      c.fail(child_path(path, "agent"), "required", "an agent step names its agent");
    } else if (a->is_string()) {
      if (a->get_string().empty() || a->get_string().size() > 200) {
        c.fail(child_path(path, "agent"), "bad_value", "agent must be an agent id or name");
      }
      s.agent = *a;
    } else if (a->is_object()) {
      const std::string ap = child_path(path, "agent");
      c.only_keys(a->get_object(), ap, {"id", "name", "kind", "labels"});
      const auto& ao = a->get_object();
      if (!ao.contains("id") && !ao.contains("name") && !ao.contains("kind")) {
        c.fail(ap, "required", "agent needs one of id, name or kind");
      }
      for (auto k : {"id", "name", "kind"}) c.string(ao, k, ap, false, 200);
      if (const auto* l = ao.if_contains("labels"); l != nullptr && !l->is_object()) {
        c.fail(child_path(ap, "labels"), "wrong_type", "labels must be a mapping");
      }
      s.agent = *a;
    } else {
      c.fail(child_path(path, "agent"), "wrong_type", "agent must be a string or a mapping");
    }
  }
  if (s.type == "tool") {
    // `adapter: A, tool: T` or the shorthand `tool: A/T`; `arguments` (or `inputs`) templated.
    auto adapter = c.string(o, "adapter", path, false, 64);
    if (auto t = c.string(o, "tool", path, true, 256)) {
      const auto slash = t->find('/');
      if (adapter) {
        s.adapter = *adapter;
        s.tool = *t;
      } else if (slash == std::string::npos || slash == 0 || slash + 1 == t->size()) {
        c.fail(child_path(path, "tool"), "bad_value",
               "tool is written 'adapter/tool', or names the tool of the step's `adapter`");
      } else {
        s.adapter = t->substr(0, slash);
        s.tool = t->substr(slash + 1);
      }
      if (!s.adapter.empty() && !valid_adapter_ref(s.adapter)) {
        c.fail(child_path(path, adapter ? "adapter" : "tool"), "bad_value",
               "an adapter name is 1..64 letters, digits, '_' or '-'");
      }
      if (s.tool.empty()) c.fail(child_path(path, "tool"), "required", "a tool step names its tool");
    }
    if (const auto* a = o.if_contains("arguments"); a != nullptr && !a->is_null()) {
      if (o.contains("inputs")) {
        c.fail(child_path(path, "arguments"), "not_allowed",
               "give the tool's arguments as `arguments` or as `inputs`, not both");
      } else if (!a->is_object() && !a->is_string()) {
        c.fail(child_path(path, "arguments"), "wrong_type",
               "arguments must be a mapping or a '${{ ... }}' expression yielding one");
      } else {
        s.inputs = *a;
      }
    } else if (!s.inputs.is_null() && !s.inputs.is_object() && !s.inputs.is_string()) {
      c.fail(child_path(path, "inputs"), "wrong_type", "a tool step's inputs are its arguments: a mapping");
    }
  }
  if (s.type == "approval") {
    if (auto m = c.string(o, "message", path, false, 4000)) s.message = *m;
    s.approvers = c.string_list(o, "approvers", path);
    std::size_t i = 0;
    for (const auto& r : s.approvers) {
      if (r != "admin" && r != "operator") {
        c.fail(index_path(child_path(path, "approvers"), i), "not_allowed",
               "approvers are roles that act on workflows: admin, operator");
      }
      ++i;
    }
  }
  if (s.type == "workflow") {
    if (auto w = c.string(o, "workflow", path, true, 200)) s.workflow = *w;
  }
  if (s.type == "wait") {
    if (auto d = c.duration(o, "duration", path)) {
      s.duration_ms = *d;
    } else if (!o.contains("duration")) {
      c.fail(child_path(path, "duration"), "required", "a wait step has a duration");
    }
  }
  def.steps.push_back(std::move(s));
}

// Every cycle through `needs`, each named once ("a -> b -> a").
void find_cycles(Checker& c, const Definition& def,
                 const std::unordered_map<std::string, std::size_t>& index) {
  std::vector<int> color(def.steps.size(), 0);  // 0 white, 1 on stack, 2 done
  std::vector<std::size_t> stack;
  std::set<std::string> reported;
  std::function<void(std::size_t)> visit = [&](std::size_t u) {
    color[u] = 1;
    stack.push_back(u);
    for (const auto& n : def.steps[u].needs) {
      auto it = index.find(n);
      if (it == index.end()) continue;
      const std::size_t v = it->second;
      if (color[v] == 1) {
        auto from = std::find(stack.begin(), stack.end(), v);
        std::vector<std::string> ids;
        for (auto p = from; p != stack.end(); ++p) ids.push_back(def.steps[*p].id);
        // Name the cycle from its smallest id so each is reported once.
        auto mn = std::min_element(ids.begin(), ids.end());
        std::rotate(ids.begin(), mn, ids.end());
        std::string name;
        for (const auto& id : ids) name += id + " -> ";
        name += ids.front();
        if (reported.insert(name).second) {
          c.fail(index_path("steps", index.at(ids.front())) + ".needs", "cycle",
                 "the steps form a cycle: " + name);
        }
      } else if (color[v] == 0) {
        visit(v);
      }
    }
    stack.pop_back();
    color[u] = 2;
  };
  for (std::size_t i = 0; i < def.steps.size(); ++i) {
    if (color[i] == 0) visit(i);
  }
}

// Transitive dependencies of every step.
std::vector<std::set<std::string>> ancestors(const Definition& def,
                                             const std::unordered_map<std::string, std::size_t>& index) {
  std::vector<std::set<std::string>> out(def.steps.size());
  std::vector<int> state(def.steps.size(), 0);
  std::function<void(std::size_t)> fill = [&](std::size_t u) {
    if (state[u] != 0) return;  // done, or on the stack (a cycle, reported elsewhere)
    state[u] = 1;
    for (const auto& n : def.steps[u].needs) {
      auto it = index.find(n);
      if (it == index.end()) continue;
      fill(it->second);
      out[u].insert(n);
      out[u].insert(out[it->second].begin(), out[it->second].end());
    }
    state[u] = 2;
  };
  for (std::size_t i = 0; i < def.steps.size(); ++i) fill(i);
  return out;
}

struct RefScope {
  const Step* step = nullptr;                 // null: the workflow's outputs
  const std::set<std::string>* reachable = nullptr;
};

void check_refs(Checker& c, const Definition& def,
                const std::unordered_map<std::string, std::size_t>& index,
                const expr::Expression& e, const std::string& path, const RefScope& scope) {
  for (const auto& ref : e.references()) {
    const std::string& root = ref[0];
    if (root == "inputs") {
      if (ref.size() > 1 && !def.inputs.contains(ref[1])) {
        c.fail(path, "unknown_input", "'" + e.source() + "' reads input '" + ref[1] +
                                          "', which the workflow does not declare");
      }
    } else if (root == "steps") {
      if (ref.size() < 2) continue;
      auto it = index.find(ref[1]);
      if (it == index.end()) {
        c.fail(path, "unknown_step", "'" + e.source() + "' reads step '" + ref[1] +
                                         "', which does not exist");
        continue;
      }
      if (scope.reachable != nullptr && !scope.reachable->contains(ref[1])) {
        c.fail(path, "not_a_dependency",
               "'" + e.source() + "' reads step '" + ref[1] + "', which is not among the needs of step '" +
                   scope.step->id + "' (directly or transitively)");
        continue;
      }
      if (ref.size() < 3) continue;
      const std::string& field = ref[2];
      if (field != "outputs" && field != "status" && field != "attempts" && field != "error") {
        c.fail(path, "unknown_field", "'" + e.source() + "': a step has outputs, status, attempts and error, not '" +
                                          field + "'");
        continue;
      }
      if (field == "outputs" && ref.size() > 3) {
        const Step& target = def.steps[it->second];
        if (target.outputs.empty()) continue;  // undeclared: anything goes
        const auto& builtin = builtin_outputs(target.type);
        const bool ok = std::find(target.outputs.begin(), target.outputs.end(), ref[3]) != target.outputs.end() ||
                        std::find(builtin.begin(), builtin.end(), ref[3]) != builtin.end() ||
                        (!target.for_each.is_null() && ref[3] == "results");
        if (!ok) {
          c.fail(path, "unknown_output", "'" + e.source() + "' reads output '" + ref[3] + "' of step '" +
                                             target.id + "', which declares only: " +
                                             [&] {
                                               std::string s;
                                               for (const auto& o : target.outputs) s += (s.empty() ? "" : ", ") + o;
                                               return s;
                                             }());
        }
      }
    } else if (root == "item" || root == "index") {
      if (scope.step == nullptr || scope.step->for_each.is_null()) {
        c.fail(path, "unknown_name", "'" + e.source() + "' reads '" + root + "', which exists only in forEach steps");
      }
    } else if (root != "execution") {
      c.fail(path, "unknown_name", "'" + e.source() + "' reads '" + root +
                                       "'; names are inputs, steps, item, index and execution");
    }
  }
}

void check_expression(Checker& c, const Definition& def,
                      const std::unordered_map<std::string, std::size_t>& index,
                      std::string_view source, const std::string& path, const RefScope& scope) {
  auto e = expr::Expression::parse(source);
  if (!e.ok()) {
    c.fail(path, "bad_expression", e.error().message);
    return;
  }
  check_refs(c, def, index, *e, path, scope);
}

void check_templates(Checker& c, const Definition& def,
                     const std::unordered_map<std::string, std::size_t>& index,
                     const json::value& v, const std::string& path, const RefScope& scope,
                     std::size_t depth = 0) {
  if (depth > kMaxDepth) return;
  if (v.is_string()) {
    auto parts = expr::find_templates(v.get_string());
    if (!parts.ok()) {
      c.fail(path, "bad_expression", parts.error().message);
      return;
    }
    for (const auto& p : *parts) check_expression(c, def, index, p.expression, path, scope);
  } else if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& e : v.get_array()) check_templates(c, def, index, e, index_path(path, i++), scope, depth + 1);
  } else if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      check_templates(c, def, index, kv.value(), child_path(path, kv.key()), scope, depth + 1);
    }
  }
}

std::vector<Problem> check(const json::value& doc, const Positions& pos, Definition& def) {
  Checker c(pos);
  if (!doc.is_object()) {
    c.fail("", "wrong_type", "a workflow definition is a mapping (name, steps, ...)");
    return std::move(c.problems);
  }
  const auto& o = doc.get_object();
  c.only_keys(o, "", kTopKeys);
  if (auto n = c.string(o, "name", "", true, 200)) {
    if (n->empty()) c.fail("name", "required", "name must not be empty");
    def.name = *n;
  }
  if (auto d = c.string(o, "description", "", false, 4000)) def.description = *d;
  if (const auto* in = o.if_contains("inputs")) parse_inputs(c, *in, def);
  if (const auto* tr = o.if_contains("triggers")) parse_triggers(c, *tr, def);
  if (const auto* out = o.if_contains("outputs"); out != nullptr && !out->is_null()) {
    if (!out->is_object()) {
      c.fail("outputs", "wrong_type", "outputs must be a mapping of names to templates");
    } else {
      def.outputs = out->get_object();
    }
  }
  const auto* steps = o.if_contains("steps");
  if (steps == nullptr || steps->is_null()) {
    c.fail("steps", "required", "a workflow has at least one step");
    return std::move(c.problems);
  }
  if (!steps->is_array()) {
    c.fail("steps", "wrong_type", "steps must be a list");
    return std::move(c.problems);
  }
  if (steps->get_array().empty()) c.fail("steps", "required", "a workflow has at least one step");
  if (steps->get_array().size() > kMaxSteps) {
    c.fail("steps", "too_many", "a workflow has at most 1000 steps");
    return std::move(c.problems);
  }
  std::size_t i = 0;
  for (const auto& s : steps->get_array()) parse_step(c, s, i++, def);
  // A step that is not a mapping is not in def.steps: the checks below index both lists
  // alike, so stop here (the definition is already refused) rather than misread them.
  if (def.steps.size() != steps->get_array().size()) return std::move(c.problems);

  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t k = 0; k < def.steps.size(); ++k) {
    const auto& s = def.steps[k];
    if (s.id.empty()) continue;
    if (!index.emplace(s.id, k).second) {
      c.fail(index_path("steps", k) + ".id", "duplicate_id", "step id '" + s.id + "' is used twice");
    }
  }
  for (std::size_t k = 0; k < def.steps.size(); ++k) {
    const auto& s = def.steps[k];
    std::size_t j = 0;
    for (const auto& n : s.needs) {
      const std::string p = index_path(index_path("steps", k) + ".needs", j);
      if (!index.contains(n)) {
        const auto* raw = steps->get_array()[k].get_object().if_contains("needs");
        c.fail(s.needs.size() == 1 && raw != nullptr && !raw->is_array()
                   ? index_path("steps", k) + ".needs"
                   : p,
               "missing_dependency", "step '" + s.id + "' needs '" + n + "', which does not exist");
      } else if (n == s.id) {
        c.fail(p, "cycle", "step '" + s.id + "' needs itself: " + s.id + " -> " + s.id);
      }
      ++j;
    }
  }
  find_cycles(c, def, index);
  const auto anc = ancestors(def, index);
  for (std::size_t k = 0; k < def.steps.size(); ++k) {
    const auto& s = def.steps[k];
    const std::string p = index_path("steps", k);
    RefScope scope{&s, &anc[k]};
    if (!s.if_expr.empty()) {
      // `if` may be written bare or wrapped in ${{ }}.
      auto parts = expr::find_templates(s.if_expr);
      if (parts.ok() && parts->size() == 1 && (*parts)[0].offset == 0 &&
          (*parts)[0].length == s.if_expr.size()) {
        check_expression(c, def, index, (*parts)[0].expression, p + ".if", scope);
      } else {
        check_expression(c, def, index, s.if_expr, p + ".if", scope);
      }
    }
    check_templates(c, def, index, s.inputs, p + ".inputs", scope);
    if (s.for_each.is_string()) {
      RefScope outer{&s, &anc[k]};
      Step no_item = s;
      no_item.for_each = nullptr;
      outer.step = &no_item;
      check_templates(c, def, index, s.for_each, p + ".forEach", outer);
    }
    if (s.type == "agent" && s.agent.is_string()) {
      check_templates(c, def, index, s.agent, p + ".agent", scope);
    }
    if (s.type == "approval") check_templates(c, def, index, json::value(s.message), p + ".message", scope);
  }
  check_templates(c, def, index, json::value(def.outputs), "outputs", RefScope{});
  return std::move(c.problems);
}

}  // namespace

const Trigger* Definition::trigger(std::string_view id) const {
  for (const auto& t : triggers) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const Step* Definition::step(std::string_view id) const {
  if (step_index.size() == steps.size()) {
    auto it = step_index.find(id);
    if (it == step_index.end()) return nullptr;
    if (it->second < steps.size() && steps[it->second].id == id) return &steps[it->second];
  }
  for (const auto& s : steps) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

void Definition::index_steps() {
  step_index.clear();
  for (std::size_t i = 0; i < steps.size(); ++i) step_index.emplace(steps[i].id, i);
}

std::optional<std::int64_t> parse_duration_ms(const json::value& v) {
  if (v.is_int64()) return v.get_int64() >= 0 ? std::optional(v.get_int64() * 1000) : std::nullopt;
  if (v.is_double()) {
    const double d = v.get_double();
    if (!(d >= 0) || d > 1e10) return std::nullopt;
    return static_cast<std::int64_t>(d * 1000);
  }
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  if (s.empty() || s.size() > 32) return std::nullopt;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0 || n > 1'000'000'000) return std::nullopt;
  const std::string_view unit = s.substr(static_cast<std::size_t>(p - s.data()));
  if (unit == "ms") return n;
  if (unit == "s" || unit.empty()) return n * 1000;
  if (unit == "m") return n * 60'000;
  if (unit == "h") return n * 3'600'000;
  if (unit == "d") return n * 86'400'000;
  return std::nullopt;
}

Result<json::value> load_document(std::string_view text) {
  Positions pos;
  return load(text, pos);
}

json::array to_json(const std::vector<Problem>& problems) {
  json::array out;
  for (const auto& p : problems) {
    json::object o{{"field", p.path}, {"path", p.path}, {"code", p.code}, {"message", p.message}};
    if (p.line > 0) {
      o["line"] = p.line;
      o["column"] = p.column;
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<Problem> validate_definition(std::string_view text, Definition* out) {
  Positions pos;
  auto doc = load(text, pos);
  if (!doc.ok()) {
    Problem p;
    p.code = doc.error().reason == "payload_too_large" ? "payload_too_large" : "syntax";
    p.message = doc.error().message;
    if (doc.error().details.is_array() && !doc.error().details.get_array().empty()) {
      const auto& d = doc.error().details.get_array()[0].get_object();
      p.line = static_cast<int>(d.at("line").to_number<std::int64_t>());
      p.column = static_cast<int>(d.at("column").to_number<std::int64_t>());
    }
    return {p};
  }
  Definition def;
  auto problems = check(*doc, pos, def);
  def.index_steps();
  if (out != nullptr) *out = std::move(def);
  return problems;
}

namespace {

Result<Definition> finish(std::vector<Problem> problems, Definition def) {
  if (!problems.empty()) {
    if (problems.size() == 1 && problems[0].code == "payload_too_large") {
      Error e;
      e.code = ErrorCode::kResourceExhausted;
      e.reason = "payload_too_large";
      e.message = problems[0].message;
      return e;
    }
    return Error::validation("invalid workflow definition (" + std::to_string(problems.size()) +
                                 " problem" + (problems.size() == 1 ? "" : "s") + ")",
                             to_json(problems));
  }
  return def;
}

}  // namespace

Result<Definition> parse_definition(std::string_view text) {
  Definition def;
  auto problems = validate_definition(text, &def);
  return finish(std::move(problems), std::move(def));
}

Result<Definition> parse_definition_json(const json::value& doc) {
  Definition def;
  auto problems = check(doc, Positions{}, def);
  def.index_steps();
  return finish(std::move(problems), std::move(def));
}

Result<json::object> check_inputs(const Definition& def, const json::object& inputs) {
  json::array problems;
  auto fail = [&](const std::string& name, const char* code, std::string msg) {
    problems.push_back(json::object{{"field", "inputs." + name.substr(0, 64)}, {"code", code}, {"message", std::move(msg)}});
  };
  json::object out;
  for (const auto& kv : inputs) {
    if (!def.inputs.contains(std::string(kv.key()))) {
      fail(std::string(kv.key()), "unknown_input", "the workflow declares no input '" + std::string(kv.key().substr(0, 64)) + "'");
    }
  }
  for (const auto& [name, spec] : def.inputs) {
    const auto* v = inputs.if_contains(name);
    if (v == nullptr || v->is_null()) {
      if (spec.default_value) {
        out[name] = *spec.default_value;
      } else if (spec.required) {
        fail(name, "required", "input '" + name + "' is required");
      }
      continue;
    }
    bool ok = false;
    if (spec.type == "string") ok = v->is_string();
    if (spec.type == "number") ok = v->is_number();
    if (spec.type == "integer") ok = v->is_int64() || v->is_uint64() || (v->is_double() && std::floor(v->get_double()) == v->get_double());
    if (spec.type == "boolean") ok = v->is_bool();
    if (spec.type == "object") ok = v->is_object();
    if (spec.type == "array") ok = v->is_array();
    if (!ok) {
      fail(name, "wrong_type", "input '" + name + "' must be of type " + spec.type);
      continue;
    }
    if (!spec.enum_values.empty() &&
        std::find(spec.enum_values.begin(), spec.enum_values.end(), *v) == spec.enum_values.end()) {
      fail(name, "not_allowed", "input '" + name + "' must be one of " + json::serialize(json::array(spec.enum_values.begin(), spec.enum_values.end())));
      continue;
    }
    out[name] = *v;
  }
  if (!problems.empty()) return Error::validation("invalid inputs", std::move(problems));
  return out;
}

}  // namespace dp::workflow
