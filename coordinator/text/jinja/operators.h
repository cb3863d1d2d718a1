// Python semantics of Jinja's operators on Values: arithmetic, `~` concatenation, comparisons,
// `in`, and the %-formatting that `str % args` and the `format` filter use.
#pragma once

#include <string>

#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };
enum class UnaryOp { kNeg, kPos };

std::string_view binary_op_symbol(BinaryOp op);

// Throws TemplateError with Python's TypeError / ZeroDivisionError wording.
Value apply_binary(BinaryOp op, const Value& a, const Value& b);
Value apply_unary(UnaryOp op, const Value& v);
bool apply_compare(CompareOp op, const Value& a, const Value& b);
// Python `item in container`.
bool contains(const Value& container, const Value& item);

// printf-style `fmt % args`: args is a tuple, a dict (for %(name)s) or a single value.
std::string percent_format(const std::string& fmt, const Value& args);
// str.format(*args, **kwargs) for {} / {0} / {name} fields with simple format specs.
std::string brace_format(const std::string& fmt, const CallArgs& args);

// Message for using an Undefined where a value is needed.
std::string undefined_message(const Value& v);

}  // namespace ponder::text::jinja
