// Methods templates may call on values under jinja2's immutable sandbox: str methods
// ('a'.startswith(...), .split, .strip, .format, ...), dict (items, keys, values, get), list.
#pragma once

#include <optional>
#include <string_view>

#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

// The bound method `object.name`, or nullopt when `object` has no such method.
std::optional<Value> find_method(const Value& object, std::string_view name);

}  // namespace ponder::text::jinja
