// Executes the examples in docs/api.md against one fresh server (SQLite), top to bottom.
// The format is described in api_docs.hpp; the parser and matcher have their own tests here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "api_docs.hpp"
#include "harness.hpp"

namespace dp::it {
namespace {

namespace json = boost::json;
using docs::Bindings;

// ------------------------------------------------------------------------------ parser

const char* kSample = R"md(# Agents

Plain blocks are not executed:

```http
GET /not/executed
```

```json
{"not": "executed"}
```

Create one:

```http request
POST /api/v1/agents
Content-Type: application/json
X-Request-Id: doc-1

{"name": "{{prefix}}-a", "type": "remote"}
```

```http response
HTTP/1.1 201 Created
Location: /api/v1/agents/{{id}}

{"data": {"id": "{{id}}", "labels": {}, "tags": ["x", "..."]}}
```

  ```http request
  GET /api/v1/agents/{{id}}?full=1
  ```

  ```http response
  HTTP/1.1 200 OK
  ```
)md";

TEST(ApiDocsParser, FindsOnlyExecutableExamples) {
  auto p = docs::parse_examples(kSample);
  EXPECT_TRUE(p.errors.empty()) << p.errors.front();
  ASSERT_EQ(p.examples.size(), 2u);
  const auto& a = p.examples[0];
  EXPECT_EQ(a.line, 15u);
  EXPECT_EQ(a.response_line, 23u);
  EXPECT_EQ(a.request.method, "POST");
  EXPECT_EQ(a.request.target, "/api/v1/agents");
  ASSERT_EQ(a.request.headers.size(), 2u);
  EXPECT_EQ(a.request.headers[1].first, "X-Request-Id");
  EXPECT_EQ(a.request.headers[1].second, "doc-1");
  EXPECT_EQ(a.request.body, R"({"name": "{{prefix}}-a", "type": "remote"})");
  EXPECT_EQ(a.response.status, 201u);
  ASSERT_EQ(a.response.headers.size(), 1u);
  EXPECT_EQ(a.response.headers[0].second, "/api/v1/agents/{{id}}");
  const auto& b = p.examples[1];
  EXPECT_EQ(b.line, 30u);
  EXPECT_EQ(b.request.target, "/api/v1/agents/{{id}}?full=1");
  EXPECT_TRUE(b.request.body.empty());
  EXPECT_EQ(b.response.status, 200u);
  EXPECT_TRUE(b.response.body.empty());
}

TEST(ApiDocsParser, ReportsMalformedExamplesWithTheirLine) {
  auto p = docs::parse_examples(
      "```http request\nGET /a\n```\n\ntext\n\n```json\n{}\n```\n"  // request not followed
      "```http response\nHTTP/1.1 200 OK\n```\n"                    // orphan response
      "```http request\nfetch it\n```\n```http response\nHTTP/1.1 200 OK\n```\n"
      "```http request\nGET /b\n```\n```http response\nHTTP/1.1 abc OK\n```\n");
  EXPECT_TRUE(p.examples.empty());
  ASSERT_EQ(p.errors.size(), 4u);
  EXPECT_TRUE(p.errors[0].starts_with("line 1:")) << p.errors[0];
  EXPECT_TRUE(p.errors[1].starts_with("line 10:")) << p.errors[1];
  EXPECT_TRUE(p.errors[2].starts_with("line 13:")) << p.errors[2];
  EXPECT_TRUE(p.errors[3].starts_with("line 22:")) << p.errors[3];
}

bool matches(const std::string& expected, const std::string& actual, Bindings& b,
             std::string* why_out = nullptr) {
  std::string why;
  const bool ok = docs::match_json(json::parse(expected), json::parse(actual), b, why);
  if (why_out != nullptr) *why_out = why;
  return ok;
}

TEST(ApiDocsMatcher, SubsetEllipsisAndBindings) {
  Bindings b;
  EXPECT_TRUE(matches(R"({"a":1})", R"({"a":1,"extra":true})", b));
  EXPECT_FALSE(matches(R"({"a":1,"b":2})", R"({"a":1})", b));
  EXPECT_FALSE(matches(R"({"a":1})", R"({"a":2})", b));
  EXPECT_FALSE(matches(R"({"a":"1"})", R"({"a":1})", b));
  EXPECT_TRUE(matches(R"({"a":1.0})", R"({"a":1})", b));
  EXPECT_TRUE(matches(R"([1,2])", R"([1,2])", b));
  EXPECT_FALSE(matches(R"([1,2])", R"([1,2,3])", b));
  EXPECT_FALSE(matches(R"([1,2,3])", R"([1,2])", b));
  EXPECT_TRUE(matches(R"([1,"..."])", R"([1,2,3])", b));
  EXPECT_TRUE(matches(R"([1,"..."])", R"([1])", b));
  EXPECT_FALSE(matches(R"([2,"..."])", R"([1,2])", b));
  EXPECT_TRUE(matches(R"(["..."])", R"([])", b));
  EXPECT_TRUE(matches(R"({"a":"..."})", R"({"a":{"deep":[1]}})", b));
  EXPECT_FALSE(matches(R"({"a":"..."})", R"({"b":1})", b)) << "'...' still needs the key";
  EXPECT_TRUE(matches(R"({"a":[{"x":1},"..."]})", R"({"a":[{"x":1,"y":2},{"x":5}]})", b));
  EXPECT_TRUE(matches(R"({"n":null,"t":true})", R"({"n":null,"t":true})", b));
  EXPECT_FALSE(matches(R"({"n":null})", R"({"n":false})", b));

  // Bind on first sight, compare later.
  EXPECT_TRUE(matches(R"({"id":"{{id}}","v":"{{v}}"})", R"({"id":"abc","v":3})", b));
  EXPECT_EQ(b.at("id"), "abc");
  EXPECT_EQ(b.at("v"), 3);
  EXPECT_TRUE(matches(R"({"same":"{{id}}"})", R"({"same":"abc"})", b));
  std::string why;
  EXPECT_FALSE(matches(R"({"x":{"same":"{{id}}"}})", R"({"x":{"same":"abd"}})", b, &why));
  EXPECT_NE(why.find("$.x.same"), std::string::npos) << why;
  EXPECT_TRUE(matches(R"({"loc":"/api/v1/agents/{{id}}"})", R"({"loc":"/api/v1/agents/abc"})", b));
  EXPECT_FALSE(matches(R"({"loc":"/api/v1/agents/{{id}}"})", R"({"loc":"/api/v1/agents/x"})", b));
}

TEST(ApiDocsMatcher, Substitution) {
  Bindings b{{"id", json::value("0190-abc")}, {"v", json::value(7)}};
  EXPECT_EQ(docs::substitute("/api/v1/agents/{{id}}?x={{v}}", b), "/api/v1/agents/0190-abc?x=7");
  EXPECT_EQ(docs::substitute(R"({"version": {{v}}, "n": "{{unbound}}"})", b),
            R"({"version": 7, "n": "{{unbound}}"})");
  EXPECT_EQ(docs::substitute("no braces {{", b), "no braces {{");
}

// ------------------------------------------------------------------------------ runner

bool header_matches(const HttpResponse& r, const std::string& name, const std::string& want,
                    Bindings& b, std::string& why) {
  if (!r.has_header(name)) {
    why = "header " + name + " is missing";
    return false;
  }
  const std::string got = r.header(name);
  // A value that is exactly {{name}} of an unbound name binds it.
  if (want.size() > 4 && want.starts_with("{{") && want.ends_with("}}")) {
    const std::string key = want.substr(2, want.size() - 4);
    if (!b.contains(key)) {
      b.emplace(key, json::value(got));
      return true;
    }
  }
  const std::string expected = docs::substitute(want, b);
  if (got != expected) {
    why = "header " + name + ": expected '" + expected + "', got '" + got + "'";
    return false;
  }
  return true;
}

TEST(ApiDocs, ExamplesInApiMdRunAgainstTheServer) {
  const auto path = std::filesystem::path(source_dir()) / "docs" / "api.md";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << path << " does not exist or cannot be read";
  std::ostringstream ss;
  ss << in.rdbuf();
  auto parsed = docs::parse_examples(ss.str());
  for (const auto& e : parsed.errors) ADD_FAILURE() << "docs/api.md " << e;
  ASSERT_FALSE(parsed.examples.empty())
      << "docs/api.md has no executable examples (```http request + ```http response)";

  TestServer server(Backend::kSqlite);
  ASSERT_EQ(server.error(), "");
  HttpClient client(server.port());
  // The harness's first-run admin password, for the sign-in examples.
  Bindings b{{"adminPassword", json::value(kAdminPassword)}};
  int failed = 0;
  for (const auto& ex : parsed.examples) {
    const std::string where = "docs/api.md line " + std::to_string(ex.line) + " (" +
                              ex.request.method + " " + ex.request.target + ")";
    Headers headers;
    for (const auto& [k, v] : ex.request.headers) headers.emplace_back(k, docs::substitute(v, b));
    const std::string target = docs::substitute(ex.request.target, b);
    const std::string body = docs::substitute(ex.request.body, b);
    auto r = client.request(ex.request.method, target, body, headers);
    std::string why;
    if (r.status == 0) {
      why = "no response: " + client.error();
    } else if (r.status != ex.response.status) {
      why = "status: expected " + std::to_string(ex.response.status) + ", got " +
            std::to_string(r.status);
    }
    // The body first: it binds {{names}} that a header such as Location may then use.
    if (why.empty() && !ex.response.body.empty()) {
      boost::system::error_code ec;
      auto expected = json::parse(ex.response.body, ec);
      if (ec) {
        // Not JSON (e.g. Prometheus text): must appear verbatim.
        const std::string want = docs::substitute(ex.response.body, b);
        if (r.body.find(want) == std::string::npos) why = "body does not contain the expected text";
      } else if (!r.json) {
        why = "the response body is not JSON";
      } else {
        docs::match_json(expected, *r.json, b, why);
      }
    }
    if (why.empty()) {
      for (const auto& [k, v] : ex.response.headers) {
        if (!header_matches(r, k, v, b, why)) break;
      }
    }
    if (!why.empty()) {
      ++failed;
      ADD_FAILURE() << where << ": " << why << "\n  actual: " << r.describe();
    }
  }
  std::printf("docs/api.md: %zu executable examples, %d failed\n", parsed.examples.size(), failed);
  auto health = client.get("/api/v1/system/health");
  EXPECT_EQ(health.status, 200u) << "the server is healthy after the examples";
}

}  // namespace
}  // namespace dp::it
