// Value: the dynamic type Jinja templates compute with, modelled on the Python objects jinja2
// sees (None, bool, int, float, str, list, tuple, dict, Namespace, callables, Undefined).
//
// Python truthiness, equality, ordering, str() and repr(); built from nlohmann::json for the
// messages, tools and keyword arguments of a chat template. Lists and dicts are immutable and
// shared (as in jinja2's immutable sandbox); only a Namespace can be changed, through `set`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ponder::text::jinja {

class Value;
class Dict;
using ValueList = std::vector<Value>;

// Arguments of a call from a template: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A callable: a global (range, namespace, raise_exception...), a bound method ('a'.upper) or a
// macro. Throws TemplateError on misuse.
struct Function {
  std::string name;
  std::function<Value(CallArgs& args)> call;
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kNamespace,
    kFunction,
    kGenerator,  // what select / map / unique / items ... return: iterable once computed,
                 // always truthy, no len() or subscripts (items held eagerly)
  };

  // Undefined, like jinja2's default Undefined: prints as "", is falsy, iterates as empty, and
  // fails on attribute access, arithmetic and calls. `hint` is the message of that failure.
  Value() = default;
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double d);
  static Value string(std::string s);
  static Value list(ValueList items);
  static Value tuple(ValueList items);
  static Value dict(Dict d);
  static Value make_namespace(Dict attributes);
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);
  // `deferred_error` non-empty: iterating fails with it (jinja2 raises when the generator runs).
  static Value generator(ValueList items, std::string deferred_error = {});

  // JSON null -> None, objects -> dict (in the json's iteration order), arrays -> list.
  // Unsigned integers beyond int64 become floats.
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // bool, int or float (Python's numbers.Number; bool is an int subclass).
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }  // or tuple
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }
  bool is_generator() const { return kind_ == Kind::kGenerator; }

  bool as_bool() const { return bool_; }
  // int value of a bool or int.
  int64_t as_int() const { return is_bool() ? (bool_ ? 1 : 0) : int_; }
  // float value of a bool, int or float.
  double as_float() const;
  const std::string& as_string() const { return string_; }  // also the hint of an Undefined
  const ValueList& as_list() const;                         // list, tuple or generator items
  const Dict& as_dict() const;                              // dict or namespace attributes
  Dict& namespace_attributes() const;
  const Function& as_function() const { return *function_; }
  // Identity of a shared object (list, dict, namespace, function); nullptr for scalars.
  const void* identity() const;

  // Python semantics.
  bool truthy() const;
  std::string str() const;             // str(x), with Undefined -> ""
  std::string repr() const;            // repr(x)
  std::string_view type_name() const;  // 'str', 'int', 'dict', 'NoneType', ...

 private:
  Kind kind_ = Kind::kUndefined;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::string string_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Function> function_;
};

// Insertion-ordered mapping with Python key equality (1, 1.0 and True are the same key).
class Dict {
 public:
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Inserts, or replaces the value in place keeping the key's position.
  void set(const Value& key, Value value);
  void set(std::string_view key, Value value);
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> string_index_;
};

// Python ==.
bool equals(const Value& a, const Value& b);
// Python ordering for <, <=, >, >=: negative, zero or positive. Throws TemplateError (TypeError)
// for values Python cannot order (None < 1, str < int, Undefined < anything).
int compare(const Value& a, const Value& b);

}  // namespace ponder::text::jinja
