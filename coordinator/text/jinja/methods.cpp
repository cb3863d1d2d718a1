// Methods of str, dict and list values callable from templates, with Python's semantics.
#include "coordinator/text/jinja/methods.h"

#include <algorithm>
#include <array>

#include "coordinator/text/jinja/arguments.h"
#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/operators.h"
#include "coordinator/text/jinja/py_string.h"

namespace ponder::text::jinja {
namespace {

using Method = Value (*)(const Value& self, CallArgs& args);

std::optional<std::string> optional_string(const BoundArgs& a, size_t i, std::string_view what) {
  if (!a.has(i) || a.get(i, Value::none()).is_none()) return std::nullopt;
  const Value& v = a.get(i, Value::none());
  if (!v.is_string()) {
    fail("TypeError: " + std::string(what) + " arg must be None or str, not " +
         std::string(v.type_name()));
  }
  return v.as_string();
}

Value string_list(std::vector<std::string> parts) {
  ValueList out;
  out.reserve(parts.size());
  for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::list(std::move(out));
}

// startswith/endswith accept a str or a tuple of str, and optional start/end code-point bounds.
Value affix_test(const Value& self, CallArgs& args, bool prefix) {
  const char* name = prefix ? "startswith" : "endswith";
  BoundArgs a(name, args, {"prefix", "start", "end"});
  const Value& what = a.required(0);
  std::u32string text = py::decode(self.as_string());
  int64_t n = static_cast<int64_t>(text.size());
  auto clamp = [n](int64_t i) { return i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n); };
  int64_t begin = clamp(a.get_int(1, 0));
  int64_t end = clamp(a.get_int(2, n));
  std::u32string window =
      begin <= end ? text.substr(static_cast<size_t>(begin), static_cast<size_t>(end - begin))
                   : std::u32string();
  auto matches = [&](const Value& candidate) {
    if (!candidate.is_string()) {
      fail(std::string("TypeError: ") + name + " first arg must be str or a tuple of str, not " +
           std::string(candidate.type_name()));
    }
    std::u32string c = py::decode(candidate.as_string());
    if (begin > end || c.size() > window.size()) return false;
    return prefix ? window.compare(0, c.size(), c) == 0
                  : window.compare(window.size() - c.size(), c.size(), c) == 0;
  };
  if (what.is_tuple()) {
    for (const Value& candidate : what.as_list()) {
      if (matches(candidate)) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  return Value::boolean(matches(what));
}

Value str_strip_impl(const Value& self, CallArgs& args, const char* name, bool left, bool right) {
  BoundArgs a(name, args, {"chars"});
  return Value::string(py::strip(self.as_string(), optional_string(a, 0, name), left, right));
}

Value str_split_impl(const Value& self, CallArgs& args, bool from_right) {
  BoundArgs a(from_right ? "rsplit" : "split", args, {"sep", "maxsplit"});
  auto sep = optional_string(a, 0, "sep");
  int64_t maxsplit = a.get_int(1, -1);
  return string_list(from_right ? py::rsplit(self.as_string(), sep, maxsplit)
                                : py::split(self.as_string(), sep, maxsplit));
}

Value str_find_impl(const Value& self, CallArgs& args, const char* name, bool from_right,
                    bool raise) {
  BoundArgs a(name, args, {"sub", "start", "end"});
  const Value& sub = a.required(0);
  if (!sub.is_string())
    fail(std::string("TypeError: must be str, not ") + std::string(sub.type_name()));
  std::u32string text = py::decode(self.as_string());
  int64_t n = static_cast<int64_t>(text.size());
  auto clamp = [n](int64_t i) { return i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n); };
  int64_t begin = clamp(a.get_int(1, 0));
  int64_t end = clamp(a.get_int(2, n));
  std::u32string needle = py::decode(sub.as_string());
  int64_t found = -1;
  if (begin <= end && static_cast<int64_t>(needle.size()) <= end - begin) {
    std::u32string_view window(text.data() + begin, static_cast<size_t>(end - begin));
    size_t hit = from_right ? window.rfind(needle) : window.find(needle);
    if (hit != std::u32string_view::npos) found = begin + static_cast<int64_t>(hit);
  }
  if (found < 0 && raise) fail("ValueError: substring not found");
  return Value::integer(found);
}

Value str_justify(const Value& self, CallArgs& args, const char* name, char mode) {
  BoundArgs a(name, args, {"width", "fillchar"});
  int64_t width = checked_width(a.get_int(0, 0));
  std::string fill = a.get_string(1, " ");
  if (py::length(fill) != 1)
    fail("TypeError: The fill character must be exactly one character long");
  const std::string& s = self.as_string();
  int64_t len = static_cast<int64_t>(py::length(s));
  if (width <= len) return self;
  int64_t total = width - len;
  int64_t left = mode == 'l' ? 0 : (mode == 'r' ? total : total / 2 + (total & width & 1));
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += fill;
  return Value::string(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value str_all(const Value& self, CallArgs& args, const char* name) {
  expect_no_args(name, args);
  std::u32string text = py::decode(self.as_string());
  if (text.empty()) return Value::boolean(false);
  return Value::boolean(std::all_of(text.begin(), text.end(), Pred));
}

bool is_alnum_cp(char32_t c) { return py::is_alpha_cp(c) || py::is_digit_cp(c); }

Value str_case_test(const Value& self, CallArgs& args, bool want_upper) {
  expect_no_args(want_upper ? "isupper" : "islower", args);
  bool any_cased = false;
  for (char32_t c : py::decode(self.as_string())) {
    if (want_upper ? py::is_lower_cp(c) : py::is_upper_cp(c)) return Value::boolean(false);
    any_cased = any_cased || py::is_cased(c);
  }
  return Value::boolean(any_cased);
}

Value str_partition(const Value& self, CallArgs& args, bool from_right) {
  BoundArgs a(from_right ? "rpartition" : "partition", args, {"sep"});
  std::string sep = a.required(0).str();
  if (sep.empty()) fail("ValueError: empty separator");
  const std::string& s = self.as_string();
  size_t hit = from_right ? s.rfind(sep) : s.find(sep);
  if (hit == std::string::npos) {
    return from_right ? Value::tuple({Value::string(""), Value::string(""), self})
                      : Value::tuple({self, Value::string(""), Value::string("")});
  }
  return Value::tuple({Value::string(s.substr(0, hit)), Value::string(sep),
                       Value::string(s.substr(hit + sep.size()))});
}

Value str_method(const Value& self, std::string_view name, CallArgs& args) {
  const std::string& s = self.as_string();
  auto no_args = [&](std::string_view n) { expect_no_args(n, args); };
  if (name == "upper") return no_args(name), Value::string(py::upper(s));
  if (name == "lower") return no_args(name), Value::string(py::lower(s));
  if (name == "title") return no_args(name), Value::string(py::title(s));
  if (name == "capitalize") return no_args(name), Value::string(py::capitalize(s));
  if (name == "swapcase") return no_args(name), Value::string(py::swapcase(s));
  if (name == "casefold") return no_args(name), Value::string(py::lower(s));
  if (name == "strip") return str_strip_impl(self, args, "strip", true, true);
  if (name == "lstrip") return str_strip_impl(self, args, "lstrip", true, false);
  if (name == "rstrip") return str_strip_impl(self, args, "rstrip", false, true);
  if (name == "split") return str_split_impl(self, args, false);
  if (name == "rsplit") return str_split_impl(self, args, true);
  if (name == "splitlines") {
    BoundArgs a("splitlines", args, {"keepends"});
    return string_list(py::splitlines(s, a.get_bool(0, false)));
  }
  if (name == "startswith") return affix_test(self, args, true);
  if (name == "endswith") return affix_test(self, args, false);
  if (name == "find") return str_find_impl(self, args, "find", false, false);
  if (name == "rfind") return str_find_impl(self, args, "rfind", true, false);
  if (name == "index") return str_find_impl(self, args, "index", false, true);
  if (name == "rindex") return str_find_impl(self, args, "rindex", true, true);
  if (name == "count") {
    BoundArgs a("count", args, {"sub"});
    return Value::integer(py::count(s, a.required(0).str()));
  }
  if (name == "replace") {
    BoundArgs a("replace", args, {"old", "new", "count"});
    const Value& old_v = a.required(0);
    const Value& new_v = a.required(1);
    if (!old_v.is_string() || !new_v.is_string())
      fail("TypeError: replace() arguments must be str");
    return Value::string(py::replace(s, old_v.as_string(), new_v.as_string(), a.get_int(2, -1)));
  }
  if (name == "join") {
    BoundArgs a("join", args, {"iterable"});
    const Value& items = a.required(0);
    std::string out;
    ValueList parts;
    if (items.is_string()) {
      for (char32_t c : py::decode(items.as_string())) {
        std::string ch;
        py::append_utf8(ch, c);
        parts.push_back(Value::string(ch));
      }
    } else if (items.is_dict()) {
      for (const auto& [k, v] : items.as_dict().items()) parts.push_back(k);
    } else {
      parts = items.as_list();
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].is_string()) {
        fail("TypeError: sequence item " + std::to_string(i) + ": expected str instance, " +
             std::string(parts[i].type_name()) + " found");
      }
      if (i > 0) out += s;
      out += parts[i].as_string();
    }
    return Value::string(std::move(out));
  }
  if (name == "format") return Value::string(brace_format(s, args));
  if (name == "center") return str_justify(self, args, "center", 'c');
  if (name == "ljust") return str_justify(self, args, "ljust", 'l');
  if (name == "rjust") return str_justify(self, args, "rjust", 'r');
  if (name == "zfill") {
    BoundArgs a("zfill", args, {"width"});
    int64_t width = checked_width(a.get_int(0, 0));
    int64_t len = static_cast<int64_t>(py::length(s));
    if (width <= len) return self;
    size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') +
                         s.substr(sign));
  }
  if (name == "partition") return str_partition(self, args, false);
  if (name == "rpartition") return str_partition(self, args, true);
  if (name == "removeprefix" || name == "removesuffix") {
    BoundArgs a(name, args, {"affix"});
    std::string affix = a.required(0).str();
    if (name == "removeprefix") {
      return Value::string(s.rfind(affix, 0) == 0 ? s.substr(affix.size()) : s);
    }
    bool ends =
        s.size() >= affix.size() && s.compare(s.size() - affix.size(), affix.size(), affix) == 0;
    return Value::string(ends && !affix.empty() ? s.substr(0, s.size() - affix.size()) : s);
  }
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
    return str_all<py::is_digit_cp>(self, args, "isdigit");
  }
  if (name == "isalpha") return str_all<py::is_alpha_cp>(self, args, "isalpha");
  if (name == "isalnum") return str_all<is_alnum_cp>(self, args, "isalnum");
  if (name == "isspace") return str_all<py::is_space>(self, args, "isspace");
  if (name == "isupper") return str_case_test(self, args, true);
  if (name == "islower") return str_case_test(self, args, false);
  if (name == "istitle") {
    expect_no_args(name, args);
    return Value::boolean(!s.empty() && py::title(s) == s &&
                          std::any_of(s.begin(), s.end(), [](char c) {
                            return std::isalpha(static_cast<unsigned char>(c));
                          }));
  }
  fail("internal: unhandled str method " + std::string(name));
}

constexpr std::array<std::string_view, 39> kStrMethods = {
    "upper",      "lower",     "title",     "capitalize", "swapcase",     "casefold",
    "strip",      "lstrip",    "rstrip",    "split",      "rsplit",       "splitlines",
    "startswith", "endswith",  "find",      "rfind",      "index",        "rindex",
    "count",      "replace",   "join",      "format",     "center",       "ljust",
    "rjust",      "zfill",     "partition", "rpartition", "removeprefix", "removesuffix",
    "isdigit",    "isdecimal", "isnumeric", "isalpha",    "isalnum",      "isspace",
    "isupper",    "islower",   "istitle"};

constexpr std::array<std::string_view, 5> kDictMethods = {"items", "keys", "values", "get", "copy"};
constexpr std::array<std::string_view, 7> kUnsafeDictMethods = {
    "pop", "popitem", "setdefault", "update", "clear", "fromkeys", "__setitem__"};
constexpr std::array<std::string_view, 3> kListMethods = {"index", "count", "copy"};
constexpr std::array<std::string_view, 8> kUnsafeListMethods = {
    "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};

template <size_t N>
bool listed(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

Value dict_method(const Value& self, std::string_view name, CallArgs& args) {
  const Dict& d = self.as_dict();
  if (name == "items") {
    expect_no_args(name, args);
    ValueList out;
    for (const auto& [k, v] : d.items()) out.push_back(Value::tuple({k, v}));
    return Value::list(std::move(out));
  }
  if (name == "keys" || name == "values") {
    expect_no_args(name, args);
    ValueList out;
    for (const auto& [k, v] : d.items()) out.push_back(name == "keys" ? k : v);
    return Value::list(std::move(out));
  }
  if (name == "get") {
    BoundArgs a("get", args, {"key", "default"});
    const Value* v = d.find(a.required(0));
    return v != nullptr ? *v : a.get(1, Value::none());
  }
  expect_no_args(name, args);  // copy
  return self;
}

Value list_method(const Value& self, std::string_view name, CallArgs& args) {
  const ValueList& items = self.as_list();
  if (name == "copy") {
    expect_no_args(name, args);
    return Value::list(items);
  }
  BoundArgs a(name, args, {"value"});
  const Value& needle = a.required(0);
  int64_t n = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!equals(items[i], needle)) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(i));
    ++n;
  }
  if (name == "index") fail("ValueError: " + needle.repr() + " is not in list");
  return Value::integer(n);
}

[[noreturn]] void unsafe(const Value& self, std::string_view name) {
  fail("SecurityError: access to attribute '" + std::string(name) + "' of '" +
       std::string(self.type_name()) + "' object is unsafe (chat templates cannot modify values)");
}

}  // namespace

std::optional<Value> find_method(const Value& object, std::string_view name) {
  std::string method(name);
  if (object.is_string() && listed(kStrMethods, name)) {
    return Value::function(
        method, [object, method](CallArgs& args) { return str_method(object, method, args); });
  }
  if (object.is_dict()) {
    if (listed(kDictMethods, name)) {
      return Value::function(
          method, [object, method](CallArgs& args) { return dict_method(object, method, args); });
    }
    if (listed(kUnsafeDictMethods, name)) {
      return Value::function(method,
                             [object, method](CallArgs&) -> Value { unsafe(object, method); });
    }
  }
  if (object.is_list()) {
    if (listed(kListMethods, name) && !(object.is_tuple() && name == "copy")) {
      return Value::function(
          method, [object, method](CallArgs& args) { return list_method(object, method, args); });
    }
    if (!object.is_tuple() && listed(kUnsafeListMethods, name)) {
      return Value::function(method,
                             [object, method](CallArgs&) -> Value { unsafe(object, method); });
    }
  }
  return std::nullopt;
}

}  // namespace ponder::text::jinja
