// Unicode normalization (NFC, NFD) and the character properties the tokenizer needs, from the
// tables in unicode_tables.cpp. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ponder::text {

// Canonical combining class of `cp`; 0 for starters.
uint8_t canonical_combining_class(char32_t cp);

// NFC / NFD of valid UTF-8 `text`. When `text` is already normalized they return false and leave
// *out untouched (checked without allocating: the common case for most text); otherwise they write
// the normalized text to *out and return true.
bool normalize_nfc(std::string_view text, std::string* out);
bool normalize_nfd(std::string_view text, std::string* out);

// Convenience forms that always return the normalized text.
std::string to_nfc(std::string_view text);
std::string to_nfd(std::string_view text);

// Unicode White_Space property: what Rust's char::is_whitespace and Oniguruma's \s test.
bool is_white_space(char32_t cp);

// True if `text` (valid UTF-8) has a code point whose general category differs between
// unicode_tables::kCategoryBaseVersion (Debian's PCRE2) and kCategoryVersion (Hugging Face's
// regex engine): a character assigned since, or one whose category changed. Rare in real text;
// checked without decoding ASCII.
bool has_category_changes(std::string_view text);

// The White_Space set as the inside of a regex character class (PCRE2 syntax, no brackets).
inline constexpr std::string_view kWhiteSpaceClassBody =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

}  // namespace ponder::text
