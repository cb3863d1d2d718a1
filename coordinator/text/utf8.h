// UTF-8 helpers shared by the tokenizer, the detokenizer and the reasoning parser.
#pragma once

#include <cstddef>
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

}  // namespace ponder::text
