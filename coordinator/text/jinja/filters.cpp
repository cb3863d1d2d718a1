// jinja2's built-in filters and tests, reimplemented over Value with jinja2's semantics.
#include "coordinator/text/jinja/filters.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <unordered_map>

#include "coordinator/text/jinja/arguments.h"
#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/evaluator.h"
#include "coordinator/text/jinja/json_dumps.h"
#include "coordinator/text/jinja/methods.h"
#include "coordinator/text/jinja/operators.h"
#include "coordinator/text/jinja/py_string.h"

namespace ponder::text::jinja {
namespace {

// ------------------------------------------------------------------ helpers

// jinja2's ignore_case postprocessor: lower-case strings, leave the rest.
Value ignore_case(const Value& v) {
  return v.is_string() ? Value::string(py::lower(v.as_string())) : v;
}

// Path parts of an attribute argument: "a.b.0" -> ["a", "b", 0].
std::vector<Value> attribute_parts(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_none() || attribute.is_undefined()) return parts;
  if (!attribute.is_string()) return {attribute};
  for (const std::string& part : py::split(attribute.as_string(), std::string("."), -1)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
    int64_t index = 0;
    // A digit part too long for int64 stays a string key: no list is that long either.
    bool fits =
        digits && std::from_chars(part.data(), part.data() + part.size(), index).ec == std::errc();
    parts.push_back(fits ? Value::integer(index) : Value::string(part));
  }
  return parts;
}

Value lookup_path(Evaluator& ev, Value item, const std::vector<Value>& parts,
                  const Value* fallback = nullptr) {
  for (const Value& part : parts) {
    item = ev.get_item(item, part);
    if (fallback != nullptr && item.is_undefined()) item = *fallback;
  }
  return item;
}

// Sort key of make_multi_attrgetter: one value per comma-separated attribute.
Value sort_key(Evaluator& ev, const Value& item, const Value& attribute, bool case_sensitive) {
  if (attribute.is_none() || attribute.is_undefined()) {
    return case_sensitive ? item : ignore_case(item);
  }
  std::vector<Value> attrs;
  if (attribute.is_string()) {
    for (const std::string& a : py::split(attribute.as_string(), std::string(","), -1)) {
      attrs.push_back(Value::string(a));
    }
  } else {
    attrs.push_back(attribute);
  }
  ValueList key;
  for (const Value& a : attrs) {
    Value v = lookup_path(ev, item, attribute_parts(a));
    key.push_back(case_sensitive ? v : ignore_case(v));
  }
  return Value::list(std::move(key));
}

ValueList sorted_values(ValueList items, std::vector<Value> keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Python's sort is stable and, with reverse=True, keeps equal items in original order.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? compare(keys[b], keys[a]) < 0 : compare(keys[a], keys[b]) < 0;
  });
  ValueList out;
  for (size_t i : order) out.push_back(items[i]);
  return out;
}

// jinja2's select / map / unique / batch / items are generators: their errors surface when the
// result is iterated, and the result itself is always truthy.
template <class Compute>
Value lazily(Compute compute) {
  try {
    return Value::generator(compute());
  } catch (const TemplateError& e) {
    return Value::generator({}, e.message());
  }
}

// ------------------------------------------------------------------ filters

Value f_abs(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("abs", args);
  if (v.is_float()) return Value::number(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) return Value::integer(std::llabs(v.as_int()));
  fail("TypeError: bad operand type for abs(): '" + std::string(v.type_name()) + "'");
}

Value f_attr(Evaluator& ev, const Value& v, CallArgs& args) {
  // Python getattr only: a dict's keys are not attributes.
  BoundArgs a("attr", args, {"name"});
  std::string name = a.required(0).str();
  if (v.is_undefined()) fail(undefined_message(v));
  if (v.is_dict()) {
    if (std::optional<Value> method = find_method(v, name)) return *method;
    return Value::undefined("'dict object' has no attribute '" + name + "'");
  }
  return ev.get_attribute(v, name);
}

Value f_batch(Evaluator& ev, const Value& v, CallArgs& args) {
  BoundArgs a("batch", args, {"linecount", "fill_with"});
  int64_t count = a.get_int(0, 0);
  Value fill = a.get(1, Value::none());
  if (!fill.is_none()) checked_width(count);
  return lazily([&] {
    if (count <= 0) fail("ValueError: batch size must be positive");
    ValueList rows;
    ValueList current;
    for (Value& item : ev.iterate(v)) {
      if (static_cast<int64_t>(current.size()) == count) {
        rows.push_back(Value::list(std::move(current)));
        current.clear();
      }
      current.push_back(std::move(item));
    }
    if (!current.empty()) {
      while (!fill.is_none() && static_cast<int64_t>(current.size()) < count)
        current.push_back(fill);
      rows.push_back(Value::list(std::move(current)));
    }
    return rows;
  });
}

Value f_capitalize(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("capitalize", args);
  return Value::string(py::capitalize(v.str()));
}

Value f_center(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("center", args, {"width"});
  std::string s = v.str();
  int64_t width = checked_width(a.get_int(0, 80));
  int64_t len = static_cast<int64_t>(py::length(s));
  if (width <= len) return Value::string(s);
  int64_t total = width - len;
  int64_t left = total / 2 + (total & width & 1);
  return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(total - left), ' '));
}

Value f_length(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("length", args);
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return Value::integer(0);
    case Value::Kind::kString:
      return Value::integer(static_cast<int64_t>(py::length(v.as_string())));
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return Value::integer(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::kDict:
      return Value::integer(static_cast<int64_t>(v.as_dict().size()));
    default:
      fail("TypeError: object of type '" + std::string(v.type_name()) + "' has no len()");
  }
}

Value f_default(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (a.get_bool(1, false) && !v.truthy())) {
    return a.get(0, Value::string(""));
  }
  return v;
}

Value f_dictsort(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fail("TypeError: dictsort expects a mapping");
  bool case_sensitive = a.get_bool(0, false);
  std::string by = a.get_string(1, "key");
  if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
  ValueList items;
  std::vector<Value> keys;
  for (const auto& [k, val] : v.as_dict().items()) {
    items.push_back(Value::tuple({k, val}));
    const Value& key = by == "key" ? k : val;
    keys.push_back(case_sensitive ? key : ignore_case(key));
  }
  return Value::list(sorted_values(std::move(items), std::move(keys), a.get_bool(2, false)));
}

Value f_escape(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("escape", args);
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value::string(std::move(out));
}

Value f_first(Evaluator& ev, const Value& v, CallArgs& args) {
  expect_no_args("first", args);
  ValueList items = ev.iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Evaluator& ev, const Value& v, CallArgs& args) {
  expect_no_args("last", args);
  if (v.is_generator()) fail("TypeError: 'generator' object is not reversible");
  ValueList items = ev.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

// Python float(str): strips whitespace, accepts underscores between digits, inf/nan.
bool parse_float(const std::string& text, double* out) {
  std::string s = py::strip(text, std::nullopt, true, true);
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() &&
        std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      continue;
    }
    cleaned += s[i];
  }
  if (cleaned.empty()) return false;
  std::string lower = py::lower(cleaned);
  std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double x = body == "nan" ? std::nan("") : INFINITY;
    *out = lower[0] == '-' ? -x : x;
    return true;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos) return false;
  char* end = nullptr;
  *out = std::strtod(cleaned.c_str(), &end);
  return end == cleaned.c_str() + cleaned.size();
}

Value f_float(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("float", args, {"default"});
  if (v.is_undefined()) fail(undefined_message(v));
  if (v.is_number()) return Value::number(v.as_float());
  double d = 0;
  if (v.is_string() && parse_float(v.as_string(), &d)) return Value::number(d);
  return a.get(0, Value::number(0.0));
}

Value f_int(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("int", args, {"default", "base"});
  if (v.is_undefined()) fail(undefined_message(v));
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float() && std::isfinite(v.as_float())) {
    return Value::integer(static_cast<int64_t>(v.as_float()));
  }
  if (v.is_string()) {
    std::string s = py::strip(v.as_string(), std::nullopt, true, true);
    std::string digits;
    for (char c : s) {
      if (c != '_') digits += c;
    }
    int64_t base = a.get_int(1, 10);
    if (!digits.empty()) {
      errno = 0;
      char* end = nullptr;
      long long parsed = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
      if (errno == 0 && end == digits.c_str() + digits.size()) return Value::integer(parsed);
    }
    double d = 0;
    if (parse_float(v.as_string(), &d) && std::isfinite(d)) {
      return Value::integer(static_cast<int64_t>(d));
    }
  }
  return a.get(0, Value::integer(0));
}

Value f_format(Evaluator&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    fail("can't handle positional and keyword arguments at the same time");
  }
  if (!args.keyword.empty()) {
    Dict d;
    for (const auto& [k, val] : args.keyword) d.set(k, val);
    return Value::string(percent_format(v.str(), Value::dict(std::move(d))));
  }
  return Value::string(percent_format(v.str(), Value::tuple(args.positional)));
}

Value f_indent(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("indent", args, {"width", "first", "blank"});
  if (v.is_undefined()) fail(undefined_message(v));
  if (!v.is_string()) fail("TypeError: indent needs a string, not " + std::string(v.type_name()));
  const Value& width = a.get(0, Value::integer(4));
  std::string indention =
      width.is_string()
          ? width.as_string()
          : std::string(static_cast<size_t>(std::max<int64_t>(0, checked_width(a.get_int(0, 4)))),
                        ' ');
  std::string s = v.str() + "\n";
  std::vector<std::string> lines = py::splitlines(s, false);
  std::string out;
  if (a.get_bool(2, false)) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + indention;
      out += lines[i];
    }
  } else {
    out = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      out += "\n";
      if (!lines[i].empty()) out += indention;
      out += lines[i];
    }
  }
  if (a.get_bool(1, false)) out = indention + out;
  return Value::string(std::move(out));
}

Value f_items(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("items", args);
  return lazily([&] {
    ValueList out;
    if (v.is_undefined()) return out;
    if (!v.is_dict()) fail("TypeError: Can only get item pairs from a mapping.");
    for (const auto& [k, val] : v.as_dict().items()) out.push_back(Value::tuple({k, val}));
    return out;
  });
}

Value f_join(Evaluator& ev, const Value& v, CallArgs& args) {
  BoundArgs a("join", args, {"d", "attribute"});
  std::string sep = a.get_string(0, "");
  std::vector<Value> parts = attribute_parts(a.get(1, Value::none()));
  std::string out;
  bool first = true;
  for (const Value& item : ev.iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += parts.empty() ? item.str() : lookup_path(ev, item, parts).str();
  }
  return Value::string(std::move(out));
}

Value f_list(Evaluator& ev, const Value& v, CallArgs& args) {
  expect_no_args("list", args);
  return Value::list(ev.iterate(v));
}

Value f_lower(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("lower", args);
  return Value::string(py::lower(v.str()));
}

Value f_upper(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("upper", args);
  return Value::string(py::upper(v.str()));
}

Value f_map(Evaluator& ev, const Value& v, CallArgs& args) {
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, val] : args.keyword) {
    if (k == "attribute") attribute = &val;
    if (k == "default") fallback = &val;
  }
  if (args.positional.empty() && attribute == nullptr) fail("map requires a filter argument");
  return lazily([&] {
    ValueList out;
    if (args.positional.empty()) {
      std::vector<Value> parts = attribute_parts(*attribute);
      for (const Value& item : ev.iterate(v)) out.push_back(lookup_path(ev, item, parts, fallback));
      return out;
    }
    std::string name = args.positional[0].str();
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const Value& item : ev.iterate(v)) {
      CallArgs copy = rest;
      out.push_back(ev.call_filter(name, item, copy));
    }
    return out;
  });
}

Value min_max(Evaluator& ev, const Value& v, CallArgs& args, bool want_max) {
  BoundArgs a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  ValueList items = ev.iterate(v);
  if (items.empty())
    return Value::undefined(std::string("No aggregated item, sequence was empty."));
  bool case_sensitive = a.get_bool(0, false);
  std::vector<Value> parts = attribute_parts(a.get(1, Value::none()));
  size_t best = 0;
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = parts.empty() ? items[i] : lookup_path(ev, items[i], parts);
    if (!case_sensitive) key = ignore_case(key);
    if (i == 0 || (want_max ? compare(key, best_key) > 0 : compare(key, best_key) < 0)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Value f_max(Evaluator& ev, const Value& v, CallArgs& args) { return min_max(ev, v, args, true); }
Value f_min(Evaluator& ev, const Value& v, CallArgs& args) { return min_max(ev, v, args, false); }

// select / reject / selectattr / rejectattr.
Value select_or_reject(Evaluator& ev, const Value& v, CallArgs& args, bool select, bool by_attr) {
  return lazily([&] {
    ValueList out;
    if (!v.truthy()) return out;
    size_t offset = by_attr ? 1 : 0;
    if (by_attr && args.positional.empty()) fail("Missing parameter for attribute name");
    std::vector<Value> parts = by_attr ? attribute_parts(args.positional[0]) : std::vector<Value>{};
    bool has_test = args.positional.size() > offset;
    std::string test = has_test ? args.positional[offset].str() : "";
    CallArgs test_args;
    if (has_test)
      test_args.positional.assign(args.positional.begin() + offset + 1, args.positional.end());
    test_args.keyword = args.keyword;
    for (const Value& item : ev.iterate(v)) {
      Value subject = by_attr ? lookup_path(ev, item, parts) : item;
      bool passed;
      if (has_test) {
        CallArgs copy = test_args;
        passed = ev.call_test(test, subject, copy);
      } else {
        passed = subject.truthy();
      }
      if (passed == select) out.push_back(item);
    }
    return out;
  });
}

Value f_select(Evaluator& ev, const Value& v, CallArgs& a) {
  return select_or_reject(ev, v, a, true, false);
}
Value f_reject(Evaluator& ev, const Value& v, CallArgs& a) {
  return select_or_reject(ev, v, a, false, false);
}
Value f_selectattr(Evaluator& ev, const Value& v, CallArgs& a) {
  return select_or_reject(ev, v, a, true, true);
}
Value f_rejectattr(Evaluator& ev, const Value& v, CallArgs& a) {
  return select_or_reject(ev, v, a, false, true);
}

Value f_replace(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("replace", args, {"old", "new", "count"});
  return Value::string(
      py::replace(v.str(), a.required(0).str(), a.required(1).str(), a.get_int(2, -1)));
}

Value f_reverse(Evaluator& ev, const Value& v, CallArgs& args) {
  expect_no_args("reverse", args);
  if (!v.is_string() && !v.is_list() && !v.is_dict() && !v.is_generator() && !v.is_undefined()) {
    fail("argument must be iterable");
  }
  if (v.is_string()) {
    std::u32string chars = py::decode(v.as_string());
    std::reverse(chars.begin(), chars.end());
    return Value::string(py::encode(chars));
  }
  // jinja2 returns reversed(value), an iterator.
  return lazily([&] {
    ValueList items = ev.iterate(v);
    std::reverse(items.begin(), items.end());
    return items;
  });
}

Value f_round(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("round", args, {"precision", "method"});
  int64_t precision = a.get_int(0, 0);
  std::string method = a.get_string(1, "common");
  if (method != "common" && method != "ceil" && method != "floor") {
    fail("method must be common, ceil or floor");
  }
  if (!v.is_number())
    fail("TypeError: type " + std::string(v.type_name()) + " doesn't define __round__ method");
  if (method == "common" && !v.is_float()) return Value::integer(v.as_int());
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float() * scale;
  double r = method == "ceil"    ? std::ceil(x)
             : method == "floor" ? std::floor(x)
                                 : std::nearbyint(x);
  return Value::number(r / scale);
}

Value f_safe(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("safe", args);
  return Value::string(v.str());  // Markup(value): a str
}

Value f_sort(Evaluator& ev, const Value& v, CallArgs& args) {
  BoundArgs a("sort", args, {"reverse", "case_sensitive", "attribute"});
  ValueList items = ev.iterate(v);
  std::vector<Value> keys;
  for (const Value& item : items)
    keys.push_back(sort_key(ev, item, a.get(2, Value::none()), a.get_bool(1, false)));
  return Value::list(sorted_values(std::move(items), std::move(keys), a.get_bool(0, false)));
}

Value f_string(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("string", args);
  return Value::string(v.str());
}

Value f_sum(Evaluator& ev, const Value& v, CallArgs& args) {
  BoundArgs a("sum", args, {"attribute", "start"});
  std::vector<Value> parts = attribute_parts(a.get(0, Value::none()));
  Value total = a.get(1, Value::integer(0));
  for (const Value& item : ev.iterate(v)) {
    total =
        apply_binary(BinaryOp::kAdd, total, parts.empty() ? item : lookup_path(ev, item, parts));
  }
  return total;
}

Value f_title(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("title", args);
  // jinja2 splits on runs of - whitespace ( { [ < and capitalizes each piece.
  std::u32string text = py::decode(v.str());
  auto is_boundary = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py::is_space(c);
  };
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    bool boundary = is_boundary(text[i]);
    while (j < text.size() && is_boundary(text[j]) == boundary) ++j;
    std::string piece = py::encode(std::u32string_view(text).substr(i, j - i));
    if (boundary) {
      out += piece;
    } else {
      size_t first_len = py::byte_offset(piece, 1);
      out += py::upper(piece.substr(0, first_len)) + py::lower(piece.substr(first_len));
    }
    i = j;
  }
  return Value::string(std::move(out));
}

Value f_tojson(Evaluator& ev, const Value& v, CallArgs& args) {
  JsonDumpOptions options;
  if (ev.options().tojson == TojsonStyle::kJinja2) {
    BoundArgs a("tojson", args, {"indent"});
    options.sort_keys = true;
    options.html_safe = true;
    if (a.has(0) && !a.get(0, Value::none()).is_none()) {
      const Value& indent = a.get(0, Value::none());
      options.indent =
          indent.is_string()
              ? indent.as_string()
              : std::string(
                    static_cast<size_t>(std::max<int64_t>(0, checked_width(indent.as_int()))), ' ');
    }
    return Value::string(json_dumps(v, options));
  }
  BoundArgs a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  options.ensure_ascii = a.get_bool(0, false);
  const Value& indent = a.get(1, Value::none());
  if (!indent.is_none()) {
    options.indent =
        indent.is_string()
            ? indent.as_string()
            : std::string(static_cast<size_t>(std::max<int64_t>(0, checked_width(indent.as_int()))),
                          ' ');
  }
  const Value& separators = a.get(2, Value::none());
  if (!separators.is_none()) {
    if (!separators.is_list() || separators.as_list().size() != 2) {
      fail("ValueError: separators must be a (item_separator, key_separator) pair");
    }
    options.item_separator = separators.as_list()[0].str();
    options.key_separator = separators.as_list()[1].str();
  }
  options.sort_keys = a.get_bool(3, false);
  return Value::string(json_dumps(v, options));
}

Value f_trim(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("trim", args, {"chars"});
  std::optional<std::string> chars;
  if (a.has(0) && !a.get(0, Value::none()).is_none()) chars = a.get(0, Value::none()).str();
  return Value::string(py::strip(v.str(), chars, true, true));
}

Value f_truncate(Evaluator&, const Value& v, CallArgs& args) {
  BoundArgs a("truncate", args, {"length", "killwords", "end", "leeway"});
  int64_t length = a.get_int(0, 255);
  std::string end = a.get_string(2, "...");
  int64_t leeway = a.get_int(3, 5);
  int64_t end_len = static_cast<int64_t>(py::length(end));
  if (length < end_len) fail("expected length >= " + std::to_string(end_len));
  if (v.is_undefined()) return v;
  if (!v.is_string()) {
    // jinja2 takes len() and slices the value itself: only short sequences survive.
    int64_t n = v.is_list()   ? static_cast<int64_t>(v.as_list().size())
                : v.is_dict() ? static_cast<int64_t>(v.as_dict().size())
                              : -1;
    if (n < 0) fail("TypeError: object of type '" + std::string(v.type_name()) + "' has no len()");
    if (n <= length + leeway) return v;
    fail("TypeError: truncate needs a string");
  }
  const std::string& s = v.as_string();
  if (static_cast<int64_t>(py::length(s)) <= length + leeway) return v;
  std::string head = s.substr(0, py::byte_offset(s, static_cast<size_t>(length - end_len)));
  if (a.get_bool(1, false)) return Value::string(head + end);
  return Value::string(py::rsplit(head, std::string(" "), 1)[0] + end);
}

Value f_unique(Evaluator& ev, const Value& v, CallArgs& args) {
  BoundArgs a("unique", args, {"case_sensitive", "attribute"});
  bool case_sensitive = a.get_bool(0, false);
  std::vector<Value> parts = attribute_parts(a.get(1, Value::none()));
  return lazily([&] {
    ValueList out;
    std::vector<Value> seen;
    for (const Value& item : ev.iterate(v)) {
      Value key = parts.empty() ? item : lookup_path(ev, item, parts);
      if (!case_sensitive) key = ignore_case(key);
      if ((key.is_list() && !key.is_tuple()) || key.is_dict()) {
        fail("TypeError: unhashable type: '" + std::string(key.type_name()) + "'");
      }
      bool dup =
          std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); });
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return out;
  });
}

Value f_wordcount(Evaluator&, const Value& v, CallArgs& args) {
  expect_no_args("wordcount", args);
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : py::decode(v.str())) {
    bool word = py::is_alpha_cp(c) || py::is_digit_cp(c) || c == '_';
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value::integer(n);
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", f_abs},           {"attr", f_attr},
      {"batch", f_batch},       {"capitalize", f_capitalize},
      {"center", f_center},     {"count", f_length},
      {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},
      {"escape", f_escape},     {"forceescape", f_escape},
      {"first", f_first},       {"float", f_float},
      {"format", f_format},     {"indent", f_indent},
      {"int", f_int},           {"items", f_items},
      {"join", f_join},         {"last", f_last},
      {"length", f_length},     {"list", f_list},
      {"lower", f_lower},       {"map", f_map},
      {"max", f_max},           {"min", f_min},
      {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace},   {"reverse", f_reverse},
      {"round", f_round},       {"safe", f_safe},
      {"select", f_select},     {"selectattr", f_selectattr},
      {"sort", f_sort},         {"string", f_string},
      {"sum", f_sum},           {"title", f_title},
      {"tojson", f_tojson},     {"trim", f_trim},
      {"truncate", f_truncate}, {"unique", f_unique},
      {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  auto it = filter_table().find(name);
  return it == filter_table().end() ? nullptr : it->second;
}

}  // namespace ponder::text::jinja
