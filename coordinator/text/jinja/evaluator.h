// Evaluator: executes a parsed template (ast.h) against variables with jinja2's semantics.
// Internal to the jinja module: it throws TemplateError, which Template::render turns into Status.
//
// Scoping follows jinja2: for-loop iterations, macros, call/filter/set/with blocks get their own
// scope (if-blocks do not), starting with the Undefined locals scope.h computed.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coordinator/text/jinja/ast.h"
#include "coordinator/text/jinja/template.h"
#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

// One scope of variables; lookups fall through to the parent.
struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;

  const Value* lookup(const std::string& name) const;
};

class Evaluator {
 public:
  explicit Evaluator(const TemplateOptions& options) : options_(options) {}
  // Breaks the reference cycles a render made (see cycles_).
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // `root_locals`: names the top-level scope starts with as Undefined (analyze_scopes()).
  std::string render(const Body& body, const std::vector<std::string>& root_locals,
                     const Value& variables);

  // jinja2's environment.getattr (x.name) and getitem (x[key]) under the immutable sandbox.
  Value get_attribute(const Value& object, std::string_view name);
  Value get_item(const Value& object, const Value& key);
  // Calls a function value; Undefined and non-callables fail like Python.
  Value call(const Value& callee, CallArgs& args);
  Value call_filter(std::string_view name, const Value& operand, CallArgs& args);
  bool call_test(std::string_view name, const Value& operand, CallArgs& args);
  // The items a for loop over `v` sees (dict keys, string characters, ...).
  ValueList iterate(const Value& v);

  const TemplateOptions& options() const { return options_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, const std::shared_ptr<Frame>& frame, std::string& out);
  Flow exec(const Stmt& stmt, const std::shared_ptr<Frame>& frame, std::string& out);
  Flow exec_for(const ForStmt& stmt, const std::shared_ptr<Frame>& frame, std::string& out);
  void assign(const AssignTarget& target, const Value& value, Frame& frame);
  // A macro (or a call block's `caller`) closing over `closure`; `locals` start Undefined.
  Value make_macro(const std::string& name, const std::vector<MacroParam>* params, const Body* body,
                   const std::vector<std::string>* locals, std::shared_ptr<Frame> closure);
  std::string render_filtered(const std::vector<std::unique_ptr<FilterExpr>>& filters,
                              const Body& body, const std::vector<std::string>& locals,
                              const std::shared_ptr<Frame>& frame);

  Value eval(const Expr& expr, const std::shared_ptr<Frame>& frame);
  Value eval_inner(const Expr& expr, const std::shared_ptr<Frame>& frame);
  CallArgs eval_args(const CallArguments& args, const std::shared_ptr<Frame>& frame);
  Value eval_slice(const SliceExpr& expr, const std::shared_ptr<Frame>& frame);

  std::shared_ptr<Frame> make_globals();
  // A new scope under `parent` whose `locals` start out Undefined.
  static std::shared_ptr<Frame> child_frame(const std::shared_ptr<Frame>& parent,
                                            const std::vector<std::string>& locals);

  const TemplateOptions& options_;
  int call_depth_ = 0;
  int eval_depth_ = 0;

  // What a template can make refer to itself, which shared_ptr alone would never free: a frame
  // holding a macro that closes over it (every macro is one), a namespace stored in itself, or
  // loop.changed() remembering the loop. Kept for the render, emptied when it ends (no value of
  // a render outlives it: render() returns text).
  struct Cycles {
    std::vector<std::shared_ptr<Frame>> closures;
    std::vector<Value> namespaces;
    std::vector<std::shared_ptr<std::optional<Value>>> changed;
  } cycles_;
};

}  // namespace ponder::text::jinja
