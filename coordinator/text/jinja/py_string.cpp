// Python str semantics on UTF-8: code-point indexing, whitespace, case mapping, split/strip, repr.
#include "coordinator/text/jinja/py_string.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "coordinator/text/jinja/error.h"
#include "coordinator/text/utf8.h"

namespace ponder::text::jinja::py {
namespace {

struct CaseRange {
  char32_t first;
  char32_t last;
};

// Ranges where upper and lower case alternate: the even code point is upper case.
constexpr CaseRange kEvenUpperPairs[] = {
    {0x100, 0x12F},   {0x132, 0x137},   {0x14A, 0x177},   {0x182, 0x185},   {0x1A0, 0x1A5},
    {0x1DE, 0x1EF},   {0x1F8, 0x21F},   {0x222, 0x233},   {0x246, 0x24F},   {0x370, 0x373},
    {0x3D8, 0x3EF},   {0x460, 0x481},   {0x48A, 0x4BF},   {0x4D0, 0x52F},   {0x1E00, 0x1E95},
    {0x1EA0, 0x1EFF}, {0x2C80, 0x2CE3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA72F},
    {0xA732, 0xA76F}, {0xA77E, 0xA787}, {0xA790, 0xA793}, {0xA796, 0xA7A9}};
// Ranges where the odd code point is upper case.
constexpr CaseRange kOddUpperPairs[] = {
    {0x139, 0x148}, {0x179, 0x17E}, {0x1B3, 0x1B6}, {0x1CD, 0x1DC}, {0x4C1, 0x4CE}};

bool in_pair_range(char32_t c, const CaseRange* ranges, size_t n, char32_t* first_out) {
  for (size_t i = 0; i < n; ++i) {
    if (c >= ranges[i].first && c <= ranges[i].last) {
      *first_out = ranges[i].first;
      return true;
    }
  }
  return false;
}

// Simple (one code point) lower -> upper mapping; returns c when there is none.
// Latin digraph triples (upper, title, lower): DŽ Dž dž, LJ Lj lj, NJ Nj nj, DZ Dz dz.
bool digraph_base(char32_t c, char32_t* base) {
  for (char32_t b : {char32_t{0x1C4}, char32_t{0x1C7}, char32_t{0x1CA}, char32_t{0x1F1}}) {
    if (c >= b && c <= b + 2) {
      *base = b;
      return true;
    }
  }
  return false;
}

char32_t simple_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  char32_t base = 0;
  if (digraph_base(c, &base)) return base;
  if (c == 0xB5) return 0x39C;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c == 0x131) return 'I';
  if (c == 0x17F) return 'S';
  char32_t first = 0;
  if (in_pair_range(c, kEvenUpperPairs, std::size(kEvenUpperPairs), &first)) {
    return ((c - first) % 2 == 1) ? c - 1 : c;
  }
  if (in_pair_range(c, kOddUpperPairs, std::size(kOddUpperPairs), &first)) {
    return ((c - first) % 2 == 1) ? c - 1 : c;
  }
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 37;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x3B1 && c <= 0x3CB) return c - 32;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 63;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  if (c == 0x4CF) return 0x4C0;
  if (c >= 0x561 && c <= 0x586) return c - 48;
  if (c >= 0x24D0 && c <= 0x24E9) return c - 26;
  if (c >= 0xFF41 && c <= 0xFF5A) return c - 32;
  if (c >= 0x10428 && c <= 0x1044F) return c - 40;
  return c;
}

char32_t simple_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  char32_t base = 0;
  if (digraph_base(c, &base)) return base + 2;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  char32_t first = 0;
  if (in_pair_range(c, kEvenUpperPairs, std::size(kEvenUpperPairs), &first)) {
    return ((c - first) % 2 == 0) ? c + 1 : c;
  }
  if (in_pair_range(c, kOddUpperPairs, std::size(kOddUpperPairs), &first)) {
    return ((c - first) % 2 == 0) ? c + 1 : c;
  }
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x531 && c <= 0x556) return c + 48;
  if (c >= 0x24B6 && c <= 0x24CF) return c + 26;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
  if (c >= 0x10400 && c <= 0x10427) return c + 40;
  return c;
}

// Full upper-case mapping: a few code points expand (German sharp s, ligatures).
void append_upper(std::u32string& out, char32_t c) {
  switch (c) {
    case 0xDF:
      out += U"SS";
      return;
    case 0xFB00:
      out += U"FF";
      return;
    case 0xFB01:
      out += U"FI";
      return;
    case 0xFB02:
      out += U"FL";
      return;
    case 0xFB03:
      out += U"FFI";
      return;
    case 0xFB04:
      out += U"FFL";
      return;
    case 0x149:
      out += U"\u02BCN";
      return;
    default:
      out += simple_upper(c);
  }
}

void append_lower(std::u32string& out, char32_t c) {
  if (c == 0x130) {
    out += U"i\u0307";
    return;
  }
  out += simple_lower(c);
}

// Title case differs from upper case only for the ligature and digraph letters.
void append_title(std::u32string& out, char32_t c) {
  switch (c) {
    case 0xDF:
      out += U"Ss";
      return;
    case 0xFB00:
      out += U"Ff";
      return;
    case 0xFB01:
      out += U"Fi";
      return;
    case 0xFB02:
      out += U"Fl";
      return;
    case 0xFB03:
      out += U"Ffi";
      return;
    case 0xFB04:
      out += U"Ffl";
      return;
    case 0x1C4:
    case 0x1C5:
    case 0x1C6:
      out += char32_t{0x1C5};
      return;
    case 0x1C7:
    case 0x1C8:
    case 0x1C9:
      out += char32_t{0x1C8};
      return;
    case 0x1CA:
    case 0x1CB:
    case 0x1CC:
      out += char32_t{0x1CB};
      return;
    case 0x1F1:
    case 0x1F2:
    case 0x1F3:
      out += char32_t{0x1F2};
      return;
    default:
      append_upper(out, c);
  }
}

bool is_strip_char(char32_t c, const std::optional<std::u32string>& chars) {
  if (!chars) return is_space(c);
  return chars->find(c) != std::u32string::npos;
}

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char lead = static_cast<unsigned char>(s[i]);
    size_t n = utf8_sequence_length(lead);
    if (n == 0 || i + n > s.size()) {
      out += static_cast<char32_t>(lead);
      ++i;
      continue;
    }
    char32_t c = n == 1 ? lead : (lead & (0xFF >> (n + 1)));
    bool ok = true;
    for (size_t k = 1; k < n; ++k) {
      unsigned char b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      c = (c << 6) | (b & 0x3F);
    }
    if (!ok) {
      out += static_cast<char32_t>(lead);
      ++i;
      continue;
    }
    out += c;
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

size_t byte_offset(std::string_view s, size_t index) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == index) return i;
      ++seen;
    }
  }
  return s.size();
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool is_linebreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

bool is_titlecase_digraph(char32_t c) {
  return c == 0x1C5 || c == 0x1C8 || c == 0x1CB || c == 0x1F2;
}
bool is_upper_cp(char32_t c) { return simple_lower(c) != c && !is_titlecase_digraph(c); }
bool is_lower_cp(char32_t c) {
  return (simple_upper(c) != c && !is_titlecase_digraph(c)) || c == 0xDF || c == 0x138;
}
bool is_cased(char32_t c) { return is_upper_cp(c) || is_lower_cp(c) || (c >= 0x1C4 && c <= 0x1CC); }

bool is_alpha_cp(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (is_cased(c)) return true;
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0x5D0 && c <= 0x5EA) || (c >= 0x620 && c <= 0x64A) ||
         (c >= 0x905 && c <= 0x939) || (c >= 0xE01 && c <= 0xE30);
}

bool is_digit_cp(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19) || (c >= 0x660 && c <= 0x669) ||
         (c >= 0x966 && c <= 0x96F);
}

bool is_printable(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F)) return false;
  if ((c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000) return false;
  if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E) {
    return false;
  }
  if (c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xD800 && c <= 0xDFFF)) return false;
  if ((c >= 0xE000 && c <= 0xF8FF) || c >= 0xF0000) return false;
  if (c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F)) return false;
  return true;
}

std::string upper(std::string_view s) {
  std::u32string out;
  for (char32_t c : decode(s)) append_upper(out, c);
  return encode(out);
}

std::string lower(std::string_view s) {
  std::u32string out;
  for (char32_t c : decode(s)) append_lower(out, c);
  return encode(out);
}

std::string title(std::string_view s) {
  std::u32string out;
  bool previous_cased = false;
  for (char32_t c : decode(s)) {
    if (previous_cased) {
      append_lower(out, c);
    } else {
      append_title(out, c);
    }
    previous_cased = is_cased(c);
  }
  return encode(out);
}

std::string capitalize(std::string_view s) {
  std::u32string in = decode(s);
  std::u32string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i == 0) {
      append_title(out, in[i]);
    } else {
      append_lower(out, in[i]);
    }
  }
  return encode(out);
}

std::string swapcase(std::string_view s) {
  std::u32string out;
  for (char32_t c : decode(s)) {
    if (is_upper_cp(c)) {
      append_lower(out, c);
    } else if (is_lower_cp(c)) {
      append_upper(out, c);
    } else {
      out += c;
    }
  }
  return encode(out);
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right) {
  std::u32string text = decode(s);
  std::optional<std::u32string> set;
  if (chars) set = decode(*chars);
  size_t begin = 0;
  size_t end = text.size();
  if (left) {
    while (begin < end && is_strip_char(text[begin], set)) ++begin;
  }
  if (right) {
    while (end > begin && is_strip_char(text[end - 1], set)) --end;
  }
  return encode(std::u32string_view(text).substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    if (sep->empty()) fail("ValueError: empty separator");
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t hit = s.find(*sep, start);
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  std::u32string text = decode(s);
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    if (i == text.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      size_t end = text.size();
      while (end > i && is_space(text[end - 1])) --end;
      parts.push_back(encode(std::u32string_view(text).substr(i, end - i)));
      break;
    }
    size_t j = i;
    while (j < text.size() && !is_space(text[j])) ++j;
    parts.push_back(encode(std::u32string_view(text).substr(i, j - i)));
    i = j;
  }
  return parts;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep,
                                int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    if (sep->empty()) fail("ValueError: empty separator");
    size_t end = s.size();
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
    return parts;
  }
  std::u32string text = decode(s);
  size_t j = text.size();
  while (j > 0) {
    while (j > 0 && is_space(text[j - 1])) --j;
    if (j == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      size_t begin = 0;
      while (begin < j && is_space(text[begin])) ++begin;
      parts.push_back(encode(std::u32string_view(text).substr(begin, j - begin)));
      break;
    }
    size_t i = j;
    while (i > 0 && !is_space(text[i - 1])) --i;
    parts.push_back(encode(std::u32string_view(text).substr(i, j - i)));
    j = i;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::u32string text = decode(s);
  std::vector<std::string> lines;
  size_t start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_linebreak(text[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    size_t next = i + 1;
    if (text[i] == '\r' && next < text.size() && text[next] == '\n') ++next;
    size_t stop = keepends ? next : end;
    lines.push_back(encode(std::u32string_view(text).substr(start, stop - start)));
    start = i = next;
  }
  if (start < text.size()) lines.push_back(encode(std::u32string_view(text).substr(start)));
  return lines;
}

std::string replace(std::string_view s, std::string_view old, std::string_view rep, int64_t count) {
  std::string out;
  if (old.empty()) {
    std::u32string text = decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
      if (count < 0 || done < count) {
        out += rep;
        ++done;
      }
      if (i < text.size()) append_utf8(out, text[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old, start);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(start, hit - start));
    out.append(rep);
    start = hit + old.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

int64_t find(std::string_view s, std::string_view sub, bool from_right) {
  size_t hit = from_right ? s.rfind(sub) : s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return static_cast<int64_t>(length(s.substr(0, hit)));
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(length(s)) + 1;
  int64_t n = 0;
  size_t start = 0;
  while (true) {
    size_t hit = s.find(sub, start);
    if (hit == std::string_view::npos) return n;
    ++n;
    start = hit + sub.size();
  }
}

std::string repr(std::string_view s) {
  std::u32string text = decode(s);
  bool has_single = text.find(U'\'') != std::u32string::npos;
  bool has_double = text.find(U'"') != std::u32string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : text) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!is_printable(c)) {
      char buf[16];
      if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  out += quote;
  return out;
}

std::string float_repr(double d) {
  if (d != d) return "nan";
  if (d == std::numeric_limits<double>::infinity()) return "inf";
  if (d == -std::numeric_limits<double>::infinity()) return "-inf";
  // Shortest round-trip digits in scientific form, e.g. "1.2345e+17" or "-5e-324".
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  bool negative = !sci.empty() && sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  size_t e = sci.find('e');
  std::string digits;
  for (char ch : sci.substr(0, e)) {
    if (ch != '.') digits += ch;
  }
  int exponent = std::atoi(std::string(sci.substr(e + 1)).c_str());
  // Python: value = 0.d1d2... * 10^decpt; exponent notation when decpt > 16 or decpt < -3.
  int decpt = exponent + 1;
  std::string out = negative ? "-" : "";
  if (decpt > 16 || decpt < -3) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                  exponent < 0 ? -exponent : exponent);
    out += exp_buf;
    return out;
  }
  if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
    return out;
  }
  if (static_cast<size_t>(decpt) >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(decpt) - digits.size(), '0');
    out += ".0";
    return out;
  }
  out += digits.substr(0, static_cast<size_t>(decpt));
  out += '.';
  out += digits.substr(static_cast<size_t>(decpt));
  return out;
}

}  // namespace ponder::text::jinja::py
