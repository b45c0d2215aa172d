#include "workflow/expr.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace dp::workflow::expr {

namespace json = boost::json;

enum class Kind { kLiteral, kName, kMember, kIndex, kNot, kNeg, kBinary, kAnd, kOr, kCall };

struct Node {
  Kind kind = Kind::kLiteral;
  json::value literal;                    // kLiteral
  std::string name;                       // kName, kMember (member), kBinary (operator), kCall
  std::vector<std::shared_ptr<const Node>> kids;
};

namespace {

using NodePtr = std::shared_ptr<const Node>;

Error bad(std::string msg) { return Error::invalid_argument("bad_expression", std::move(msg)); }
Error failed(std::string msg) {
  return Error::invalid_argument("expression_failed", std::move(msg));
}

enum class Tok { kEnd, kNumber, kString, kIdent, kOp, kLParen, kRParen, kLBracket, kRBracket, kDot, kComma };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;
  json::value value;
  std::size_t offset = 0;
};

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-'; }

Result<std::vector<Token>> lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token t;
    t.offset = i;
    if (c >= '0' && c <= '9') {
      std::size_t j = i;
      bool real = false;
      while (j < s.size() && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.' || s[j] == 'e' ||
                              s[j] == 'E' ||
                              ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E')))) {
        if (s[j] == '.' || s[j] == 'e' || s[j] == 'E') real = true;
        ++j;
      }
      const std::string_view num = s.substr(i, j - i);
      if (!real) {
        std::int64_t n = 0;
        auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
        if (ec != std::errc() || p != num.data() + num.size()) {
          return bad("bad number '" + std::string(num) + "' at offset " + std::to_string(i));
        }
        t.value = n;
      } else {
        boost::system::error_code ec;
        json::value v = json::parse(num, ec);
        if (ec || !v.is_number()) {
          return bad("bad number '" + std::string(num) + "' at offset " + std::to_string(i));
        }
        t.value = v;
      }
      t.type = Tok::kNumber;
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string str;
      std::size_t j = i + 1;
      bool closed = false;
      while (j < s.size()) {
        if (s[j] == c) {
          // A doubled quote stands for one quote character.
          if (j + 1 < s.size() && s[j + 1] == c) {
            str.push_back(c);
            j += 2;
            continue;
          }
          closed = true;
          break;
        }
        if (s[j] == '\\' && j + 1 < s.size()) {
          const char e = s[j + 1];
          str.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
          j += 2;
          continue;
        }
        str.push_back(s[j]);
        ++j;
      }
      if (!closed) return bad("unterminated string at offset " + std::to_string(i));
      t.type = Tok::kString;
      t.value = json::string(str);
      i = j + 1;
    } else if (is_ident_start(c)) {
      std::size_t j = i;
      while (j < s.size() && is_ident_char(s[j])) ++j;
      t.text = std::string(s.substr(i, j - i));
      t.type = Tok::kIdent;
      i = j;
    } else {
      const std::string_view two = s.substr(i, 2);
      if (two == "==" || two == "!=" || two == "<=" || two == ">=" || two == "&&" || two == "||") {
        t.type = Tok::kOp;
        t.text = std::string(two);
        i += 2;
      } else if (c == '<' || c == '>' || c == '!' || c == '-') {
        t.type = Tok::kOp;
        t.text = std::string(1, c);
        ++i;
      } else if (c == '(' || c == ')' || c == '[' || c == ']' || c == '.' || c == ',') {
        t.type = c == '('   ? Tok::kLParen
                 : c == ')' ? Tok::kRParen
                 : c == '[' ? Tok::kLBracket
                 : c == ']' ? Tok::kRBracket
                 : c == '.' ? Tok::kDot
                            : Tok::kComma;
        t.text = std::string(1, c);
        ++i;
      } else {
        const auto uc = static_cast<unsigned char>(c);
        std::string shown = uc >= 0x20 && uc < 0x7f ? std::string(1, c) : "\\x" + std::to_string(uc);
        return bad("unexpected character '" + shown + "' at offset " + std::to_string(i));
      }
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.offset = s.size();
  out.push_back(std::move(end));
  return out;
}

const char* const kFunctions[] = {"contains", "startsWith", "endsWith", "len",
                                  "toJSON",   "fromJSON",   "join"};

bool known_function(std::string_view n) {
  for (const char* f : kFunctions) {
    if (n == f) return true;
  }
  return false;
}

// Recursive descent with one function per precedence level:
// or -> and -> equality -> comparison -> unary -> postfix -> primary.
class Parser {
 public:
  Parser(std::vector<Token> toks, const Limits& limits) : toks_(std::move(toks)), limits_(limits) {}

  Result<NodePtr> parse_all() {
    DP_ASSIGN_OR_RETURN(NodePtr n, parse_or(0));
    if (peek().type != Tok::kEnd) {
      return bad("unexpected '" + peek().text + "' at offset " + std::to_string(peek().offset));
    }
    return n;
  }

 private:
  const Token& peek() const { return toks_[pos_]; }
  const Token& next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
  bool at_op(std::string_view op) const { return peek().type == Tok::kOp && peek().text == op; }

  Result<std::shared_ptr<Node>> make(Kind k, std::size_t depth) {
    if (++nodes_ > limits_.max_nodes) {
      return bad("expression too large (more than " + std::to_string(limits_.max_nodes) + " nodes)");
    }
    if (depth > limits_.max_depth) {
      return bad("expression nested too deeply (more than " + std::to_string(limits_.max_depth) +
                 " levels)");
    }
    auto n = std::make_shared<Node>();
    n->kind = k;
    return n;
  }

  Result<NodePtr> parse_or(std::size_t d) {
    DP_ASSIGN_OR_RETURN(NodePtr lhs, parse_and(d));
    while (at_op("||")) {
      next();
      DP_ASSIGN_OR_RETURN(NodePtr rhs, parse_and(d));
      DP_ASSIGN_OR_RETURN(auto n, make(Kind::kOr, d));
      n->kids = {lhs, rhs};
      lhs = n;
    }
    return lhs;
  }
  Result<NodePtr> parse_and(std::size_t d) {
    DP_ASSIGN_OR_RETURN(NodePtr lhs, parse_eq(d));
    while (at_op("&&")) {
      next();
      DP_ASSIGN_OR_RETURN(NodePtr rhs, parse_eq(d));
      DP_ASSIGN_OR_RETURN(auto n, make(Kind::kAnd, d));
      n->kids = {lhs, rhs};
      lhs = n;
    }
    return lhs;
  }
  Result<NodePtr> parse_eq(std::size_t d) {
    DP_ASSIGN_OR_RETURN(NodePtr lhs, parse_cmp(d));
    while (at_op("==") || at_op("!=")) {
      std::string op = next().text;
      DP_ASSIGN_OR_RETURN(NodePtr rhs, parse_cmp(d));
      DP_ASSIGN_OR_RETURN(auto n, make(Kind::kBinary, d));
      n->name = std::move(op);
      n->kids = {lhs, rhs};
      lhs = n;
    }
    return lhs;
  }
  Result<NodePtr> parse_cmp(std::size_t d) {
    DP_ASSIGN_OR_RETURN(NodePtr lhs, parse_unary(d));
    while (at_op("<") || at_op("<=") || at_op(">") || at_op(">=")) {
      std::string op = next().text;
      DP_ASSIGN_OR_RETURN(NodePtr rhs, parse_unary(d));
      DP_ASSIGN_OR_RETURN(auto n, make(Kind::kBinary, d));
      n->name = std::move(op);
      n->kids = {lhs, rhs};
      lhs = n;
    }
    return lhs;
  }
  Result<NodePtr> parse_unary(std::size_t d) {
    if (at_op("!") || at_op("-")) {
      const bool is_not = next().text == "!";
      DP_ASSIGN_OR_RETURN(NodePtr operand, parse_unary(d + 1));
      DP_ASSIGN_OR_RETURN(auto n, make(is_not ? Kind::kNot : Kind::kNeg, d));
      n->kids = {operand};
      return NodePtr(n);
    }
    return parse_postfix(d);
  }
  Result<NodePtr> parse_postfix(std::size_t d) {
    DP_ASSIGN_OR_RETURN(NodePtr base, parse_primary(d));
    for (;;) {
      if (peek().type == Tok::kDot) {
        next();
        if (peek().type != Tok::kIdent) {
          return bad("expected a name after '.' at offset " + std::to_string(peek().offset));
        }
        DP_ASSIGN_OR_RETURN(auto n, make(Kind::kMember, d));
        n->name = next().text;
        n->kids = {base};
        base = n;
      } else if (peek().type == Tok::kLBracket) {
        next();
        DP_ASSIGN_OR_RETURN(NodePtr idx, parse_or(d + 1));
        if (peek().type != Tok::kRBracket) {
          return bad("expected ']' at offset " + std::to_string(peek().offset));
        }
        next();
        DP_ASSIGN_OR_RETURN(auto n, make(Kind::kIndex, d));
        n->kids = {base, idx};
        base = n;
      } else {
        return base;
      }
    }
  }
  Result<NodePtr> parse_primary(std::size_t d) {
    const Token& t = peek();
    if (t.type == Tok::kNumber || t.type == Tok::kString) {
      DP_ASSIGN_OR_RETURN(auto n, make(Kind::kLiteral, d));
      n->literal = next().value;
      return NodePtr(n);
    }
    if (t.type == Tok::kLParen) {
      next();
      DP_ASSIGN_OR_RETURN(NodePtr inner, parse_or(d + 1));
      if (peek().type != Tok::kRParen) {
        return bad("expected ')' at offset " + std::to_string(peek().offset));
      }
      next();
      return inner;
    }
    if (t.type == Tok::kIdent) {
      const std::size_t at = t.offset;
      std::string name = next().text;
      if (name == "true" || name == "false" || name == "null") {
        DP_ASSIGN_OR_RETURN(auto n, make(Kind::kLiteral, d));
        if (name == "null") {
          n->literal = nullptr;
        } else {
          n->literal = name == "true";
        }
        return NodePtr(n);
      }
      if (peek().type == Tok::kLParen) {
        if (!known_function(name)) {
          return bad("unknown function '" + name + "' at offset " + std::to_string(at));
        }
        next();
        DP_ASSIGN_OR_RETURN(auto n, make(Kind::kCall, d));
        n->name = std::move(name);
        if (peek().type != Tok::kRParen) {
          for (;;) {
            DP_ASSIGN_OR_RETURN(NodePtr arg, parse_or(d + 1));
            n->kids.push_back(arg);
            if (peek().type == Tok::kComma) {
              next();
              continue;
            }
            break;
          }
        }
        if (peek().type != Tok::kRParen) {
          return bad("expected ')' or ',' at offset " + std::to_string(peek().offset));
        }
        next();
        return NodePtr(n);
      }
      DP_ASSIGN_OR_RETURN(auto n, make(Kind::kName, d));
      n->name = std::move(name);
      return NodePtr(n);
    }
    if (t.type == Tok::kEnd) return bad("unexpected end of expression");
    return bad("unexpected '" + t.text + "' at offset " + std::to_string(t.offset));
  }

  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  std::size_t nodes_ = 0;
  const Limits& limits_;
};

// The static name chain of a member/index expression, or false when it is not static.
bool chain(const Node& n, std::vector<std::string>& out) {
  switch (n.kind) {
    case Kind::kName:
      out.push_back(n.name);
      return true;
    case Kind::kMember:
      if (!chain(*n.kids[0], out)) return false;
      out.push_back(n.name);
      return true;
    case Kind::kIndex: {
      if (!chain(*n.kids[0], out)) return false;
      const Node& idx = *n.kids[1];
      if (idx.kind == Kind::kLiteral && idx.literal.is_string()) {
        out.emplace_back(idx.literal.as_string());
        return true;
      }
      return true;  // a dynamic index ends the static part
    }
    default:
      return false;
  }
}

void collect_refs(const Node& n, std::vector<std::vector<std::string>>& refs) {
  if (n.kind == Kind::kName || n.kind == Kind::kMember || n.kind == Kind::kIndex) {
    std::vector<std::string> c;
    if (chain(n, c)) {
      refs.push_back(std::move(c));
      // Index expressions may hold names of their own.
      if (n.kind == Kind::kIndex) collect_refs(*n.kids[1], refs);
      return;
    }
  }
  for (const auto& k : n.kids) collect_refs(*k, refs);
}

std::optional<double> as_number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

bool equal(const json::value& a, const json::value& b) {
  auto na = as_number(a);
  auto nb = as_number(b);
  if (na && nb) return *na == *nb;
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!equal(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      const auto* o = y.if_contains(kv.key());
      if (o == nullptr || !equal(kv.value(), *o)) return false;
    }
    return true;
  }
  return a == b;
}

std::string_view kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "value";
}

// Text of a value inside a string: strings as they are, null as "", others as JSON.
std::string as_text(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}

class Evaluator {
 public:
  Evaluator(const json::object& ctx, const Limits& limits) : ctx_(ctx), limits_(limits) {}

  Result<json::value> eval(const Node& n) {
    if (++steps_ > limits_.max_steps) {
      return failed("expression took more than " + std::to_string(limits_.max_steps) + " steps");
    }
    switch (n.kind) {
      case Kind::kLiteral:
        return n.literal;
      case Kind::kName: {
        const auto* v = ctx_.if_contains(n.name);
        return v != nullptr ? *v : json::value(nullptr);
      }
      case Kind::kMember: {
        DP_ASSIGN_OR_RETURN(json::value base, eval(*n.kids[0]));
        if (!base.is_object()) return json::value(nullptr);
        const auto* v = base.get_object().if_contains(n.name);
        return v != nullptr ? *v : json::value(nullptr);
      }
      case Kind::kIndex: {
        DP_ASSIGN_OR_RETURN(json::value base, eval(*n.kids[0]));
        DP_ASSIGN_OR_RETURN(json::value idx, eval(*n.kids[1]));
        if (base.is_object() && idx.is_string()) {
          const auto* v = base.get_object().if_contains(idx.get_string());
          return v != nullptr ? *v : json::value(nullptr);
        }
        if (base.is_array()) {
          auto num = as_number(idx);
          if (!num || *num < 0 || std::floor(*num) != *num) return json::value(nullptr);
          const auto i = static_cast<std::size_t>(*num);
          const auto& arr = base.get_array();
          return i < arr.size() ? arr[i] : json::value(nullptr);
        }
        return json::value(nullptr);
      }
      case Kind::kNot: {
        DP_ASSIGN_OR_RETURN(json::value v, eval(*n.kids[0]));
        return json::value(!truthy(v));
      }
      case Kind::kNeg: {
        DP_ASSIGN_OR_RETURN(json::value v, eval(*n.kids[0]));
        if (v.is_int64() && v.get_int64() != INT64_MIN) return json::value(-v.get_int64());
        auto num = as_number(v);
        if (!num) return failed("cannot negate a " + std::string(kind_name(v)));
        return json::value(-*num);
      }
      case Kind::kAnd: {
        DP_ASSIGN_OR_RETURN(json::value a, eval(*n.kids[0]));
        if (!truthy(a)) return a;
        return eval(*n.kids[1]);
      }
      case Kind::kOr: {
        DP_ASSIGN_OR_RETURN(json::value a, eval(*n.kids[0]));
        if (truthy(a)) return a;
        return eval(*n.kids[1]);
      }
      case Kind::kBinary:
        return binary(n);
      case Kind::kCall:
        return call(n);
    }
    return failed("unknown node");
  }

 private:
  Result<json::value> binary(const Node& n) {
    DP_ASSIGN_OR_RETURN(json::value a, eval(*n.kids[0]));
    DP_ASSIGN_OR_RETURN(json::value b, eval(*n.kids[1]));
    const std::string& op = n.name;
    if (op == "==") return json::value(equal(a, b));
    if (op == "!=") return json::value(!equal(a, b));
    int cmp = 0;
    auto na = as_number(a);
    auto nb = as_number(b);
    if (na && nb) {
      cmp = *na < *nb ? -1 : (*na > *nb ? 1 : 0);
    } else if (a.is_string() && b.is_string()) {
      const int c = std::string_view(a.get_string()).compare(std::string_view(b.get_string()));
      cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
    } else {
      return failed("cannot compare a " + std::string(kind_name(a)) + " with a " +
                    std::string(kind_name(b)) + " using " + op);
    }
    if (op == "<") return json::value(cmp < 0);
    if (op == "<=") return json::value(cmp <= 0);
    if (op == ">") return json::value(cmp > 0);
    return json::value(cmp >= 0);
  }

  Result<json::value> checked_string(std::string s) {
    if (s.size() > limits_.max_string) {
      return failed("expression result longer than " + std::to_string(limits_.max_string) +
                    " bytes");
    }
    return json::value(json::string(s));
  }

  Result<json::value> call(const Node& n) {
    std::vector<json::value> args;
    for (const auto& k : n.kids) {
      DP_ASSIGN_OR_RETURN(json::value v, eval(*k));
      args.push_back(std::move(v));
    }
    const std::string& f = n.name;
    auto arity = [&](std::size_t lo, std::size_t hi) -> Status {
      if (args.size() < lo || args.size() > hi) {
        return failed(f + "() takes " + std::to_string(lo) +
                      (lo == hi ? "" : ".." + std::to_string(hi)) + " argument(s), got " +
                      std::to_string(args.size()));
      }
      return Ok{};
    };
    if (f == "contains") {
      DP_TRY(arity(2, 2));
      if (args[0].is_string()) {
        return json::value(std::string_view(args[0].get_string()).find(as_text(args[1])) !=
                           std::string_view::npos);
      }
      if (args[0].is_array()) {
        for (const auto& e : args[0].get_array()) {
          if (++steps_ > limits_.max_steps) return failed("expression took too many steps");
          if (equal(e, args[1])) return json::value(true);
        }
        return json::value(false);
      }
      if (args[0].is_object() && args[1].is_string()) {
        return json::value(args[0].get_object().contains(args[1].get_string()));
      }
      return json::value(false);
    }
    if (f == "startsWith" || f == "endsWith") {
      DP_TRY(arity(2, 2));
      if (!args[0].is_string() || !args[1].is_string()) return json::value(false);
      std::string_view s = args[0].get_string();
      std::string_view p = args[1].get_string();
      if (p.size() > s.size()) return json::value(false);
      return json::value(f == "startsWith" ? s.substr(0, p.size()) == p
                                           : s.substr(s.size() - p.size()) == p);
    }
    if (f == "len") {
      DP_TRY(arity(1, 1));
      if (args[0].is_string()) return json::value(static_cast<std::int64_t>(args[0].get_string().size()));
      if (args[0].is_array()) return json::value(static_cast<std::int64_t>(args[0].get_array().size()));
      if (args[0].is_object()) return json::value(static_cast<std::int64_t>(args[0].get_object().size()));
      if (args[0].is_null()) return json::value(std::int64_t{0});
      return failed("len() of a " + std::string(kind_name(args[0])));
    }
    if (f == "toJSON") {
      DP_TRY(arity(1, 1));
      return checked_string(json::serialize(args[0]));
    }
    if (f == "fromJSON") {
      DP_TRY(arity(1, 1));
      if (!args[0].is_string()) return failed("fromJSON() takes a string");
      if (args[0].get_string().size() > limits_.max_string) return failed("fromJSON() input too long");
      boost::system::error_code ec;
      json::parse_options opts;
      opts.max_depth = limits_.max_depth;
      json::value v = json::parse(args[0].get_string(), ec, {}, opts);
      if (ec) return failed("fromJSON(): " + ec.message());
      return v;
    }
    if (f == "join") {
      DP_TRY(arity(1, 2));
      if (!args[0].is_array()) return checked_string(as_text(args[0]));
      const std::string sep = args.size() > 1 ? as_text(args[1]) : ",";
      std::string out;
      bool first = true;
      for (const auto& e : args[0].get_array()) {
        if (++steps_ > limits_.max_steps) return failed("expression took too many steps");
        if (!first) out += sep;
        first = false;
        out += as_text(e);
        if (out.size() > limits_.max_string) return checked_string(std::move(out));
      }
      return checked_string(std::move(out));
    }
    return failed("unknown function " + f);
  }

  const json::object& ctx_;
  const Limits& limits_;
  std::size_t steps_ = 0;
};

}  // namespace

bool truthy(const json::value& v) noexcept {
  switch (v.kind()) {
    case json::kind::null: return false;
    case json::kind::bool_: return v.get_bool();
    case json::kind::int64: return v.get_int64() != 0;
    case json::kind::uint64: return v.get_uint64() != 0;
    case json::kind::double_: return v.get_double() != 0.0;
    case json::kind::string: return !v.get_string().empty();
    default: return true;
  }
}

Result<Expression> Expression::parse(std::string_view source, const Limits& limits) {
  if (source.size() > limits.max_source) {
    return bad("expression longer than " + std::to_string(limits.max_source) + " bytes");
  }
  DP_ASSIGN_OR_RETURN(std::vector<Token> toks, lex(source));
  if (toks.size() == 1) return bad("empty expression");
  Parser p(std::move(toks), limits);
  DP_ASSIGN_OR_RETURN(NodePtr root, p.parse_all());
  Expression e;
  e.root_ = std::move(root);
  e.source_ = std::string(source);
  e.limits_ = limits;
  collect_refs(*e.root_, e.refs_);
  return e;
}

Result<json::value> Expression::eval(const json::object& context) const {
  if (!root_) return failed("empty expression");
  Evaluator ev(context, limits_);
  return ev.eval(*root_);
}

Result<std::vector<TemplatePart>> find_templates(std::string_view text) {
  std::vector<TemplatePart> out;
  std::size_t pos = 0;
  while ((pos = text.find("${{", pos)) != std::string_view::npos) {
    const std::size_t end = text.find("}}", pos + 3);
    if (end == std::string_view::npos) {
      return bad("unterminated '${{' at offset " + std::to_string(pos) + " (missing '}}')");
    }
    TemplatePart p;
    p.offset = pos;
    p.length = end + 2 - pos;
    std::string_view inner = text.substr(pos + 3, end - pos - 3);
    while (!inner.empty() && (inner.front() == ' ' || inner.front() == '\t')) inner.remove_prefix(1);
    while (!inner.empty() && (inner.back() == ' ' || inner.back() == '\t')) inner.remove_suffix(1);
    p.expression = std::string(inner);
    out.push_back(std::move(p));
    pos = end + 2;
  }
  return out;
}

namespace {

Result<json::value> render_string(std::string_view s, const json::object& ctx, const Limits& limits) {
  DP_ASSIGN_OR_RETURN(std::vector<TemplatePart> parts, find_templates(s));
  if (parts.empty()) return json::value(json::string(s));
  if (parts.size() == 1 && parts[0].offset == 0 && parts[0].length == s.size()) {
    DP_ASSIGN_OR_RETURN(Expression e, Expression::parse(parts[0].expression, limits));
    return e.eval(ctx);
  }
  std::string out;
  std::size_t at = 0;
  for (const auto& p : parts) {
    out.append(s.substr(at, p.offset - at));
    DP_ASSIGN_OR_RETURN(Expression e, Expression::parse(p.expression, limits));
    DP_ASSIGN_OR_RETURN(json::value v, e.eval(ctx));
    out += as_text(v);
    if (out.size() > limits.max_string) {
      return failed("rendered text longer than " + std::to_string(limits.max_string) + " bytes");
    }
    at = p.offset + p.length;
  }
  out.append(s.substr(at));
  return json::value(json::string(out));
}

Result<json::value> render_at(const json::value& v, const json::object& ctx, const Limits& limits,
                              std::size_t depth) {
  if (depth > limits.max_depth) return failed("value nested too deeply to render");
  if (v.is_string()) return render_string(v.get_string(), ctx, limits);
  if (v.is_array()) {
    json::array out;
    for (const auto& e : v.get_array()) {
      DP_ASSIGN_OR_RETURN(json::value r, render_at(e, ctx, limits, depth + 1));
      out.push_back(std::move(r));
    }
    return json::value(std::move(out));
  }
  if (v.is_object()) {
    json::object out;
    for (const auto& kv : v.get_object()) {
      DP_ASSIGN_OR_RETURN(json::value r, render_at(kv.value(), ctx, limits, depth + 1));
      out[kv.key()] = std::move(r);
    }
    return json::value(std::move(out));
  }
  return v;
}

}  // namespace

Result<json::value> render(const json::value& value, const json::object& context,
                           const Limits& limits) {
  return render_at(value, context, limits, 0);
}

}  // namespace dp::workflow::expr
