// Python semantics of arithmetic, comparison, membership and string formatting on Values.
#include "coordinator/text/jinja/operators.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/py_string.h"

namespace ponder::text::jinja {
namespace {

[[noreturn]] void unsupported_operands(BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kAdd && a.is_string()) {
    fail("TypeError: can only concatenate str (not \"" + std::string(b.type_name()) + "\") to str");
  }
  fail("TypeError: unsupported operand type(s) for " + std::string(binary_op_symbol(op)) + ": '" +
       std::string(a.type_name()) + "' and '" + std::string(b.type_name()) + "'");
}

void check_overflow(bool overflow) {
  if (overflow) fail("OverflowError: integer result does not fit in 64 bits");
}

// Cap on what `str * n` / `list * n` may build, so a template cannot exhaust memory.
constexpr size_t kMaxRepeatBytes = size_t{1} << 28;

Value repeat(const Value& seq, int64_t times) {
  size_t unit = seq.is_string() ? seq.as_string().size() : seq.as_list().size() * sizeof(Value);
  if (times > 0 && unit > 0 && static_cast<uint64_t>(times) > kMaxRepeatBytes / unit) {
    fail("MemoryError: repetition result too large");
  }
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) {
    out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
  }
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

int checked_format_width(int64_t n) { return static_cast<int>(checked_width(n)); }

// Decimal digits at text[*pos...] as a bounded width; advances *pos past them.
int read_format_width(std::string_view text, size_t* pos) {
  int64_t n = 0;
  while (*pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9') {
    n = n * 10 + (text[(*pos)++] - '0');
    checked_format_width(n);
  }
  return static_cast<int>(n);
}

// snprintf into a string of the size it needs.
template <typename T>
std::string printf_string(const std::string& fmt, T value) {
  int n = std::snprintf(nullptr, 0, fmt.c_str(), value);
  if (n < 0) fail("ValueError: bad format " + fmt);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), fmt.c_str(), value);
  out.resize(static_cast<size_t>(n));
  return out;
}

// Python float floor division and modulo (result of % has the sign of the divisor).
double float_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0 && ((b < 0) != (mod < 0))) mod += b;
  if (mod == 0.0) mod = std::copysign(0.0, b);
  return mod;
}

double float_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double floored = std::floor(div);
  if (div - floored > 0.5) floored += 1.0;
  return floored;
}

double float_pow(double x, double y) {
  if (x == 0.0 && y < 0) fail("ZeroDivisionError: 0.0 cannot be raised to a negative power");
  if (x < 0 && y != std::floor(y))
    fail("unsupported: a negative number to a fractional power is complex");
  return std::pow(x, y);
}

Value arithmetic(BinaryOp op, const Value& a, const Value& b) {
  bool use_float = a.is_float() || b.is_float();
  if (op == BinaryOp::kDiv) {
    if (b.as_float() == 0.0) fail("ZeroDivisionError: division by zero");
    return Value::number(a.as_float() / b.as_float());
  }
  if (use_float) {
    double x = a.as_float();
    double y = b.as_float();
    switch (op) {
      case BinaryOp::kAdd:
        return Value::number(x + y);
      case BinaryOp::kSub:
        return Value::number(x - y);
      case BinaryOp::kMul:
        return Value::number(x * y);
      case BinaryOp::kFloorDiv:
        if (y == 0.0) fail("ZeroDivisionError: float floor division by zero");
        return Value::number(float_floordiv(x, y));
      case BinaryOp::kMod:
        if (y == 0.0) fail("ZeroDivisionError: float modulo");
        return Value::number(float_mod(x, y));
      case BinaryOp::kPow:
        return Value::number(float_pow(x, y));
      default:
        break;
    }
  }
  int64_t x = a.as_int();
  int64_t y = b.as_int();
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      check_overflow(__builtin_add_overflow(x, y, &r));
      return Value::integer(r);
    case BinaryOp::kSub:
      check_overflow(__builtin_sub_overflow(x, y, &r));
      return Value::integer(r);
    case BinaryOp::kMul:
      check_overflow(__builtin_mul_overflow(x, y, &r));
      return Value::integer(r);
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0) fail("ZeroDivisionError: integer division or modulo by zero");
      int64_t q = x / y;
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        q -= 1;
        m += y;
      }
      return Value::integer(op == BinaryOp::kFloorDiv ? q : m);
    }
    case BinaryOp::kPow: {
      if (y < 0) return Value::number(float_pow(static_cast<double>(x), static_cast<double>(y)));
      if (x == 1 || y == 0) return Value::integer(1);
      if (x == 0) return Value::integer(0);
      if (x == -1) return Value::integer(y % 2 == 0 ? 1 : -1);
      // |x| >= 2: overflow ends the loop within 64 steps.
      int64_t result = 1;
      for (int64_t i = 0; i < y; ++i) {
        check_overflow(__builtin_mul_overflow(result, x, &r));
        result = r;
      }
      return Value::integer(result);
    }
    default:
      break;
  }
  fail("internal: unhandled arithmetic operator");
}

// One conversion spec of %-formatting.
struct PercentSpec {
  std::string flags;
  int width = -1;
  int precision = -1;
  char type = 's';
};

std::string pad(std::string text, int width, bool left_align, char fill = ' ') {
  size_t len = py::length(text);
  if (width < 0 || len >= static_cast<size_t>(width)) return text;
  std::string padding(static_cast<size_t>(width) - len, fill);
  return left_align ? text + padding : padding + text;
}

std::string format_number_printf(const PercentSpec& spec, const Value& arg) {
  std::string fmt(1, '%');
  fmt += spec.flags;
  if (spec.width >= 0) fmt += std::to_string(spec.width);
  if (spec.precision >= 0) {
    fmt += '.';
    fmt += std::to_string(spec.precision);
  }
  switch (spec.type) {
    case 'd':
    case 'i':
    case 'u': {
      if (!arg.is_number()) {
        fail("TypeError: %" + std::string(1, spec.type) +
             " format: a real number is required, not " + std::string(arg.type_name()));
      }
      int64_t v = 0;
      if (arg.is_float()) {
        double f = arg.as_float();
        if (std::isnan(f)) fail("ValueError: cannot convert float NaN to integer");
        if (std::isinf(f)) fail("OverflowError: cannot convert float infinity to integer");
        // 2^63 is exactly representable; anything at or beyond it does not fit in int64.
        if (f >= 9223372036854775808.0 || f < -9223372036854775808.0) {
          fail("OverflowError: %" + std::string(1, spec.type) + " of a float beyond 64-bit range");
        }
        v = static_cast<int64_t>(f);
      } else {
        v = arg.as_int();
      }
      return printf_string(fmt + "lld", static_cast<long long>(v));
    }
    case 'x':
    case 'X':
    case 'o': {
      if (!arg.is_int() && !arg.is_bool()) {
        fail("TypeError: %" + std::string(1, spec.type) + " format: an integer is required, not " +
             std::string(arg.type_name()));
      }
      int64_t v = arg.as_int();
      // Magnitude in unsigned arithmetic: -INT64_MIN does not fit in int64.
      uint64_t magnitude =
          v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
      std::string body = v < 0 ? "-" : "";
      body +=
          printf_string(std::string("%ll") + spec.type, static_cast<unsigned long long>(magnitude));
      bool left = spec.flags.find('-') != std::string::npos;
      bool zero = spec.flags.find('0') != std::string::npos && !left;
      return pad(body, spec.width, left, zero ? '0' : ' ');
    }
    default: {
      if (!arg.is_number()) {
        fail("TypeError: must be real number, not " + std::string(arg.type_name()));
      }
      // Only float conversions reach printf: any other letter ('n', 'p', ...) is not Python's
      // here, and '%n' would make printf write through a pointer.
      if (std::string_view("eEfFgG").find(spec.type) == std::string_view::npos) {
        fail(std::string("ValueError: unsupported format character '") + spec.type + "' for " +
             std::string(arg.type_name()));
      }
      return printf_string(fmt + spec.type, arg.as_float());
    }
  }
}

std::string format_percent_arg(const PercentSpec& spec, const Value& arg) {
  bool left = spec.flags.find('-') != std::string::npos;
  switch (spec.type) {
    case 's':
    case 'r':
    case 'a': {
      std::string text = spec.type == 's' ? arg.str() : arg.repr();
      if (spec.precision >= 0 && py::length(text) > static_cast<size_t>(spec.precision)) {
        text = text.substr(0, py::byte_offset(text, static_cast<size_t>(spec.precision)));
      }
      return pad(std::move(text), spec.width, left);
    }
    case 'c': {
      std::string text;
      if (arg.is_string() && py::length(arg.as_string()) == 1) {
        text = arg.as_string();
      } else if (arg.is_int()) {
        py::append_utf8(text, static_cast<char32_t>(arg.as_int()));
      } else {
        fail("TypeError: %c requires an int or a unicode character");
      }
      return pad(std::move(text), spec.width, left);
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o':
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
      if (arg.is_undefined()) fail(undefined_message(arg));
      return format_number_printf(spec, arg);
    default:
      fail("ValueError: unsupported format character '" + std::string(1, spec.type) + "'");
  }
}

}  // namespace

std::string_view binary_op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kFloorDiv:
      return "//";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "**";
    case BinaryOp::kConcat:
      return "~";
  }
  return "?";
}

std::string undefined_message(const Value& v) {
  return v.as_string().empty() ? "value is undefined" : v.as_string();
}

Value apply_binary(BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kConcat) return Value::string(a.str() + b.str());
  if (a.is_undefined()) fail(undefined_message(a));
  if (b.is_undefined()) fail(undefined_message(b));
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  switch (op) {
    case BinaryOp::kAdd:
      if (a.is_string() && b.is_string()) return Value::string(a.as_string() + b.as_string());
      if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
        ValueList out = a.as_list();
        out.insert(out.end(), b.as_list().begin(), b.as_list().end());
        return a.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
      }
      break;
    case BinaryOp::kMul:
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool()))
        return repeat(a, b.as_int());
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))
        return repeat(b, a.as_int());
      break;
    case BinaryOp::kMod:
      if (a.is_string()) return Value::string(percent_format(a.as_string(), b));
      break;
    default:
      break;
  }
  unsupported_operands(op, a, b);
}

Value apply_unary(UnaryOp op, const Value& v) {
  if (v.is_undefined()) fail(undefined_message(v));
  if (!v.is_number()) {
    fail("TypeError: bad operand type for unary " + std::string(op == UnaryOp::kNeg ? "-" : "+") +
         ": '" + std::string(v.type_name()) + "'");
  }
  if (op == UnaryOp::kPos) return v.is_bool() ? Value::integer(v.as_int()) : v;
  if (v.is_float()) return Value::number(-v.as_float());
  check_overflow(v.as_int() == INT64_MIN);
  return Value::integer(-v.as_int());
}

bool apply_compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return equals(a, b);
    case CompareOp::kNe:
      return !equals(a, b);
    case CompareOp::kLt:
      return compare(a, b) < 0;
    case CompareOp::kLe:
      return compare(a, b) <= 0;
    case CompareOp::kGt:
      return compare(a, b) > 0;
    case CompareOp::kGe:
      return compare(a, b) >= 0;
    case CompareOp::kIn:
      return contains(b, a);
    case CompareOp::kNotIn:
      return !contains(b, a);
  }
  return false;
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        fail("TypeError: 'in <string>' requires string as left operand, not " +
             std::string(item.type_name()));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      for (const Value& v : container.as_list()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kGenerator:
      if (!container.as_string().empty()) fail(container.as_string());
      for (const Value& v : container.as_list()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if ((item.is_list() && !item.is_tuple()) || item.is_dict()) {
        fail("TypeError: unhashable type: '" + std::string(item.type_name()) + "'");
      }
      return container.as_dict().find(item) != nullptr;
    default:
      fail("TypeError: argument of type '" + std::string(container.type_name()) +
           "' is not iterable");
  }
}

std::string percent_format(const std::string& fmt, const Value& args) {
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  // Python treats any non-tuple with __getitem__ (dict, list) as a mapping: unused is fine.
  bool mapping_like = args.is_dict() || (args.is_list() && !args.is_tuple());
  if (args.is_tuple()) {
    positional = args.as_list();
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args.as_dict();
  }
  size_t next_arg = 0;
  bool used_mapping = false;
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    char ch = fmt[i++];
    if (ch != '%') {
      out += ch;
      continue;
    }
    if (i >= fmt.size()) fail("ValueError: incomplete format");
    PercentSpec spec;
    const Value* keyed = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) fail("ValueError: incomplete format key");
      if (mapping == nullptr) fail("TypeError: format requires a mapping");
      keyed = mapping->find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (keyed == nullptr) fail("KeyError: " + fmt.substr(i + 1, close - i - 1));
      used_mapping = true;
      i = close + 1;
    }
    while (i < fmt.size() && std::string_view("#0- +").find(fmt[i]) != std::string_view::npos) {
      spec.flags += fmt[i++];
    }
    // A width or precision: digits, or '*' taking the next argument. As in Python, a negative
    // '*' width left-aligns and a negative '*' precision is 0.
    auto read_number = [&](int* target, bool is_width) {
      if (i < fmt.size() && fmt[i] == '*') {
        if (next_arg >= positional.size())
          fail("TypeError: not enough arguments for format string");
        const Value& star = positional[next_arg++];
        if (!star.is_int() && !star.is_bool()) fail("TypeError: * wants int");
        int64_t n = star.as_int();
        if (n < 0 && is_width) spec.flags += '-';
        // |INT64_MIN| is above the cap, so comparing against its negation first is safe.
        if (n < -kMaxWidth) n = -kMaxWidth - 1;
        *target = checked_format_width(n < 0 ? (is_width ? -n : 0) : n);
        ++i;
        return;
      }
      if (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') *target = read_format_width(fmt, &i);
    };
    read_number(&spec.width, true);
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      spec.precision = 0;
      read_number(&spec.precision, false);
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) fail("ValueError: incomplete format");
    spec.type = fmt[i++];
    if (spec.type == '%') {
      out += '%';
      continue;
    }
    if (keyed != nullptr) {
      out += format_percent_arg(spec, *keyed);
      continue;
    }
    if (next_arg >= positional.size()) fail("TypeError: not enough arguments for format string");
    out += format_percent_arg(spec, positional[next_arg++]);
  }
  if (!used_mapping && !mapping_like && next_arg < positional.size()) {
    fail("TypeError: not all arguments converted during string formatting");
  }
  return out;
}

std::string brace_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  size_t i = 0;
  while (i < fmt.size()) {
    char ch = fmt[i];
    if (ch == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        i += 2;
        continue;
      }
      fail("ValueError: Single '}' encountered in format string");
    }
    if (ch != '{') {
      out += ch;
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail("ValueError: Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close + 1;
    std::string spec;
    char conversion = 0;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 1 < field.size()) conversion = field[bang + 1];
      field.resize(bang);
    }
    const Value* arg = nullptr;
    // As in Python, an all-digit field is an index and anything else a keyword.
    if (std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      size_t index = auto_index;
      if (field.empty()) {
        ++auto_index;
      } else if (std::from_chars(field.data(), field.data() + field.size(), index).ec !=
                 std::errc()) {
        index = SIZE_MAX;  // more digits than size_t holds: out of range below
      }
      if (index >= args.positional.size()) {
        fail("IndexError: Replacement index " + std::to_string(index) +
             " out of range for positional args tuple");
      }
      arg = &args.positional[index];
    } else {
      for (const auto& [name, value] : args.keyword) {
        if (name == field) arg = &value;
      }
      if (arg == nullptr) fail("KeyError: '" + field + "'");
    }
    std::string text = conversion == 'r' || conversion == 'a' ? arg->repr() : arg->str();
    if (spec.empty()) {
      out += text;
      continue;
    }
    // [[fill]align][sign][0][width][.precision][type]
    size_t p = 0;
    char fill = ' ';
    char align = 0;
    auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
    if (spec.size() >= 2 && is_align(spec[1])) {
      fill = spec[0];
      align = spec[1];
      p = 2;
    } else if (!spec.empty() && is_align(spec[0])) {
      align = spec[0];
      p = 1;
    }
    std::string sign;
    if (p < spec.size() && (spec[p] == '+' || spec[p] == '-' || spec[p] == ' ')) sign = spec[p++];
    if (p < spec.size() && spec[p] == '0') {
      fill = '0';
      if (align == 0) align = '=';
      ++p;
    }
    int width = -1;
    if (p < spec.size() && std::isdigit(static_cast<unsigned char>(spec[p]))) {
      width = read_format_width(spec, &p);
    }
    int precision = -1;
    if (p < spec.size() && spec[p] == '.') {
      ++p;
      precision = read_format_width(spec, &p);
    }
    char type = p < spec.size() ? spec[p] : 0;
    bool numeric_arg = arg->is_number() && conversion == 0;
    if (numeric_arg && type != 's') {
      PercentSpec ps;
      ps.flags = sign == "-" ? "" : sign;
      ps.precision = precision;
      ps.type = type != 0 ? type : (arg->is_float() ? 'r' : 'd');
      if (ps.type == 'r') {
        text = precision >= 0 ? format_number_printf({ps.flags, -1, precision, 'g'}, *arg)
                              : (sign == "+" && arg->as_float() >= 0 ? "+" : "") + arg->repr();
      } else if (ps.type == '%') {
        ps.type = 'f';
        text = format_number_printf(ps, Value::number(arg->as_float() * 100.0)) + "%";
      } else {
        text = format_number_printf(ps, *arg);
      }
    } else if (precision >= 0 && py::length(text) > static_cast<size_t>(precision)) {
      text = text.substr(0, py::byte_offset(text, static_cast<size_t>(precision)));
    }
    if (align == 0) align = numeric_arg ? '>' : '<';
    size_t len = py::length(text);
    if (width > 0 && len < static_cast<size_t>(width)) {
      size_t total = static_cast<size_t>(width) - len;
      std::string f(1, fill);
      auto repeat_fill = [&](size_t n) {
        std::string s;
        for (size_t k = 0; k < n; ++k) s += f;
        return s;
      };
      if (align == '<') {
        text += repeat_fill(total);
      } else if (align == '>') {
        text = repeat_fill(total) + text;
      } else if (align == '^') {
        text = repeat_fill(total / 2) + text + repeat_fill(total - total / 2);
      } else {
        size_t sign_len = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
        text = text.substr(0, sign_len) + repeat_fill(total) + text.substr(sign_len);
      }
    }
    out += text;
  }
  return out;
}

}  // namespace ponder::text::jinja
