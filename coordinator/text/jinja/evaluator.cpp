// Evaluator: statement execution and expression evaluation over the parsed template.
#include "coordinator/text/jinja/evaluator.h"

#include <ctime>
#include <optional>

#include "coordinator/text/jinja/arguments.h"
#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/filters.h"
#include "coordinator/text/jinja/methods.h"
#include "coordinator/text/jinja/py_string.h"

namespace ponder::text::jinja {
namespace {

constexpr int kMaxCallDepth = 200;
constexpr int kMaxEvalDepth = 2000;    // nested sub-expressions, macro calls included
constexpr int64_t kMaxRange = 100000;  // jinja2's sandbox MAX_RANGE

std::string single_quoted(std::string_view s) {
  std::string out(1, '\'');
  out.append(s);
  out += '\'';
  return out;
}

std::string no_attribute(const Value& object, std::string_view name) {
  return single_quoted(std::string(object.type_name()) + " object") + " has no attribute " +
         single_quoted(name);
}

// dict(*args, **kwargs) as Python builds it.
Dict build_dict(const CallArgs& args, std::string_view function) {
  Dict d;
  if (args.positional.size() > 1) {
    fail("TypeError: " + std::string(function) + " expected at most 1 positional argument");
  }
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict() || src.is_namespace()) {
      for (const auto& [k, v] : src.as_dict().items()) d.set(k, v);
    } else if (src.is_list()) {
      for (const Value& pair : src.as_list()) {
        if (!pair.is_list() || pair.as_list().size() != 2) {
          fail("ValueError: dictionary update sequence element has wrong length; 2 is required");
        }
        d.set(pair.as_list()[0], pair.as_list()[1]);
      }
    } else {
      fail("TypeError: '" + std::string(src.type_name()) + "' object is not iterable");
    }
  }
  for (const auto& [k, v] : args.keyword) d.set(k, v);
  return d;
}

// Python slice index normalisation (PySlice_AdjustIndices).
int64_t adjust_index(std::optional<int64_t> index, int64_t length, int64_t step, bool is_start) {
  if (!index) {
    if (is_start) return step < 0 ? length - 1 : 0;
    return step < 0 ? -1 : length;
  }
  int64_t i = *index;
  if (i < 0) {
    i += length;
    if (i < 0) i = step < 0 ? -1 : 0;
  } else if (i >= length) {
    i = step < 0 ? length - 1 : length;
  }
  return i;
}

struct DepthGuard {
  explicit DepthGuard(int* depth) : depth_(depth) {
    if (++*depth_ > kMaxCallDepth) {
      --*depth_;
      fail("RecursionError: macro calls nested more than " + std::to_string(kMaxCallDepth) +
           " deep");
    }
  }
  ~DepthGuard() { --*depth_; }
  int* depth_;
};

}  // namespace

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f != nullptr; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

Evaluator::~Evaluator() {
  for (const std::shared_ptr<Frame>& frame : cycles_.closures) frame->vars.clear();
  for (const Value& ns : cycles_.namespaces) ns.namespace_attributes() = Dict();
  for (const auto& memory : cycles_.changed) memory->reset();
}

std::shared_ptr<Frame> Evaluator::child_frame(const std::shared_ptr<Frame>& parent,
                                              const std::vector<std::string>& locals) {
  auto frame = std::make_shared<Frame>();
  frame->parent = parent;
  for (const std::string& name : locals) {
    frame->vars[name] = Value::undefined(single_quoted(name) + " is undefined");
  }
  return frame;
}

std::string Evaluator::render(const Body& body, const std::vector<std::string>& root_locals,
                              const Value& variables) {
  auto root = std::make_shared<Frame>();
  root->parent = make_globals();
  for (const auto& [key, value] : variables.as_dict().items()) root->vars[key.str()] = value;
  for (const std::string& name : root_locals) {
    root->vars[name] = Value::undefined(single_quoted(name) + " is undefined");
  }
  std::string out;
  exec_body(body, root, out);
  return out;
}

// ------------------------------------------------------------------ statements

Evaluator::Flow Evaluator::exec_body(const Body& body, const std::shared_ptr<Frame>& frame,
                                     std::string& out) {
  for (const StmtPtr& stmt : body) {
    Flow flow = exec(*stmt, frame, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Evaluator::Flow Evaluator::exec(const Stmt& stmt, const std::shared_ptr<Frame>& frame,
                                std::string& out) {
  try {
    switch (stmt.kind) {
      case StmtKind::kText:
        out += static_cast<const TextStmt&>(stmt).text;
        break;
      case StmtKind::kOutput:
        out += eval(*static_cast<const OutputStmt&>(stmt).expr, frame).str();
        break;
      case StmtKind::kIf: {
        const auto& s = static_cast<const IfStmt&>(stmt);
        for (const auto& [cond, body] : s.branches) {
          if (eval(*cond, frame).truthy()) return exec_body(body, frame, out);
        }
        return exec_body(s.else_body, frame, out);
      }
      case StmtKind::kFor:
        return exec_for(static_cast<const ForStmt&>(stmt), frame, out);
      case StmtKind::kSet: {
        const auto& s = static_cast<const SetStmt&>(stmt);
        assign(s.target, eval(*s.value, frame), *frame);
        break;
      }
      case StmtKind::kSetBlock: {
        const auto& s = static_cast<const SetBlockStmt&>(stmt);
        assign(s.target,
               Value::string(render_filtered(s.filters, s.body, s.undefined_locals, frame)),
               *frame);
        break;
      }
      case StmtKind::kMacro: {
        const auto& s = static_cast<const MacroStmt&>(stmt);
        frame->vars[s.name] = make_macro(s.name, &s.params, &s.body, &s.undefined_locals, frame);
        break;
      }
      case StmtKind::kCallBlock: {
        const auto& s = static_cast<const CallBlockStmt&>(stmt);
        Value callee = eval(*s.call->callee, frame);
        CallArgs args = eval_args(s.call->args, frame);
        args.keyword.emplace_back(
            "caller", make_macro("caller", &s.caller_params, &s.body, &s.undefined_locals, frame));
        out += call(callee, args).str();
        break;
      }
      case StmtKind::kFilterBlock: {
        const auto& s = static_cast<const FilterBlockStmt&>(stmt);
        out += render_filtered(s.filters, s.body, s.undefined_locals, frame);
        break;
      }
      case StmtKind::kWith: {
        const auto& s = static_cast<const WithStmt&>(stmt);
        auto scope = child_frame(frame, s.undefined_locals);
        for (const auto& [target, value] : s.assignments) {
          assign(target, eval(*value, frame), *scope);
        }
        return exec_body(s.body, scope, out);
      }
      case StmtKind::kScope: {
        const auto& s = static_cast<const ScopeStmt&>(stmt);
        exec_body(s.body, child_frame(frame, s.undefined_locals), out);
        break;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
  } catch (TemplateError& e) {
    if (!e.has_location()) e.set_location(stmt.location);
    throw;
  }
  return Flow::kNormal;
}

Evaluator::Flow Evaluator::exec_for(const ForStmt& stmt, const std::shared_ptr<Frame>& frame,
                                    std::string& out) {
  ValueList items = iterate(eval(*stmt.iterable, frame));
  if (stmt.filter) {
    ValueList kept;
    for (Value& item : items) {
      auto probe = std::make_shared<Frame>();
      probe->parent = frame;
      assign(stmt.target, item, *probe);
      if (eval(*stmt.filter, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(stmt.else_body, child_frame(frame, stmt.else_locals), out);
    return Flow::kNormal;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  auto last_changed = std::make_shared<std::optional<Value>>();
  cycles_.changed.push_back(last_changed);
  for (int64_t i = 0; i < n; ++i) {
    auto scope = child_frame(frame, stmt.body_locals);
    assign(stmt.target, items[i], *scope);
    Dict loop;
    loop.set("index", Value::integer(i + 1));
    loop.set("index0", Value::integer(i));
    loop.set("revindex", Value::integer(n - i));
    loop.set("revindex0", Value::integer(n - i - 1));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == n - 1));
    loop.set("length", Value::integer(n));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    if (i > 0) loop.set("previtem", items[i - 1]);
    if (i + 1 < n) loop.set("nextitem", items[i + 1]);
    loop.set("cycle", Value::function("loop.cycle", [i](CallArgs& args) {
               if (args.positional.empty()) fail("TypeError: no items for cycling given");
               return args.positional[static_cast<size_t>(i) % args.positional.size()];
             }));
    loop.set("changed", Value::function("loop.changed", [last_changed](CallArgs& args) {
               Value current = Value::tuple(args.positional);
               if (last_changed->has_value() && equals(**last_changed, current))
                 return Value::boolean(false);
               *last_changed = current;
               return Value::boolean(true);
             }));
    scope->vars["loop"] = Value::dict(std::move(loop));
    if (exec_body(stmt.body, scope, out) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Evaluator::assign(const AssignTarget& target, const Value& value, Frame& frame) {
  if (!target.attribute.empty()) {
    const Value* ns = frame.lookup(target.names[0]);
    if (ns == nullptr || !ns->is_namespace()) {
      fail("cannot assign attribute '" + target.attribute + "' on " +
           (ns == nullptr ? "undefined '" + target.names[0] + "'"
                          : "non-namespace object '" + target.names[0] + "'"));
    }
    if (target.attribute[0] == '_') {
      fail(
          "SecurityError: chat templates cannot store underscore-prefixed attributes on a "
          "namespace, but got '" +
          target.attribute + "'");
    }
    ns->namespace_attributes().set(target.attribute, value);
    return;
  }
  if (!target.unpack) {
    frame.vars[target.names[0]] = value;
    return;
  }
  ValueList parts = iterate(value);
  if (parts.size() != target.names.size()) {
    fail(parts.size() > target.names.size() ? "ValueError: too many values to unpack (expected " +
                                                  std::to_string(target.names.size()) + ")"
                                            : "ValueError: not enough values to unpack (expected " +
                                                  std::to_string(target.names.size()) + ", got " +
                                                  std::to_string(parts.size()) + ")");
  }
  for (size_t i = 0; i < parts.size(); ++i) frame.vars[target.names[i]] = parts[i];
}

Value Evaluator::make_macro(const std::string& name, const std::vector<MacroParam>* params,
                            const Body* body, const std::vector<std::string>* locals,
                            std::shared_ptr<Frame> closure) {
  if (cycles_.closures.empty() || cycles_.closures.back() != closure)
    cycles_.closures.push_back(closure);
  return Value::function(name, [this, name, params, body, locals, closure](CallArgs& args) {
    DepthGuard guard(&call_depth_);
    auto scope = child_frame(closure, *locals);
    ValueList varargs;
    std::vector<bool> bound(params->size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < params->size()) {
        scope->vars[(*params)[i].name] = args.positional[i];
        bound[i] = true;
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    Dict kwargs;
    for (const auto& [key, value] : args.keyword) {
      size_t i = 0;
      while (i < params->size() && (*params)[i].name != key) ++i;
      if (i < params->size()) {
        if (bound[i])
          fail("TypeError: macro '" + name + "' got multiple values for argument '" + key + "'");
        scope->vars[key] = value;
        bound[i] = true;
      } else if (key == "caller") {
        scope->vars["caller"] = value;
      } else {
        kwargs.set(key, value);
      }
    }
    for (size_t i = 0; i < params->size(); ++i) {
      if (bound[i]) continue;
      const MacroParam& p = (*params)[i];
      scope->vars[p.name] = p.default_value
                                ? eval(*p.default_value, scope)
                                : Value::undefined("parameter '" + p.name + "' was not provided");
    }
    scope->vars["varargs"] = Value::tuple(std::move(varargs));
    scope->vars["kwargs"] = Value::dict(std::move(kwargs));
    std::string out;
    exec_body(*body, scope, out);
    return Value::string(std::move(out));
  });
}

std::string Evaluator::render_filtered(const std::vector<std::unique_ptr<FilterExpr>>& filters,
                                       const Body& body, const std::vector<std::string>& locals,
                                       const std::shared_ptr<Frame>& frame) {
  auto scope = child_frame(frame, locals);
  std::string text;
  exec_body(body, scope, text);
  Value v = Value::string(std::move(text));
  for (const auto& filter : filters) {
    try {
      CallArgs args = eval_args(filter->args, frame);
      v = call_filter(filter->name, v, args);
    } catch (TemplateError& e) {
      if (!e.has_location()) e.set_location(filter->location);
      throw;
    }
  }
  return v.str();
}

// ------------------------------------------------------------------ expressions

Value Evaluator::eval(const Expr& expr, const std::shared_ptr<Frame>& frame) {
  struct Depth {
    explicit Depth(int* d) : d_(d) { ++*d_; }
    ~Depth() { --*d_; }
    int* d_;
  } depth(&eval_depth_);
  try {
    if (eval_depth_ > kMaxEvalDepth) fail("expression nested too deeply to evaluate");
    return eval_inner(expr, frame);
  } catch (TemplateError& e) {
    if (!e.has_location()) e.set_location(expr.location);
    throw;
  }
}

Value Evaluator::eval_inner(const Expr& expr, const std::shared_ptr<Frame>& frame) {
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return static_cast<const LiteralExpr&>(expr).value;
    case ExprKind::kName: {
      const std::string& name = static_cast<const NameExpr&>(expr).name;
      const Value* v = frame->lookup(name);
      return v != nullptr ? *v : Value::undefined(single_quoted(name) + " is undefined");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      ValueList items;
      for (const ExprPtr& item : static_cast<const SequenceExpr&>(expr).items) {
        items.push_back(eval(*item, frame));
      }
      return expr.kind == ExprKind::kList ? Value::list(std::move(items))
                                          : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Dict d;
      for (const auto& [key, value] : static_cast<const DictExpr&>(expr).items) {
        Value k = eval(*key, frame);
        if (k.is_list() && !k.is_tuple()) fail("TypeError: unhashable type: 'list'");
        if (k.is_dict()) fail("TypeError: unhashable type: 'dict'");
        d.set(k, eval(*value, frame));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kGetAttr: {
      const auto& e = static_cast<const GetAttrExpr&>(expr);
      return get_attribute(eval(*e.object, frame), e.name);
    }
    case ExprKind::kGetItem: {
      const auto& e = static_cast<const GetItemExpr&>(expr);
      Value object = eval(*e.object, frame);
      return get_item(object, eval(*e.index, frame));
    }
    case ExprKind::kSlice:
      return eval_slice(static_cast<const SliceExpr&>(expr), frame);
    case ExprKind::kCall: {
      const auto& e = static_cast<const CallExpr&>(expr);
      Value callee = eval(*e.callee, frame);
      CallArgs args = eval_args(e.args, frame);
      return call(callee, args);
    }
    case ExprKind::kFilter: {
      const auto& e = static_cast<const FilterExpr&>(expr);
      Value operand = eval(*e.operand, frame);
      CallArgs args = eval_args(e.args, frame);
      return call_filter(e.name, operand, args);
    }
    case ExprKind::kTest: {
      const auto& e = static_cast<const TestExpr&>(expr);
      Value operand = eval(*e.operand, frame);
      CallArgs args = eval_args(e.args, frame);
      return Value::boolean(call_test(e.name, operand, args) != e.negated);
    }
    case ExprKind::kUnary: {
      const auto& e = static_cast<const UnaryExpr&>(expr);
      return apply_unary(e.op, eval(*e.operand, frame));
    }
    case ExprKind::kNot:
      return Value::boolean(!eval(*static_cast<const NotExpr&>(expr).operand, frame).truthy());
    case ExprKind::kBinary: {
      const auto& e = static_cast<const BinaryExpr&>(expr);
      Value left = eval(*e.left, frame);
      return apply_binary(e.op, left, eval(*e.right, frame));
    }
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      const auto& e = static_cast<const BinaryExpr&>(expr);
      Value left = eval(*e.left, frame);
      bool short_circuit = expr.kind == ExprKind::kAnd ? !left.truthy() : left.truthy();
      return short_circuit ? left : eval(*e.right, frame);
    }
    case ExprKind::kCompare: {
      const auto& e = static_cast<const CompareExpr&>(expr);
      Value left = eval(*e.first, frame);
      for (const auto& [op, operand] : e.rest) {
        Value right = eval(*operand, frame);
        if (!apply_compare(op, left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kCondition: {
      const auto& e = static_cast<const ConditionExpr&>(expr);
      if (eval(*e.condition, frame).truthy()) return eval(*e.then_value, frame);
      if (e.else_value) return eval(*e.else_value, frame);
      return Value::undefined("the inline if-expression on line " +
                              std::to_string(expr.location.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  fail("internal: unknown expression kind");
}

CallArgs Evaluator::eval_args(const CallArguments& args, const std::shared_ptr<Frame>& frame) {
  CallArgs out;
  for (const ExprPtr& e : args.positional) out.positional.push_back(eval(*e, frame));
  if (args.star_args) {
    for (Value& v : iterate(eval(*args.star_args, frame))) out.positional.push_back(std::move(v));
  }
  for (const auto& [name, e] : args.keyword) out.keyword.emplace_back(name, eval(*e, frame));
  if (args.star_kwargs) {
    Value kw = eval(*args.star_kwargs, frame);
    if (!kw.is_dict()) fail("TypeError: argument after ** must be a mapping");
    for (const auto& [k, v] : kw.as_dict().items()) out.keyword.emplace_back(k.str(), v);
  }
  return out;
}

Value Evaluator::eval_slice(const SliceExpr& expr, const std::shared_ptr<Frame>& frame) {
  Value object = eval(*expr.object, frame);
  auto bound = [&](const ExprPtr& e) -> std::optional<int64_t> {
    if (!e) return std::nullopt;
    Value v = eval(*e, frame);
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) {
      fail("TypeError: slice indices must be integers or None");
    }
    return v.as_int();
  };
  std::optional<int64_t> start = bound(expr.start);
  std::optional<int64_t> stop = bound(expr.stop);
  int64_t step = bound(expr.step).value_or(1);
  if (step == 0) fail("ValueError: slice step cannot be zero");
  if (object.is_undefined()) fail(undefined_message(object));
  std::u32string chars;
  bool is_string = object.is_string();
  if (is_string) {
    chars = py::decode(object.as_string());
  } else if (!object.is_list()) {
    // jinja2 compiles slices to a plain Python subscript, so this is a TypeError.
    fail(object.is_dict()
             ? "TypeError: unhashable type: 'slice'"
             : "TypeError: '" + std::string(object.type_name()) + "' object is not subscriptable");
  }
  int64_t length = is_string ? static_cast<int64_t>(chars.size())
                             : static_cast<int64_t>(object.as_list().size());
  int64_t i = adjust_index(start, length, step, true);
  int64_t end = adjust_index(stop, length, step, false);
  std::u32string out_chars;
  ValueList out_items;
  for (; step > 0 ? i < end : i > end; i += step) {
    if (is_string) {
      out_chars += chars[static_cast<size_t>(i)];
    } else {
      out_items.push_back(object.as_list()[static_cast<size_t>(i)]);
    }
  }
  if (is_string) return Value::string(py::encode(out_chars));
  return object.is_tuple() ? Value::tuple(std::move(out_items)) : Value::list(std::move(out_items));
}

// ------------------------------------------------------------------ object protocol

Value Evaluator::get_attribute(const Value& object, std::string_view name) {
  if (object.is_undefined()) fail(undefined_message(object));
  if (!name.empty() && name[0] == '_') {
    return Value::undefined("access to attribute " + single_quoted(name) + " of " +
                            single_quoted(object.type_name()) + " object is unsafe.");
  }
  if (object.is_namespace()) {
    const Value* v = object.as_dict().find(name);
    return v != nullptr ? *v : Value::undefined(no_attribute(object, name));
  }
  if (std::optional<Value> method = find_method(object, name)) return *method;
  if (object.is_dict()) {
    const Value* v = object.as_dict().find(name);
    if (v != nullptr) return *v;
  }
  return Value::undefined(no_attribute(object, name));
}

Value Evaluator::get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) fail(undefined_message(object));
  switch (object.kind()) {
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      if (const Value* v = object.as_dict().find(key)) return *v;
      break;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      if (key.is_int() || key.is_bool()) {
        int64_t n = static_cast<int64_t>(object.as_list().size());
        int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
        if (i >= 0 && i < n) return object.as_list()[static_cast<size_t>(i)];
      }
      break;
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        std::u32string chars = py::decode(object.as_string());
        int64_t n = static_cast<int64_t>(chars.size());
        int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
        if (i >= 0 && i < n)
          return Value::string(py::encode(chars.substr(static_cast<size_t>(i), 1)));
      }
      break;
    default:
      break;
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(single_quoted(std::string(object.type_name()) + " object") +
                          " has no element " + key.repr());
}

Value Evaluator::call(const Value& callee, CallArgs& args) {
  if (callee.is_function()) return callee.as_function().call(args);
  if (callee.is_undefined()) fail(undefined_message(callee));
  fail("TypeError: '" + std::string(callee.type_name()) + "' object is not callable");
}

Value Evaluator::call_filter(std::string_view name, const Value& operand, CallArgs& args) {
  FilterFn fn = find_filter(name);
  if (fn == nullptr) fail("unknown or unsupported filter '" + std::string(name) + "'");
  return fn(*this, operand, args);
}

bool Evaluator::call_test(std::string_view name, const Value& operand, CallArgs& args) {
  TestFn fn = find_test(name);
  if (fn == nullptr) fail("unknown or unsupported test '" + std::string(name) + "'");
  return fn(*this, operand, args);
}

ValueList Evaluator::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return v.as_list();
    case Value::Kind::kGenerator:
      if (!v.as_string().empty()) fail(v.as_string());
      return v.as_list();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& [key, value] : v.as_dict().items()) keys.push_back(key);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (char32_t c : py::decode(v.as_string())) {
        std::string s;
        py::append_utf8(s, c);
        chars.push_back(Value::string(std::move(s)));
      }
      return chars;
    }
    default:
      fail("TypeError: '" + std::string(v.type_name()) + "' object is not iterable");
  }
}

std::shared_ptr<Frame> Evaluator::make_globals() {
  auto globals = std::make_shared<Frame>();
  auto& g = globals->vars;
  g["range"] = Value::function("range", [](CallArgs& args) {
    if (!args.keyword.empty()) fail("TypeError: range() takes no keyword arguments");
    std::vector<int64_t> a;
    for (const Value& v : args.positional) {
      if (!v.is_int() && !v.is_bool()) {
        fail("TypeError: '" + std::string(v.type_name()) +
             "' object cannot be interpreted as an integer");
      }
      a.push_back(v.as_int());
    }
    if (a.empty() || a.size() > 3) fail("TypeError: range expected 1 to 3 arguments");
    int64_t start = a.size() == 1 ? 0 : a[0];
    int64_t stop = a.size() == 1 ? a[0] : a[1];
    int64_t step = a.size() == 3 ? a[2] : 1;
    if (step == 0) fail("ValueError: range() arg 3 must not be zero");
    ValueList out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (static_cast<int64_t>(out.size()) >= kMaxRange) {
        fail(
            "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE "
            "(100000).");
      }
      out.push_back(Value::integer(i));
    }
    return Value::list(std::move(out));
  });
  g["dict"] =
      Value::function("dict", [](CallArgs& args) { return Value::dict(build_dict(args, "dict")); });
  g["namespace"] = Value::function("namespace", [this](CallArgs& args) {
    Dict attrs = build_dict(args, "namespace");
    for (const auto& [key, value] : attrs.items()) {
      if (key.is_string() && !key.as_string().empty() && key.as_string()[0] == '_') {
        fail(
            "SecurityError: chat templates cannot store underscore-prefixed attributes on a "
            "namespace, but got '" +
            key.as_string() + "'");
      }
    }
    Value ns = Value::make_namespace(std::move(attrs));
    cycles_.namespaces.push_back(ns);
    return ns;
  });
  g["raise_exception"] = Value::function("raise_exception", [](CallArgs& args) -> Value {
    BoundArgs a("raise_exception", args, {"message"});
    TemplateError e(a.required(0).str());
    e.set_raised_by_template();
    throw e;
  });
  g["strftime_now"] = Value::function("strftime_now", [this](CallArgs& args) {
    BoundArgs a("strftime_now", args, {"format"});
    std::string format = a.required(0).str();
    std::tm tm{};
    if (options_.clock) {
      tm = options_.clock();
    } else {
      std::time_t now = std::time(nullptr);
      localtime_r(&now, &tm);
    }
    if (format.empty()) return Value::string("");
    std::string buf(format.size() * 4 + 64, '\0');
    while (true) {
      size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
      if (n > 0 || buf.size() > 65536) {
        buf.resize(n);
        return Value::string(std::move(buf));
      }
      buf.resize(buf.size() * 2);
    }
  });
  g["joiner"] = Value::function("joiner", [](CallArgs& args) {
    BoundArgs a("joiner", args, {"sep"});
    std::string sep = a.get_string(0, ", ");
    auto used = std::make_shared<bool>(false);
    return Value::function("joiner", [sep, used](CallArgs&) {
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return Value::string(sep);
    });
  });
  return globals;
}

}  // namespace ponder::text::jinja
