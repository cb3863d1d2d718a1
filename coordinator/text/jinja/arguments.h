// Binds the arguments of a call (positional and keyword) to a Python-style parameter list, for
// the built-in filters, tests, methods and globals.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

class BoundArgs {
 public:
  // Throws TemplateError (Python's TypeError wording) for too many positional arguments, an
  // unknown keyword or a parameter given twice.
  BoundArgs(std::string_view function, const CallArgs& args,
            std::initializer_list<std::string_view> params);

  bool has(size_t i) const { return given_[i]; }
  // The argument, or `fallback` when not given.
  Value get(size_t i, const Value& fallback) const { return given_[i] ? values_[i] : fallback; }
  // Throws when a required parameter is missing.
  const Value& required(size_t i) const;
  int64_t get_int(size_t i, int64_t fallback) const;
  bool get_bool(size_t i, bool fallback) const;
  std::string get_string(size_t i, const std::string& fallback) const;

 private:
  std::string function_;
  std::vector<std::string> names_;
  std::vector<Value> values_;
  std::vector<bool> given_;
};

// Fails unless `args` is empty (methods and filters that take no arguments).
void expect_no_args(std::string_view function, const CallArgs& args);

}  // namespace ponder::text::jinja
