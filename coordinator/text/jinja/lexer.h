// Jinja lexer: splits template source into text and tag tokens the way jinja2's lexer does
// (whitespace control `{%-` `-%}` `{%+` `+%}`, trim_blocks, lstrip_blocks, comments, raw).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/text/jinja/error.h"

namespace ponder::text::jinja {

struct LexerOptions {
  bool trim_blocks = false;    // drop the first newline after a block tag
  bool lstrip_blocks = false;  // strip spaces/tabs from the start of a line up to a block tag
  bool keep_trailing_newline = false;
};

enum class TokenKind {
  kText,           // template data between tags
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // text holds the unescaped value
  kInteger,
  kFloat,
  kOperator,  // text holds the operator: + - * / // % ** ~ ( ) [ ] { } . , : | = == != < <= > >=
  kEof,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
  Location location;
};

// Throws TemplateError (with location) on malformed source.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options);

std::string_view token_kind_name(TokenKind kind);

}  // namespace ponder::text::jinja
