// UTF-8 helpers shared by the tokenizer, the detokenizer and the reasoning parser.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ponder::text {

// Length of the UTF-8 sequence that starts with `lead` (1..4), or 0 if `lead` cannot start one.
inline size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return lead >= 0xC2 ? 2 : 0;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return lead <= 0xF4 ? 4 : 0;
  return 0;
}

// Number of bytes at the end of `s` that form an incomplete (but so far valid) UTF-8 sequence.
size_t utf8_incomplete_tail(std::string_view s);

// What starts at a position of a byte string (Unicode's "maximal subpart" rule, table 3-7).
struct Utf8Step {
  enum Kind { kValid, kInvalid, kIncomplete };
  Kind kind;
  // kValid: the sequence length; kInvalid: the maximal invalid subpart (replaced by one U+FFFD);
  // kIncomplete: the bytes up to the end of input, a valid prefix of a longer sequence.
  size_t length;
};
Utf8Step utf8_step(std::string_view s, size_t pos);

// True if `s` is well-formed UTF-8 (no surrogates, no overlongs, nothing above U+10FFFF).
bool utf8_is_valid(std::string_view s);

// `bytes` with every maximal invalid subpart (and an incomplete tail) replaced by U+FFFD, as
// Rust's String::from_utf8_lossy and WHATWG decoders do.
std::string utf8_lossy(std::string_view bytes);

// Decodes the code point at s[*pos] and advances *pos. `s` must be valid UTF-8 there.
inline char32_t utf8_decode(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *pos;
  unsigned char c = p[0];
  if (c < 0x80) {
    *pos += 1;
    return c;
  }
  if (c < 0xE0) {
    *pos += 2;
    return (char32_t(c & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (c < 0xF0) {
    *pos += 3;
    return (char32_t(c & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *pos += 4;
  return (char32_t(c & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
}

// Appends the UTF-8 encoding of `cp` (a Unicode scalar value).
inline void utf8_append(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

}  // namespace ponder::text
