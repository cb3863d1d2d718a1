// jinja2's built-in tests (`x is defined`, `x is none`, `x is divisibleby 3`, ...) over Value.
#include <string>
#include <unordered_map>

#include "coordinator/text/jinja/arguments.h"
#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/evaluator.h"
#include "coordinator/text/jinja/filters.h"
#include "coordinator/text/jinja/operators.h"
#include "coordinator/text/jinja/py_string.h"

namespace ponder::text::jinja {
namespace {

bool t_defined(Evaluator&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Evaluator&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Evaluator&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Evaluator&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(Evaluator&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Evaluator&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Evaluator&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Evaluator&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_number(Evaluator&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Evaluator&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Evaluator&, const Value& v, CallArgs&) { return v.is_dict(); }
// Undefined counts: it defines __call__ (which raises).
bool t_callable(Evaluator&, const Value& v, CallArgs&) {
  return v.is_function() || v.is_undefined();
}
bool t_iterable(Evaluator&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() || v.is_generator();
}
bool t_sequence(Evaluator& ev, const Value& v, CallArgs& a) {
  return !v.is_generator() && t_iterable(ev, v, a);
}
bool t_escaped(Evaluator&, const Value&, CallArgs&) { return false; }

bool t_lower(Evaluator&, const Value& v, CallArgs&) {
  std::string s = v.str();
  bool cased = false;
  for (char32_t c : py::decode(s)) {
    if (py::is_upper_cp(c)) return false;
    cased = cased || py::is_cased(c);
  }
  return cased;
}

bool t_upper(Evaluator&, const Value& v, CallArgs&) {
  bool cased = false;
  for (char32_t c : py::decode(v.str())) {
    if (py::is_lower_cp(c)) return false;
    cased = cased || py::is_cased(c);
  }
  return cased;
}

// jinja2: value % 2 == 1 / == 0, with Python's % (floats and bools work too).
bool t_odd(Evaluator&, const Value& v, CallArgs&) {
  return equals(apply_binary(BinaryOp::kMod, v, Value::integer(2)), Value::integer(1));
}
bool t_even(Evaluator&, const Value& v, CallArgs&) {
  return equals(apply_binary(BinaryOp::kMod, v, Value::integer(2)), Value::integer(0));
}

bool t_divisibleby(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("divisibleby", args, {"num"});
  Value r = apply_binary(BinaryOp::kMod, v, a.required(0));
  return equals(r, Value::integer(0));
}

template <CompareOp Op>
bool t_compare(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("compare", args, {"other"});
  return apply_compare(Op, v, a.required(0));
}

bool t_in(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("in", args, {"seq"});
  return contains(a.required(0), v);
}

bool t_sameas(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("sameas", args, {"other"});
  const Value& other = a.required(0);
  if (v.kind() != other.kind()) return false;
  if (v.is_none() || v.is_undefined()) return true;
  if (v.is_bool()) return v.as_bool() == other.as_bool();
  if (v.identity() != nullptr) return v.identity() == other.identity();
  return equals(v, other) && (v.is_int() ? v.as_int() >= -5 && v.as_int() <= 256 : false);
}

bool t_filter(Evaluator&, const Value& v, CallArgs&) {
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}
bool t_test(Evaluator&, const Value& v, CallArgs&) {
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

const std::unordered_map<std::string_view, TestFn>& test_table() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"boolean", t_boolean},
      {"true", t_true},
      {"false", t_false},
      {"integer", t_integer},
      {"float", t_float},
      {"number", t_number},
      {"string", t_string},
      {"mapping", t_mapping},
      {"iterable", t_iterable},
      {"sequence", t_sequence},
      {"callable", t_callable},
      {"escaped", t_escaped},
      {"lower", t_lower},
      {"upper", t_upper},
      {"odd", t_odd},
      {"even", t_even},
      {"divisibleby", t_divisibleby},
      {"sameas", t_sameas},
      {"in", t_in},
      {"eq", t_compare<CompareOp::kEq>},
      {"equalto", t_compare<CompareOp::kEq>},
      {"==", t_compare<CompareOp::kEq>},
      {"ne", t_compare<CompareOp::kNe>},
      {"!=", t_compare<CompareOp::kNe>},
      {"lt", t_compare<CompareOp::kLt>},
      {"lessthan", t_compare<CompareOp::kLt>},
      {"<", t_compare<CompareOp::kLt>},
      {"le", t_compare<CompareOp::kLe>},
      {"<=", t_compare<CompareOp::kLe>},
      {"gt", t_compare<CompareOp::kGt>},
      {"greaterthan", t_compare<CompareOp::kGt>},
      {">", t_compare<CompareOp::kGt>},
      {"ge", t_compare<CompareOp::kGe>},
      {">=", t_compare<CompareOp::kGe>},
      {"filter", t_filter},
      {"test", t_test},
  };
  return table;
}

}  // namespace

TestFn find_test(std::string_view name) {
  auto it = test_table().find(name);
  return it == test_table().end() ? nullptr : it->second;
}

}  // namespace ponder::text::jinja
