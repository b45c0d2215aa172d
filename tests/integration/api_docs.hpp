// Executable examples in docs/api.md: parsing, substitution and response matching.
//
// An example is a fenced block whose info string is exactly `http request`, followed (as the
// next fenced block) by one whose info string is `http response`. Other blocks are ignored.
//
// Request block:  `METHOD /path?query`, header lines `Name: value`, a blank line, a body.
// Response block: `HTTP/1.1 <status> <reason>`, header lines, a blank line, a JSON body.
//
// Matching: the expected JSON is a subset of the actual one (objects: every expected key,
// extra actual keys allowed; arrays: same length, unless the last expected element is "...";
// the string "..." matches anything; "{{name}}" matches anything and binds `name` the first
// time, later it must equal the bound value). Other expected strings containing `{{name}}`
// of a bound name are compared after substitution. `{{name}}` in a request line, header or
// body is replaced by the bound value (a string's text, or other values' JSON).
// A header value that is exactly `{{name}}` of an unbound name binds it.
// An expected body that is not JSON must appear verbatim (after substitution) in the actual one.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

namespace dp::it::docs {

struct ExampleRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct ExampleResponse {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // raw text; JSON when non-empty (normally)
};

struct Example {
  std::size_t line = 0;           // 1-based line of the request block's opening fence
  std::size_t response_line = 0;  // same for the response block
  ExampleRequest request;
  ExampleResponse response;
};

struct ParseResult {
  std::vector<Example> examples;
  std::vector<std::string> errors;  // each names its line
};

ParseResult parse_examples(const std::string& markdown);

using Bindings = std::map<std::string, boost::json::value>;

// Replaces every {{name}} of a bound name with its raw text; unbound names stay as they are.
std::string substitute(const std::string& text, const Bindings& b);

// Subset match of `expected` against `actual`; binds names. On mismatch returns false and
// sets `why` to a message naming the JSON path.
bool match_json(const boost::json::value& expected, const boost::json::value& actual,
                Bindings& b, std::string& why, const std::string& path = "$");

}  // namespace dp::it::docs
