// Jinja parser: turns the lexer's tokens into a statement tree (ast.h) with jinja2's grammar and
// precedence; unsupported tags (extends, include, import, block, ...) fail with line and column.
#pragma once

#include <vector>

#include "coordinator/text/jinja/ast.h"
#include "coordinator/text/jinja/lexer.h"

namespace ponder::text::jinja {

// Throws TemplateError (with location) on a syntax error or an unsupported construct.
Body parse_template(std::vector<Token> tokens);

}  // namespace ponder::text::jinja
