// Fuzz target for workflow definitions and expressions. The first byte picks what the rest is:
// even: a definition (YAML or JSON text), parsed and validated; odd: an expression, parsed,
// evaluated against a fixed context, and rendered as a template. Nothing may crash, hang past
// the bounds, or leak; every failure must be an error value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/json/parse.hpp>

#include "workflow/definition.hpp"
#include "workflow/expr.hpp"

namespace {

const boost::json::object& context() {
  static const boost::json::object ctx = boost::json::parse(R"({
    "inputs": {"n": 3, "s": "text", "l": [1, 2, 3], "o": {"k": "v"}},
    "steps": {"a": {"status": "succeeded", "outputs": {"x": 1, "json": {"y": [true, null]}}}},
    "item": "it", "index": 0})").as_object();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    dp::workflow::Definition def;
    auto problems = dp::workflow::validate_definition(text, &def);
    // Valid definitions must also parse through the public entry point.
    if (problems.empty() && !dp::workflow::parse_definition(text).ok()) __builtin_trap();
  } else {
    auto e = dp::workflow::expr::Expression::parse(text);
    if (e.ok()) (void)e->eval(context());
    (void)dp::workflow::expr::render(boost::json::value(boost::json::string(text)), context());
  }
  return 0;
}
