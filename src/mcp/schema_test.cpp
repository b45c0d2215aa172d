#include "mcp/schema.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace dp::mcp {
namespace {

namespace json = boost::json;

const json::object kSchema = json::parse(R"({
  "type": "object",
  "properties": {
    "a": {"type": "number", "minimum": 0, "maximum": 10},
    "n": {"type": "integer"},
    "city": {"type": "string", "enum": ["New York", "Chicago"]},
    "name": {"type": "string", "minLength": 2, "maxLength": 4},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "nested": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]},
    "either": {"anyOf": [{"type": "string"}, {"type": "null"}]}
  },
  "required": ["a"],
  "additionalProperties": false
})").as_object();

std::vector<std::string> fields(std::string_view args) {
  auto s = validate_arguments(json::parse(args), kSchema);
  std::vector<std::string> out;
  if (s.ok()) return out;
  EXPECT_EQ(s.error().reason, "validation_failed");
  for (const auto& p : s.error().details.as_array()) {
    out.push_back(std::string(p.at("field").as_string()) + ":" + std::string(p.at("code").as_string()));
  }
  return out;
}

TEST(SchemaTest, AcceptsValidArguments) {
  EXPECT_TRUE(fields(R"({"a": 3})").empty());
  EXPECT_TRUE(fields(R"({"a": 3.5, "n": 4.0, "city": "Chicago", "name": "héé", "tags": ["x"],
                         "nested": {"x": true}, "either": null})").empty());
}

TEST(SchemaTest, ReportsEachProblemWithItsField) {
  using V = std::vector<std::string>;
  EXPECT_EQ(fields(R"({})"), V{"arguments.a:required"});
  EXPECT_EQ(fields(R"({"a": "two"})"), V{"arguments.a:wrong_type"});
  EXPECT_EQ(fields(R"({"a": 11})"), V{"arguments.a:out_of_range"});
  EXPECT_EQ(fields(R"({"a": 1, "n": 1.5})"), V{"arguments.n:wrong_type"});
  EXPECT_EQ(fields(R"({"a": 1, "city": "Paris"})"), V{"arguments.city:not_allowed"});
  EXPECT_EQ(fields(R"({"a": 1, "name": "x"})"), V{"arguments.name:too_short"});
  EXPECT_EQ(fields(R"({"a": 1, "name": "xxxxx"})"), V{"arguments.name:too_long"});
  EXPECT_EQ(fields(R"({"a": 1, "tags": ["x", 2, "z"]})"),
            (V{"arguments.tags:too_many", "arguments.tags[1]:wrong_type"}));
  EXPECT_EQ(fields(R"({"a": 1, "nested": {}})"), V{"arguments.nested.x:required"});
  EXPECT_EQ(fields(R"({"a": 1, "either": 3})"), V{"arguments.either:no_match"});
  EXPECT_EQ(fields(R"({"a": 1, "extra": 1})"), V{"arguments.extra:unknown_field"});
  EXPECT_EQ(fields(R"([1])"), V{"arguments:wrong_type"});
}

TEST(SchemaTest, BoundsProblemsAndDepth) {
  json::object many;
  for (int i = 0; i < 100; ++i) many["k" + std::to_string(i)] = i;
  many["a"] = 1;
  auto s = validate_arguments(many, kSchema);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().details.as_array().size(), 20u);
  // A self-similar schema over deep input ends; unknown keywords restrict nothing.
  json::value deep = json::object{};
  for (int i = 0; i < 100; ++i) deep = json::object{{"x", deep}};
  const auto loose = json::parse(R"({"type":"object","additionalProperties":{"type":"object","additionalProperties":{"$ref":"#"}},"pattern":"^x$"})").as_object();
  EXPECT_TRUE(validate_arguments(deep, loose).ok());
  EXPECT_TRUE(validate_arguments(json::object{}, json::object{}).ok());
}

}  // namespace
}  // namespace dp::mcp
