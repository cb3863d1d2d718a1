// Python `str` semantics on UTF-8 std::strings, as chat templates see them through Jinja:
// code-point lengths and indices, whitespace and case rules, split/strip/replace, repr().
//
// Case mapping covers Latin, Greek, Cyrillic, Armenian and fullwidth Latin; other scripts are
// left unchanged (Python would map a few more, e.g. Georgian and Cherokee).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::text::jinja::py {

// Decodes UTF-8; an invalid byte decodes to itself (U+0080..U+00FF) so nothing is lost.
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
// Number of code points.
size_t length(std::string_view s);
// Byte offset of code point `index` (index may equal length(s)).
size_t byte_offset(std::string_view s, size_t index);

bool is_space(char32_t c);      // str.isspace()
bool is_linebreak(char32_t c);  // str.splitlines() boundaries
bool is_cased(char32_t c);
bool is_upper_cp(char32_t c);
bool is_lower_cp(char32_t c);
bool is_alpha_cp(char32_t c);
bool is_digit_cp(char32_t c);
bool is_printable(char32_t c);  // str.isprintable(), used by repr()

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
std::string swapcase(std::string_view s);

// str.strip / lstrip / rstrip; `chars` absent means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right);
// str.split / str.rsplit; `sep` absent means runs of whitespace. maxsplit < 0: no limit.
// An empty separator throws TemplateError (Python's ValueError).
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep,
                                int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace; count < 0 replaces all. An empty `old` inserts `rep` between code points.
std::string replace(std::string_view s, std::string_view old, std::string_view rep, int64_t count);
// str.find / str.rfind over code points; -1 when absent.
int64_t find(std::string_view s, std::string_view sub, bool from_right);
int64_t count(std::string_view s, std::string_view sub);

// repr() of a str: quotes chosen like Python, non-printables escaped.
std::string repr(std::string_view s);
// repr() of a float: shortest round-trip digits, Python's switch to exponent notation.
std::string float_repr(double d);

}  // namespace ponder::text::jinja::py
