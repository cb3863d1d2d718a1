// Template: parse + render, turning the module's internal TemplateError into ponder::Status.
#include "coordinator/text/jinja/template.h"

#include "common/strings.h"
#include "coordinator/text/jinja/error.h"
#include "coordinator/text/jinja/evaluator.h"
#include "coordinator/text/jinja/lexer.h"
#include "coordinator/text/jinja/parser.h"
#include "coordinator/text/jinja/scope.h"

namespace ponder::text::jinja {

struct ParsedTemplate {
  Body body;
  std::vector<std::string> root_locals;  // undefined at the start of the top-level scope
};

namespace {

Status to_status(const TemplateError& e, const char* stage) {
  std::string where;
  if (e.has_location()) {
    where = strformat("line %d, column %d: ", e.location().line, e.location().column);
  }
  if (e.raised_by_template()) {
    return Status(StatusCode::kInvalidArgument,
                  where + "template raised an exception: " + e.message());
  }
  return Status(StatusCode::kInvalidArgument, std::string(stage) + ": " + where + e.message());
}

}  // namespace

Expected<Template> Template::parse(std::string_view source, TemplateOptions options) {
  try {
    LexerOptions lex{.trim_blocks = options.trim_blocks,
                     .lstrip_blocks = options.lstrip_blocks,
                     .keep_trailing_newline = options.keep_trailing_newline};
    auto parsed = std::make_shared<ParsedTemplate>();
    parsed->body = parse_template(tokenize(source, lex));
    parsed->root_locals = analyze_scopes(parsed->body);
    return Template(std::move(parsed), std::move(options));
  } catch (const TemplateError& e) {
    return tl::unexpected(to_status(e, "template syntax error"));
  }
}

Expected<std::string> Template::render(const Value& variables) const {
  if (!variables.is_dict()) {
    return error(StatusCode::kInvalidArgument, "template variables must be a mapping, got %s",
                 std::string(variables.type_name()).c_str());
  }
  try {
    Evaluator evaluator(options_);
    return evaluator.render(parsed_->body, parsed_->root_locals, variables);
  } catch (const TemplateError& e) {
    return tl::unexpected(to_status(e, "template render error"));
  }
}

Expected<std::string> Template::render(const nlohmann::ordered_json& variables) const {
  return render(Value::from_json(variables));
}

}  // namespace ponder::text::jinja
