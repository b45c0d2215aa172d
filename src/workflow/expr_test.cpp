#include "workflow/expr.hpp"

#include <random>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace dp::workflow::expr {
namespace {

namespace json = boost::json;

json::object ctx() {
  return json::parse(R"({
    "inputs": {"count": 3, "name": "devplane", "flag": true, "list": ["a", "b"], "ratio": 0.5},
    "steps": {"build": {"status": "succeeded", "outputs": {"artifact": "out.tar", "n": 2,
               "nested": {"k": [10, 20]}}}},
    "item": "x.txt", "index": 1
  })").as_object();
}

json::value eval(std::string_view src) {
  auto e = Expression::parse(src);
  EXPECT_TRUE(e.ok()) << src << ": " << (e.ok() ? "" : e.error().message);
  if (!e.ok()) return nullptr;
  auto v = e->eval(ctx());
  EXPECT_TRUE(v.ok()) << src << ": " << (v.ok() ? "" : v.error().message);
  return v.ok() ? *v : json::value(nullptr);
}

TEST(ExprTest, LiteralsAndNames) {
  EXPECT_EQ(eval("42"), json::value(42));
  EXPECT_EQ(eval("1.5"), json::value(1.5));
  EXPECT_EQ(eval("'it''s'"), json::value("it's"));
  EXPECT_EQ(eval("\"q\\\"d\""), json::value("q\"d"));
  EXPECT_EQ(eval("true"), json::value(true));
  EXPECT_EQ(eval("null"), json::value(nullptr));
  EXPECT_EQ(eval("inputs.count"), json::value(3));
  EXPECT_EQ(eval("steps.build.outputs.artifact"), json::value("out.tar"));
  EXPECT_EQ(eval("steps.build.status"), json::value("succeeded"));
  EXPECT_EQ(eval("steps['build'].outputs.nested.k[1]"), json::value(20));
  EXPECT_EQ(eval("inputs.list[index]"), json::value("b"));
  EXPECT_EQ(eval("inputs.missing"), json::value(nullptr));
  EXPECT_EQ(eval("inputs.count.deeper"), json::value(nullptr));
  EXPECT_EQ(eval("inputs.list[7]"), json::value(nullptr));
}

TEST(ExprTest, Operators) {
  EXPECT_EQ(eval("inputs.count == 3"), json::value(true));
  EXPECT_EQ(eval("inputs.count == 3.0"), json::value(true));
  EXPECT_EQ(eval("inputs.count != 3"), json::value(false));
  EXPECT_EQ(eval("inputs.count < 4 && inputs.count >= 3"), json::value(true));
  EXPECT_EQ(eval("inputs.count > 3 || inputs.flag"), json::value(true));
  EXPECT_EQ(eval("!inputs.flag"), json::value(false));
  EXPECT_EQ(eval("!(inputs.count <= 2)"), json::value(true));
  EXPECT_EQ(eval("'abc' < 'abd'"), json::value(true));
  EXPECT_EQ(eval("-inputs.count"), json::value(-3));
  EXPECT_EQ(eval("inputs.missing || 'fallback'"), json::value("fallback"));
  EXPECT_EQ(eval("inputs.name && 'yes'"), json::value("yes"));
  EXPECT_EQ(eval("inputs.list == fromJSON('[\"a\",\"b\"]')"), json::value(true));
  // Precedence: && binds tighter than ||, comparisons tighter than &&.
  EXPECT_EQ(eval("true || false && false"), json::value(true));
  EXPECT_EQ(eval("1 < 2 == true"), json::value(true));
}

TEST(ExprTest, Functions) {
  EXPECT_EQ(eval("contains(inputs.name, 'plane')"), json::value(true));
  EXPECT_EQ(eval("contains(inputs.list, 'b')"), json::value(true));
  EXPECT_EQ(eval("contains(inputs.list, 'z')"), json::value(false));
  EXPECT_EQ(eval("startsWith(inputs.name, 'dev')"), json::value(true));
  EXPECT_EQ(eval("endsWith(item, '.txt')"), json::value(true));
  EXPECT_EQ(eval("endsWith('a', 'long suffix')"), json::value(false));
  EXPECT_EQ(eval("len(inputs.list)"), json::value(2));
  EXPECT_EQ(eval("len(inputs.name)"), json::value(8));
  EXPECT_EQ(eval("toJSON(inputs.list)"), json::value("[\"a\",\"b\"]"));
  EXPECT_EQ(eval("fromJSON('{\"a\":1}').a"), json::value(1));
  EXPECT_EQ(eval("join(inputs.list, '+')"), json::value("a+b"));
}

TEST(ExprTest, RuntimeErrorsAreValues) {
  for (const char* src : {"inputs.name < 3", "-inputs.name", "len(inputs.flag)",
                          "fromJSON('{bad')", "contains(1)", "fromJSON(3)"}) {
    auto e = Expression::parse(src);
    ASSERT_TRUE(e.ok()) << src;
    auto v = e->eval(ctx());
    ASSERT_FALSE(v.ok()) << src;
    EXPECT_EQ(v.error().reason, "expression_failed") << src;
  }
}

TEST(ExprTest, ParseErrorsNameTheProblem) {
  for (const char* src : {"", "   ", "inputs.", "1 +", "(1", "a[1", "'open", "f(1)", "1 === 2",
                          "a..b", "#", "inputs.x &&", "contains(a,", "a ] b", "12abc",
                          "\x01", "!", "()"}) {
    auto e = Expression::parse(src);
    ASSERT_FALSE(e.ok()) << src;
    EXPECT_EQ(e.error().reason, "bad_expression") << src;
    EXPECT_FALSE(e.error().message.empty());
  }
}

TEST(ExprTest, ReferencesAreCollected) {
  auto e = Expression::parse("steps.a.outputs['x'] == inputs.y && contains(steps.b.status, 'ok') || item[index]");
  ASSERT_TRUE(e.ok());
  std::vector<std::string> flat;
  for (const auto& r : e->references()) {
    std::string s;
    for (const auto& p : r) s += (s.empty() ? "" : ".") + p;
    flat.push_back(s);
  }
  EXPECT_EQ(flat, (std::vector<std::string>{"steps.a.outputs.x", "inputs.y", "steps.b.status",
                                            "item", "index"}));
}

TEST(ExprTest, BoundedInSizeDepthAndTime) {
  EXPECT_FALSE(Expression::parse(std::string(5000, '1')).ok());
  EXPECT_FALSE(Expression::parse(std::string(200, '(') + "1" + std::string(200, ')')).ok());
  EXPECT_FALSE(Expression::parse(std::string(300, '!') + "1").ok());
  std::string wide = "1";
  for (int i = 0; i < 400; ++i) wide += " || 1";
  EXPECT_FALSE(Expression::parse(wide).ok());  // more nodes than allowed

  Limits tight;
  tight.max_steps = 10;
  std::string chain = "0";
  for (int i = 0; i < 20; ++i) chain += " || 0";
  auto e = Expression::parse(chain, tight);
  ASSERT_TRUE(e.ok());
  auto v = e->eval(ctx());
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("steps"), std::string::npos);

  // String growth is capped: a big list joined past max_string fails instead of growing.
  Limits small;
  small.max_string = 100;
  json::object big{{"l", json::array(200, json::value("abcdef"))}};
  auto j = Expression::parse("join(l, '-')", small);
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(j->eval(big).ok());
  auto t = Expression::parse("toJSON(l)", small);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->eval(big).ok());
}

TEST(ExprTest, TemplatesKeepTypesWhenAlone) {
  auto v = render(json::parse(R"({"n": "${{ inputs.count }}", "s": "v=${{inputs.count}}/${{ item }}",
                                 "l": ["${{ inputs.list }}", "plain"], "o": {"f": "${{ inputs.flag }}"}})"),
                  ctx());
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(json::serialize(*v),
            R"({"n":3,"s":"v=3/x.txt","l":[["a","b"],"plain"],"o":{"f":true}})");
  EXPECT_FALSE(render(json::value("${{ inputs.count "), ctx()).ok());
  EXPECT_FALSE(render(json::value("${{ 1 + }}"), ctx()).ok());
  auto parts = find_templates("a ${{ x }} b ${{y}}");
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].expression, "x");
  EXPECT_EQ((*parts)[1].expression, "y");
}

// Fuzz-ish: random token soup and random bytes never crash, hang or throw; each either parses
// and evaluates to a value or an error, within the budget.
TEST(ExprTest, RandomInputNeverCrashes) {
  const std::vector<std::string> atoms = {"inputs", ".", "count", "steps", "build", "outputs", "[",
                                          "]",      "(", ")",     "'s'",   "1",     "2.5",     "==",
                                          "!=",     "<", ">=",    "&&",    "||",    "!",       "-",
                                          "len",    "contains", ",", "toJSON", "fromJSON", "'[1]'",
                                          "join",   "item", "null", "true", " "};
  std::mt19937 rng(12345);
  int parsed = 0;
  for (int i = 0; i < 8000; ++i) {
    std::string src;
    const int n = static_cast<int>(rng() % 24) + 1;
    for (int k = 0; k < n; ++k) src += atoms[rng() % atoms.size()];
    auto e = Expression::parse(src);
    if (!e.ok()) continue;
    ++parsed;
    (void)e->eval(ctx());
  }
  EXPECT_GT(parsed, 100);
  for (int i = 0; i < 2000; ++i) {
    std::string src(rng() % 64, '\0');
    for (auto& c : src) c = static_cast<char>(rng() % 256);
    auto e = Expression::parse(src);
    if (e.ok()) (void)e->eval(ctx());
    (void)render(json::value(json::string("${{" + src + "}}")), ctx());
  }
}

}  // namespace
}  // namespace dp::workflow::expr
