// Python-style argument binding for built-in callables.
#include "coordinator/text/jinja/arguments.h"

#include "coordinator/text/jinja/error.h"

namespace ponder::text::jinja {

BoundArgs::BoundArgs(std::string_view function, const CallArgs& args,
                     std::initializer_list<std::string_view> params)
    : function_(function), values_(params.size()), given_(params.size(), false) {
  for (std::string_view p : params) names_.emplace_back(p);
  if (args.positional.size() > params.size()) {
    fail("TypeError: " + function_ + "() takes at most " + std::to_string(params.size()) +
         " argument(s) (" + std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) {
    values_[i] = args.positional[i];
    given_[i] = true;
  }
  for (const auto& [name, value] : args.keyword) {
    size_t i = 0;
    while (i < names_.size() && names_[i] != name) ++i;
    if (i == names_.size()) {
      fail("TypeError: " + function_ + "() got an unexpected keyword argument '" + name + "'");
    }
    if (given_[i]) {
      fail("TypeError: " + function_ + "() got multiple values for argument '" + name + "'");
    }
    values_[i] = value;
    given_[i] = true;
  }
}

const Value& BoundArgs::required(size_t i) const {
  if (!given_[i]) {
    fail("TypeError: " + function_ + "() missing required argument '" + names_[i] + "'");
  }
  return values_[i];
}

int64_t BoundArgs::get_int(size_t i, int64_t fallback) const {
  if (!given_[i] || values_[i].is_none()) return fallback;
  const Value& v = values_[i];
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_float()) return static_cast<int64_t>(v.as_float());
  fail("TypeError: " + function_ + "() argument '" + names_[i] + "' must be an integer, not " +
       std::string(v.type_name()));
}

bool BoundArgs::get_bool(size_t i, bool fallback) const {
  return given_[i] ? values_[i].truthy() : fallback;
}

std::string BoundArgs::get_string(size_t i, const std::string& fallback) const {
  return given_[i] ? values_[i].str() : fallback;
}

void expect_no_args(std::string_view function, const CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    fail("TypeError: " + std::string(function) + "() takes no arguments");
  }
}

}  // namespace ponder::text::jinja
