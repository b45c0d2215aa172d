#include "api_docs.hpp"

#include <sstream>

#include <boost/json/serialize.hpp>

namespace dp::it::docs {
namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

struct Fence {
  std::size_t line = 0;  // 1-based
  std::string info;
  std::vector<std::string> content;
};

// CommonMark-ish fenced blocks: up to 3 spaces of indent, ``` or ~~~ (3+), closed by a
// fence of the same character at least as long with nothing after it.
std::vector<Fence> fences(const std::string& md, std::vector<std::string>& errors) {
  std::vector<std::string> lines;
  {
    std::istringstream in(md);
    std::string l;
    while (std::getline(in, l)) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(l);
    }
  }
  std::vector<Fence> out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    std::size_t indent = 0;
    while (indent < l.size() && indent < 4 && l[indent] == ' ') ++indent;
    if (indent > 3 || indent >= l.size()) continue;
    const char fc = l[indent];
    if (fc != '`' && fc != '~') continue;
    std::size_t n = 0;
    while (indent + n < l.size() && l[indent + n] == fc) ++n;
    if (n < 3) continue;
    Fence f;
    f.line = i + 1;
    f.info = trim(l.substr(indent + n));
    bool closed = false;
    for (++i; i < lines.size(); ++i) {
      const std::string& c = lines[i];
      std::size_t ci = 0;
      while (ci < c.size() && ci < 4 && c[ci] == ' ') ++ci;
      std::size_t cn = 0;
      while (ci + cn < c.size() && c[ci + cn] == fc) ++cn;
      if (ci <= 3 && cn >= n && trim(c.substr(ci + cn)).empty()) {
        closed = true;
        break;
      }
      // Strip the opening fence's indentation from content lines.
      std::size_t strip = 0;
      while (strip < indent && strip < c.size() && c[strip] == ' ') ++strip;
      f.content.push_back(c.substr(strip));
    }
    if (!closed) errors.push_back("line " + std::to_string(f.line) + ": unclosed code fence");
    out.push_back(std::move(f));
  }
  return out;
}

// Splits "Name: value" lines until a blank line; the rest is the body.
bool head_and_body(const std::vector<std::string>& lines, std::size_t from,
                   std::vector<std::pair<std::string, std::string>>& headers, std::string& body,
                   std::string& error) {
  std::size_t i = from;
  for (; i < lines.size(); ++i) {
    const std::string l = trim(lines[i]);
    if (l.empty()) {
      ++i;
      break;
    }
    const auto colon = l.find(':');
    if (colon == std::string::npos || colon == 0) {
      error = "header line without a colon: '" + l + "'";
      return false;
    }
    headers.emplace_back(trim(l.substr(0, colon)), trim(l.substr(colon + 1)));
  }
  std::string b;
  for (; i < lines.size(); ++i) {
    b += lines[i];
    b += '\n';
  }
  body = trim(b) .empty() ? std::string() : b;
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
  return true;
}

bool parse_request(const Fence& f, ExampleRequest& r, std::string& error) {
  std::size_t i = 0;
  while (i < f.content.size() && trim(f.content[i]).empty()) ++i;
  if (i == f.content.size()) {
    error = "empty request block";
    return false;
  }
  std::istringstream first(trim(f.content[i]));
  std::string version;
  first >> r.method >> r.target >> version;
  if (r.method.empty() || r.target.empty() || r.target.front() != '/' ||
      (!version.empty() && !version.starts_with("HTTP/"))) {
    error = "request line must be 'METHOD /path?query', got '" + trim(f.content[i]) + "'";
    return false;
  }
  for (char c : r.method) {
    if (c < 'A' || c > 'Z') {
      error = "bad method '" + r.method + "'";
      return false;
    }
  }
  return head_and_body(f.content, i + 1, r.headers, r.body, error);
}

bool parse_response(const Fence& f, ExampleResponse& r, std::string& error) {
  std::size_t i = 0;
  while (i < f.content.size() && trim(f.content[i]).empty()) ++i;
  if (i == f.content.size()) {
    error = "empty response block";
    return false;
  }
  const std::string status_line = trim(f.content[i]);
  std::istringstream first(status_line);
  std::string version;
  std::string code;
  first >> version >> code;
  unsigned status = 0;
  bool good = version.starts_with("HTTP/") && code.size() == 3;
  for (char c : code) {
    if (c < '0' || c > '9') good = false;
  }
  if (good) status = static_cast<unsigned>(std::stoul(code));
  if (!good || status < 100 || status > 599) {
    error = "status line must be 'HTTP/1.1 <status> <reason>', got '" + status_line + "'";
    return false;
  }
  r.status = status;
  return head_and_body(f.content, i + 1, r.headers, r.body, error);
}

std::string raw_text(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  return boost::json::serialize(v);
}

// "{{name}}" -> name; else empty.
std::string placeholder_name(std::string_view s) {
  if (s.size() < 5 || !s.starts_with("{{") || !s.ends_with("}}")) return {};
  std::string_view n = s.substr(2, s.size() - 4);
  for (char c : n) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return {};
  }
  return std::string(n);
}

std::string short_json(const boost::json::value& v) {
  std::string s = boost::json::serialize(v);
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

}  // namespace

ParseResult parse_examples(const std::string& markdown) {
  ParseResult out;
  auto fs = fences(markdown, out.errors);
  for (std::size_t i = 0; i < fs.size(); ++i) {
    if (fs[i].info == "http response") {
      out.errors.push_back("line " + std::to_string(fs[i].line) +
                           ": an `http response` block without an `http request` block before it");
      continue;
    }
    if (fs[i].info != "http request") continue;
    Example ex;
    ex.line = fs[i].line;
    if (i + 1 >= fs.size() || fs[i + 1].info != "http response") {
      out.errors.push_back("line " + std::to_string(ex.line) +
                           ": an `http request` block must be followed by an `http response` block");
      continue;
    }
    ++i;
    ex.response_line = fs[i].line;
    std::string error;
    if (!parse_request(fs[i - 1], ex.request, error)) {
      out.errors.push_back("line " + std::to_string(ex.line) + ": " + error);
      continue;
    }
    if (!parse_response(fs[i], ex.response, error)) {
      out.errors.push_back("line " + std::to_string(ex.response_line) + ": " + error);
      continue;
    }
    out.examples.push_back(std::move(ex));
  }
  return out;
}

std::string substitute(const std::string& text, const Bindings& b) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto open = text.find("{{", i);
    if (open == std::string::npos) break;
    const auto close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    const std::string name = text.substr(open + 2, close - open - 2);
    out += text.substr(i, open - i);
    auto it = b.find(name);
    if (it != b.end()) {
      out += raw_text(it->second);
    } else {
      out += text.substr(open, close + 2 - open);
    }
    i = close + 2;
  }
  out += text.substr(i);
  return out;
}

bool match_json(const boost::json::value& expected, const boost::json::value& actual,
                Bindings& b, std::string& why, const std::string& path) {
  if (expected.is_string()) {
    const std::string_view s = expected.get_string();
    if (s == "...") return true;
    if (auto name = placeholder_name(s); !name.empty()) {
      auto it = b.find(name);
      if (it == b.end()) {
        b.emplace(name, actual);
        return true;
      }
      if (it->second != actual) {
        why = path + ": expected {{" + name + "}} = " + short_json(it->second) + ", got " +
              short_json(actual);
        return false;
      }
      return true;
    }
    const std::string want = substitute(std::string(s), b);
    if (!actual.is_string() || actual.get_string() != want) {
      why = path + ": expected " + short_json(boost::json::value(want)) + ", got " +
            short_json(actual);
      return false;
    }
    return true;
  }
  if (expected.is_object()) {
    if (!actual.is_object()) {
      why = path + ": expected an object, got " + short_json(actual);
      return false;
    }
    const auto& ao = actual.get_object();
    for (const auto& kv : expected.get_object()) {
      const std::string p = path + "." + std::string(kv.key());
      const auto* av = ao.if_contains(kv.key());
      if (av == nullptr) {
        why = p + ": missing in the actual response";
        return false;
      }
      if (!match_json(kv.value(), *av, b, why, p)) return false;
    }
    return true;
  }
  if (expected.is_array()) {
    if (!actual.is_array()) {
      why = path + ": expected an array, got " + short_json(actual);
      return false;
    }
    const auto& ea = expected.get_array();
    const auto& aa = actual.get_array();
    const bool open = !ea.empty() && ea.back().is_string() && ea.back().get_string() == "...";
    const std::size_t n = open ? ea.size() - 1 : ea.size();
    if (open ? aa.size() < n : aa.size() != n) {
      why = path + ": expected " + (open ? "at least " : "") + std::to_string(n) +
            " elements, got " + std::to_string(aa.size());
      return false;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!match_json(ea[i], aa[i], b, why, path + "[" + std::to_string(i) + "]")) return false;
    }
    return true;
  }
  // Numbers compare by value across int64/uint64/double; null and bool exactly.
  if (expected.is_number() && actual.is_number()) {
    bool equal = false;
    if (expected.is_double() || actual.is_double()) {
      equal = expected.to_number<double>() == actual.to_number<double>();
    } else {
      equal = expected == actual ||
              (expected.is_int64() && actual.is_uint64() && expected.get_int64() >= 0 &&
               static_cast<std::uint64_t>(expected.get_int64()) == actual.get_uint64()) ||
              (expected.is_uint64() && actual.is_int64() && actual.get_int64() >= 0 &&
               static_cast<std::uint64_t>(actual.get_int64()) == expected.get_uint64());
    }
    if (!equal) why = path + ": expected " + short_json(expected) + ", got " + short_json(actual);
    return equal;
  }
  if (expected != actual) {
    why = path + ": expected " + short_json(expected) + ", got " + short_json(actual);
    return false;
  }
  return true;
}

}  // namespace dp::it::docs
