// Jinja lexer, following the rules of jinja2's regex lexer (see lexer.h).
#include "coordinator/text/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "coordinator/text/jinja/py_string.h"
#include "coordinator/text/utf8.h"

namespace ponder::text::jinja {
namespace {

// Maps byte offsets of the (newline-normalized) source to 1-based line and column.
class LineMap {
 public:
  explicit LineMap(std::string_view source) : source_(source) {
    starts_.push_back(0);
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\n') starts_.push_back(i + 1);
    }
  }

  Location at(size_t offset) const {
    auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
    size_t line = static_cast<size_t>(it - starts_.begin());
    size_t start = starts_[line - 1];
    size_t column = py::length(source_.substr(start, offset - start)) + 1;
    return {static_cast<int>(line), static_cast<int>(column)};
  }

 private:
  std::string_view source_;
  std::vector<size_t> starts_;
};

// Decodes the code point at `pos`; sets *len to its byte length.
char32_t code_point_at(std::string_view s, size_t pos, size_t* len) {
  size_t n = utf8_sequence_length(static_cast<unsigned char>(s[pos]));
  if (n == 0 || pos + n > s.size()) n = 1;
  *len = n;
  std::u32string cp = py::decode(s.substr(pos, n));
  return cp.empty() ? 0 : cp[0];
}

size_t skip_whitespace(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t len = 1;
    if (!py::is_space(code_point_at(s, pos, &len))) break;
    pos += len;
  }
  return pos;
}

// Python str.rstrip() on whitespace.
std::string_view rstrip_whitespace(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len = 1;
    if (!py::is_space(code_point_at(s, start, &len))) break;
    end = start;
  }
  return s.substr(0, end);
}

bool all_whitespace(std::string_view s) { return !s.empty() && rstrip_whitespace(s).empty(); }

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Digits with optional single underscores between them: (\d+_)*\d+ ; returns end or pos.
size_t match_digits(std::string_view s, size_t pos) {
  if (pos >= s.size() || !is_digit(s[pos])) return pos;
  size_t i = pos;
  while (true) {
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i + 1 < s.size() && s[i] == '_' && is_digit(s[i + 1])) {
      ++i;
      continue;
    }
    return i;
  }
}

// jinja2's float_re; returns the end of the match or npos.
size_t match_float(std::string_view s, size_t pos) {
  if (pos > 0 && s[pos - 1] == '.') return std::string_view::npos;
  size_t i = match_digits(s, pos);
  if (i == pos) return std::string_view::npos;
  size_t after_fraction = std::string_view::npos;
  if (i < s.size() && s[i] == '.') {
    size_t j = match_digits(s, i + 1);
    if (j > i + 1) after_fraction = j;
  }
  size_t exp_start = after_fraction != std::string_view::npos ? after_fraction : i;
  if (exp_start < s.size() && (s[exp_start] == 'e' || s[exp_start] == 'E')) {
    size_t j = exp_start + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t k = match_digits(s, j);
    if (k > j) return k;
  }
  return after_fraction;
}

// jinja2's integer_re; returns the end of the match or npos. Sets *base.
size_t match_integer(std::string_view s, size_t pos, int* base) {
  auto prefixed = [&](char letter, int b, auto is_valid) -> size_t {
    if (pos + 1 < s.size() && s[pos] == '0' && std::tolower(s[pos + 1]) == letter) {
      size_t i = pos + 2;
      size_t last = std::string_view::npos;
      while (true) {
        size_t j = i;
        if (j < s.size() && s[j] == '_') ++j;
        if (j < s.size() && is_valid(s[j])) {
          i = j + 1;
          last = i;
        } else {
          break;
        }
      }
      if (last != std::string_view::npos) *base = b;
      return last;
    }
    return std::string_view::npos;
  };
  size_t end = prefixed('b', 2, [](char c) { return c == '0' || c == '1'; });
  if (end == std::string_view::npos)
    end = prefixed('o', 8, [](char c) { return c >= '0' && c <= '7'; });
  if (end == std::string_view::npos) {
    end =
        prefixed('x', 16, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  }
  if (end != std::string_view::npos) return end;
  if (pos >= s.size() || !is_digit(s[pos])) return std::string_view::npos;
  *base = 10;
  size_t i = pos + 1;
  char allowed_first = s[pos];
  while (true) {
    size_t j = i;
    if (j < s.size() && s[j] == '_') ++j;
    if (j < s.size() && is_digit(s[j]) && (allowed_first != '0' || s[j] == '0')) {
      i = j + 1;
    } else {
      return i;
    }
  }
}

// Python's unicode-escape decoding of a string literal's body.
std::string unescape(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out += c;
      continue;
    }
    char e = body[++i];
    auto hex = [&](size_t digits, const char* what) {
      std::string h(body.substr(i + 1, digits));
      if (h.size() != digits || !std::all_of(h.begin(), h.end(), [](char x) {
            return std::isxdigit(static_cast<unsigned char>(x)) != 0;
          })) {
        fail(std::string("truncated ") + what + " escape");
      }
      i += digits;
      return static_cast<char32_t>(std::stoul(h, nullptr, 16));
    };
    switch (e) {
      case '\n':
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
        py::append_utf8(out, hex(2, "\\xXX"));
        break;
      case 'u':
        py::append_utf8(out, hex(4, "\\uXXXX"));
        break;
      case 'U': {
        char32_t cp = hex(8, "\\UXXXXXXXX");
        if (cp > 0x10FFFF) fail("illegal Unicode character");
        py::append_utf8(out, cp);
        break;
      }
      case 'N':
        fail("\\N{...} escapes in string literals are not supported");
      default:
        if (e >= '0' && e <= '7') {
          unsigned value = static_cast<unsigned>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
               ++k) {
            value = value * 8 + static_cast<unsigned>(body[++i] - '0');
          }
          py::append_utf8(out, static_cast<char32_t>(value));
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

constexpr std::string_view kTwoCharOperators[] = {"//", "**", "==", "!=", ">=", "<="};
constexpr std::string_view kOneCharOperators = "+-/*%~[](){}><=.:|,;";

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options)
      : source_(std::move(source)), lines_(source_), options_(options) {}

  std::vector<Token> run() {
    std::string_view s = source_;
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string_view::npos) {
        emit_text(s.substr(pos), pos);
        break;
      }
      char type = s[tag + 1];
      size_t body = tag + 2;
      char sign = 0;
      if (body < s.size() && (s[body] == '-' || s[body] == '+')) sign = s[body++];
      std::string_view text = s.substr(pos, tag - pos);
      if (sign == '-') {
        text = rstrip_whitespace(text);
      } else if (sign != '+' && options_.lstrip_blocks && type != '{') {
        size_t line_pos = text.rfind('\n');
        line_pos = line_pos == std::string_view::npos ? 0 : line_pos + 1;
        if ((line_pos > 0 || line_starting) && all_whitespace(text.substr(line_pos))) {
          text = text.substr(0, line_pos);
        }
      }
      emit_text(text, pos);
      if (type == '#') {
        pos = lex_comment(tag, body, &line_starting);
      } else if (type == '%' && is_raw_begin(body)) {
        pos = lex_raw(tag, &line_starting);
      } else {
        pos = lex_tag(tag, body, type == '%', &line_starting);
      }
    }
    tokens_.push_back(Token{TokenKind::kEof, "", 0, 0.0, lines_.at(s.size())});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t pos) const {
    std::string_view s = source_;
    while (true) {
      size_t brace = s.find('{', pos);
      if (brace == std::string_view::npos || brace + 1 >= s.size()) return std::string_view::npos;
      char next = s[brace + 1];
      if (next == '{' || next == '%' || next == '#') return brace;
      pos = brace + 1;
    }
  }

  void emit_text(std::string_view text, size_t offset) {
    if (text.empty()) return;
    tokens_.push_back(Token{TokenKind::kText, std::string(text), 0, 0.0, lines_.at(offset)});
  }

  void push(TokenKind kind, std::string text, size_t offset) {
    tokens_.push_back(Token{kind, std::move(text), 0, 0.0, lines_.at(offset)});
  }

  [[noreturn]] void error_at(size_t offset, std::string message) const {
    throw TemplateError(std::move(message), lines_.at(offset));
  }

  // After an end marker: `-` strips all following whitespace; a plain end drops one newline when
  // trim_blocks is on (blocks and comments only); `+` keeps everything.
  size_t after_end(size_t end, char sign, bool trims, bool* line_starting) const {
    std::string_view s = source_;
    size_t next = end;
    if (sign == '-') {
      next = skip_whitespace(s, end);
    } else if (sign == 0 && trims && options_.trim_blocks && end < s.size() && s[end] == '\n') {
      next = end + 1;
    }
    *line_starting = next > 0 && s[next - 1] == '\n';
    return next;
  }

  size_t lex_comment(size_t tag, size_t body, bool* line_starting) {
    std::string_view s = source_;
    size_t close = s.find("#}", body);
    if (close == std::string_view::npos) error_at(tag, "Missing end of comment tag");
    char sign = 0;
    if (close > body && (s[close - 1] == '-' || s[close - 1] == '+')) sign = s[close - 1];
    return after_end(close + 2, sign, true, line_starting);
  }

  // {%(-|+|)\s*raw\s*(-%}\s*|%})
  bool is_raw_begin(size_t body) const {
    std::string_view s = source_;
    size_t i = skip_whitespace(s, body);
    if (s.substr(i, 3) != "raw") return false;
    i = skip_whitespace(s, i + 3);
    return s.substr(i, 2) == "%}" || s.substr(i, 3) == "-%}";
  }

  size_t lex_raw(size_t tag, bool* line_starting) {
    std::string_view s = source_;
    size_t i = skip_whitespace(s, tag + 2 + ((s[tag + 2] == '-' || s[tag + 2] == '+') ? 1 : 0));
    i = skip_whitespace(s, i + 3);
    size_t content = s[i] == '-' ? skip_whitespace(s, i + 3) : i + 2;
    size_t search = content;
    while (true) {
      size_t open = s.find("{%", search);
      if (open == std::string_view::npos) error_at(tag, "Missing end of raw directive");
      size_t j = open + 2;
      char sign = 0;
      if (j < s.size() && (s[j] == '-' || s[j] == '+')) sign = s[j++];
      j = skip_whitespace(s, j);
      if (s.substr(j, 6) != "endraw") {
        search = open + 2;
        continue;
      }
      j = skip_whitespace(s, j + 6);
      char end_sign = 0;
      if (j < s.size() && (s[j] == '-' || s[j] == '+')) end_sign = s[j++];
      if (s.substr(j, 2) != "%}") {
        search = open + 2;
        continue;
      }
      std::string_view text = s.substr(content, open - content);
      if (sign == '-') {
        text = rstrip_whitespace(text);
      } else if (sign != '+' && options_.lstrip_blocks) {
        size_t line_pos = text.rfind('\n');
        line_pos = line_pos == std::string_view::npos ? 0 : line_pos + 1;
        if (line_pos > 0 && all_whitespace(text.substr(line_pos))) text = text.substr(0, line_pos);
      }
      emit_text(text, content);
      return after_end(j + 2, end_sign, true, line_starting);
    }
  }

  size_t lex_tag(size_t tag, size_t pos, bool block, bool* line_starting) {
    std::string_view s = source_;
    push(block ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, "", tag);
    std::vector<char> balance;
    while (true) {
      if (pos >= s.size()) {
        error_at(tag, block ? "unexpected end of template, expected '%}'"
                            : "unexpected end of template, expected '}}'");
      }
      if (balance.empty()) {
        std::string_view end = block ? "%}" : "}}";
        char sign = 0;
        size_t marker = pos;
        if ((s[pos] == '-' || (block && s[pos] == '+')) && s.substr(pos + 1, 2) == end) {
          sign = s[pos];
          marker = pos + 1;
        }
        if (s.substr(marker, 2) == end) {
          push(block ? TokenKind::kBlockEnd : TokenKind::kVariableEnd, "", pos);
          return after_end(marker + 2, sign, block, line_starting);
        }
      }
      char c = s[pos];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++pos;
        continue;
      }
      if (size_t end = match_float(s, pos); end != std::string_view::npos) {
        std::string digits;
        for (char ch : s.substr(pos, end - pos)) {
          if (ch != '_') digits += ch;
        }
        Token t{TokenKind::kFloat, digits, 0, std::strtod(digits.c_str(), nullptr), lines_.at(pos)};
        tokens_.push_back(std::move(t));
        pos = end;
        continue;
      }
      int base = 10;
      if (size_t end = match_integer(s, pos, &base); end != std::string_view::npos) {
        std::string digits;
        for (char ch : s.substr(pos + (base == 10 ? 0 : 2), end - pos - (base == 10 ? 0 : 2))) {
          if (ch != '_') digits += ch;
        }
        errno = 0;
        long long value = std::strtoll(digits.c_str(), nullptr, base);
        if (errno == ERANGE) error_at(pos, "integer literal too large");
        tokens_.push_back(Token{TokenKind::kInteger, std::string(s.substr(pos, end - pos)), value,
                                0.0, lines_.at(pos)});
        pos = end;
        continue;
      }
      if (is_name_start(c)) {
        size_t end = pos + 1;
        while (end < s.size() && is_name_char(s[end])) ++end;
        push(TokenKind::kName, std::string(s.substr(pos, end - pos)), pos);
        pos = end;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t i = pos + 1;
        while (i < s.size() && s[i] != c) i += (s[i] == '\\') ? 2 : 1;
        if (i >= s.size()) error_at(pos, "unexpected end of string literal");
        std::string value;
        try {
          value = unescape(s.substr(pos + 1, i - pos - 1));
        } catch (const TemplateError& e) {
          error_at(pos, e.message());
        }
        push(TokenKind::kString, std::move(value), pos);
        pos = i + 1;
        continue;
      }
      std::string_view op;
      for (std::string_view two : kTwoCharOperators) {
        if (s.substr(pos, 2) == two) op = two;
      }
      if (op.empty() && kOneCharOperators.find(c) != std::string_view::npos) op = s.substr(pos, 1);
      if (op.empty()) {
        size_t len = 1;
        std::string ch;
        py::append_utf8(ch, code_point_at(s, pos, &len));
        error_at(pos, "unexpected char '" + ch + "'");
      }
      if (op == "(" || op == "[" || op == "{") {
        balance.push_back(op == "(" ? ')' : (op == "[" ? ']' : '}'));
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty()) error_at(pos, "unexpected '" + std::string(op) + "'");
        if (balance.back() != op[0]) {
          error_at(pos, "unexpected '" + std::string(op) + "', expected '" +
                            std::string(1, balance.back()) + "'");
        }
        balance.pop_back();
      }
      push(TokenKind::kOperator, std::string(op), pos);
      pos += op.size();
    }
  }

  std::string source_;
  LineMap lines_;
  LexerOptions options_;
  std::vector<Token> tokens_;
};

// jinja2 treats \r\n, \r and \n as line breaks and (without keep_trailing_newline) drops one
// trailing newline.
std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  Lexer lexer(normalize_source(source, options.keep_trailing_newline), options);
  return lexer.run();
}

std::string_view token_kind_name(TokenKind kind) {
  switch (kind) {
    case TokenKind::kText:
      return "template data";
    case TokenKind::kVariableBegin:
      return "'{{'";
    case TokenKind::kVariableEnd:
      return "'}}'";
    case TokenKind::kBlockBegin:
      return "'{%'";
    case TokenKind::kBlockEnd:
      return "'%}'";
    case TokenKind::kName:
      return "name";
    case TokenKind::kString:
      return "string";
    case TokenKind::kInteger:
      return "integer";
    case TokenKind::kFloat:
      return "float";
    case TokenKind::kOperator:
      return "operator";
    case TokenKind::kEof:
      return "end of template";
  }
  return "token";
}

}  // namespace ponder::text::jinja
