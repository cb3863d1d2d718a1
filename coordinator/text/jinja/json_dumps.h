// Python's json.dumps for template Values, byte for byte: separators, indent, ensure_ascii,
// sort_keys, float repr, and jinja2's HTML-safe escaping of < > & ' in its default tojson filter.
#pragma once

#include <optional>
#include <string>

#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = true;
  // None: one line. Otherwise each level is indented by this string (json.dumps(indent=N) uses
  // N spaces).
  std::optional<std::string> indent;
  // Python's defaults: (", ", ": ") without indent, (",", ": ") with one.
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
  // jinja2's htmlsafe_json_dumps: < > & ' become \u003c \u003e \u0026 \u0027.
  bool html_safe = false;
};

// Throws TemplateError (TypeError) for values JSON cannot hold: Undefined, namespaces, functions.
std::string json_dumps(const Value& value, const JsonDumpOptions& options);

}  // namespace ponder::text::jinja
