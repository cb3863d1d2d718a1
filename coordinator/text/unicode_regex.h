// A Unicode regular expression for tokenizer patterns: PCRE2 in UTF + UCP mode, JIT-compiled,
// with Oniguruma's meaning of \s, \S, \h, \H and Oniguruma's Unicode version for the general
// categories (\p{L}, \P{N}, \p{Letter}, \d, ...): what Hugging Face tokenizers use.
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

  std::string pattern_;
  std::shared_ptr<const Code> code_;
};

// Where a translated pattern takes the general categories of \p{..} from.
enum class CategorySource {
  // PCRE2's \p tables: exact for text without a character whose category changed between
  // PCRE2's Unicode version and unicode_tables::kCategoryVersion.
  kEngine,
  // PCRE2's \p tables plus the changed characters as ranges (explicit ranges where no union
  // does): exact for all text when PCRE2's tables are of unicode_tables::kCategoryBaseVersion.
  kEnginePlusChanges,
  // Explicit ranges of unicode_tables::kCategoryVersion only: exact whatever PCRE2's version
  // (slowest: PCRE2 tests a class's ranges one by one).
  kRanges,
};

// The PCRE2 form of an Oniguruma pattern: \s/\S become White_Space classes (PCRE2's \s also
// matches U+180E), \h/\H become hex-digit classes, and general-category properties
// (\p{L}, \P{Lu}, \p{^N}, \p{Letter}; \d too, except from kEngine) take PCRE2's short names
// and the ranges `source` asks for, kept out of (?i) outside classes. Inside a case-insensitive
// class, which Oniguruma case-folds, a property always becomes explicit ranges with the case
// partners PCRE2 does not know. Scripts and other properties are left to PCRE2. Exposed for
// tests.
std::string oniguruma_to_pcre2(std::string_view pattern,
                               CategorySource source = CategorySource::kEngine);

}  // namespace ponder::text
