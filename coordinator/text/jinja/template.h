// Template: the public entry point of the Jinja interpreter; parse once, render many times.
// Errors come back as ponder::Status with the template line and column.
//
//   auto tmpl = Template::parse(source, {.trim_blocks = true, .lstrip_blocks = true});
//   if (!tmpl) return tmpl.error();
//   Expected<std::string> text = tmpl->render(variables);  // variables: a JSON object
//
// Thread-safety: a parsed Template is immutable; render() may run concurrently from many threads.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "coordinator/text/jinja/value.h"

namespace ponder::text::jinja {

struct ParsedTemplate;  // the statement tree; defined in template.cpp

// Which `tojson` filter the template sees.
enum class TojsonStyle {
  // jinja2's built-in: json.dumps(sort_keys=True) with ASCII escapes, then < > & ' escaped.
  kJinja2,
  // transformers' override for chat templates: json.dumps(ensure_ascii=False) in insertion order,
  // no HTML escaping; accepts indent, separators, sort_keys, ensure_ascii.
  kTransformers,
};

struct TemplateOptions {
  // jinja2 Environment options; jinja2 defaults are all false. transformers renders chat
  // templates with trim_blocks and lstrip_blocks on.
  bool trim_blocks = false;
  bool lstrip_blocks = false;
  bool keep_trailing_newline = false;
  TojsonStyle tojson = TojsonStyle::kJinja2;
  // Local time used by strftime_now(); empty means the current local time.
  std::function<std::tm()> clock;
};

class Template {
 public:
  // kInvalidArgument with "line L, column C: ..." for syntax errors and unsupported tags.
  static Expected<Template> parse(std::string_view source, TemplateOptions options = {});

  // Renders with the given variables (a dict Value, or a JSON object). Failures, including
  // raise_exception() from the template, are kInvalidArgument with the line and column.
  Expected<std::string> render(const Value& variables) const;
  Expected<std::string> render(const nlohmann::ordered_json& variables) const;

  const TemplateOptions& options() const { return options_; }

 private:
  Template(std::shared_ptr<const ParsedTemplate> parsed, TemplateOptions options)
      : parsed_(std::move(parsed)), options_(std::move(options)) {}

  std::shared_ptr<const ParsedTemplate> parsed_;
  TemplateOptions options_;
};

}  // namespace ponder::text::jinja
