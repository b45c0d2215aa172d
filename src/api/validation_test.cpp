#include "api/validation.hpp"

#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dp::api {
namespace {

boost::json::object obj(std::string_view json) { return boost::json::parse(json).as_object(); }

// The problems a validator collected, as (field, code) pairs, via its public error.
std::vector<std::pair<std::string, std::string>> problems(const Validator& v) {
  std::vector<std::pair<std::string, std::string>> out;
  Status s = v.status("x");
  if (s.ok()) return out;
  for (const auto& p : s.error().details.as_array()) {
    out.emplace_back(std::string(p.at("field").as_string()), std::string(p.at("code").as_string()));
  }
  return out;
}

using Problems = std::vector<std::pair<std::string, std::string>>;

TEST(ValidatorTest, NoProblemsIsOk) {
  Validator v;
  EXPECT_TRUE(v.ok());
  EXPECT_TRUE(v.status("agent").ok());
}

TEST(ValidatorTest, StatusIsOneValidationErrorListingEveryProblem) {
  Validator v;
  v.fail("name", "required", "name is required");
  v.fail("type", "not_allowed", "type must be one of: a, b");
  EXPECT_FALSE(v.ok());
  Status s = v.status("agent");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().reason, "validation_failed");
  EXPECT_EQ(s.error().message, "agent: 2 problems");
  const auto& d = s.error().details.as_array();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].at("field").as_string(), "name");
  EXPECT_EQ(d[0].at("code").as_string(), "required");
  EXPECT_EQ(d[0].at("message").as_string(), "name is required");
  EXPECT_EQ(d[1].at("field").as_string(), "type");
}

TEST(ValidatorTest, SingularProblemMessage) {
  Validator v;
  v.fail("a", "b", "c");
  EXPECT_EQ(v.status("agent").error().message, "agent: 1 problem");
}

TEST(ValidatorTest, OnlyKeysReportsEachUnknownFieldWithPrefix) {
  Validator v;
  v.only_keys(obj(R"({"command":"x","bogus":1,"other":2})"), {"command", "args"}, "config.");
  EXPECT_EQ(problems(v), (Problems{{"config.bogus", "unknown_field"},
                                   {"config.other", "unknown_field"}}));
  Validator ok;
  ok.only_keys(obj(R"({"command":"x"})"), {"command", "args"});
  EXPECT_TRUE(ok.ok());
}

TEST(ValidatorTest, StringRequiredAbsentAndNull) {
  Validator v;
  EXPECT_FALSE(v.string(obj("{}"), "name", "name", true, 1, 10));
  EXPECT_FALSE(v.string(obj(R"({"name":null})"), "name", "name2", true, 1, 10));
  EXPECT_FALSE(v.string(obj("{}"), "description", "description", false, 0, 10));
  EXPECT_EQ(problems(v), (Problems{{"name", "required"}, {"name2", "required"}}));
}

TEST(ValidatorTest, StringWrongTypeAndLengthInCodePoints) {
  Validator v;
  EXPECT_FALSE(v.string(obj(R"({"a":5})"), "a", "a", true, 1, 10));
  EXPECT_FALSE(v.string(obj(R"({"a":""})"), "a", "short", true, 1, 10));
  EXPECT_FALSE(v.string(obj(R"({"a":"abcdefghijk"})"), "a", "long", true, 1, 10));
  EXPECT_EQ(problems(v),
            (Problems{{"a", "wrong_type"}, {"short", "too_short"}, {"long", "too_long"}}));

  Validator ok;
  // Ten code points, twenty bytes: within 1..10.
  const auto s = ok.string(obj(R"({"a":"éééééééééé"})"), "a", "a", true, 1, 10);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->size(), 20u);
  EXPECT_TRUE(ok.ok());
}

TEST(ValidatorTest, StringRejectsInvalidUtf8) {
  boost::json::object o;
  o["a"] = std::string("\xC3\x28");  // bad continuation byte
  Validator v;
  EXPECT_FALSE(v.string(o, "a", "a", true, 0, 10));
  EXPECT_EQ(problems(v), (Problems{{"a", "invalid_utf8"}}));
}

TEST(ValidatorTest, Integer) {
  Validator v;
  EXPECT_EQ(v.integer(obj(R"({"n":5})"), "n", "n", true, 0, 10), 5);
  EXPECT_EQ(v.integer(obj(R"({"n":3.0})"), "n", "n", true, 0, 10), 3);
  EXPECT_EQ(v.integer(obj(R"({"n":-3})"), "n", "n", true, -5, 10), -3);
  EXPECT_TRUE(v.ok());
  EXPECT_FALSE(v.integer(obj(R"({"n":3.5})"), "n", "frac", true, 0, 10));
  EXPECT_FALSE(v.integer(obj(R"({"n":"5"})"), "n", "str", true, 0, 10));
  EXPECT_FALSE(v.integer(obj(R"({"n":true})"), "n", "bool", true, 0, 10));
  EXPECT_FALSE(v.integer(obj(R"({"n":11})"), "n", "high", true, 0, 10));
  EXPECT_FALSE(v.integer(obj(R"({"n":-1})"), "n", "low", true, 0, 10));
  EXPECT_FALSE(v.integer(obj(R"({"n":18446744073709551615})"), "n", "huge", true, 0, 10));
  EXPECT_FALSE(v.integer(obj(R"({"n":1e300})"), "n", "hugedouble", true, 0, 10));
  EXPECT_FALSE(v.integer(obj("{}"), "n", "missing", true, 0, 10));
  EXPECT_FALSE(v.integer(obj("{}"), "n", "optional", false, 0, 10));
  EXPECT_EQ(problems(v), (Problems{{"frac", "wrong_type"},
                                   {"str", "wrong_type"},
                                   {"bool", "wrong_type"},
                                   {"high", "out_of_range"},
                                   {"low", "out_of_range"},
                                   {"huge", "wrong_type"},
                                   {"hugedouble", "wrong_type"},
                                   {"missing", "required"}}));
}

TEST(ValidatorTest, IntegerAcceptsBoundsAndLargeUnsigned) {
  Validator v;
  EXPECT_EQ(v.integer(obj(R"({"n":0})"), "n", "n", true, 0, 10), 0);
  EXPECT_EQ(v.integer(obj(R"({"n":10})"), "n", "n", true, 0, 10), 10);
  EXPECT_EQ(v.integer(obj(R"({"n":9223372036854775807})"), "n", "n", true, 0, INT64_MAX),
            INT64_MAX);
  EXPECT_TRUE(v.ok());
}

TEST(ValidatorTest, Number) {
  Validator v;
  EXPECT_EQ(v.number(obj(R"({"t":0.5})"), "t", "t", true, 0.0, 2.0), 0.5);
  EXPECT_EQ(v.number(obj(R"({"t":2})"), "t", "t", true, 0.0, 2.0), 2.0);
  EXPECT_TRUE(v.ok());
  EXPECT_FALSE(v.number(obj(R"({"t":2.01})"), "t", "high", true, 0.0, 2.0));
  EXPECT_FALSE(v.number(obj(R"({"t":"1"})"), "t", "str", true, 0.0, 2.0));
  EXPECT_FALSE(v.number(obj(R"({})"), "t", "missing", true, 0.0, 2.0));
  EXPECT_EQ(problems(v), (Problems{{"high", "out_of_range"}, {"str", "wrong_type"},
                                   {"missing", "required"}}));
}

TEST(ValidatorTest, Boolean) {
  Validator v;
  EXPECT_EQ(v.boolean(obj(R"({"b":false})"), "b", "b", true), false);
  EXPECT_TRUE(v.ok());
  EXPECT_FALSE(v.boolean(obj(R"({"b":0})"), "b", "int", true));
  EXPECT_FALSE(v.boolean(obj(R"({"b":"true"})"), "b", "str", true));
  EXPECT_FALSE(v.boolean(obj(R"({})"), "b", "missing", true));
  EXPECT_EQ(problems(v),
            (Problems{{"int", "wrong_type"}, {"str", "wrong_type"}, {"missing", "required"}}));
}

TEST(ValidatorTest, OneOf) {
  Validator v;
  EXPECT_EQ(v.one_of(obj(R"({"k":"llm"})"), "k", "type", true, {"command", "llm"}), "llm");
  EXPECT_TRUE(v.ok());
  EXPECT_FALSE(v.one_of(obj(R"({"k":"LLM"})"), "k", "case", true, {"command", "llm"}));
  EXPECT_FALSE(v.one_of(obj(R"({"k":1})"), "k", "int", true, {"command", "llm"}));
  EXPECT_FALSE(v.one_of(obj(R"({})"), "k", "missing", true, {"command", "llm"}));
  EXPECT_EQ(problems(v), (Problems{{"case", "not_allowed"}, {"int", "not_allowed"},
                                   {"missing", "required"}}));
  EXPECT_NE(v.status("x").error().details.as_array()[0].at("message").as_string().find(
                "command, llm"),
            std::string::npos);
}

TEST(ValidatorTest, ObjectAndArray) {
  Validator v;
  ASSERT_NE(v.object(obj(R"({"o":{}})"), "o", "o", true), nullptr);
  ASSERT_NE(v.array(obj(R"({"a":[1,2]})"), "a", "a", true, 2), nullptr);
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.object(obj(R"({"o":[]})"), "o", "obj", true), nullptr);
  EXPECT_EQ(v.object(obj(R"({})"), "o", "objmissing", true), nullptr);
  EXPECT_EQ(v.array(obj(R"({"a":{}})"), "a", "arr", true, 2), nullptr);
  EXPECT_EQ(v.array(obj(R"({"a":[1,2,3]})"), "a", "many", true, 2), nullptr);
  EXPECT_EQ(v.array(obj(R"({})"), "a", "optional", false, 2), nullptr);
  EXPECT_EQ(problems(v), (Problems{{"obj", "wrong_type"},
                                   {"objmissing", "required"},
                                   {"arr", "wrong_type"},
                                   {"many", "too_many"}}));
}

TEST(ValidatorTest, StringMap) {
  Validator v;
  auto m = v.string_map(obj(R"({"labels":{"team":"core","env":"prod"}})"), "labels", "labels", 2,
                        8, 8);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->size(), 2u);
  EXPECT_FALSE(v.string_map(obj("{}"), "labels", "labels", 2, 8, 8).has_value());
  EXPECT_TRUE(v.ok()) << "absent map is optional";

  EXPECT_FALSE(v.string_map(obj(R"({"l":{"a":"1","b":"2","c":"3"}})"), "l", "many", 2, 8, 8));
  EXPECT_FALSE(v.string_map(obj(R"({"l":{"":"1"}})"), "l", "empty", 2, 8, 8));
  EXPECT_FALSE(v.string_map(obj(R"({"l":{"toolongkey":"1"}})"), "l", "longkey", 2, 8, 8));
  EXPECT_FALSE(v.string_map(obj(R"({"l":{"a\tb":"1"}})"), "l", "ctl", 2, 8, 8));
  EXPECT_FALSE(v.string_map(obj(R"({"l":{"a":1}})"), "l", "val", 2, 8, 8));
  EXPECT_FALSE(v.string_map(obj(R"({"l":{"a":"123456789"}})"), "l", "longval", 2, 8, 8));
  EXPECT_FALSE(v.string_map(obj(R"({"l":"x"})"), "l", "notobj", 2, 8, 8));
  EXPECT_EQ(problems(v), (Problems{{"many", "too_many"},
                                   {"empty.", "bad_key"},
                                   {"longkey.toolongkey", "bad_key"},
                                   {"ctl.a\tb", "bad_key"},
                                   {"val.a", "wrong_type"},
                                   {"longval.a", "too_long"},
                                   {"notobj", "wrong_type"}}));
}

TEST(ValidatorTest, StringMapReportsEveryBadEntry) {
  Validator v;
  EXPECT_FALSE(v.string_map(obj(R"({"l":{"a":1,"b":2,"ok":"x"}})"), "l", "l", 8, 8, 8));
  EXPECT_EQ(problems(v), (Problems{{"l.a", "wrong_type"}, {"l.b", "wrong_type"}}));
}

TEST(ValidatorTest, StringList) {
  Validator v;
  v.string_list(obj(R"({"c":["make","all"]})"), "c", "c", true, 4, 8);
  v.string_list(obj(R"({"c":"make all"})"), "c", "c", true, 4, 8, /*allow_string=*/true);
  v.string_list(obj(R"({})"), "c", "c", false, 4, 8);
  v.string_list(obj(R"({"c":[]})"), "c", "c", false, 4, 8);
  EXPECT_TRUE(v.ok());

  v.string_list(obj(R"({})"), "c", "missing", true, 4, 8);
  v.string_list(obj(R"({"c":[]})"), "c", "emptyreq", true, 4, 8);
  v.string_list(obj(R"({"c":"x"})"), "c", "nostring", true, 4, 8);
  v.string_list(obj(R"({"c":""})"), "c", "emptystr", true, 4, 8, true);
  v.string_list(obj(R"({"c":"123456789"})"), "c", "longstr", true, 4, 8, true);
  v.string_list(obj(R"({"c":["a",1,"123456789"]})"), "c", "items", true, 4, 8);
  v.string_list(obj(R"({"c":["a","b","c","d","e"]})"), "c", "many", true, 4, 8);
  EXPECT_EQ(problems(v), (Problems{{"missing", "required"},
                                   {"emptyreq", "required"},
                                   {"nostring", "wrong_type"},
                                   {"emptystr", "bad_length"},
                                   {"longstr", "bad_length"},
                                   {"items[1]", "wrong_type"},
                                   {"items[2]", "wrong_type"},
                                   {"many", "too_many"}}));
}

TEST(Utf8Test, CountsCodePoints) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("é"), 1u);                  // 2 bytes
  EXPECT_EQ(utf8_length("€"), 1u);                  // 3 bytes
  EXPECT_EQ(utf8_length("\xF0\x9F\x98\x80"), 1u);   // U+1F600, 4 bytes
  EXPECT_EQ(utf8_length("\xF4\x8F\xBF\xBF"), 1u);   // U+10FFFF, the last code point
  EXPECT_EQ(utf8_length("a\xE2\x82\xAC" "b"), 3u);
}

TEST(Utf8Test, RejectsMalformedSequences) {
  const std::vector<std::string> bad = {
      "\x80",              // lone continuation byte
      "\xC3",              // truncated 2-byte sequence
      "\xE2\x82",          // truncated 3-byte sequence
      "\xC3\x28",          // bad continuation
      "\xF8\x88\x80\x80",  // 5-byte form
      "\xFF",
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong
      "\xE0\x80\xAF",      // overlong '/'
      "\xF0\x80\x80\xAF",  // overlong '/'
      "\xED\xA0\x80",      // UTF-16 surrogate U+D800
      "\xF4\x90\x80\x80",  // U+110000, beyond Unicode
      "\xF5\x80\x80\x80",
  };
  for (const auto& s : bad) {
    EXPECT_FALSE(utf8_length(s).has_value()) << ::testing::PrintToString(s);
  }
}

TEST(ValidatorTest, QueryPagingParameters) {
  Validator v;
  int limit = 50;
  std::optional<std::string> cursor;
  v.query_limit("20", 500, limit);
  v.query_cursor("0190aaaa-bbbb-7ccc-8ddd-000000000001", cursor);
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(limit, 20);
  EXPECT_EQ(cursor, "0190aaaa-bbbb-7ccc-8ddd-000000000001");
  // Bad values are reported and change nothing.
  for (const char* bad : {"0", "501", "-1", "1x", "", " 5", "99999999999"}) {
    Validator b;
    b.query_limit(bad, 500, limit);
    EXPECT_FALSE(b.ok()) << bad;
    EXPECT_EQ(limit, 20) << bad;
  }
  Validator c;
  c.query_cursor("../etc", cursor);
  c.unknown_query(std::string(100, 'k'));
  auto s = c.status("invalid query");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(cursor, "0190aaaa-bbbb-7ccc-8ddd-000000000001");
  const auto& problems = s.error().details.as_array();
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].at("field"), "cursor");
  EXPECT_EQ(problems[0].at("code"), "bad_format");
  EXPECT_EQ(problems[1].at("field").as_string().size(), 64u);
  EXPECT_EQ(problems[1].at("code"), "unknown_parameter");
  Validator m;
  m.query_limit("10001", 10'000, limit);
  EXPECT_EQ(m.status("q").error().details.as_array()[0].at("message"),
            "limit must be an integer in 1..10000");
}

TEST(Utf8Test, ControlCharacters) {
  EXPECT_FALSE(has_control_chars("plain text é"));
  EXPECT_FALSE(has_control_chars(""));
  EXPECT_TRUE(has_control_chars("a\nb"));
  EXPECT_TRUE(has_control_chars("a\tb"));
  EXPECT_TRUE(has_control_chars(std::string_view("a\0b", 3)));
  EXPECT_TRUE(has_control_chars("\x1F"));
  EXPECT_TRUE(has_control_chars("\x7F"));
}

}  // namespace
}  // namespace dp::api
