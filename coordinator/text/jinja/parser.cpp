// Jinja parser: recursive descent over the token stream with jinja2's grammar and precedence.
#include "coordinator/text/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

namespace ponder::text::jinja {
namespace {

// Deeper nesting than this is rejected instead of exhausting the stack.
constexpr int kMaxNesting = 200;

constexpr std::string_view kUnsupportedTags[] = {
    "extends", "block", "include",   "import",   "from",          "autoescape",
    "do",      "trans", "pluralize", "endblock", "endautoescape", "endtrans"};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() {
    std::string_view end_tag;
    Body body = parse_body({}, &end_tag);
    return body;
  }

 private:
  // ------------------------------------------------------------ token helpers
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool at_op(std::string_view op) const {
    return current().kind == TokenKind::kOperator && current().text == op;
  }
  bool at_name(std::string_view name) const {
    return current().kind == TokenKind::kName && current().text == name;
  }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }

  std::string describe(const Token& t) const {
    switch (t.kind) {
      case TokenKind::kName:
      case TokenKind::kOperator:
        return "'" + t.text + "'";
      case TokenKind::kString:
        return "string";
      case TokenKind::kInteger:
      case TokenKind::kFloat:
        return "number " + t.text;
      default:
        return std::string(token_kind_name(t.kind));
    }
  }

  [[noreturn]] void fail_at(const Token& t, std::string message) const {
    throw TemplateError(std::move(message), t.location);
  }

  void expect_op(std::string_view op) {
    if (!skip_op(op)) {
      fail_at(current(), "expected '" + std::string(op) + "', got " + describe(current()));
    }
  }
  std::string expect_name() {
    if (current().kind != TokenKind::kName) {
      fail_at(current(), "expected a name, got " + describe(current()));
    }
    return advance().text;
  }
  void expect_block_end() {
    if (current().kind != TokenKind::kBlockEnd) {
      fail_at(current(), "expected end of statement block '%}', got " + describe(current()));
    }
    advance();
  }

  // ------------------------------------------------------------ statements
  // Parses statements until a `{% tag %}` whose name is in `end_tags`; leaves the stream after
  // that tag's name and stores the name in *found. At top level (empty end_tags) stops at EOF.
  Body parse_body(std::initializer_list<std::string_view> end_tags, std::string_view* found) {
    Body body;
    while (true) {
      const Token& t = current();
      switch (t.kind) {
        case TokenKind::kEof:
          if (end_tags.size() != 0) {
            std::string wanted;
            for (std::string_view tag : end_tags) {
              wanted += (wanted.empty() ? "'" : " or '") + std::string(tag) + "'";
            }
            fail_at(t, "unexpected end of template; Jinja was looking for " + wanted +
                           " to close the block opened at line " +
                           std::to_string(open_blocks_.empty() ? 0 : open_blocks_.back().line));
          }
          return body;
        case TokenKind::kText:
          body.push_back(std::make_unique<TextStmt>(t.location, t.text));
          advance();
          break;
        case TokenKind::kVariableBegin: {
          advance();
          Location loc = current().location;
          ExprPtr e = parse_tuple(true, {}, false);
          if (current().kind != TokenKind::kVariableEnd) {
            fail_at(current(), "expected end of print statement '}}', got " + describe(current()));
          }
          advance();
          body.push_back(std::make_unique<OutputStmt>(loc, std::move(e)));
          break;
        }
        case TokenKind::kBlockBegin: {
          const Token& name_token = peek();
          if (name_token.kind != TokenKind::kName) fail_at(name_token, "tag name expected");
          for (std::string_view end : end_tags) {
            if (name_token.text == end) {
              advance();
              advance();
              *found = end;
              return body;
            }
          }
          advance();
          body.push_back(parse_statement());
          break;
        }
        default:
          fail_at(t, "unexpected " + describe(t));
      }
    }
  }

  // Counts nesting of blocks and expressions on the parser's recursion.
  struct NestingGuard {
    NestingGuard(Parser* parser, const Token& at) : parser_(parser) {
      if (++parser_->nesting_ > kMaxNesting) {
        parser_->fail_at(
            at, "template nested more than " + std::to_string(kMaxNesting) + " levels deep");
      }
    }
    ~NestingGuard() { --parser_->nesting_; }
    Parser* parser_;
  };

  StmtPtr parse_statement() {
    NestingGuard guard(this, current());
    const Token& name_token = current();
    const std::string& tag = name_token.text;
    Location loc = name_token.location;
    advance();
    if (tag == "if") return parse_if(loc);
    if (tag == "for") return parse_for(loc);
    if (tag == "set") return parse_set(loc);
    if (tag == "macro") return parse_macro(loc);
    if (tag == "call") return parse_call_block(loc);
    if (tag == "filter") return parse_filter_block(loc);
    if (tag == "with") return parse_with(loc);
    if (tag == "generation") {
      expect_block_end();
      auto scope = std::make_unique<ScopeStmt>(loc);
      std::string_view end;
      open_blocks_.push_back(loc);
      scope->body = parse_body({"endgeneration"}, &end);
      open_blocks_.pop_back();
      expect_block_end();
      return scope;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_at(name_token, "'" + tag + "' outside of a for loop");
      expect_block_end();
      return std::make_unique<LoopControlStmt>(
          tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, loc);
    }
    if (std::find(std::begin(kUnsupportedTags), std::end(kUnsupportedTags), tag) !=
        std::end(kUnsupportedTags)) {
      throw TemplateError("unsupported tag '" + tag +
                              "' (chat templates are rendered standalone: no template loader, "
                              "inheritance, includes or extensions beyond loop controls)",
                          loc);
    }
    if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else") {
      throw TemplateError("unexpected '" + tag + "' with no block open to close", loc);
    }
    throw TemplateError("unknown tag '" + tag + "'", loc);
  }

  StmtPtr parse_if(Location loc) {
    auto stmt = std::make_unique<IfStmt>(loc);
    open_blocks_.push_back(loc);
    ExprPtr cond = parse_tuple(true, {}, false);
    expect_block_end();
    while (true) {
      std::string_view end;
      Body body = parse_body({"elif", "else", "endif"}, &end);
      stmt->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") {
        cond = parse_tuple(true, {}, false);
        expect_block_end();
        continue;
      }
      if (end == "else") {
        expect_block_end();
        stmt->else_body = parse_body({"endif"}, &end);
      }
      break;
    }
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  StmtPtr parse_for(Location loc) {
    auto stmt = std::make_unique<ForStmt>(loc);
    open_blocks_.push_back(loc);
    stmt->target = parse_assign_target({"in"}, false);
    if (!skip_name("in")) fail_at(current(), "expected 'in', got " + describe(current()));
    stmt->iterable = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) stmt->filter = parse_expression(true);
    if (at_name("recursive")) {
      fail_at(current(), "unsupported construct: recursive for loops");
    }
    expect_block_end();
    std::string_view end;
    ++loop_depth_;
    stmt->body = parse_body({"endfor", "else"}, &end);
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      stmt->else_body = parse_body({"endfor"}, &end);
    }
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  StmtPtr parse_set(Location loc) {
    AssignTarget target = parse_assign_target({}, true);
    if (skip_op("=")) {
      auto stmt = std::make_unique<SetStmt>(loc);
      stmt->target = std::move(target);
      stmt->value = parse_tuple(true, {}, false);
      expect_block_end();
      return stmt;
    }
    auto stmt = std::make_unique<SetBlockStmt>(loc);
    if (target.unpack) fail_at(current(), "a block set assigns to a single name");
    stmt->target = std::move(target);
    while (skip_op("|")) stmt->filters.push_back(parse_filter_call(nullptr));
    expect_block_end();
    open_blocks_.push_back(loc);
    std::string_view end;
    int saved_loop_depth = loop_depth_;
    stmt->body = parse_body({"endset"}, &end);
    loop_depth_ = saved_loop_depth;
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  std::vector<MacroParam> parse_signature() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!at_op(")")) {
      if (!params.empty()) expect_op(",");
      if (at_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro(Location loc) {
    auto stmt = std::make_unique<MacroStmt>(loc);
    stmt->name = expect_name();
    stmt->params = parse_signature();
    expect_block_end();
    open_blocks_.push_back(loc);
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    std::string_view end;
    stmt->body = parse_body({"endmacro"}, &end);
    loop_depth_ = saved_loop_depth;
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  StmtPtr parse_call_block(Location loc) {
    auto stmt = std::make_unique<CallBlockStmt>(loc);
    if (at_op("(")) stmt->caller_params = parse_signature();
    ExprPtr call = parse_expression(true);
    if (call->kind != ExprKind::kCall) fail_at(current(), "expected a call after 'call'");
    stmt->call.reset(static_cast<CallExpr*>(call.release()));
    expect_block_end();
    open_blocks_.push_back(loc);
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    std::string_view end;
    stmt->body = parse_body({"endcall"}, &end);
    loop_depth_ = saved_loop_depth;
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  StmtPtr parse_filter_block(Location loc) {
    auto stmt = std::make_unique<FilterBlockStmt>(loc);
    do {
      stmt->filters.push_back(parse_filter_call(nullptr));
    } while (skip_op("|"));
    expect_block_end();
    open_blocks_.push_back(loc);
    std::string_view end;
    stmt->body = parse_body({"endfilter"}, &end);
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  StmtPtr parse_with(Location loc) {
    auto stmt = std::make_unique<WithStmt>(loc);
    while (current().kind != TokenKind::kBlockEnd) {
      if (!stmt->assignments.empty()) expect_op(",");
      AssignTarget target = parse_assign_target({}, false);
      expect_op("=");
      stmt->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    expect_block_end();
    open_blocks_.push_back(loc);
    std::string_view end;
    stmt->body = parse_body({"endwith"}, &end);
    expect_block_end();
    open_blocks_.pop_back();
    return stmt;
  }

  // name | name, name, ... | ns.attr (with_namespace)
  AssignTarget parse_assign_target(std::initializer_list<std::string_view> end_names,
                                   bool with_namespace) {
    AssignTarget target;
    bool parenthesized = skip_op("(");
    while (true) {
      const Token& t = current();
      if (t.kind != TokenKind::kName) {
        fail_at(t, "can't assign to " + describe(t) + "; expected a name");
      }
      target.names.push_back(advance().text);
      if (with_namespace && at_op(".")) {
        advance();
        if (target.names.size() != 1)
          fail_at(current(), "can't assign to a namespace attribute in a tuple");
        target.attribute = expect_name();
        return target;
      }
      if (!at_op(",")) break;
      advance();
      target.unpack = true;
      bool at_end = at_op(")") || at_op("=") || current().kind == TokenKind::kBlockEnd;
      for (std::string_view end : end_names) at_end = at_end || at_name(end);
      if (at_end) break;
    }
    if (parenthesized) {
      expect_op(")");
      target.unpack = true;
    }
    return target;
  }

  // ------------------------------------------------------------ expressions
  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
    const Token& t = current();
    if (t.kind == TokenKind::kVariableEnd || t.kind == TokenKind::kBlockEnd ||
        t.kind == TokenKind::kEof || at_op(")")) {
      return true;
    }
    for (std::string_view name : extra_end) {
      if (at_name(name)) return true;
    }
    return false;
  }

  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses) {
    Location loc = current().location;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (at_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses)
        fail_at(current(), "expected an expression, got " + describe(current()));
    }
    auto tuple = std::make_unique<SequenceExpr>(ExprKind::kTuple, loc);
    tuple->items = std::move(items);
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    Location loc = current().location;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      ExprPtr cond = parse_or();
      ExprPtr otherwise;
      if (skip_name("else")) otherwise = parse_condexpr();
      expr = std::make_unique<ConditionExpr>(loc, std::move(expr), std::move(cond),
                                             std::move(otherwise));
    }
    return expr;
  }

  ExprPtr parse_or() {
    Location loc = current().location;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      left = std::make_unique<BinaryExpr>(ExprKind::kOr, loc, BinaryOp::kAdd, std::move(left),
                                          parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    Location loc = current().location;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      left = std::make_unique<BinaryExpr>(ExprKind::kAnd, loc, BinaryOp::kAdd, std::move(left),
                                          parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    Location loc = current().location;
    if (skip_name("not")) return std::make_unique<NotExpr>(loc, parse_not());
    return parse_compare();
  }

  ExprPtr parse_compare() {
    Location loc = current().location;
    ExprPtr first = parse_math1();
    std::unique_ptr<CompareExpr> cmp;
    while (true) {
      CompareOp op;
      if (skip_op("==")) {
        op = CompareOp::kEq;
      } else if (skip_op("!=")) {
        op = CompareOp::kNe;
      } else if (skip_op("<")) {
        op = CompareOp::kLt;
      } else if (skip_op("<=")) {
        op = CompareOp::kLe;
      } else if (skip_op(">")) {
        op = CompareOp::kGt;
      } else if (skip_op(">=")) {
        op = CompareOp::kGe;
      } else if (skip_name("in")) {
        op = CompareOp::kIn;
      } else if (at_name("not") && peek().kind == TokenKind::kName && peek().text == "in") {
        advance();
        advance();
        op = CompareOp::kNotIn;
      } else {
        break;
      }
      if (!cmp) cmp = std::make_unique<CompareExpr>(loc, std::move(first));
      cmp->rest.emplace_back(op, parse_math1());
    }
    if (cmp) return cmp;
    return first;
  }

  ExprPtr binary(Location loc, BinaryOp op, ExprPtr l, ExprPtr r) {
    return std::make_unique<BinaryExpr>(ExprKind::kBinary, loc, op, std::move(l), std::move(r));
  }

  ExprPtr parse_math1() {
    Location loc = current().location;
    ExprPtr left = parse_concat();
    while (at_op("+") || at_op("-")) {
      BinaryOp op = advance().text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      left = binary(loc, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    Location loc = current().location;
    ExprPtr left = parse_math2();
    while (skip_op("~")) left = binary(loc, BinaryOp::kConcat, std::move(left), parse_math2());
    return left;
  }

  ExprPtr parse_math2() {
    Location loc = current().location;
    ExprPtr left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const std::string& t = advance().text;
      BinaryOp op = t == "*"    ? BinaryOp::kMul
                    : t == "/"  ? BinaryOp::kDiv
                    : t == "//" ? BinaryOp::kFloorDiv
                                : BinaryOp::kMod;
      left = binary(loc, op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    Location loc = current().location;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary(loc, BinaryOp::kPow, std::move(left), parse_unary(true));
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    NestingGuard guard(this, current());
    Location loc = current().location;
    ExprPtr node;
    if (skip_op("-")) {
      node = std::make_unique<UnaryExpr>(loc, UnaryOp::kNeg, parse_unary(false));
    } else if (skip_op("+")) {
      node = std::make_unique<UnaryExpr>(loc, UnaryOp::kPos, parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    Location loc = t.location;
    switch (t.kind) {
      case TokenKind::kName: {
        std::string name = advance().text;
        if (name == "true" || name == "True") return literal(loc, Value::boolean(true));
        if (name == "false" || name == "False") return literal(loc, Value::boolean(false));
        if (name == "none" || name == "None") return literal(loc, Value::none());
        return std::make_unique<NameExpr>(loc, std::move(name));
      }
      case TokenKind::kString: {
        std::string s = advance().text;
        while (current().kind == TokenKind::kString) s += advance().text;
        return literal(loc, Value::string(std::move(s)));
      }
      case TokenKind::kInteger:
        return literal(loc, Value::integer(advance().int_value));
      case TokenKind::kFloat:
        return literal(loc, Value::number(advance().float_value));
      case TokenKind::kOperator:
        if (skip_op("(")) {
          ExprPtr e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (skip_op("[")) {
          auto list = std::make_unique<SequenceExpr>(ExprKind::kList, loc);
          while (!at_op("]")) {
            if (!list->items.empty()) expect_op(",");
            if (at_op("]")) break;
            list->items.push_back(parse_expression(true));
          }
          expect_op("]");
          return list;
        }
        if (skip_op("{")) {
          auto dict = std::make_unique<DictExpr>(loc);
          while (!at_op("}")) {
            if (!dict->items.empty()) expect_op(",");
            if (at_op("}")) break;
            ExprPtr key = parse_expression(true);
            expect_op(":");
            dict->items.emplace_back(std::move(key), parse_expression(true));
          }
          expect_op("}");
          return dict;
        }
        break;
      default:
        break;
    }
    fail_at(t, "unexpected " + describe(t) + " in expression");
  }

  ExprPtr literal(Location loc, Value v) {
    return std::make_unique<LiteralExpr>(loc, std::move(v));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      Location loc = current().location;
      if (skip_op(".")) {
        const Token& t = current();
        if (t.kind == TokenKind::kName) {
          node = std::make_unique<GetAttrExpr>(loc, std::move(node), advance().text);
        } else if (t.kind == TokenKind::kInteger) {
          node = std::make_unique<GetItemExpr>(
              loc, std::move(node), literal(t.location, Value::integer(advance().int_value)));
        } else {
          fail_at(t, "expected name or number after '.', got " + describe(t));
        }
      } else if (skip_op("[")) {
        node = parse_subscript(loc, std::move(node));
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(Location loc, ExprPtr object) {
    std::vector<ExprPtr> args;
    std::unique_ptr<SliceExpr> slice;
    while (!at_op("]")) {
      if (!args.empty() || slice) expect_op(",");
      ExprPtr start;
      if (!at_op(":")) {
        start = parse_expression(true);
        if (!at_op(":")) {
          args.push_back(std::move(start));
          continue;
        }
      }
      if (slice || !args.empty())
        fail_at(current(), "unsupported construct: multi-dimensional slice");
      advance();  // ':'
      slice = std::make_unique<SliceExpr>(loc, nullptr);
      slice->start = std::move(start);
      if (!at_op(":") && !at_op("]") && !at_op(",")) slice->stop = parse_expression(true);
      if (skip_op(":")) {
        if (!at_op("]") && !at_op(",")) slice->step = parse_expression(true);
      }
    }
    expect_op("]");
    if (slice) {
      if (!args.empty()) fail_at(current(), "unsupported construct: multi-dimensional slice");
      slice->object = std::move(object);
      return slice;
    }
    if (args.empty()) fail_at(current(), "expected a subscript expression");
    ExprPtr index;
    if (args.size() == 1) {
      index = std::move(args[0]);
    } else {
      auto tuple = std::make_unique<SequenceExpr>(ExprKind::kTuple, loc);
      tuple->items = std::move(args);
      index = std::move(tuple);
    }
    return std::make_unique<GetItemExpr>(loc, std::move(object), std::move(index));
  }

  CallArguments parse_call_args() {
    CallArguments args;
    const Token& open = current();
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail_at(open, "invalid syntax for function call expression");
    };
    while (!at_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (at_op(")")) break;
      }
      if (skip_op("*")) {
        ensure(!args.star_args && !args.star_kwargs);
        args.star_args = parse_expression(true);
      } else if (skip_op("**")) {
        ensure(!args.star_kwargs);
        args.star_kwargs = parse_expression(true);
      } else if (current().kind == TokenKind::kName && peek().kind == TokenKind::kOperator &&
                 peek().text == "=") {
        ensure(!args.star_kwargs);
        std::string key = advance().text;
        advance();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!args.star_args && !args.star_kwargs && args.keyword.empty());
        args.positional.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto call = std::make_unique<CallExpr>(current().location, std::move(callee));
    call->args = parse_call_args();
    return call;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (at_op(".") && peek().kind == TokenKind::kName) {
      advance();
      name += "." + advance().text;
    }
    return name;
  }

  std::unique_ptr<FilterExpr> parse_filter_call(ExprPtr operand) {
    Location loc = current().location;
    auto filter = std::make_unique<FilterExpr>(loc, std::move(operand), parse_dotted_name());
    if (at_op("(")) filter->args = parse_call_args();
    return filter;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (skip_op("|")) {
        node = parse_filter_call(std::move(node));
      } else if (at_name("is")) {
        Location loc = current().location;
        advance();
        bool negated = skip_name("not");
        auto test = std::make_unique<TestExpr>(loc, std::move(node), parse_dotted_name(), negated);
        const Token& t = current();
        if (at_op("(")) {
          test->args = parse_call_args();
        } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
                    t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat || at_op("[") ||
                    at_op("{")) &&
                   !at_name("else") && !at_name("or") && !at_name("and")) {
          if (at_name("is")) fail_at(t, "You cannot chain multiple tests with is");
          test->args.positional.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(test);
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;
  std::vector<Location> open_blocks_;
};

}  // namespace

Body parse_template(std::vector<Token> tokens) {
  Parser parser(std::move(tokens));
  return parser.parse();
}

}  // namespace ponder::text::jinja
