// GPT-2's byte-level alphabet: every byte 0..255 is shown as one printable character (space is
// 'Ġ' U+0120, newline 'Ċ' U+010A, ...). Byte-level BPE vocabularies are written in it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ponder::text {

// The alphabet character that stands for `byte`.
char32_t byte_level_char(uint8_t byte);

// The byte that `cp` stands for, or -1 if `cp` is not in the alphabet.
int byte_level_byte(char32_t cp);

// Raw bytes -> alphabet text (UTF-8).
std::string bytes_to_byte_level(std::string_view bytes);

// Alphabet text -> raw bytes appended to *out. Returns false (appending nothing) if `text` has a
// character outside the alphabet; `text` must be valid UTF-8.
bool byte_level_to_bytes(std::string_view text, std::string* out);

}  // namespace ponder::text
