// Expressions and templates of workflow definitions (docs/workflows.md, "Expressions").
//
// A small, side-effect-free language for a step's `if` and for `${{ ... }}` templates:
// literals (numbers, 'strings' or "strings", true, false, null), names looked up in a
// context object (`inputs.x`, `steps.build.outputs.y`, `steps.build.status`, `item`,
// `index`), member and index access (`a.b`, `a['b']`, `a[0]`), the operators
// `!`, `-` (unary), `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, parentheses, and the
// functions contains, startsWith, endsWith, len, toJSON, fromJSON, join.
//
// Bounded: the source is at most Limits::max_source bytes, the tree at most max_nodes nodes
// and max_depth deep; evaluation stops after max_steps node visits and fails when a string
// it builds would exceed max_string bytes. A missing name or member is null, not an error.
// `&&` and `||` short-circuit and yield one of their operands (`inputs.x || 'default'`).
//
// Immutable after parse; safe from any thread. Errors are kInvalidArgument with reason
// `bad_expression` (parse) or `expression_failed` (evaluation).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace dp::workflow::expr {

struct Limits {
  std::size_t max_source = 4096;
  std::size_t max_nodes = 512;
  std::size_t max_depth = 48;
  std::size_t max_steps = 20'000;
  std::size_t max_string = 256 * 1024;
};

struct Node;

class Expression {
 public:
  // kInvalidArgument `bad_expression` with the offending offset in the message.
  static Result<Expression> parse(std::string_view source, const Limits& limits = {});

  // Evaluates against `context` (an object whose members are the top-level names).
  Result<boost::json::value> eval(const boost::json::object& context) const;

  // Every name chain the expression reads, as far as it is static:
  // `steps.build.outputs['x']` -> {"steps", "build", "outputs", "x"}.
  const std::vector<std::vector<std::string>>& references() const noexcept { return refs_; }
  const std::string& source() const noexcept { return source_; }

 private:
  std::shared_ptr<const Node> root_;
  std::vector<std::vector<std::string>> refs_;
  std::string source_;
  Limits limits_;
};

// JavaScript-like truthiness: null, false, 0, "" are false; everything else is true.
bool truthy(const boost::json::value& v) noexcept;

// One `${{ ... }}` found in a string.
struct TemplatePart {
  std::size_t offset = 0;  // of "${{"
  std::size_t length = 0;  // through "}}"
  std::string expression;  // the text between, trimmed
};

// The templates in `text`, in order. kInvalidArgument `bad_expression` on an unterminated one.
Result<std::vector<TemplatePart>> find_templates(std::string_view text);

// Renders every string inside `value` (recursively through arrays and objects). A string that
// is exactly one template yields the expression's value with its type; otherwise each
// template is replaced by its value as text (strings as is, others as JSON).
Result<boost::json::value> render(const boost::json::value& value,
                                  const boost::json::object& context, const Limits& limits = {});

}  // namespace dp::workflow::expr
