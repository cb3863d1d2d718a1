// A Unicode regular expression for tokenizer patterns: PCRE2 in UTF + UCP mode, JIT-compiled,
// with Oniguruma's meaning of \s, \S, \h, \H (what Hugging Face tokenizers use).
// Immutable after compile; find_all is thread-safe (per-thread match data).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ponder::text {

// A match or piece: byte offsets [begin, end) into the searched text.
struct TextSpan {
  size_t begin;
  size_t end;
};

class UnicodeRegex {
 public:
  // Compiles an Oniguruma-style pattern (as found in tokenizer.json) for PCRE2.
  static Expected<UnicodeRegex> compile(std::string_view pattern);

  // Appends the successive non-overlapping matches in `text` (valid UTF-8) to *out, with
  // Oniguruma's find_iter rule for empty matches (none right after the previous match).
  void find_all(std::string_view text, std::vector<TextSpan>* out) const;

  // True if the pattern matches anywhere in `text`.
  bool search(std::string_view text) const;

  // The pattern as written in the tokenizer file.
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  UnicodeRegex(std::string pattern, std::shared_ptr<const Code> code)
      : pattern_(std::move(pattern)), code_(std::move(code)) {}
  // One match at or after `start`; returns false when there is none.
  bool match_at(std::string_view text, size_t start, TextSpan* match) const;

  std::string pattern_;
  std::shared_ptr<const Code> code_;
};

// The PCRE2 form of an Oniguruma pattern: \s/\S become White_Space classes (PCRE2's \s also
// matches U+180E), \h/\H become hex-digit classes. Exposed for tests.
std::string oniguruma_to_pcre2(std::string_view pattern);

}  // namespace ponder::text
