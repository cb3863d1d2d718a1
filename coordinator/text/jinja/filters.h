// The built-in filters (`x | name(args)`, filters.cpp) and tests (`x is name(args)`,
// is_tests.cpp) of jinja2 that chat templates use, with jinja2's argument names and semantics.
#pragma once

#include <string_view>

#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

class Evaluator;

using FilterFn = Value (*)(Evaluator& ev, const Value& operand, CallArgs& args);
using TestFn = bool (*)(Evaluator& ev, const Value& operand, CallArgs& args);

// nullptr for names jinja2 does not define or ponder does not support.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

}  // namespace ponder::text::jinja
