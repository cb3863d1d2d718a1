// Syntax tree of a parsed Jinja template: expressions and statements, each with the source
// location the evaluator reports errors at. Built by the parser, read-only afterwards.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/operators.h"
#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

// ---------------------------------------------------------------- expressions

enum class ExprKind {
  kLiteral,    // 1, 'a', true, none
  kName,       // x
  kList,       // [a, b]
  kTuple,      // (a, b)
  kDict,       // {'k': v}
  kGetAttr,    // x.name
  kGetItem,    // x[i]
  kSlice,      // x[a:b:c]
  kCall,       // f(a, k=v)
  kFilter,     // x | f(args)
  kTest,       // x is [not] t(args)
  kUnary,      // -x, +x
  kNot,        // not x
  kBinary,     // x + y, x ~ y, ...
  kAnd,        // x and y
  kOr,         // x or y
  kCompare,    // a < b <= c, a in b
  kCondition,  // a if c else b
};

struct Expr {
  explicit Expr(ExprKind k, Location loc) : kind(k), location(loc) {}
  virtual ~Expr() = default;
  ExprKind kind;
  Location location;
};
using ExprPtr = std::unique_ptr<Expr>;

struct CallArguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

struct LiteralExpr : Expr {
  LiteralExpr(Location loc, Value v) : Expr(ExprKind::kLiteral, loc), value(std::move(v)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(Location loc, std::string n) : Expr(ExprKind::kName, loc), name(std::move(n)) {}
  std::string name;
};

// kList or kTuple.
struct SequenceExpr : Expr {
  SequenceExpr(ExprKind k, Location loc) : Expr(k, loc) {}
  std::vector<ExprPtr> items;
};

struct DictExpr : Expr {
  explicit DictExpr(Location loc) : Expr(ExprKind::kDict, loc) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetAttrExpr : Expr {
  GetAttrExpr(Location loc, ExprPtr obj, std::string n)
      : Expr(ExprKind::kGetAttr, loc), object(std::move(obj)), name(std::move(n)) {}
  ExprPtr object;
  std::string name;
};

struct GetItemExpr : Expr {
  GetItemExpr(Location loc, ExprPtr obj, ExprPtr idx)
      : Expr(ExprKind::kGetItem, loc), object(std::move(obj)), index(std::move(idx)) {}
  ExprPtr object;
  ExprPtr index;
};

struct SliceExpr : Expr {
  SliceExpr(Location loc, ExprPtr obj) : Expr(ExprKind::kSlice, loc), object(std::move(obj)) {}
  ExprPtr object;
  ExprPtr start;  // each may be null
  ExprPtr stop;
  ExprPtr step;
};

struct CallExpr : Expr {
  CallExpr(Location loc, ExprPtr fn) : Expr(ExprKind::kCall, loc), callee(std::move(fn)) {}
  ExprPtr callee;
  CallArguments args;
};

// Also used, with a null operand, for the filters of `{% filter %}` and `{% set x | f %}`.
struct FilterExpr : Expr {
  FilterExpr(Location loc, ExprPtr in, std::string n)
      : Expr(ExprKind::kFilter, loc), operand(std::move(in)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  CallArguments args;
};

struct TestExpr : Expr {
  TestExpr(Location loc, ExprPtr in, std::string n, bool neg)
      : Expr(ExprKind::kTest, loc), operand(std::move(in)), name(std::move(n)), negated(neg) {}
  ExprPtr operand;
  std::string name;
  bool negated;
  CallArguments args;
};

struct UnaryExpr : Expr {
  UnaryExpr(Location loc, UnaryOp o, ExprPtr in)
      : Expr(ExprKind::kUnary, loc), op(o), operand(std::move(in)) {}
  UnaryOp op;
  ExprPtr operand;
};

struct NotExpr : Expr {
  NotExpr(Location loc, ExprPtr in) : Expr(ExprKind::kNot, loc), operand(std::move(in)) {}
  ExprPtr operand;
};

// kBinary (with op), kAnd, kOr.
struct BinaryExpr : Expr {
  BinaryExpr(ExprKind k, Location loc, BinaryOp o, ExprPtr l, ExprPtr r)
      : Expr(k, loc), op(o), left(std::move(l)), right(std::move(r)) {}
  BinaryOp op;
  ExprPtr left;
  ExprPtr right;
};

struct CompareExpr : Expr {
  CompareExpr(Location loc, ExprPtr first_operand)
      : Expr(ExprKind::kCompare, loc), first(std::move(first_operand)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

struct ConditionExpr : Expr {
  ConditionExpr(Location loc, ExprPtr t, ExprPtr c, ExprPtr e)
      : Expr(ExprKind::kCondition, loc),
        then_value(std::move(t)),
        condition(std::move(c)),
        else_value(std::move(e)) {}
  ExprPtr then_value;
  ExprPtr condition;
  ExprPtr else_value;  // null: Undefined when the condition is false
};

// ---------------------------------------------------------------- statements

enum class StmtKind {
  kText,         // template data
  kOutput,       // {{ expr }}
  kIf,           // {% if %}{% elif %}{% else %}{% endif %}
  kFor,          // {% for %}{% else %}{% endfor %}
  kSet,          // {% set target = expr %}
  kSetBlock,     // {% set target [| filters] %}...{% endset %}
  kMacro,        // {% macro name(params) %}...{% endmacro %}
  kCallBlock,    // {% call [(params)] macro(args) %}...{% endcall %}
  kFilterBlock,  // {% filter f %}...{% endfilter %}
  kWith,         // {% with a = 1 %}...{% endwith %}
  kScope,        // {% generation %}...{% endgeneration %} (transformers' assistant-mask tag)
  kBreak,
  kContinue,
};

struct Stmt {
  explicit Stmt(StmtKind k, Location loc) : kind(k), location(loc) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  Location location;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Left-hand side of `set` / `for` / `with`: one name, a tuple of names, or `ns.attr`.
struct AssignTarget {
  std::vector<std::string> names;  // one entry unless unpacking
  bool unpack = false;             // `a, b = ...` / `for k, v in ...`
  std::string attribute;           // non-empty for `set ns.attr = ...` (names[0] is `ns`)
};

struct TextStmt : Stmt {
  TextStmt(Location loc, std::string t) : Stmt(StmtKind::kText, loc), text(std::move(t)) {}
  std::string text;
};

struct OutputStmt : Stmt {
  OutputStmt(Location loc, ExprPtr e) : Stmt(StmtKind::kOutput, loc), expr(std::move(e)) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  explicit IfStmt(Location loc) : Stmt(StmtKind::kIf, loc) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body else_body;
};

// Each statement that opens a scope records the names its scope starts with as Undefined
// (`undefined_locals`, filled by analyze_scopes() in scope.h): jinja2 decides at compile time
// that a name a scope assigns before any read is local there, hiding outer values even from
// macros called before the assignment runs.

struct ForStmt : Stmt {
  explicit ForStmt(Location loc) : Stmt(StmtKind::kFor, loc) {}
  AssignTarget target;
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  Body body;
  Body else_body;
  std::vector<std::string> body_locals;  // undefined at the start of each iteration
  std::vector<std::string> else_locals;
};

struct SetStmt : Stmt {
  explicit SetStmt(Location loc) : Stmt(StmtKind::kSet, loc) {}
  AssignTarget target;
  ExprPtr value;
};

struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(Location loc) : Stmt(StmtKind::kSetBlock, loc) {}
  AssignTarget target;
  std::vector<std::unique_ptr<FilterExpr>> filters;  // applied in order to the rendered body
  Body body;
  std::vector<std::string> undefined_locals;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct MacroStmt : Stmt {
  explicit MacroStmt(Location loc) : Stmt(StmtKind::kMacro, loc) {}
  std::string name;
  std::vector<MacroParam> params;
  Body body;
  std::vector<std::string> undefined_locals;
};

struct CallBlockStmt : Stmt {
  explicit CallBlockStmt(Location loc) : Stmt(StmtKind::kCallBlock, loc) {}
  std::vector<MacroParam> caller_params;
  std::unique_ptr<CallExpr> call;
  Body body;  // becomes `caller()` inside the called macro
  std::vector<std::string> undefined_locals;
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(Location loc) : Stmt(StmtKind::kFilterBlock, loc) {}
  std::vector<std::unique_ptr<FilterExpr>> filters;
  Body body;
  std::vector<std::string> undefined_locals;
};

struct WithStmt : Stmt {
  explicit WithStmt(Location loc) : Stmt(StmtKind::kWith, loc) {}
  std::vector<std::pair<AssignTarget, ExprPtr>> assignments;
  Body body;
  std::vector<std::string> undefined_locals;
};

struct ScopeStmt : Stmt {
  explicit ScopeStmt(Location loc) : Stmt(StmtKind::kScope, loc) {}
  Body body;
  std::vector<std::string> undefined_locals;
};

struct LoopControlStmt : Stmt {
  LoopControlStmt(StmtKind k, Location loc) : Stmt(k, loc) {}
};

}  // namespace ponder::text::jinja
